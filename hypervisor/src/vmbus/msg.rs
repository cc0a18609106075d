//! Channel messages: parsing what the guest posts (every length and field checked, nothing
//! trusted) and encoding what the host sends back, on the layouts of [`crate::abi::vmbus`].
use crate::abi::vmbus::*;

/// A guest → host channel message, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// CHANNELMSG_INITIATE_CONTACT.
    InitiateContact {
        /// Version asked for.
        version: u32,
        /// VP the host answers on.
        target_vcpu: u32,
        /// SINT for messages (5.0 and later; [`MESSAGE_SINT`] before).
        msg_sint: u8,
        /// Interrupt page GPA (before 5.0), 0 otherwise.
        interrupt_page: u64,
    },
    /// CHANNELMSG_REQUESTOFFERS.
    RequestOffers,
    /// CHANNELMSG_OPENCHANNEL.
    OpenChannel {
        /// Channel.
        relid: u32,
        /// Echoed in the result.
        open_id: u32,
        /// GPADL holding both rings.
        ring_gpadl: u32,
        /// VP for host → guest interrupts.
        target_vp: u32,
        /// Page where the host → guest ring starts.
        downstream_offset: u32,
    },
    /// CHANNELMSG_CLOSECHANNEL.
    CloseChannel {
        /// Channel.
        relid: u32,
    },
    /// CHANNELMSG_GPADL_HEADER.
    GpadlHeader {
        /// Channel it is for.
        relid: u32,
        /// Handle.
        gpadl: u32,
        /// Bytes of range data announced (over header and bodies).
        range_buflen: u16,
        /// Ranges announced.
        range_count: u16,
        /// The u64 words of range data carried by this message.
        words: Vec<u64>,
    },
    /// CHANNELMSG_GPADL_BODY.
    GpadlBody {
        /// Handle.
        gpadl: u32,
        /// More u64 words of range data.
        words: Vec<u64>,
    },
    /// CHANNELMSG_GPADL_TEARDOWN.
    GpadlTeardown {
        /// Channel.
        relid: u32,
        /// Handle.
        gpadl: u32,
    },
    /// CHANNELMSG_RELID_RELEASED.
    RelidReleased {
        /// Channel.
        relid: u32,
    },
    /// CHANNELMSG_MODIFYCHANNEL.
    ModifyChannel {
        /// Channel.
        relid: u32,
        /// New target VP.
        target_vp: u32,
    },
    /// CHANNELMSG_UNLOAD.
    Unload,
    /// A type the host does not serve (TL_CONNECT_REQUEST, host → guest types, ...).
    Unsupported(u32),
}

/// Why a channel message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// Shorter than its type's structure (or than the header).
    #[error("channel message type {msgtype} too short: {len} bytes, {need} needed")]
    TooShort {
        /// Message type (0 when even the header is missing).
        msgtype: u32,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// More than a SynIC message can carry.
    #[error("channel message of {0} bytes exceeds the 240-byte SynIC payload")]
    TooLong(usize),
    /// Type 0 or past the last type.
    #[error("invalid channel message type {0}")]
    BadType(u32),
    /// Range data not a whole number of u64 words.
    #[error("GPADL range data of {0} bytes is not a whole number of 8-byte words")]
    Ragged(usize),
}

/// Little-endian u16 at `off` (the caller checked the length).
fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

/// Little-endian u32 at `off` (the caller checked the length).
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Little-endian u64 at `off` (the caller checked the length).
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The u64 words from `off` to the end of `b`.
fn words_from(b: &[u8], off: usize) -> Result<Vec<u64>, MsgError> {
    let rest = b.get(off..).unwrap_or(&[]);
    if rest.len() % 8 != 0 {
        return Err(MsgError::Ragged(rest.len()));
    }
    Ok(rest.chunks_exact(8).map(|c| u64_at(c, 0)).collect())
}

/// Parses one guest → host channel message (the HvCallPostMessage payload).
pub fn parse(b: &[u8]) -> Result<Incoming, MsgError> {
    if b.len() > MAX_MESSAGE_PAYLOAD {
        return Err(MsgError::TooLong(b.len()));
    }
    if b.len() < header::SIZE {
        return Err(MsgError::TooShort {
            msgtype: 0,
            len: b.len(),
            need: header::SIZE,
        });
    }
    let msgtype = u32_at(b, header::MSGTYPE);
    let need = match msgtype {
        CHANNELMSG_INITIATE_CONTACT => initiate_contact::SIZE,
        CHANNELMSG_REQUESTOFFERS | CHANNELMSG_UNLOAD => header::SIZE,
        CHANNELMSG_OPENCHANNEL => open_channel::SIZE,
        CHANNELMSG_CLOSECHANNEL | CHANNELMSG_RELID_RELEASED => relid_only::SIZE,
        CHANNELMSG_GPADL_HEADER => gpadl_header::SIZE,
        CHANNELMSG_GPADL_BODY => gpadl_body::SIZE,
        CHANNELMSG_GPADL_TEARDOWN => gpadl_teardown::SIZE,
        CHANNELMSG_MODIFYCHANNEL => modify_channel::SIZE,
        CHANNELMSG_INVALID => return Err(MsgError::BadType(msgtype)),
        t if t >= CHANNELMSG_COUNT => return Err(MsgError::BadType(msgtype)),
        t => return Ok(Incoming::Unsupported(t)),
    };
    if b.len() < need {
        return Err(MsgError::TooShort {
            msgtype,
            len: b.len(),
            need,
        });
    }
    Ok(match msgtype {
        CHANNELMSG_INITIATE_CONTACT => {
            let version = u32_at(b, initiate_contact::VERSION_REQUESTED);
            let v5 = version >= VERSION_WIN10_V5;
            Incoming::InitiateContact {
                version,
                target_vcpu: u32_at(b, initiate_contact::TARGET_VCPU),
                msg_sint: if v5 {
                    b.get(initiate_contact::MSG_SINT)
                        .copied()
                        .unwrap_or(MESSAGE_SINT)
                } else {
                    MESSAGE_SINT
                },
                interrupt_page: if v5 {
                    0
                } else {
                    u64_at(b, initiate_contact::INTERRUPT_PAGE)
                },
            }
        }
        CHANNELMSG_REQUESTOFFERS => Incoming::RequestOffers,
        CHANNELMSG_UNLOAD => Incoming::Unload,
        CHANNELMSG_OPENCHANNEL => Incoming::OpenChannel {
            relid: u32_at(b, open_channel::CHILD_RELID),
            open_id: u32_at(b, open_channel::OPENID),
            ring_gpadl: u32_at(b, open_channel::RINGBUFFER_GPADL),
            target_vp: u32_at(b, open_channel::TARGET_VP),
            downstream_offset: u32_at(b, open_channel::DOWNSTREAM_PAGE_OFFSET),
        },
        CHANNELMSG_CLOSECHANNEL => Incoming::CloseChannel {
            relid: u32_at(b, relid_only::CHILD_RELID),
        },
        CHANNELMSG_RELID_RELEASED => Incoming::RelidReleased {
            relid: u32_at(b, relid_only::CHILD_RELID),
        },
        CHANNELMSG_GPADL_HEADER => Incoming::GpadlHeader {
            relid: u32_at(b, gpadl_header::CHILD_RELID),
            gpadl: u32_at(b, gpadl_header::GPADL),
            range_buflen: u16_at(b, gpadl_header::RANGE_BUFLEN),
            range_count: u16_at(b, gpadl_header::RANGECOUNT),
            words: words_from(b, gpadl_header::RANGES)?,
        },
        CHANNELMSG_GPADL_BODY => Incoming::GpadlBody {
            gpadl: u32_at(b, gpadl_body::GPADL),
            words: words_from(b, gpadl_body::PFNS)?,
        },
        CHANNELMSG_GPADL_TEARDOWN => Incoming::GpadlTeardown {
            relid: u32_at(b, gpadl_teardown::CHILD_RELID),
            gpadl: u32_at(b, gpadl_teardown::GPADL),
        },
        CHANNELMSG_MODIFYCHANNEL => Incoming::ModifyChannel {
            relid: u32_at(b, modify_channel::CHILD_RELID),
            target_vp: u32_at(b, modify_channel::TARGET_VP),
        },
        t => Incoming::Unsupported(t),
    })
}

/// A zeroed message of `size` bytes with its type set.
fn message(msgtype: u32, size: usize) -> Vec<u8> {
    let mut m = vec![0u8; size];
    put32(&mut m, header::MSGTYPE, msgtype);
    m
}

fn put32(m: &mut [u8], off: usize, v: u32) {
    if let Some(s) = m.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put16(m: &mut [u8], off: usize, v: u16) {
    if let Some(s) = m.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// CHANNELMSG_VERSION_RESPONSE: `supported`, and (5.0 and later) the message connection id.
pub fn version_response(supported: bool, msg_conn_id: u32) -> Vec<u8> {
    let mut m = message(CHANNELMSG_VERSION_RESPONSE, version_response::SIZE);
    m[version_response::VERSION_SUPPORTED] = u8::from(supported);
    put32(&mut m, version_response::MSG_CONN_ID, msg_conn_id);
    m
}

/// What an offer says about one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Device class.
    pub class_id: [u8; 16],
    /// Instance.
    pub instance_id: [u8; 16],
    /// Relid.
    pub relid: u32,
    /// Connection id the guest signals the channel with.
    pub connection_id: u32,
}

/// CHANNELMSG_OFFERCHANNEL. No monitor id is allocated (monitor_allocated = 0), so the guest
/// signals with HvCallSignalEvent on `connection_id`; the interrupt is dedicated (the
/// connection id names the channel, no interrupt-page bit is needed).
pub fn offer_channel(o: &Offer) -> Vec<u8> {
    let mut m = message(CHANNELMSG_OFFERCHANNEL, offer_channel::SIZE);
    m[offer_channel::IF_TYPE..offer_channel::IF_TYPE + 16].copy_from_slice(&o.class_id);
    m[offer_channel::IF_INSTANCE..offer_channel::IF_INSTANCE + 16].copy_from_slice(&o.instance_id);
    put32(&mut m, offer_channel::CHILD_RELID, o.relid);
    put16(&mut m, offer_channel::IS_DEDICATED_INTERRUPT, 1);
    put32(&mut m, offer_channel::CONNECTION_ID, o.connection_id);
    m
}

/// A message that is only a header (ALLOFFERS_DELIVERED, UNLOAD_RESPONSE).
pub fn header_only(msgtype: u32) -> Vec<u8> {
    message(msgtype, header::SIZE)
}

/// CHANNELMSG_OPENCHANNEL_RESULT.
pub fn open_result(relid: u32, open_id: u32, status: u32) -> Vec<u8> {
    let mut m = message(CHANNELMSG_OPENCHANNEL_RESULT, open_result::SIZE);
    put32(&mut m, open_result::CHILD_RELID, relid);
    put32(&mut m, open_result::OPENID, open_id);
    put32(&mut m, open_result::STATUS, status);
    m
}

/// CHANNELMSG_GPADL_CREATED.
pub fn gpadl_created(relid: u32, gpadl: u32, status: u32) -> Vec<u8> {
    let mut m = message(CHANNELMSG_GPADL_CREATED, gpadl_created::SIZE);
    put32(&mut m, gpadl_created::CHILD_RELID, relid);
    put32(&mut m, gpadl_created::GPADL, gpadl);
    put32(&mut m, gpadl_created::STATUS, status);
    m
}

/// CHANNELMSG_GPADL_TORNDOWN.
pub fn gpadl_torndown(gpadl: u32) -> Vec<u8> {
    let mut m = message(CHANNELMSG_GPADL_TORNDOWN, gpadl_torndown::SIZE);
    put32(&mut m, gpadl_torndown::GPADL, gpadl);
    m
}

/// CHANNELMSG_MODIFYCHANNEL_RESPONSE.
pub fn modify_channel_response(relid: u32, status: u32) -> Vec<u8> {
    let mut m = message(
        CHANNELMSG_MODIFYCHANNEL_RESPONSE,
        modify_channel_response::SIZE,
    );
    put32(&mut m, modify_channel_response::CHILD_RELID, relid);
    put32(&mut m, modify_channel_response::STATUS, status);
    m
}
