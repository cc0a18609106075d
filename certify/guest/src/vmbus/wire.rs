//! VMBus wire format, as pure data: the guest's own copy, written from the public protocol
//! (Linux include/linux/hyperv.h, drivers/hv/, drivers/scsi/storvsc_drv.c,
//! drivers/net/hyperv/hyperv_net.h, include/linux/rndis.h). It is deliberately independent
//! of the hypervisor crate's abi, so the two are a second opinion on each other.
//! Offsets are byte offsets into the little-endian structures. The tables are complete
//! where that documents the protocol, so not every entry is used.
#![allow(dead_code)]

// ---- SynIC (TLFS) ----
pub const MSR_GUEST_OS_ID: u32 = 0x4000_0000;
pub const MSR_HYPERCALL: u32 = 0x4000_0001;
pub const MSR_SCONTROL: u32 = 0x4000_0080;
pub const MSR_SIEFP: u32 = 0x4000_0082;
pub const MSR_SIMP: u32 = 0x4000_0083;
pub const MSR_EOM: u32 = 0x4000_0084;
pub const MSR_SINT0: u32 = 0x4000_0090;
/// The SINT VMBus messages arrive on (VMBUS_MESSAGE_SINT).
pub const VMBUS_SINT: u32 = 2;
/// hv_message: 16-byte header (type u32, payload size u8, flags u8, reserved u16, sender
/// u64), then up to 240 payload bytes; one 256-byte slot per SINT.
pub const MSG_SLOT: u64 = 256;
pub const MSG_PAYLOAD: u64 = 16;
pub const MSG_PAYLOAD_MAX: usize = 240;
/// message_flags bit 0: another message is pending, write EOM after freeing the slot.
pub const MSG_FLAG_PENDING: u8 = 1;
/// HvMessageTypeNone.
pub const HVMSG_NONE: u32 = 0;
/// The SynIC message type of a VMBus channel message (hv_post_message's type 1).
pub const HVMSG_VMBUS: u32 = 1;

pub const CALL_POST_MESSAGE: u64 = 0x005c;
pub const CALL_SIGNAL_EVENT: u64 = 0x005d;
pub const CALL_FAST: u64 = 1 << 16;
pub const HV_STATUS_SUCCESS: u16 = 0;
pub const HV_STATUS_INSUFFICIENT_BUFFERS: u16 = 0x13;

// ---- Connection (channel management messages) ----
/// Message connection ids: before VMBus 5.0, and INITIATE_CONTACT from 5.0 on.
pub const MSG_CONN_ID: u32 = 1;
pub const MSG_CONN_ID_4: u32 = 4;

pub const fn version(major: u32, minor: u32) -> u32 {
    major << 16 | minor
}
pub const VERSION_WIN7: u32 = version(1, 1);
pub const VERSION_WIN8: u32 = version(2, 4);
pub const VERSION_WIN8_1: u32 = version(3, 0);
pub const VERSION_WIN10: u32 = version(4, 0);
pub const VERSION_WIN10_V4_1: u32 = version(4, 1);
pub const VERSION_WIN10_V5: u32 = version(5, 0);
pub const VERSION_WIN10_V5_1: u32 = version(5, 1);
pub const VERSION_WIN10_V5_2: u32 = version(5, 2);
pub const VERSION_WIN10_V5_3: u32 = version(5, 3);
/// What this client speaks, newest first (Linux's order).
pub const VERSIONS: [u32; 8] = [
    VERSION_WIN10_V5_3,
    VERSION_WIN10_V5_2,
    VERSION_WIN10_V5_1,
    VERSION_WIN10_V5,
    VERSION_WIN10_V4_1,
    VERSION_WIN10,
    VERSION_WIN8_1,
    VERSION_WIN8,
];

/// vmbus_channel_message_type.
pub const CHANNELMSG_OFFERCHANNEL: u32 = 1;
pub const CHANNELMSG_RESCIND_CHANNELOFFER: u32 = 2;
pub const CHANNELMSG_REQUESTOFFERS: u32 = 3;
pub const CHANNELMSG_ALLOFFERS_DELIVERED: u32 = 4;
pub const CHANNELMSG_OPENCHANNEL: u32 = 5;
pub const CHANNELMSG_OPENCHANNEL_RESULT: u32 = 6;
pub const CHANNELMSG_CLOSECHANNEL: u32 = 7;
pub const CHANNELMSG_GPADL_HEADER: u32 = 8;
pub const CHANNELMSG_GPADL_BODY: u32 = 9;
pub const CHANNELMSG_GPADL_CREATED: u32 = 10;
pub const CHANNELMSG_GPADL_TEARDOWN: u32 = 11;
pub const CHANNELMSG_GPADL_TORNDOWN: u32 = 12;
pub const CHANNELMSG_INITIATE_CONTACT: u32 = 14;
pub const CHANNELMSG_VERSION_RESPONSE: u32 = 15;
pub const CHANNELMSG_UNLOAD: u32 = 16;
pub const CHANNELMSG_UNLOAD_RESPONSE: u32 = 17;

/// vmbus_channel_initiate_contact (40 bytes): header, version, target_vcpu, then
/// interrupt_page (before 5.0) or msg_sint/msg_vtl (5.0 on), monitor_page1/2.
pub const IC_VERSION: usize = 8;
pub const IC_TARGET_VCPU: usize = 12;
pub const IC_INTERRUPT_PAGE: usize = 16;
pub const IC_MSG_SINT: usize = 16;
pub const IC_MONITOR1: usize = 24;
pub const IC_MONITOR2: usize = 32;
pub const IC_SIZE: usize = 40;
/// vmbus_channel_version_response: version_supported u8 at 8, connection_state u8 at 9,
/// msg_conn_id u32 at 12.
pub const VR_SUPPORTED: usize = 8;
pub const VR_MSG_CONN_ID: usize = 12;

/// vmbus_channel_offer_channel (196 bytes).
pub const OFFER_IF_TYPE: usize = 8;
pub const OFFER_IF_INSTANCE: usize = 24;
pub const OFFER_CHN_FLAGS: usize = 56;
pub const OFFER_SUB_INDEX: usize = 180;
pub const OFFER_CHILD_RELID: usize = 184;
pub const OFFER_MONITOR_ID: usize = 188;
pub const OFFER_MONITOR_ALLOCATED: usize = 189;
pub const OFFER_DEDICATED_INTERRUPT: usize = 190;
pub const OFFER_CONNECTION_ID: usize = 192;
pub const OFFER_SIZE: usize = 196;

/// vmbus_channel_gpadl_header: child_relid at 8, gpadl at 12, range_buflen u16 at 16,
/// rangecount u16 at 18, then gpa_range {byte_count u32, byte_offset u32, pfn u64[]} at 20.
pub const GPADL_HEADER_FIXED: usize = 20;
/// PFNs that fit in the header message / in one body message.
pub const GPADL_HEADER_PFNS: usize = (MSG_PAYLOAD_MAX - GPADL_HEADER_FIXED - 8) / 8;
pub const GPADL_BODY_PFNS: usize = (MSG_PAYLOAD_MAX - 16) / 8;
/// vmbus_channel_gpadl_created: child_relid 8, gpadl 12, creation_status 16.
/// vmbus_channel_gpadl_torndown: gpadl at 8.
/// vmbus_channel_open_channel: child_relid 8, openid 12, ringbuffer_gpadlhandle 16,
/// target_vp 20, downstream_ringbuffer_pageoffset 24, userdata[120] at 28 (148 bytes).
pub const OPEN_SIZE: usize = 148;
/// vmbus_channel_open_result: child_relid 8, openid 12, status 16.
pub const OPEN_RESULT_STATUS: usize = 16;

/// The first GPADL handle Linux hands out (vmbus_connection.next_gpadl_handle).
pub const FIRST_GPADL: u32 = 0xe1e10;

/// Device class GUIDs in the wire layout (first three fields little-endian).
pub const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}
/// {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}: synthetic SCSI controller (hv_storvsc).
pub const SCSI_GUID: [u8; 16] = guid(
    0xba61_63d9,
    0x04a1,
    0x4d29,
    [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f],
);
/// {f8615163-df3e-46c5-913f-f2d2f965ed0e}: synthetic network adapter (hv_netvsc).
pub const NIC_GUID: [u8; 16] = guid(
    0xf861_5163,
    0xdf3e,
    0x46c5,
    [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e],
);

// ---- Ring buffers ----
/// hv_ring_buffer header page: write_index 0, read_index 4, interrupt_mask 8,
/// pending_send_sz 12, feature_bits 64; data from 4096.
pub const RING_WRITE: u64 = 0;
pub const RING_READ: u64 = 4;
pub const RING_INTR_MASK: u64 = 8;
pub const RING_PENDING_SEND: u64 = 12;
pub const RING_FEATURES: u64 = 64;
pub const RING_FEAT_PENDING_SEND_SZ: u32 = 1;
pub const RING_HEADER: u64 = 4096;

/// vmpacket_descriptor: type u16, offset8 u16, len8 u16, flags u16, trans_id u64.
pub const VM_PKT_DATA_INBAND: u16 = 6;
pub const VM_PKT_DATA_USING_XFER_PAGES: u16 = 7;
pub const VM_PKT_DATA_USING_GPA_DIRECT: u16 = 9;
pub const VM_PKT_COMP: u16 = 11;
pub const PKT_FLAG_COMPLETION_REQUESTED: u16 = 1;
pub const PKT_DESC: usize = 16;

// ---- storvsc (VSTOR) ----
pub const fn vstor_version(major: u16, minor: u16) -> u16 {
    (major & 0xff) << 8 | (minor & 0xff)
}
/// Newest first, with the sense buffer size and vmscsi_request size delta of each.
pub const VSTOR_VERSIONS: [(u16, u8, usize); 5] = [
    (vstor_version(6, 2), 0x14, 0),
    (vstor_version(6, 0), 0x14, 0),
    (vstor_version(5, 1), 0x14, 0),
    (vstor_version(4, 2), 0x12, 16),
    (vstor_version(2, 0), 0x12, 16),
];
pub const VSTOR_OP_COMPLETE_IO: u32 = 1;
pub const VSTOR_OP_EXECUTE_SRB: u32 = 3;
pub const VSTOR_OP_BEGIN_INIT: u32 = 7;
pub const VSTOR_OP_END_INIT: u32 = 8;
pub const VSTOR_OP_QUERY_PROTOCOL: u32 = 9;
pub const VSTOR_OP_QUERY_PROPERTIES: u32 = 10;
pub const VSTOR_FLAG_REQUEST_COMPLETION: u32 = 1;
/// vstor_packet: operation 0, flags 4, status 8, union at 12 (0x34 bytes): 64 bytes.
pub const VSTOR_PACKET: usize = 64;
pub const VSTOR_UNION: usize = 12;
/// vmscsi_request inside the union: length u16 +0, srb_status +2, scsi_status +3,
/// port +4, path +5, target +6, lun +7, cdb_length +8, sense_info_length +9, data_in +10,
/// data_transfer_length u32 +12, cdb/sense[0x14] +16, win8 extension +36 (16 bytes).
pub const SRB_LEN: usize = 0x34;
pub const SRB_STATUS: usize = 2;
pub const SRB_SCSI_STATUS: usize = 3;
pub const SRB_CDB_LEN: usize = 8;
pub const SRB_SENSE_LEN: usize = 9;
pub const SRB_DATA_IN: usize = 10;
pub const SRB_XFER_LEN: usize = 12;
pub const SRB_CDB: usize = 16;
pub const SRB_FLAGS: usize = 40;
pub const WRITE_TYPE: u8 = 0;
pub const READ_TYPE: u8 = 1;
pub const UNKNOWN_TYPE: u8 = 2;
pub const SRB_STATUS_SUCCESS: u8 = 0x01;
pub const SRB_STATUS_ERROR: u8 = 0x04;
pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;
pub const SRB_FLAGS_DATA_IN: u32 = 0x40;
pub const SRB_FLAGS_DATA_OUT: u32 = 0x80;
pub const SCSI_CHECK_CONDITION: u8 = 0x02;
/// vmstorage_channel_properties in the union: max_channel_cnt u16 +4, flags +8,
/// max_transfer_bytes +12.
pub const PROP_MAX_TRANSFER: usize = 12;

// ---- netvsc (NVSP) ----
pub const NVSP_VERSIONS: [u32; 6] = [0x60001, 0x60000, 0x50000, 0x40000, 0x30002, 2];
pub const NVSP_MSG_INIT: u32 = 1;
pub const NVSP_MSG_INIT_COMPLETE: u32 = 2;
pub const NVSP_MSG1_SEND_NDIS_VER: u32 = 100;
pub const NVSP_MSG1_SEND_RECV_BUF: u32 = 101;
pub const NVSP_MSG1_SEND_RECV_BUF_COMPLETE: u32 = 102;
pub const NVSP_MSG1_REVOKE_RECV_BUF: u32 = 103;
pub const NVSP_MSG1_SEND_SEND_BUF: u32 = 104;
pub const NVSP_MSG1_SEND_SEND_BUF_COMPLETE: u32 = 105;
pub const NVSP_MSG1_REVOKE_SEND_BUF: u32 = 106;
pub const NVSP_MSG1_SEND_RNDIS_PKT: u32 = 107;
pub const NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE: u32 = 108;
pub const NVSP_MSG2_SEND_NDIS_CONFIG: u32 = 125;
pub const NVSP_STAT_SUCCESS: u32 = 1;
/// sizeof(struct nvsp_message).
pub const NVSP_MSG_SIZE: usize = 40;
pub const NETVSC_RECEIVE_BUFFER_ID: u16 = 0xcafe;
pub const NETVSC_SEND_BUFFER_ID: u16 = 0;
/// nvsp_1_message_send_rndis_packet.channel_type.
pub const RNDIS_CHANNEL_DATA: u32 = 0;
pub const RNDIS_CHANNEL_CONTROL: u32 = 1;
pub const NETVSC_INVALID_INDEX: u32 = 0xffff_ffff;

// ---- RNDIS ----
pub const RNDIS_MSG_PACKET: u32 = 1;
pub const RNDIS_MSG_INIT: u32 = 2;
pub const RNDIS_MSG_QUERY: u32 = 4;
pub const RNDIS_MSG_SET: u32 = 5;
pub const RNDIS_MSG_INDICATE: u32 = 7;
pub const RNDIS_MSG_COMPLETION: u32 = 0x8000_0000;
pub const RNDIS_STATUS_SUCCESS: u32 = 0;
pub const RNDIS_STATUS_MEDIA_CONNECT: u32 = 0x4001_000b;
pub const RNDIS_STATUS_MEDIA_DISCONNECT: u32 = 0x4001_000c;
pub const OID_GEN_MAXIMUM_FRAME_SIZE: u32 = 0x0001_0106;
pub const OID_GEN_LINK_SPEED: u32 = 0x0001_0107;
pub const OID_GEN_CURRENT_PACKET_FILTER: u32 = 0x0001_010e;
pub const OID_GEN_MEDIA_CONNECT_STATUS: u32 = 0x0001_0114;
pub const OID_802_3_PERMANENT_ADDRESS: u32 = 0x0101_0101;
pub const NDIS_MEDIA_STATE_CONNECTED: u32 = 0;
pub const NDIS_PACKET_TYPE_DIRECTED: u32 = 0x1;
pub const NDIS_PACKET_TYPE_MULTICAST: u32 = 0x2;
pub const NDIS_PACKET_TYPE_BROADCAST: u32 = 0x8;
/// rndis_packet after the 8-byte message header: data_offset, data_len, oob offset/len/
/// count, per-packet-info offset/len, vc_handle, reserved (36 bytes); offsets count from
/// the start of rndis_packet.
pub const RNDIS_PACKET_HDR: usize = 8 + 36;
