//! storvsc behind the channel layer: Linux's VSTOR bring-up and a WRITE(10) / READ(10) pair
//! with GPA-direct ranges, all through the guest's rings, the data checked in guest memory
//! and in the image file.
use super::*;
use crate::abi::storvsc::*;
use crate::devices::virtio::DiskConfig;
use crate::vmbus::storvsc::StorVsc;

fn vstor(op: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..4].copy_from_slice(&op.to_le_bytes());
    p[4..8].copy_from_slice(&REQUEST_COMPLETION_FLAG.to_le_bytes());
    p
}

fn rw10(op: u8, lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&blocks.to_be_bytes());
    c.push(0);
    c
}

fn srb(cdb: &[u8], data_in: u8, xfer: u32) -> Vec<u8> {
    let mut p = vstor(OP_EXECUTE_SRB, PACKET_LEN);
    p[srb::LENGTH..srb::LENGTH + 2].copy_from_slice(&(VMSCSI_REQUEST_LEN as u16).to_le_bytes());
    p[srb::CDB_LENGTH] = cdb.len() as u8;
    p[srb::SENSE_INFO_LENGTH] = SENSE_BUFFER_SIZE as u8;
    p[srb::DATA_IN] = data_in;
    p[srb::DATA_TRANSFER_LENGTH..srb::DATA_TRANSFER_LENGTH + 4]
        .copy_from_slice(&xfer.to_le_bytes());
    p[srb::CDB..srb::CDB + cdb.len()].copy_from_slice(cdb);
    p
}

/// The GPA-direct header of one range of `len` bytes on page `pfn`.
fn range(len: u32, pfn: u64) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&pfn.to_le_bytes());
    h
}

/// Sends one packet through the ring, kicks, and returns the completion's payload.
fn ask(g: &Guest, c: &GChan, ty: u16, tid: u64, head: &[u8], p: &[u8]) -> Vec<u8> {
    assert!(c.out.write(&g.mem, ty, 1, tid, head, p));
    assert_eq!(g.kick(c), 0);
    let (t, _, id, payload, _) = c.inr.read(&g.mem).expect("a completion");
    assert_eq!((t, id), (VM_PKT_COMP, tid));
    assert_eq!(rd32(&payload, 0), OP_COMPLETE_IO);
    payload
}

#[test]
fn storvsc_writes_and_reads_through_the_rings() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 64 * 512]).unwrap();
    let dev = StorVsc::new(&DiskConfig {
        path: img.clone(),
        read_only: false,
    })
    .unwrap();
    let mut g = Guest::with_devices(vec![Box::new(dev)]);
    g.post(&contact(VERSION_WIN10_V5_3, 0));
    g.post(&msg(CHANNELMSG_REQUESTOFFERS, 8));
    let offers = g.sink.msgs();
    assert_eq!(offers[1][8..24], CLASS_SCSI, "storvsc offered as SCSI");
    let c = g.open(1, 4, 4);
    // Linux's bring-up (storvsc_channel_init).
    let i = |op, len| {
        ask(
            &g,
            &c,
            VM_PKT_DATA_INBAND,
            u64::from(op),
            &[],
            &vstor(op, len),
        )
    };
    assert_eq!(rd32(&i(OP_BEGIN_INITIALIZATION, PACKET_LEN_PRE_WIN8), 8), 0);
    let mut v = vstor(OP_QUERY_PROTOCOL_VERSION, PACKET_LEN_PRE_WIN8);
    v[12..14].copy_from_slice(&crate::abi::storvsc::VERSION_WIN10.to_le_bytes());
    let a = ask(&g, &c, VM_PKT_DATA_INBAND, 20, &[], &v);
    assert_eq!(rd32(&a, 8), STATUS_SUCCESS);
    i(OP_QUERY_PROPERTIES, PACKET_LEN);
    assert_eq!(rd32(&i(OP_END_INITIALIZATION, PACKET_LEN), 8), 0);
    // WRITE(10) of one block at LBA 5 from a guest page, then READ(10) into another.
    let (wpage, rpage) = (g.pages(1)[0], g.pages(1)[0]);
    let data: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
    g.mem
        .write_slice(&data, GuestAddress(wpage * 4096))
        .unwrap();
    let w = ask(
        &g,
        &c,
        VM_PKT_DATA_USING_GPA_DIRECT,
        30,
        &range(512, wpage),
        &srb(&rw10(0x2a, 5, 1), WRITE_TYPE, 512),
    );
    assert_eq!(w[HEADER_LEN + 2], SRB_STATUS_SUCCESS, "write SRB status");
    let r = ask(
        &g,
        &c,
        VM_PKT_DATA_USING_GPA_DIRECT,
        31,
        &range(512, rpage),
        &srb(&rw10(0x28, 5, 1), READ_TYPE, 512),
    );
    assert_eq!(r[HEADER_LEN + 2], SRB_STATUS_SUCCESS, "read SRB status");
    let mut back = vec![0u8; 512];
    g.mem
        .read_slice(&mut back, GuestAddress(rpage * 4096))
        .unwrap();
    assert_eq!(back, data, "read back through the guest's page");
    let file = std::fs::read(&img).unwrap();
    assert_eq!(&file[5 * 512..6 * 512], &data[..], "in the image");
}
