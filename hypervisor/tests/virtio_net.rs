//! virtio-net: loopback frames through the mock rings, malformed chains, TAP if permitted,
//! option parsing and per-VM device limits.

mod virtio_util;

use std::sync::atomic::Ordering;

use hypervisor::virtio::mmio::{MmioTransport, QueueHandler, VirtioDevice};
use hypervisor::virtio::net::{NetHandler, MAX_PENDING, RX, TX};
use hypervisor::virtio::{check_device_limits, DiskConfig, Net, NetConfig};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_net::{VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU};
use virtio_queue::Queue;
use virtio_util::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const F: u64 = 1 << VIRTIO_F_VERSION_1;

fn frame(n: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..n)
        .map(|i| (i as u8).wrapping_mul(3).wrapping_add(seed))
        .collect();
    f[0..6].copy_from_slice(&MAC);
    f
}

/// Put a TX chain (12-byte header + frame) at `addr`.
fn tx(mem: &GuestMemoryMmap<()>, vq: &Vq, first: u16, addr: u64, f: &[u8]) {
    mem.write_slice(&[0u8; 12], GuestAddress(addr)).unwrap();
    mem.write_slice(f, GuestAddress(addr + 12)).unwrap();
    add_chain(
        vq,
        first,
        &[Buf(addr, 12, false), Buf(addr + 12, f.len() as u32, false)],
    );
}

fn step(mem: &GuestMemoryMmap<()>, h: &mut NetHandler, qs: &mut [Queue], idx: usize) {
    with_queues(mem, qs, F, |q| h.queue_event(idx, q)).expect("well-formed");
}

#[test]
fn config_space_and_features() {
    let net = Net::new(&NetConfig::Loopback, MAC).unwrap();
    let mut b = [0u8; 12];
    net.read_config(0, &mut b);
    assert_eq!(&b[0..6], &MAC);
    assert_eq!(u16::from_le_bytes([b[6], b[7]]), 1, "link up");
    assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1500, "mtu");
    let f = net.device_features();
    assert_ne!(f & (1 << VIRTIO_NET_F_MAC), 0);
    assert_ne!(f & (1 << VIRTIO_NET_F_MTU), 0);
    // No checksum/segmentation offloads (bits 0..=2, 6..=15).
    assert_eq!(f & 0xffc7, 0);
}

#[test]
fn loopback_frames_come_back() {
    let mem = memory();
    let net = Net::new(&NetConfig::Loopback, MAC).unwrap();
    let stats = net.stats();
    let mut h = net.handler().unwrap();
    let rxq = Vq::new(&mem, ring_base(RX), 16);
    let txq = Vq::new(&mem, ring_base(TX), 16);
    for i in 0..4u16 {
        add_chain(&rxq, i, &[Buf(DATA + 0x1000 * i as u64, 2048, true)]);
    }
    let mut qs = vec![device_queue(&rxq), device_queue(&txq)];
    let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(60 + 500 * i, i as u8)).collect();
    for (i, f) in frames.iter().enumerate() {
        tx(
            &mem,
            &txq,
            2 * i as u16,
            DATA + 0x10_0000 + 0x1000 * i as u64,
            f,
        );
    }
    step(&mem, &mut h, &mut qs, TX);
    assert_eq!(used(&txq).len(), 3);
    let rx = used(&rxq);
    assert_eq!(rx.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(rx[i], (i as u32, (12 + f.len()) as u32));
        let mut hdr = [0u8; 12];
        mem.read_slice(&mut hdr, GuestAddress(DATA + 0x1000 * i as u64))
            .unwrap();
        assert_eq!(hdr, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "num_buffers = 1");
        let mut back = vec![0u8; f.len()];
        mem.read_slice(&mut back, GuestAddress(DATA + 0x1000 * i as u64 + 12))
            .unwrap();
        assert_eq!(&back, f);
    }
    assert_eq!(stats.tx_frames.load(Ordering::Relaxed), 3);
    assert_eq!(stats.rx_frames.load(Ordering::Relaxed), 3);

    // No RX buffer left for frames 4 and 5: they wait, and go out when buffers arrive.
    tx(&mem, &txq, 6, DATA + 0x20_0000, &frame(100, 9));
    tx(&mem, &txq, 8, DATA + 0x20_1000, &frame(100, 10));
    step(&mem, &mut h, &mut qs, TX);
    assert_eq!(used(&rxq).len(), 4);
    assert_eq!(h.pending(), 1);
    add_chain(&rxq, 4, &[Buf(DATA + 0x8000, 1024, true)]);
    step(&mem, &mut h, &mut qs, RX);
    assert_eq!(used(&rxq).len(), 5);
    assert_eq!(h.pending(), 0);
}

#[test]
fn bad_tx_and_rx_chains_are_dropped_not_fatal() {
    let mem = memory();
    let net = Net::new(&NetConfig::Loopback, MAC).unwrap();
    let stats = net.stats();
    let mut h = net.handler().unwrap();
    let rxq = Vq::new(&mem, ring_base(RX), 16);
    let txq = Vq::new(&mem, ring_base(TX), 16);
    let mut qs = vec![device_queue(&rxq), device_queue(&txq)];
    // TX with a device-writable buffer; TX shorter than the header; a runt frame;
    // a frame longer than MTU + L2 header.
    add_chain(&txq, 0, &[Buf(DATA, 12, false), Buf(DATA + 12, 100, true)]);
    add_chain(&txq, 2, &[Buf(DATA, 8, false)]);
    add_chain(&txq, 3, &[Buf(DATA, 12 + 10, false)]);
    add_chain(&txq, 4, &[Buf(DATA, 12 + 9000, false)]);
    step(&mem, &mut h, &mut qs, TX);
    assert_eq!(used(&txq).len(), 4, "all returned to the driver");
    assert_eq!(stats.tx_dropped.load(Ordering::Relaxed), 4);
    assert_eq!(stats.tx_frames.load(Ordering::Relaxed), 0);

    // RX buffer with the wrong direction, then one too small, then a good one.
    add_chain(&rxq, 0, &[Buf(DATA + 0x1000, 2048, false)]);
    add_chain(&rxq, 1, &[Buf(DATA + 0x2000, 64, true)]);
    tx(&mem, &txq, 5, DATA + 0x4000, &frame(200, 1));
    tx(&mem, &txq, 7, DATA + 0x5000, &frame(40, 2));
    step(&mem, &mut h, &mut qs, TX);
    // Wrong-direction buffer returned with length 0; the 200-byte frame did not fit the
    // 64-byte buffer and was dropped; the 40-byte frame used it.
    assert_eq!(used(&rxq), vec![(0, 0), (1, 52)]);
    assert_eq!(stats.rx_dropped.load(Ordering::Relaxed), 2);
}

#[test]
fn flood_without_rx_buffers_is_bounded() {
    let mem = memory();
    let net = Net::new(&NetConfig::Loopback, MAC).unwrap();
    let stats = net.stats();
    let mut h = net.handler().unwrap();
    let rxq = Vq::new(&mem, ring_base(RX), 16);
    let txq = Vq::new(&mem, ring_base(TX), 256);
    let mut qs = vec![device_queue(&rxq), device_queue(&txq)];
    let f = frame(64, 0);
    for round in 0..3 {
        for i in 0..128u16 {
            tx(&mem, &txq, 2 * i, DATA + 0x100 * i as u64, &f);
        }
        step(&mem, &mut h, &mut qs, TX);
        assert!(h.pending() <= MAX_PENDING, "round {round}");
    }
    assert_eq!(stats.tx_frames.load(Ordering::Relaxed), 384);
    assert_eq!(
        stats.rx_dropped.load(Ordering::Relaxed),
        384 - MAX_PENDING as u64
    );
}

#[test]
fn loopback_through_transport_and_worker() {
    let mem = memory();
    let net = Net::new(&NetConfig::Loopback, MAC).unwrap();
    let stats = net.stats();
    let mut t = MmioTransport::new(Box::new(net), mem.clone()).unwrap();
    assert_eq!(rd(&mut t, 0x008), 1, "net device id");
    let rxq = Vq::new(&mem, ring_base(RX), 64);
    let txq = Vq::new(&mem, ring_base(TX), 64);
    assert!(negotiate(&mut t, F | (1 << VIRTIO_NET_F_MAC)));
    setup_queue(&mut t, RX as u32, &rxq);
    setup_queue(&mut t, TX as u32, &txq);
    driver_ok(&mut t);
    for i in 0..8u16 {
        add_chain(&rxq, i, &[Buf(DATA + 0x1000 * i as u64, 1526, true)]);
    }
    wr(&mut t, 0x50, RX as u32);
    for i in 0..8u16 {
        tx(
            &mem,
            &txq,
            2 * i,
            DATA + 0x10_0000 + 0x1000 * i as u64,
            &frame(1514, i as u8),
        );
        t.queue_evts()[TX].write(1).unwrap();
    }
    assert!(wait_used(&rxq, 8));
    assert!(wait_used(&txq, 8));
    assert_eq!(stats.rx_frames.load(Ordering::Relaxed), 8);
    assert_eq!(rd(&mut t, 0x70) & 64, 0);
}

#[test]
fn tap_backend_if_permitted() {
    let name = format!("hvct{}", std::process::id() % 100_000);
    match Net::new(&NetConfig::Tap(name.clone()), MAC) {
        Ok(net) => {
            let h = net.handler().unwrap();
            assert!(h.backend_fd().is_some());
            assert!(std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
            // TX on a TAP that is down is counted as dropped, not a crash.
            let mem = memory();
            let mut h = h;
            let rxq = Vq::new(&mem, ring_base(RX), 16);
            let txq = Vq::new(&mem, ring_base(TX), 16);
            let mut qs = vec![device_queue(&rxq), device_queue(&txq)];
            tx(&mem, &txq, 0, DATA, &frame(60, 0));
            step(&mem, &mut h, &mut qs, TX);
            assert_eq!(used(&txq).len(), 1);
            with_queues(&mem, &mut qs, F, |q| h.backend_event(q)).unwrap();
        }
        Err(e) => eprintln!("skipping tap_backend_if_permitted: cannot create a TAP device: {e}"),
    }
    let long = NetConfig::Tap("x".repeat(40));
    let err = Net::new(&long, MAC).err().expect("name too long");
    assert!(err.to_string().contains("TAP device"), "{err}");
}

#[test]
fn options_parse_and_limits() {
    assert_eq!(
        "loopback".parse::<NetConfig>().unwrap(),
        NetConfig::Loopback
    );
    assert_eq!(
        "tap:tap0".parse::<NetConfig>().unwrap(),
        NetConfig::Tap("tap0".into())
    );
    assert!("tap:".parse::<NetConfig>().is_err());
    assert!("bridge"
        .parse::<NetConfig>()
        .unwrap_err()
        .to_string()
        .contains("loopback"));
    let d: DiskConfig = "/tmp/a.img,ro".parse().unwrap();
    assert_eq!(
        (d.path.to_str().unwrap(), d.read_only),
        ("/tmp/a.img", true)
    );
    let d: DiskConfig = "/tmp/b.img".parse().unwrap();
    assert!(!d.read_only);
    assert!("/tmp/c.img,rx".parse::<DiskConfig>().is_err());

    let disks = vec![d.clone(), d];
    assert!(check_device_limits(&disks[..1], &[NetConfig::Loopback], 1, 1).is_ok());
    let e = check_device_limits(&disks, &[], 1, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 configured") && e.contains("at most 1") && e.contains("max_disks"),
        "{e}"
    );
    let nets = vec![NetConfig::Loopback, NetConfig::Loopback];
    let e = check_device_limits(&[], &nets, 1, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network adapters") && e.contains("max_nics"),
        "{e}"
    );
    assert!(check_device_limits(&disks, &nets, 2, 2).is_ok());
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet + IPv4 + UDP frame (UDP checksum 0 = none).
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut iph = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    iph[2..4].copy_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&src);
    iph.extend_from_slice(&dst);
    let c = checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A network namespace made for one test and deleted when dropped, so that the test's
/// addresses and traffic never touch the machine's own network.
struct TestNetns(String);

impl TestNetns {
    fn new(name: String) -> Result<Self, String> {
        ip(&["netns", "add", &name])?;
        Ok(TestNetns(name))
    }

    /// Runs `f` on a thread that has entered this namespace; sockets it creates stay in it.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.0]);
    }
}

/// TAP backend against a host network stack, both directions: a UDP datagram the host
/// sends to the "guest" address arrives in an RX buffer; a UDP frame the "guest" transmits
/// reaches a host UDP socket. The TAP interface is moved into a network namespace made by
/// the test, and the host side's addresses and socket live there: nothing reaches the
/// machine's own network. Skipped (with the reason) where TAP devices, `ip` or network
/// namespaces are not permitted.
#[test]
fn tap_backend_round_trip_with_host_stack() {
    let name = format!("hvcr{}", std::process::id() % 100_000);
    let net = match Net::new(&NetConfig::Tap(name.clone()), MAC) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipping tap round trip: {e}");
            return;
        }
    };
    let netns = match TestNetns::new(format!("hvcert-{name}")) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipping tap round trip: no network namespace: {e}");
            return;
        }
    };
    let ns = netns.0.clone();
    let (host_ip, guest_ip) = ([10, 213, 77, 1], [10, 213, 77, 2]);
    let setup = ip(&["link", "set", "dev", &name, "netns", &ns])
        .and_then(|_| ip(&["-n", &ns, "link", "set", "dev", &name, "up"]))
        .and_then(|_| ip(&["-n", &ns, "addr", "add", "10.213.77.1/24", "dev", &name]))
        .and_then(|_| {
            ip(&[
                "-n",
                &ns,
                "neigh",
                "add",
                "10.213.77.2",
                "lladdr",
                "52:54:00:12:34:56",
                "dev",
                &name,
            ])
        });
    if let Err(e) = setup {
        eprintln!("skipping tap round trip: {e}");
        return;
    }
    let tap_mac: Vec<u8> = netns.run({
        let name = name.clone();
        move || {
            // /sys shows the interfaces of the namespace that mounted it; ask `ip` instead.
            let out = std::process::Command::new("ip")
                .args(["-o", "link", "show", "dev", &name])
                .output()
                .expect("ip link show");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mac = text
                .split_whitespace()
                .skip_while(|w| *w != "link/ether")
                .nth(1)
                .expect("the TAP's MAC address")
                .to_string();
            mac.split(':')
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect()
        }
    });
    let stats = net.stats();
    let mut h = net.handler().unwrap();
    let mem = memory();
    let rxq = Vq::new(&mem, ring_base(RX), 16);
    let txq = Vq::new(&mem, ring_base(TX), 16);
    for i in 0..8u16 {
        add_chain(&rxq, i, &[Buf(DATA + 0x1000 * i as u64, 2048, true)]);
    }
    let mut qs = vec![device_queue(&rxq), device_queue(&txq)];

    // Host -> guest.
    let sock = netns
        .run(|| std::net::UdpSocket::bind("10.213.77.1:47001").expect("bind on the TAP address"));
    sock.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    sock.send_to(b"hello guest", "10.213.77.2:47002").unwrap();
    let mut found = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !found && std::time::Instant::now() < deadline {
        with_queues(&mem, &mut qs, F, |q| h.backend_event(q)).unwrap();
        for (id, len) in used(&rxq) {
            let mut b = vec![0u8; len as usize];
            mem.read_slice(&mut b, GuestAddress(DATA + 0x1000 * u64::from(id)))
                .unwrap();
            let frame = &b[12..];
            if frame.len() >= 42 && frame[0..6] == MAC && frame[12..14] == [8, 0] && frame[23] == 17
            {
                assert_eq!(&frame[42..], b"hello guest");
                found = true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(found, "the host's datagram reached an RX buffer");

    // Guest -> host.
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&tap_mac);
    let f = udp_frame(dst, MAC, guest_ip, host_ip, 47001, b"hello host");
    tx(&mem, &txq, 0, DATA + 0x20_0000, &f);
    step(&mem, &mut h, &mut qs, TX);
    assert_eq!(stats.tx_frames.load(Ordering::Relaxed), 1);
    let mut buf = [0u8; 64];
    let (n, from) = sock.recv_from(&mut buf).expect("datagram from the guest");
    assert_eq!(&buf[..n], b"hello host");
    assert_eq!(from.to_string(), "10.213.77.2:47001");
}
