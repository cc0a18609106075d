//! The VSTOR protocol of the VMBus synthetic SCSI controller (Linux `storvsc_drv.c`), as
//! pure data: operations, protocol versions, the `vstor_packet` / `vmscsi_request` layout
//! and the SRB status codes.
//!
//! A `vstor_packet` is `{ u32 operation; u32 flags; u32 status; union { vmscsi_request,
//! channel properties, protocol version, ... } }`, packed, little-endian. Before WIN8 the
//! `vmscsi_request` lacks its 16-byte `win8_extension` and carries 0x12 sense bytes instead
//! of 0x14: every packet is [`VMSCSI_SIZE_DELTA`] bytes shorter.

/// Device class GUID {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} in the wire layout.
pub const CLASS_ID: [u8; 16] = [
    0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f,
];

/// VSTOR_OPERATION_COMPLETE_IO: every host answer.
pub const OP_COMPLETE_IO: u32 = 1;
/// VSTOR_OPERATION_REMOVE_DEVICE.
pub const OP_REMOVE_DEVICE: u32 = 2;
/// VSTOR_OPERATION_EXECUTE_SRB.
pub const OP_EXECUTE_SRB: u32 = 3;
/// VSTOR_OPERATION_RESET_LUN.
pub const OP_RESET_LUN: u32 = 4;
/// VSTOR_OPERATION_RESET_ADAPTER.
pub const OP_RESET_ADAPTER: u32 = 5;
/// VSTOR_OPERATION_RESET_BUS.
pub const OP_RESET_BUS: u32 = 6;
/// VSTOR_OPERATION_BEGIN_INITIALIZATION.
pub const OP_BEGIN_INITIALIZATION: u32 = 7;
/// VSTOR_OPERATION_END_INITIALIZATION.
pub const OP_END_INITIALIZATION: u32 = 8;
/// VSTOR_OPERATION_QUERY_PROTOCOL_VERSION.
pub const OP_QUERY_PROTOCOL_VERSION: u32 = 9;
/// VSTOR_OPERATION_QUERY_PROPERTIES.
pub const OP_QUERY_PROPERTIES: u32 = 10;
/// VSTOR_OPERATION_ENUMERATE_BUS (host to guest).
pub const OP_ENUMERATE_BUS: u32 = 11;
/// VSTOR_OPERATION_FCHBA_DATA.
pub const OP_FCHBA_DATA: u32 = 12;
/// VSTOR_OPERATION_CREATE_SUB_CHANNELS.
pub const OP_CREATE_SUB_CHANNELS: u32 = 13;

/// `flags` bit REQUEST_COMPLETION_FLAG.
pub const REQUEST_COMPLETION_FLAG: u32 = 1;

/// VMSTOR_PROTO_VERSION(major, minor): `major << 8 | minor`.
pub const fn proto_version(major: u16, minor: u16) -> u16 {
    ((major & 0xff) << 8) | (minor & 0xff)
}
/// Windows 7 (4.2): pre-WIN8 packet layout.
pub const VERSION_WIN7: u16 = proto_version(4, 2);
/// Windows 8 (5.1).
pub const VERSION_WIN8: u16 = proto_version(5, 1);
/// Windows 8.1 (6.0).
pub const VERSION_WIN8_1: u16 = proto_version(6, 0);
/// Windows 10 (6.2).
pub const VERSION_WIN10: u16 = proto_version(6, 2);

/// Bytes before the union: operation, flags, status.
pub const HEADER_LEN: usize = 12;
/// `sizeof(struct vmscsi_request)` with the WIN8 extension.
pub const VMSCSI_REQUEST_LEN: usize = 0x34;
/// `sizeof(struct vmscsi_win8_extension)`: what pre-WIN8 packets lack.
pub const VMSCSI_SIZE_DELTA: usize = 16;
/// `sizeof(struct vstor_packet)` for WIN8 and later.
pub const PACKET_LEN: usize = HEADER_LEN + VMSCSI_REQUEST_LEN;
/// `sizeof(struct vstor_packet)` before WIN8 (and before the version is negotiated).
pub const PACKET_LEN_PRE_WIN8: usize = PACKET_LEN - VMSCSI_SIZE_DELTA;
/// CDB bytes in a `vmscsi_request` (STORVSC_MAX_CMD_LEN).
pub const CDB_LEN: usize = 0x10;
/// Sense bytes in a `vmscsi_request` for WIN8 and later.
pub const SENSE_BUFFER_SIZE: usize = 0x14;
/// Sense bytes in a `vmscsi_request` before WIN8.
pub const SENSE_BUFFER_SIZE_PRE_WIN8: usize = 0x12;

/// Offsets inside the packet of the `vmscsi_request` fields (union starts at 12).
pub mod srb {
    /// `u16 length`.
    pub const LENGTH: usize = 12;
    /// `u8 srb_status`.
    pub const SRB_STATUS: usize = 14;
    /// `u8 scsi_status`.
    pub const SCSI_STATUS: usize = 15;
    /// `u8 port_number`.
    pub const PORT: usize = 16;
    /// `u8 path_id`.
    pub const PATH_ID: usize = 17;
    /// `u8 target_id`.
    pub const TARGET_ID: usize = 18;
    /// `u8 lun`.
    pub const LUN: usize = 19;
    /// `u8 cdb_length`.
    pub const CDB_LENGTH: usize = 20;
    /// `u8 sense_info_length`.
    pub const SENSE_INFO_LENGTH: usize = 21;
    /// `u8 data_in` (WRITE_TYPE, READ_TYPE, UNKNOWN_TYPE).
    pub const DATA_IN: usize = 22;
    /// `u32 data_transfer_length`.
    pub const DATA_TRANSFER_LENGTH: usize = 24;
    /// The CDB, and in answers the sense data (a union).
    pub const CDB: usize = 28;
}

/// `data_in`: the guest sends data.
pub const WRITE_TYPE: u8 = 0;
/// `data_in`: the guest receives data.
pub const READ_TYPE: u8 = 1;
/// `data_in`: no data.
pub const UNKNOWN_TYPE: u8 = 2;

/// Offsets of `struct vmstorage_channel_properties` inside the packet.
pub mod props {
    /// `u16 max_channel_cnt` (sub-channels offered).
    pub const MAX_CHANNEL_CNT: usize = 16;
    /// `u32 flags`.
    pub const FLAGS: usize = 20;
    /// `u32 max_transfer_bytes`.
    pub const MAX_TRANSFER_BYTES: usize = 24;
}
/// Channel property flag STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL.
pub const SUPPORTS_MULTI_CHANNEL: u32 = 1;
/// Offset of `struct vmstorage_protocol_version.major_minor` inside the packet.
pub const VERSION_MAJOR_MINOR: usize = 12;

/// SRB_STATUS_SUCCESS.
pub const SRB_STATUS_SUCCESS: u8 = 0x01;
/// SRB_STATUS_ABORTED.
pub const SRB_STATUS_ABORTED: u8 = 0x02;
/// SRB_STATUS_ERROR.
pub const SRB_STATUS_ERROR: u8 = 0x04;
/// SRB_STATUS_INVALID_REQUEST.
pub const SRB_STATUS_INVALID_REQUEST: u8 = 0x06;
/// SRB_STATUS_INVALID_LUN.
pub const SRB_STATUS_INVALID_LUN: u8 = 0x20;
/// SRB_STATUS_AUTOSENSE_VALID: sense data follows (ORed into the status).
pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;

/// NTSTATUS success, in the packet's `status`.
pub const STATUS_SUCCESS: u32 = 0;
/// STATUS_REVISION_MISMATCH: a protocol version the host does not speak.
pub const STATUS_REVISION_MISMATCH: u32 = 0xC000_0059;
/// STATUS_INVALID_DEVICE_REQUEST: an operation the host does not support.
pub const STATUS_INVALID_DEVICE_REQUEST: u32 = 0xC000_0010;
/// STATUS_INVALID_DEVICE_STATE: an operation out of order (I/O before initialization).
pub const STATUS_INVALID_DEVICE_STATE: u32 = 0xC000_0184;
/// STATUS_INVALID_PARAMETER: a malformed request.
pub const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
