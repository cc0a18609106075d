//! VMBus wire format, as pure data: channel-message types and their layouts (byte offsets and
//! sizes of the little-endian, packed structures a guest posts with HvCallPostMessage and
//! receives in its SIMP slot), protocol versions, connection ids, the ring-buffer header and
//! packet descriptors, and the device-class GUIDs Linux binds its drivers by.
//!
//! Sources: Linux `include/linux/hyperv.h` (`vmbus_channel_*` structures, `hv_ring_buffer`,
//! `vmpacket_descriptor`, the `VERSION_*` numbers) and `drivers/hv/hyperv_vmbus.h`
//! (connection ids, `VMBUS_MESSAGE_SINT`). Every structure is `__packed` there; the
//! offsets below are bytes from the start of the message (the 8-byte header included).
//! [`crate::vmbus`] implements the protocol on top of these numbers.

/// A GUID in the wire layout offers use: Data1 (u32), Data2 and Data3 (u16) little-endian,
/// then Data4's eight bytes as written.
pub const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// Device class of the synthetic SCSI controller (storvsc): ba6163d9-04a1-4d29-b605-72e2ffb1dc7f.
pub const CLASS_SCSI: [u8; 16] = guid(
    0xba61_63d9,
    0x04a1,
    0x4d29,
    [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f],
);
/// Device class of the synthetic network adapter (netvsc): f8615163-df3e-46c5-913f-f2d2f965ed0e.
pub const CLASS_NIC: [u8; 16] = guid(
    0xf861_5163,
    0xdf3e,
    0x46c5,
    [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e],
);
/// Device class of the synthetic IDE controller (storvsc's IDE face):
/// 32412632-86cb-44a2-9b5c-50d1417354f5.
pub const CLASS_IDE: [u8; 16] = guid(
    0x3241_2632,
    0x86cb,
    0x44a2,
    [0x9b, 0x5c, 0x50, 0xd1, 0x41, 0x73, 0x54, 0xf5],
);

// ---- versions (major << 16 | minor) ----

/// Windows Server 2008 (0.13): not spoken.
pub const VERSION_WS2008: u32 = 13;
/// Windows 7 (1.1): not spoken.
pub const VERSION_WIN7: u32 = (1 << 16) | 1;
/// Windows 8 / Server 2012 (2.4): the oldest version we accept.
pub const VERSION_WIN8: u32 = (2 << 16) | 4;
/// Windows 8.1 / Server 2012 R2 (3.0).
pub const VERSION_WIN8_1: u32 = 3 << 16;
/// Windows 10 (4.0).
pub const VERSION_WIN10: u32 = 4 << 16;
/// Windows 10 RS3 (4.1): MODIFYCHANNEL.
pub const VERSION_WIN10_V4_1: u32 = (4 << 16) | 1;
/// 5.0: INITIATE_CONTACT on connection 4, message SINT named in the request, the response
/// names the message connection id for everything after.
pub const VERSION_WIN10_V5: u32 = 5 << 16;
/// 5.1 (Windows 10 RS4).
pub const VERSION_WIN10_V5_1: u32 = (5 << 16) | 1;
/// 5.2 (Windows Server 2019).
pub const VERSION_WIN10_V5_2: u32 = (5 << 16) | 2;
/// 5.3 (Windows Server 2022): MODIFYCHANNEL is answered with MODIFYCHANNEL_RESPONSE.
pub const VERSION_WIN10_V5_3: u32 = (5 << 16) | 3;
/// Every version this host accepts, newest first.
pub const SUPPORTED_VERSIONS: [u32; 8] = [
    VERSION_WIN10_V5_3,
    VERSION_WIN10_V5_2,
    VERSION_WIN10_V5_1,
    VERSION_WIN10_V5,
    VERSION_WIN10_V4_1,
    VERSION_WIN10,
    VERSION_WIN8_1,
    VERSION_WIN8,
];

// ---- connections and SINT ----

/// Message connection id of versions before 5.0 (HvCallPostMessage target).
pub const MESSAGE_CONNECTION_ID: u32 = 1;
/// Event connection id shared by all channels before Windows 8 (interrupt page bitmap).
pub const EVENT_CONNECTION_ID: u32 = 2;
/// Monitor connection id (monitored notification; not offered here).
pub const MONITOR_CONNECTION_ID: u32 = 3;
/// Message connection id an INITIATE_CONTACT for version 5.0 and later is posted to.
pub const MESSAGE_CONNECTION_ID_4: u32 = 4;
/// The SINT VMBus messages and channel events arrive on (VMBUS_MESSAGE_SINT).
pub const MESSAGE_SINT: u8 = 2;
/// HV_MESSAGE_TYPE of VMBus channel messages, both directions (HVMSG_NONE is 0).
pub const HV_MESSAGE_TYPE_CHANNEL: u32 = 1;
/// The most payload bytes one SynIC message carries.
pub const MAX_MESSAGE_PAYLOAD: usize = 240;
/// Event flags per SINT in the SIEFP page (2048 bits): relids must stay below.
pub const EVENT_FLAG_COUNT: u32 = 2048;

// ---- channel message types (vmbus_channel_message_type) ----

/// CHANNELMSG_INVALID.
pub const CHANNELMSG_INVALID: u32 = 0;
/// Host → guest: one device offer.
pub const CHANNELMSG_OFFERCHANNEL: u32 = 1;
/// Host → guest: an offer withdrawn.
pub const CHANNELMSG_RESCIND_CHANNELOFFER: u32 = 2;
/// Guest → host: send me the offers.
pub const CHANNELMSG_REQUESTOFFERS: u32 = 3;
/// Host → guest: every offer has been sent.
pub const CHANNELMSG_ALLOFFERS_DELIVERED: u32 = 4;
/// Guest → host: open a channel on a ring GPADL.
pub const CHANNELMSG_OPENCHANNEL: u32 = 5;
/// Host → guest: the answer to OPENCHANNEL.
pub const CHANNELMSG_OPENCHANNEL_RESULT: u32 = 6;
/// Guest → host: close a channel (no answer).
pub const CHANNELMSG_CLOSECHANNEL: u32 = 7;
/// Guest → host: first part of a GPADL (guest page list).
pub const CHANNELMSG_GPADL_HEADER: u32 = 8;
/// Guest → host: more PFNs of a GPADL.
pub const CHANNELMSG_GPADL_BODY: u32 = 9;
/// Host → guest: GPADL established (or refused).
pub const CHANNELMSG_GPADL_CREATED: u32 = 10;
/// Guest → host: tear a GPADL down.
pub const CHANNELMSG_GPADL_TEARDOWN: u32 = 11;
/// Host → guest: GPADL torn down.
pub const CHANNELMSG_GPADL_TORNDOWN: u32 = 12;
/// Guest → host: a rescinded relid is free again.
pub const CHANNELMSG_RELID_RELEASED: u32 = 13;
/// Guest → host: connect, asking for a protocol version.
pub const CHANNELMSG_INITIATE_CONTACT: u32 = 14;
/// Host → guest: the answer to INITIATE_CONTACT.
pub const CHANNELMSG_VERSION_RESPONSE: u32 = 15;
/// Guest → host: disconnect.
pub const CHANNELMSG_UNLOAD: u32 = 16;
/// Host → guest: disconnected.
pub const CHANNELMSG_UNLOAD_RESPONSE: u32 = 17;
/// Guest → host: hv_sock connect request (not served here).
pub const CHANNELMSG_TL_CONNECT_REQUEST: u32 = 21;
/// Guest → host: move a channel's interrupts to another VP (4.1 and later).
pub const CHANNELMSG_MODIFYCHANNEL: u32 = 22;
/// Host → guest: hv_sock connect result.
pub const CHANNELMSG_TL_CONNECT_RESULT: u32 = 23;
/// Host → guest: the answer to MODIFYCHANNEL (5.3 and later).
pub const CHANNELMSG_MODIFYCHANNEL_RESPONSE: u32 = 24;
/// One past the highest message type.
pub const CHANNELMSG_COUNT: u32 = 25;

/// The message header every channel message starts with: `msgtype` (u32) and padding (u32).
pub mod header {
    /// u32: the CHANNELMSG_* type.
    pub const MSGTYPE: usize = 0;
    /// Bytes of the header.
    pub const SIZE: usize = 8;
}

/// `vmbus_channel_initiate_contact` (guest → host).
pub mod initiate_contact {
    /// u32: the version asked for.
    pub const VERSION_REQUESTED: usize = 8;
    /// u32: the VP the host sends its messages to.
    pub const TARGET_VCPU: usize = 12;
    /// u64 before 5.0: the guest's interrupt page (two halves: host→guest, guest→host).
    pub const INTERRUPT_PAGE: usize = 16;
    /// u8 from 5.0 on (overlays INTERRUPT_PAGE): the SINT messages go to.
    pub const MSG_SINT: usize = 16;
    /// u8 from 5.0 on: the VTL.
    pub const MSG_VTL: usize = 17;
    /// u64: monitor page 1 (host → guest).
    pub const MONITOR_PAGE1: usize = 24;
    /// u64: monitor page 2 (guest → host).
    pub const MONITOR_PAGE2: usize = 32;
    /// Bytes of the message.
    pub const SIZE: usize = 40;
}

/// `vmbus_channel_version_response` (host → guest).
pub mod version_response {
    /// u8: 1 when the version asked for is accepted.
    pub const VERSION_SUPPORTED: usize = 8;
    /// u8: connection state (0 = connected).
    pub const CONNECTION_STATE: usize = 9;
    /// u32 from 5.0 on: the message connection id for every later message.
    pub const MSG_CONN_ID: usize = 12;
    /// Bytes of the message.
    pub const SIZE: usize = 16;
}

/// `vmbus_channel_offer_channel` (host → guest).
pub mod offer_channel {
    /// 16 bytes: device class GUID (`if_type`).
    pub const IF_TYPE: usize = 8;
    /// 16 bytes: instance GUID (`if_instance`).
    pub const IF_INSTANCE: usize = 24;
    /// u16: VMBUS_CHANNEL_* server flags.
    pub const CHN_FLAGS: usize = 56;
    /// u16: MMIO space wanted, in MiB.
    pub const MMIO_MEGABYTES: usize = 58;
    /// 120 bytes: user-defined data (pipe mode in the first u32 for pipes).
    pub const USER_DEF: usize = 60;
    /// Bytes of [`USER_DEF`].
    pub const USER_DEF_LEN: usize = 120;
    /// u16: 0 for a primary channel, n for sub-channel n.
    pub const SUB_CHANNEL_INDEX: usize = 180;
    /// u32: the relid the guest names the channel by.
    pub const CHILD_RELID: usize = 184;
    /// u8: monitor id (bit in the monitor pages).
    pub const MONITOR_ID: usize = 188;
    /// u8 bit 0: a monitor id is allocated (else the guest signals with HvCallSignalEvent).
    pub const MONITOR_ALLOCATED: usize = 189;
    /// u16 bit 0: the channel has its own connection id (no interrupt-page bit).
    pub const IS_DEDICATED_INTERRUPT: usize = 190;
    /// u32: the connection id the guest signals this channel with.
    pub const CONNECTION_ID: usize = 192;
    /// Bytes of the message.
    pub const SIZE: usize = 196;
}

/// `vmbus_channel_rescind_offer`, `vmbus_channel_close_channel` and
/// `vmbus_channel_relid_released`: a header and a relid.
pub mod relid_only {
    /// u32: the channel's relid.
    pub const CHILD_RELID: usize = 8;
    /// Bytes of the message.
    pub const SIZE: usize = 12;
}

/// `vmbus_channel_open_channel` (guest → host).
pub mod open_channel {
    /// u32: the channel to open.
    pub const CHILD_RELID: usize = 8;
    /// u32: the guest's id for this open, echoed in the result.
    pub const OPENID: usize = 12;
    /// u32: GPADL holding both rings.
    pub const RINGBUFFER_GPADL: usize = 16;
    /// u32: the VP host → guest interrupts go to.
    pub const TARGET_VP: usize = 20;
    /// u32: page of the GPADL where the host → guest ring starts (the guest → host ring
    /// starts at page 0).
    pub const DOWNSTREAM_PAGE_OFFSET: usize = 24;
    /// 120 bytes of user data.
    pub const USER_DATA: usize = 28;
    /// Bytes of the message.
    pub const SIZE: usize = 148;
}

/// `vmbus_channel_open_result` (host → guest).
pub mod open_result {
    /// u32: the channel.
    pub const CHILD_RELID: usize = 8;
    /// u32: the OPENCHANNEL's openid.
    pub const OPENID: usize = 12;
    /// u32: 0 on success.
    pub const STATUS: usize = 16;
    /// Bytes of the message.
    pub const SIZE: usize = 20;
}

/// `vmbus_channel_gpadl_header` (guest → host), followed by `gpa_range`s.
pub mod gpadl_header {
    /// u32: the channel the GPADL is for.
    pub const CHILD_RELID: usize = 8;
    /// u32: the guest-chosen GPADL handle.
    pub const GPADL: usize = 12;
    /// u16: bytes of all ranges (headers and PFNs), over this and the BODY messages.
    pub const RANGE_BUFLEN: usize = 16;
    /// u16: number of ranges.
    pub const RANGECOUNT: usize = 18;
    /// Where the first range starts.
    pub const RANGES: usize = 20;
    /// Bytes before the ranges.
    pub const SIZE: usize = 20;
}

/// `gpa_range`: byte count, byte offset in the first page, then the PFNs the range spans.
pub mod gpa_range {
    /// u32: bytes in the range.
    pub const BYTE_COUNT: usize = 0;
    /// u32: offset into the first page.
    pub const BYTE_OFFSET: usize = 4;
    /// u64 array: page frame numbers.
    pub const PFNS: usize = 8;
    /// Bytes before the PFNs.
    pub const SIZE: usize = 8;
}

/// `vmbus_channel_gpadl_body` (guest → host): more PFNs of a GPADL.
pub mod gpadl_body {
    /// u32: sequence number (Linux leaves it 0; not checked).
    pub const MSGNUMBER: usize = 8;
    /// u32: the GPADL handle.
    pub const GPADL: usize = 12;
    /// u64 array: the next PFNs of the range buffer.
    pub const PFNS: usize = 16;
    /// Bytes before the PFNs.
    pub const SIZE: usize = 16;
}

/// `vmbus_channel_gpadl_created` (host → guest).
pub mod gpadl_created {
    /// u32: the channel named in the header.
    pub const CHILD_RELID: usize = 8;
    /// u32: the GPADL handle.
    pub const GPADL: usize = 12;
    /// u32: 0 on success.
    pub const STATUS: usize = 16;
    /// Bytes of the message.
    pub const SIZE: usize = 20;
}

/// `vmbus_channel_gpadl_teardown` (guest → host).
pub mod gpadl_teardown {
    /// u32: the channel.
    pub const CHILD_RELID: usize = 8;
    /// u32: the GPADL handle.
    pub const GPADL: usize = 12;
    /// Bytes of the message.
    pub const SIZE: usize = 16;
}

/// `vmbus_channel_gpadl_torndown` (host → guest).
pub mod gpadl_torndown {
    /// u32: the GPADL handle.
    pub const GPADL: usize = 8;
    /// Bytes of the message.
    pub const SIZE: usize = 12;
}

/// `vmbus_channel_modifychannel` (guest → host).
pub mod modify_channel {
    /// u32: the channel.
    pub const CHILD_RELID: usize = 8;
    /// u32: the new target VP.
    pub const TARGET_VP: usize = 12;
    /// Bytes of the message.
    pub const SIZE: usize = 16;
}

/// `vmbus_channel_modifychannel_response` (host → guest).
pub mod modify_channel_response {
    /// u32: the channel.
    pub const CHILD_RELID: usize = 8;
    /// u32: 0 on success.
    pub const STATUS: usize = 12;
    /// Bytes of the message.
    pub const SIZE: usize = 16;
}

/// Status of a refused OPENCHANNEL or GPADL (STATUS_UNSUCCESSFUL; Linux tests for non-zero).
pub const STATUS_UNSUCCESSFUL: u32 = 0xC000_0001;
/// Status for a request naming something that does not exist (STATUS_INVALID_PARAMETER).
pub const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;

// ---- ring buffers (struct hv_ring_buffer) ----

/// Layout of the 4 KiB header page that starts each ring; the data follows it.
pub mod ring {
    /// u32: byte offset in the data where the writer puts the next packet.
    pub const WRITE_INDEX: usize = 0;
    /// u32: byte offset in the data where the reader takes the next packet.
    pub const READ_INDEX: usize = 4;
    /// u32: non-zero while the reader does not want to be interrupted.
    pub const INTERRUPT_MASK: usize = 8;
    /// u32: bytes the writer waits for (0: not waiting).
    pub const PENDING_SEND_SZ: usize = 12;
    /// u32: feature bits (bit 0: the pending-send-size protocol).
    pub const FEATURE_BITS: usize = 64;
    /// [`FEATURE_BITS`] bit 0.
    pub const FEAT_PENDING_SEND_SZ: u32 = 1;
    /// Bytes of the header: the data starts on the next page.
    pub const HEADER_SIZE: u64 = 4096;
    /// The u64 after each packet: the writer's write index before the packet, in bits 63:32.
    pub const TRAILER_SIZE: u32 = 8;
}

// ---- packets (struct vmpacket_descriptor and the headers that extend it) ----

/// VM_PKT_SYNCH.
pub const VM_PKT_SYNCH: u16 = 0x1;
/// VM_PKT_ADD_XFER_PAGESET.
pub const VM_PKT_ADD_XFER_PAGESET: u16 = 0x2;
/// VM_PKT_DATA_INBAND: payload in the ring.
pub const VM_PKT_DATA_INBAND: u16 = 0x6;
/// VM_PKT_DATA_USING_XFER_PAGES: ranges of a transfer page set (netvsc receive).
pub const VM_PKT_DATA_USING_XFER_PAGES: u16 = 0x7;
/// VM_PKT_DATA_USING_GPADL.
pub const VM_PKT_DATA_USING_GPADL: u16 = 0x8;
/// VM_PKT_DATA_USING_GPA_DIRECT: guest page ranges plus in-band payload.
pub const VM_PKT_DATA_USING_GPA_DIRECT: u16 = 0x9;
/// VM_PKT_COMP: a completion.
pub const VM_PKT_COMP: u16 = 0xb;
/// Descriptor flag: the sender wants a completion.
pub const VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED: u16 = 1;

/// `vmpacket_descriptor`: every packet starts with it.
pub mod descriptor {
    /// u16: VM_PKT_* type.
    pub const TYPE: usize = 0;
    /// u16: where the payload starts, in 8-byte units from the packet start.
    pub const OFFSET8: usize = 2;
    /// u16: packet length (descriptor included, trailer excluded), in 8-byte units.
    pub const LEN8: usize = 4;
    /// u16: flags (completion requested).
    pub const FLAGS: usize = 6;
    /// u64: transaction id.
    pub const TRANS_ID: usize = 8;
    /// Bytes of the descriptor.
    pub const SIZE: usize = 16;
}

/// `vmdata_gpa_direct`: the descriptor, then reserved (u32), range count (u32), ranges
/// (each a [`gpa_range`]).
pub mod gpa_direct {
    /// u32: number of ranges.
    pub const RANGE_COUNT: usize = 20;
    /// First range.
    pub const RANGES: usize = 24;
}

/// `vmtransfer_page_packet_header`: the descriptor, then the page set id (u16), sender owns
/// set (u8), reserved (u8), range count (u32), then (byte count, byte offset) u32 pairs.
pub mod xfer_pages {
    /// u16: transfer page set id.
    pub const XFER_PAGESET_ID: usize = 16;
    /// u8: sender owns the set.
    pub const SENDER_OWNS_SET: usize = 18;
    /// u32: number of ranges.
    pub const RANGE_COUNT: usize = 20;
    /// First range.
    pub const RANGES: usize = 24;
    /// Bytes of one range.
    pub const RANGE_SIZE: usize = 8;
}

const _: () = {
    assert!(offer_channel::CONNECTION_ID + 4 == offer_channel::SIZE);
    assert!(
        offer_channel::USER_DEF + offer_channel::USER_DEF_LEN == offer_channel::SUB_CHANNEL_INDEX
    );
    assert!(open_channel::USER_DATA + 120 == open_channel::SIZE);
    assert!(initiate_contact::MONITOR_PAGE2 + 8 == initiate_contact::SIZE);
    assert!(offer_channel::SIZE <= MAX_MESSAGE_PAYLOAD);
    assert!(open_channel::SIZE <= MAX_MESSAGE_PAYLOAD);
};

/// Connection ids of channels are this plus the relid (clear of the fixed ids 1–4).
pub const CHANNEL_CONNECTION_ID_BASE: u32 = 0x2000;
