//! VMBus network cases: the synthetic network adapter through the guest's netvsc client,
//! on the host's loopback backend (a frame sent comes back as received).
use super::vmbus::connect;
use crate::ktap::{Msg, Outcome};
use crate::vmbus::conn::Bus;
use crate::vmbus::netvsc::{Net, SLOT};
use crate::vmbus::wire::*;
use crate::{check, diag, msg, Ctx};

macro_rules! tryo {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

fn seed(ctx: &Ctx) -> u64 {
    ctx.cmdline
        .get("seed")
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x1234_5678)
}

fn open(ctx: &Ctx) -> Result<(Bus, Net), Msg> {
    let mut bus = connect(ctx)?;
    let n = Net::open(&mut bus)?;
    Ok((bus, n))
}

fn finish(mut bus: Bus, n: Net) -> Outcome {
    tryo!(n.close(&mut bus));
    tryo!(bus.unload());
    Outcome::Pass
}

/// A frame to ourselves (EtherType 0x88b5, local experimental) of `len` bytes with a
/// seeded payload.
fn frame(mac: &[u8; 6], len: usize, seed: u64) -> [u8; SLOT] {
    let mut f = [0u8; SLOT];
    f[0..6].copy_from_slice(mac);
    f[6..12].copy_from_slice(mac);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    let mut x = seed | 1;
    for b in f[14..len].iter_mut() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *b = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
    }
    f
}

fn round_trip(
    bus: &mut Bus,
    n: &mut Net,
    len: usize,
    seed: u64,
    via_send_buffer: bool,
) -> Result<(), Msg> {
    let f = frame(&n.mac, len, seed);
    let st = n.send_frame(bus, &f[..len], via_send_buffer)?;
    if st != NVSP_STAT_SUCCESS {
        return Err(msg!(
            "frame of {} bytes completed with NVSP status {}",
            len,
            st
        ));
    }
    let mut got = [0u8; SLOT];
    let g = n.recv_frame(bus, &mut got)?;
    if g != len {
        return Err(msg!("received {} bytes, sent {}", g, len));
    }
    if let Some(i) = (0..len).find(|&i| got[i] != f[i]) {
        return Err(msg!("received frame differs at byte {} of {}", i, len));
    }
    Ok(())
}

/// NVSP and RNDIS set up; a 64-byte frame through the send buffer and a 300-byte one as a
/// GPA-direct page buffer come back unchanged.
pub fn frame_round_trip(ctx: &mut Ctx) -> Outcome {
    let (mut bus, mut n) = tryo!(open(ctx));
    let s = seed(ctx);
    tryo!(round_trip(&mut bus, &mut n, 64, s, true));
    tryo!(round_trip(&mut bus, &mut n, 300, s ^ 1, false));
    diag!(
        "netvsc: 2 frames round trip; {} packets sent, {} received, {} guest signals",
        n.ch.sent,
        n.ch.received,
        n.ch.signals
    );
    finish(bus, n)
}

/// RNDIS queries: media connect status is connected, link speed non-zero, the MAC is a
/// unicast address.
pub fn link_status(ctx: &mut Ctx) -> Outcome {
    let (mut bus, mut n) = tryo!(open(ctx));
    let (st, len) = tryo!(n.query(&mut bus, OID_GEN_MEDIA_CONNECT_STATUS));
    check!(len >= 4, "media connect status of {} bytes", len);
    let state = u32::from_le_bytes([st[0], st[1], st[2], st[3]]);
    check!(
        state == NDIS_MEDIA_STATE_CONNECTED,
        "media connect status {} (0 = connected)",
        state
    );
    let (sp, len) = tryo!(n.query(&mut bus, OID_GEN_LINK_SPEED));
    let speed = u32::from_le_bytes([sp[0], sp[1], sp[2], sp[3]]);
    check!(
        len >= 4 && speed > 0,
        "link speed {} ({} bytes)",
        speed,
        len
    );
    check!(
        n.mac[0] & 1 == 0 && n.mac != [0; 6],
        "MAC {:02x}:{:02x}:.. is not a unicast address",
        n.mac[0],
        n.mac[1]
    );
    check!(
        n.indicated == 0 || n.indicated == RNDIS_STATUS_MEDIA_CONNECT,
        "the host indicated status {:#x}",
        n.indicated
    );
    diag!("netvsc: link connected, speed {} x 100 bps", speed);
    finish(bus, n)
}

/// A frame of MTU payload (14-byte header + MTU) comes back; one 5 bytes longer is not
/// delivered (refused or dropped), and the next normal frame still arrives first.
pub fn mtu(ctx: &mut Ctx) -> Outcome {
    let (mut bus, mut n) = tryo!(open(ctx));
    let mtu = n.mtu as usize;
    check!(
        (68..=SLOT - 14 - 5 - RNDIS_PACKET_HDR).contains(&mtu),
        "MTU {} unusable here",
        mtu
    );
    let s = seed(ctx);
    tryo!(round_trip(&mut bus, &mut n, 14 + mtu, s, false));
    let big = frame(&n.mac, 14 + mtu + 5, s ^ 2);
    let st = tryo!(n.send_frame(&mut bus, &big[..14 + mtu + 5], false));
    diag!(
        "netvsc: oversized frame ({} bytes) completed with NVSP status {}",
        14 + mtu + 5,
        st
    );
    let back = tryo!(n.frame_within(&mut bus, 500_000_000));
    check!(!back, "a frame of MTU + 5 bytes payload was delivered");
    tryo!(round_trip(&mut bus, &mut n, 80, s ^ 3, true));
    finish(bus, n)
}
