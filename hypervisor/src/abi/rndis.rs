//! RNDIS as netvsc carries it (Linux `include/linux/rndis.h`, `hyperv_net.h`), as pure
//! data: message types, status codes, OIDs and layouts.
//!
//! Every message starts `{ u32 ndis_msg_type; u32 msg_len; }` ([`HEADER_LEN`]); requests and
//! their completions carry `u32 req_id` next. Offsets inside a message (`info_buf_offset`,
//! `data_offset`, ...) count from the end of that 8-byte header.

/// Bytes of the common header (type, length).
pub const HEADER_LEN: usize = 8;

/// REMOTE_NDIS_PACKET_MSG.
pub const MSG_PACKET: u32 = 0x0000_0001;
/// REMOTE_NDIS_INITIALIZE_MSG: `{ req_id, major_ver, minor_ver, max_xfer_size }`.
pub const MSG_INIT: u32 = 0x0000_0002;
/// REMOTE_NDIS_HALT_MSG: `{ req_id }`, not answered.
pub const MSG_HALT: u32 = 0x0000_0003;
/// REMOTE_NDIS_QUERY_MSG: `{ req_id, oid, info_buflen, info_buf_offset, dev_vc_handle }`.
pub const MSG_QUERY: u32 = 0x0000_0004;
/// REMOTE_NDIS_SET_MSG: the same layout as a query, with the value.
pub const MSG_SET: u32 = 0x0000_0005;
/// REMOTE_NDIS_RESET_MSG: `{ reserved }`.
pub const MSG_RESET: u32 = 0x0000_0006;
/// REMOTE_NDIS_INDICATE_STATUS_MSG: `{ status, status_buflen, status_buf_offset }`.
pub const MSG_INDICATE_STATUS: u32 = 0x0000_0007;
/// REMOTE_NDIS_KEEPALIVE_MSG: `{ req_id }`.
pub const MSG_KEEPALIVE: u32 = 0x0000_0008;
/// The completion bit: a completion's type is its request's type | this.
pub const MSG_COMPLETION: u32 = 0x8000_0000;
/// REMOTE_NDIS_INITIALIZE_CMPLT: `{ req_id, status, major_ver, minor_ver, dev_flags,
/// medium, max_pkt_per_msg, max_xfer_size, pkt_alignment_factor, af_list_offset,
/// af_list_size }`.
pub const MSG_INIT_C: u32 = MSG_INIT | MSG_COMPLETION;
/// REMOTE_NDIS_QUERY_CMPLT: `{ req_id, status, info_buflen, info_buf_offset }`.
pub const MSG_QUERY_C: u32 = MSG_QUERY | MSG_COMPLETION;
/// REMOTE_NDIS_SET_CMPLT: `{ req_id, status }`.
pub const MSG_SET_C: u32 = MSG_SET | MSG_COMPLETION;
/// REMOTE_NDIS_RESET_CMPLT: `{ status, addressing_reset }`.
pub const MSG_RESET_C: u32 = MSG_RESET | MSG_COMPLETION;
/// REMOTE_NDIS_KEEPALIVE_CMPLT: `{ req_id, status }`.
pub const MSG_KEEPALIVE_C: u32 = MSG_KEEPALIVE | MSG_COMPLETION;

/// `struct rndis_packet`: data_offset, data_len, oob_data_offset, oob_data_len,
/// num_oob_data_elements, per_pkt_info_offset, per_pkt_info_len, vc_handle, reserved.
pub const PACKET_LEN: usize = 36;
/// `struct rndis_initialize_complete`.
pub const INIT_COMPLETE_LEN: usize = 44;
/// `struct rndis_query_complete`.
pub const QUERY_COMPLETE_LEN: usize = 16;
/// `struct rndis_query_request` / `struct rndis_set_request` before the value.
pub const QUERY_REQUEST_LEN: usize = 20;

/// RNDIS_MAJOR_VERSION.
pub const MAJOR_VERSION: u32 = 1;
/// RNDIS_MINOR_VERSION.
pub const MINOR_VERSION: u32 = 0;
/// RNDIS_DF_CONNECTIONLESS.
pub const DF_CONNECTIONLESS: u32 = 1;
/// RNDIS_MEDIUM_802_3.
pub const MEDIUM_802_3: u32 = 0;

/// RNDIS_STATUS_SUCCESS.
pub const STATUS_SUCCESS: u32 = 0;
/// RNDIS_STATUS_FAILURE.
pub const STATUS_FAILURE: u32 = 0xC000_0001;
/// RNDIS_STATUS_NOT_SUPPORTED.
pub const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;
/// RNDIS_STATUS_INVALID_LENGTH.
pub const STATUS_INVALID_LENGTH: u32 = 0xC001_0014;
/// RNDIS_STATUS_INVALID_DATA.
pub const STATUS_INVALID_DATA: u32 = 0xC001_0015;
/// RNDIS_STATUS_MEDIA_CONNECT (an indication).
pub const STATUS_MEDIA_CONNECT: u32 = 0x4001_000B;
/// RNDIS_STATUS_MEDIA_DISCONNECT (an indication).
pub const STATUS_MEDIA_DISCONNECT: u32 = 0x4001_000C;

/// OID_GEN_SUPPORTED_LIST.
pub const OID_GEN_SUPPORTED_LIST: u32 = 0x0001_0101;
/// OID_GEN_HARDWARE_STATUS.
pub const OID_GEN_HARDWARE_STATUS: u32 = 0x0001_0102;
/// OID_GEN_MEDIA_SUPPORTED.
pub const OID_GEN_MEDIA_SUPPORTED: u32 = 0x0001_0103;
/// OID_GEN_MEDIA_IN_USE.
pub const OID_GEN_MEDIA_IN_USE: u32 = 0x0001_0104;
/// OID_GEN_MAXIMUM_FRAME_SIZE: the MTU (no link header).
pub const OID_GEN_MAXIMUM_FRAME_SIZE: u32 = 0x0001_0106;
/// OID_GEN_LINK_SPEED, in units of 100 bit/s.
pub const OID_GEN_LINK_SPEED: u32 = 0x0001_0107;
/// OID_GEN_CURRENT_PACKET_FILTER.
pub const OID_GEN_CURRENT_PACKET_FILTER: u32 = 0x0001_010E;
/// OID_GEN_MAXIMUM_TOTAL_SIZE: the largest frame including the link header.
pub const OID_GEN_MAXIMUM_TOTAL_SIZE: u32 = 0x0001_0111;
/// OID_GEN_MEDIA_CONNECT_STATUS: 0 connected, 1 disconnected.
pub const OID_GEN_MEDIA_CONNECT_STATUS: u32 = 0x0001_0114;
/// OID_GEN_RNDIS_CONFIG_PARAMETER (Linux sets the MAC with it).
pub const OID_GEN_RNDIS_CONFIG_PARAMETER: u32 = 0x0001_021B;
/// OID_GEN_RECEIVE_SCALE_CAPABILITIES.
pub const OID_GEN_RECEIVE_SCALE_CAPABILITIES: u32 = 0x0001_0203;
/// OID_GEN_RECEIVE_SCALE_PARAMETERS.
pub const OID_GEN_RECEIVE_SCALE_PARAMETERS: u32 = 0x0001_0204;
/// OID_802_3_PERMANENT_ADDRESS.
pub const OID_802_3_PERMANENT_ADDRESS: u32 = 0x0101_0101;
/// OID_802_3_CURRENT_ADDRESS.
pub const OID_802_3_CURRENT_ADDRESS: u32 = 0x0101_0102;
/// OID_802_3_MULTICAST_LIST.
pub const OID_802_3_MULTICAST_LIST: u32 = 0x0101_0103;
/// OID_802_3_MAXIMUM_LIST_SIZE.
pub const OID_802_3_MAXIMUM_LIST_SIZE: u32 = 0x0101_0104;
/// OID_TCP_OFFLOAD_PARAMETERS (set).
pub const OID_TCP_OFFLOAD_PARAMETERS: u32 = 0xFC01_020C;
/// OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES (query): a `struct ndis_offload`.
pub const OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: u32 = 0xFC01_020D;

/// NdisMediaStateConnected.
pub const MEDIA_STATE_CONNECTED: u32 = 0;
/// NdisMediaStateDisconnected.
pub const MEDIA_STATE_DISCONNECTED: u32 = 1;
/// NDIS_OBJECT_TYPE_OFFLOAD, the header type of `struct ndis_offload`.
pub const NDIS_OBJECT_TYPE_OFFLOAD: u8 = 0xa7;
/// NDIS_OFFLOAD_PARAMETERS_REVISION_1.
pub const NDIS_OFFLOAD_REVISION_1: u8 = 1;
/// NDIS_OFFLOAD_SIZE_6_0: `offsetof(struct ndis_offload, ipsecv2)`.
pub const NDIS_OFFLOAD_SIZE_6_0: u16 = 120;
