//! The runtime: kicks drained on the worker thread, polls, unknown ids refused, clean stop.
use std::time::{Duration, Instant};

use super::*;
use crate::abi::hv::HV_STATUS_INVALID_CONNECTION_ID;
use crate::vmbus::VmbusRuntime;

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn kicks_are_drained_by_the_worker_and_polls_run() {
    let mut g = Guest::connected(1);
    let c = g.open(1, 2, 2);
    let host = Arc::new(std::mem::replace(
        &mut g.host,
        VmbusHost::new(g.mem.clone(), g.sink.clone(), Vec::new()).unwrap(),
    ));
    let rt = VmbusRuntime::start(host.clone(), false).unwrap();
    assert_eq!(
        rt.signal_event(0, 0x9999, 0),
        HV_STATUS_INVALID_CONNECTION_ID
    );
    c.out.write(&g.mem, VM_PKT_DATA_INBAND, 1, 5, &[], b"async");
    assert_eq!(rt.signal_event(0, c.conn_id, 0), 0, "returns at once");
    assert!(
        wait_for(|| c.inr.read(&g.mem).is_some()),
        "completion written"
    );
    // Device-initiated packets arrive through the periodic poll.
    g.dev[0].poll_out.lock().unwrap().push(OutPacket::InBand {
        transaction_id: 9,
        completion_requested: false,
        payload: b"rx".to_vec(),
    });
    assert!(
        wait_for(|| c.inr.read(&g.mem).is_some()),
        "polled packet written"
    );
    // Messages are handled on the caller's thread.
    assert_eq!(
        rt.post_message(0, 1, 1, &msg(CHANNELMSG_REQUESTOFFERS, 8)),
        0
    );
    assert!(!g.sink.msgs().is_empty());
    drop(rt);
    assert_eq!(Arc::strong_count(&host), 1, "worker joined");
}
