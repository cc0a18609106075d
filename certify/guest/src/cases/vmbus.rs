//! VMBus cases: the connection and channel management (version negotiation, offers,
//! GPADLs, open/close, unload) and ring-buffer signalling, with the guest's own client
//! (src/vmbus/). Each case unloads the bus at its end, so cases can also be chained.
use crate::ktap::{Msg, Outcome};
use crate::sys::Page;
use crate::vmbus::conn::{fmt_guid, Bus};
use crate::vmbus::ring::Channel;
use crate::vmbus::storvsc::{self, Stor};
use crate::vmbus::synic;
use crate::vmbus::wire::*;
use crate::{check, diag, fail, Ctx};

macro_rules! tryo {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(m) => return Outcome::Fail(m),
        }
    };
}

pub fn connect(ctx: &Ctx) -> Result<Bus, Msg> {
    Bus::connect(ctx.cmdline.get("guest_os_id"))
}

/// A version no host speaks (99.9) is refused with version_supported = 0; then the
/// newest of 5.3 .. 2.4 the host accepts is negotiated; UNLOAD is answered; and after
/// UNLOAD the guest can make contact again (what kexec/kdump kernels do).
pub fn negotiate(ctx: &mut Ctx) -> Outcome {
    let mut bus = tryo!(Bus::new(ctx.cmdline.get("guest_os_id")));
    let bogus = crate::vmbus::wire::version(99, 9);
    let accepted = tryo!(bus.initiate_contact(bogus));
    check!(!accepted, "INITIATE_CONTACT for VMBus 99.9 was accepted");
    let v = tryo!(bus.negotiate());
    check!(v >= VERSION_WIN8, "negotiated {:#x}, older than WIN8", v);
    if v >= VERSION_WIN10_V5 {
        check!(
            bus.msg_conn != 0,
            "5.x VERSION_RESPONSE gave message connection id 0"
        );
    }
    tryo!(bus.unload());
    let again = tryo!(bus.negotiate());
    check!(
        again == v,
        "after UNLOAD the host accepted {:#x}, before {:#x}",
        again,
        v
    );
    tryo!(bus.request_offers());
    tryo!(bus.unload());
    diag!(
        "vmbus: version {}.{}, {} hypercalls, {} unexpected messages",
        v >> 16,
        v & 0xffff,
        bus.hv.calls,
        bus.unexpected
    );
    check!(
        bus.unexpected == 0,
        "{} unexpected channel messages",
        bus.unexpected
    );
    Outcome::Pass
}

/// REQUESTOFFERS: exactly one SCSI controller and one network adapter (the VM has one
/// of each), offered with the class GUIDs Linux binds hv_storvsc and hv_netvsc by,
/// distinct non-zero relids and instance GUIDs, then ALLOFFERS_DELIVERED.
pub fn offers(ctx: &mut Ctx) -> Outcome {
    let mut bus = tryo!(connect(ctx));
    let n = bus.n_offers;
    let count = |g: &[u8; 16]| {
        bus.offers[..n]
            .iter()
            .flatten()
            .filter(|o| &o.class == g && o.sub_index == 0)
            .count()
    };
    let (scsi, nic) = (count(&SCSI_GUID), count(&NIC_GUID));
    check!(
        scsi == 1 && nic == 1,
        "{} offers: {} SCSI ({}), {} NIC ({})",
        n,
        scsi,
        fmt_guid(&SCSI_GUID).as_str(),
        nic,
        fmt_guid(&NIC_GUID).as_str()
    );
    for (i, a) in bus.offers[..n].iter().flatten().enumerate() {
        check!(a.relid != 0, "offer {} has relid 0", i);
        check!(
            a.instance != [0; 16],
            "offer relid {} has a zero instance GUID",
            a.relid
        );
        check!(
            a.conn_id != 0,
            "offer relid {} has connection id 0",
            a.relid
        );
        for b in bus.offers[i + 1..n].iter().flatten() {
            check!(a.relid != b.relid, "two offers share relid {}", a.relid);
            check!(
                a.instance != b.instance,
                "two offers share instance {}",
                fmt_guid(&a.instance).as_str()
            );
        }
    }
    tryo!(bus.unload());
    Outcome::Pass
}

const GPADL_PAGES: usize = 64;
static mut GPADL_BUF: [Page; GPADL_PAGES] = [const { Page([0; 4096]) }; GPADL_PAGES];

/// A 64-page GPADL (a GPADL_HEADER and two GPADL_BODY messages) is created and torn
/// down; one naming pages far outside RAM is refused with a non-zero creation status.
pub fn gpadl(ctx: &mut Ctx) -> Outcome {
    let mut bus = tryo!(connect(ctx));
    let Some(offer) = bus.find(&SCSI_GUID).or(bus.find(&NIC_GUID)) else {
        fail!("no SCSI or NIC offer to make GPADLs for")
    };
    let buf = (&raw const GPADL_BUF) as u64;
    let h = tryo!(bus.gpadl_create(offer.relid, buf, GPADL_PAGES));
    tryo!(bus.gpadl_teardown(offer.relid, h));
    let h2 = tryo!(bus.gpadl_create(offer.relid, buf, 1));
    check!(h2 != h, "GPADL handle {:#x} reused", h);
    tryo!(bus.gpadl_teardown(offer.relid, h2));
    let outside = (ctx.ram_top.max(1 << 30) + (64 << 30)) & !0xfff;
    let (h3, st) = tryo!(bus.gpadl_create_status(offer.relid, outside, 4));
    check!(
        st != 0,
        "GPADL {:#x} of 4 pages at {:#x} (beyond RAM top {:#x}) was created",
        h3,
        outside,
        ctx.ram_top
    );
    diag!("vmbus: GPADL outside RAM refused with status {:#x}", st);
    tryo!(bus.unload());
    Outcome::Pass
}

/// OPENCHANNEL / CLOSECHANNEL / GPADL_TEARDOWN on the SCSI controller, twice (a driver
/// reload); an OPENCHANNEL for a relid nobody offered fails with a non-zero status.
pub fn open_close(ctx: &mut Ctx) -> Outcome {
    let mut bus = tryo!(connect(ctx));
    let Some(offer) = bus.find(&SCSI_GUID) else {
        fail!("no SCSI controller offer")
    };
    for round in 0..2 {
        let ch = tryo!(Channel::open(
            &mut bus,
            offer,
            storvsc::ring_gpa(),
            storvsc::RING_PAGES
        ));
        diag!(
            "vmbus: round {}: relid {} open with GPADL {:#x}",
            round,
            offer.relid,
            ch.gpadl
        );
        tryo!(ch.close(&mut bus));
    }
    let ch = tryo!(Channel::prepare(
        &mut bus,
        offer,
        storvsc::ring_gpa(),
        storvsc::RING_PAGES
    ));
    let unknown = (0..2048u32)
        .rev()
        .find(|r| {
            bus.offers[..bus.n_offers]
                .iter()
                .flatten()
                .all(|o| o.relid != *r)
        })
        .unwrap_or(2047);
    let st = tryo!(bus.open_status(unknown, ch.gpadl, (storvsc::RING_PAGES / 2) as u32));
    check!(
        st != 0,
        "OPENCHANNEL for unknown relid {} succeeded",
        unknown
    );
    diag!(
        "vmbus: OPENCHANNEL relid {} refused with status {:#x}",
        unknown,
        st
    );
    tryo!(bus.gpadl_teardown(offer.relid, ch.gpadl));
    tryo!(bus.unload());
    Outcome::Pass
}

/// Ring signalling on the SCSI channel. With the inbound ring's interrupt_mask set the
/// host must not signal the channel; with it clear, a completion sets the channel's
/// SINT2 event flag and raises the SynIC interrupt (taken through the IDT). The guest's
/// writes signal the host (HvCallSignalEvent on the offer's connection id).
pub fn ring_signal(ctx: &mut Ctx) -> Outcome {
    let mut bus = tryo!(connect(ctx));
    let mut s = tryo!(Stor::open(&mut bus));
    let relid = s.ch.offer.relid;
    // Consume what channel management left pending.
    while synic::take_interrupt(10_000_000) {}
    synic::take_event(relid);
    let tur = [0u8; 6];
    s.ch.mask_interrupts(true);
    let r = tryo!(s.scsi(&mut bus, &tur, READ_TYPE, 0, 0));
    check!(
        r.ok(),
        "TEST UNIT READY: srb {:#x} scsi {:#x}",
        r.srb_status,
        r.scsi_status
    );
    synic::spin(50_000_000);
    check!(
        !s.ch.take_event(),
        "event flag of relid {} set while the ring was masked",
        relid
    );
    let masked_irq = synic::irr_pending();
    s.ch.mask_interrupts(false);
    let before = crate::sys::upcalls();
    let r = tryo!(s.scsi(&mut bus, &tur, READ_TYPE, 0, 0));
    check!(
        r.ok(),
        "TEST UNIT READY (unmasked): srb {:#x}",
        r.srb_status
    );
    let took = synic::take_interrupt(synic::WAIT_TSC);
    let flagged = s.ch.take_event();
    diag!(
        "vmbus: relid {}: masked irq {}, unmasked irq {} flag {}, upcalls {} -> {}, guest signals {}",
        relid,
        masked_irq,
        took,
        flagged,
        before,
        crate::sys::upcalls(),
        s.ch.signals
    );
    check!(
        !masked_irq,
        "SynIC interrupt pending after a completion on a masked ring"
    );
    check!(
        took,
        "no SynIC interrupt for a completion on an unmasked ring"
    );
    check!(
        flagged,
        "event flag of relid {} not set with the interrupt",
        relid
    );
    check!(s.ch.signals > 0, "the guest never had to signal the host");
    s.ch.mask_interrupts(true);
    tryo!(s.close(&mut bus));
    tryo!(bus.unload());
    Outcome::Pass
}
