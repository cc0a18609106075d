//! NVSP, the protocol of the VMBus synthetic network adapter (Linux `hyperv_net.h`), as
//! pure data: protocol versions, message types, status codes and layouts.
//!
//! An NVSP message is `{ u32 msg_type; union { ... } }`, packed, little-endian; Linux sends
//! and expects `sizeof(struct nvsp_message)` ([`MESSAGE_LEN`]) bytes.

/// Device class GUID {f8615163-df3e-46c5-913f-f2d2f965ed0e} in the wire layout.
pub const CLASS_ID: [u8; 16] = [
    0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e,
];

/// NVSP_PROTOCOL_VERSION_1.
pub const VERSION_1: u32 = 2;
/// NVSP_PROTOCOL_VERSION_2.
pub const VERSION_2: u32 = 0x30002;
/// NVSP_PROTOCOL_VERSION_4.
pub const VERSION_4: u32 = 0x40000;
/// NVSP_PROTOCOL_VERSION_5.
pub const VERSION_5: u32 = 0x50000;
/// NVSP_PROTOCOL_VERSION_6.
pub const VERSION_6: u32 = 0x60000;
/// NVSP_PROTOCOL_VERSION_61.
pub const VERSION_61: u32 = 0x60001;
/// Every version the host speaks, oldest first.
pub const VERSIONS: [u32; 6] = [
    VERSION_1, VERSION_2, VERSION_4, VERSION_5, VERSION_6, VERSION_61,
];

/// NVSP_MSG_TYPE_INIT: `{ u32 min_protocol_ver; u32 max_protocol_ver; }`.
pub const MSG_INIT: u32 = 1;
/// NVSP_MSG_TYPE_INIT_COMPLETE: `{ u32 negotiated_protocol_ver; u32 max_mdl_chain_len;
/// u32 status; }`.
pub const MSG_INIT_COMPLETE: u32 = 2;
/// NVSP_MSG1_TYPE_SEND_NDIS_VER: `{ u32 ndis_major_ver; u32 ndis_minor_ver; }`.
pub const MSG1_SEND_NDIS_VER: u32 = 100;
/// NVSP_MSG1_TYPE_SEND_RECV_BUF: `{ u32 gpadl_handle; u16 id; }`.
pub const MSG1_SEND_RECV_BUF: u32 = 101;
/// NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE: `{ u32 status; u32 num_sections; { u32 offset;
/// u32 sub_alloc_size; u32 num_sub_allocs; u32 end_offset; } sections[1]; }`.
pub const MSG1_SEND_RECV_BUF_COMPLETE: u32 = 102;
/// NVSP_MSG1_TYPE_REVOKE_RECV_BUF: `{ u16 id; }`.
pub const MSG1_REVOKE_RECV_BUF: u32 = 103;
/// NVSP_MSG1_TYPE_SEND_SEND_BUF: `{ u32 gpadl_handle; u16 id; }`.
pub const MSG1_SEND_SEND_BUF: u32 = 104;
/// NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE: `{ u32 status; u32 section_size; }`.
pub const MSG1_SEND_SEND_BUF_COMPLETE: u32 = 105;
/// NVSP_MSG1_TYPE_REVOKE_SEND_BUF: `{ u16 id; }`.
pub const MSG1_REVOKE_SEND_BUF: u32 = 106;
/// NVSP_MSG1_TYPE_SEND_RNDIS_PKT: `{ u32 channel_type; u32 send_buf_section_index;
/// u32 send_buf_section_size; }`.
pub const MSG1_SEND_RNDIS_PKT: u32 = 107;
/// NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE: `{ u32 status; }`.
pub const MSG1_SEND_RNDIS_PKT_COMPLETE: u32 = 108;
/// NVSP_MSG2_TYPE_SEND_NDIS_CONFIG: `{ u32 mtu; u32 reserved; u64 capability; }`.
pub const MSG2_SEND_NDIS_CONFIG: u32 = 125;
/// NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION (host to guest).
pub const MSG4_SEND_VF_ASSOCIATION: u32 = 128;
/// NVSP_MSG4_TYPE_SWITCH_DATA_PATH: `{ u32 active_datapath; }`.
pub const MSG4_SWITCH_DATA_PATH: u32 = 129;
/// NVSP_MSG5_TYPE_SUBCHANNEL: `{ u32 op; u32 num_subchannels; }`, answered with
/// `{ u32 status; u32 num_subchannels; }`.
pub const MSG5_SUBCHANNEL: u32 = 133;
/// NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE (host to guest).
pub const MSG5_SEND_INDIRECTION_TABLE: u32 = 134;

/// NVSP_STAT_NONE.
pub const STAT_NONE: u32 = 0;
/// NVSP_STAT_SUCCESS.
pub const STAT_SUCCESS: u32 = 1;
/// NVSP_STAT_FAIL.
pub const STAT_FAIL: u32 = 2;
/// NVSP_STAT_PROTOCOL_TOO_NEW.
pub const STAT_PROTOCOL_TOO_NEW: u32 = 3;
/// NVSP_STAT_PROTOCOL_TOO_OLD.
pub const STAT_PROTOCOL_TOO_OLD: u32 = 4;
/// NVSP_STAT_INVALID_RNDIS_PKT.
pub const STAT_INVALID_RNDIS_PKT: u32 = 5;
/// NVSP_STAT_BUSY.
pub const STAT_BUSY: u32 = 6;

/// `sizeof(struct nvsp_message)`.
pub const MESSAGE_LEN: usize = 40;
/// `channel_type` of SEND_RNDIS_PKT: data (RMC_DATA).
pub const CHANNEL_DATA: u32 = 0;
/// `channel_type` of SEND_RNDIS_PKT: control (RMC_CONTROL).
pub const CHANNEL_CONTROL: u32 = 1;
/// `send_buf_section_index` when the RNDIS message is in GPA-direct pages.
pub const NO_SECTION: u32 = 0xffff_ffff;
/// The id Linux gives its receive buffer (NETVSC_RECEIVE_BUFFER_ID); the transfer page set
/// id of receive packets.
pub const RECEIVE_BUFFER_ID: u16 = 0xcafe;
/// The id Linux gives its send buffer (NETVSC_SEND_BUFFER_ID).
pub const SEND_BUFFER_ID: u16 = 0;
/// Receive-buffer section size Linux expects (NETVSC_RECV_SECTION_SIZE).
pub const RECV_SECTION_SIZE: u32 = 1728;
/// Send-buffer section size Linux expects (NETVSC_SEND_SECTION_SIZE).
pub const SEND_SECTION_SIZE: u32 = 6144;
/// Smallest section Linux accepts (NETVSC_MTU_MIN, ETH_MIN_MTU).
pub const MTU_MIN: u32 = 68;
