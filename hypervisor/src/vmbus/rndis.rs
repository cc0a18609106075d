//! RNDIS for netvsc's host side: parsing the messages a guest sends (control requests and
//! data packets) and building the host's answers and receive packets. Pure functions over
//! byte slices; every length and offset the guest gives is checked against the message it
//! came in, so a lying RNDIS header yields [`RndisError`], never a panic.

use crate::abi::rndis::*;

/// Why an RNDIS message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RndisError {
    /// Shorter than its header or its declared length, or a length beyond the buffer.
    #[error("RNDIS message length: {0}")]
    Length(String),
    /// An offset or length inside the message points outside it.
    #[error("RNDIS field out of bounds: {0}")]
    Bounds(String),
    /// A message type the host does not take from a guest.
    #[error("unknown RNDIS message type {0:#x}")]
    UnknownType(u32),
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn put(v: &mut [u8], off: usize, x: u32) {
    v[off..off + 4].copy_from_slice(&x.to_le_bytes());
}

/// Splits a buffer holding one or more RNDIS messages back to back into messages (each
/// `msg_len` long, at least a header).
pub fn split(mut buf: &[u8]) -> Result<Vec<&[u8]>, RndisError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = u32_at(buf, 4)
            .ok_or_else(|| RndisError::Length(format!("{} bytes left, no header", buf.len())))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len < HEADER_LEN || len > buf.len() {
            return Err(RndisError::Length(format!(
                "msg_len {len} with {} bytes present",
                buf.len()
            )));
        }
        out.push(&buf[..len]);
        buf = &buf[len..];
    }
    Ok(out)
}

/// The message type of one message (`split` output).
pub fn msg_type(msg: &[u8]) -> u32 {
    u32_at(msg, 0).unwrap_or(0)
}

/// The Ethernet frame of a REMOTE_NDIS_PACKET_MSG.
pub fn packet_frame(msg: &[u8]) -> Result<&[u8], RndisError> {
    if msg.len() < HEADER_LEN + PACKET_LEN {
        return Err(RndisError::Length(format!(
            "{}-byte PACKET_MSG, header is {}",
            msg.len(),
            HEADER_LEN + PACKET_LEN
        )));
    }
    let off = u32_at(msg, 8).unwrap_or(0) as usize;
    let len = u32_at(msg, 12).unwrap_or(0) as usize;
    let start = HEADER_LEN
        .checked_add(off)
        .ok_or_else(|| RndisError::Bounds("data_offset".into()))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| RndisError::Bounds("data_len".into()))?;
    if start < HEADER_LEN + PACKET_LEN || end > msg.len() {
        return Err(RndisError::Bounds(format!(
            "data at {start}..{end} of a {}-byte message",
            msg.len()
        )));
    }
    Ok(&msg[start..end])
}

/// A REMOTE_NDIS_PACKET_MSG carrying `frame` (no per-packet info), as the host sends it.
pub fn packet_msg(frame: &[u8]) -> Vec<u8> {
    let total = HEADER_LEN + PACKET_LEN + frame.len();
    let mut m = vec![0u8; HEADER_LEN + PACKET_LEN];
    put(&mut m, 0, MSG_PACKET);
    put(&mut m, 4, total as u32);
    put(&mut m, 8, PACKET_LEN as u32); // data_offset
    put(&mut m, 12, frame.len() as u32); // data_len
    m.extend_from_slice(frame);
    m
}

/// The adapter's RNDIS-visible state and its answers to control messages.
#[derive(Debug, Clone)]
pub struct Rndis {
    /// MAC address reported for OID_802_3_PERMANENT/CURRENT_ADDRESS.
    pub mac: [u8; 6],
    /// MTU reported for OID_GEN_MAXIMUM_FRAME_SIZE.
    pub mtu: u32,
    /// Link speed for OID_GEN_LINK_SPEED, in 100 bit/s.
    pub link_speed: u32,
    /// Link state for OID_GEN_MEDIA_CONNECT_STATUS.
    pub link_up: bool,
    /// OID_GEN_CURRENT_PACKET_FILTER as last set (0: no frames indicated).
    pub filter: u32,
    /// INITIALIZE was answered with success (and no HALT since).
    pub initialized: bool,
}

impl Rndis {
    /// An uninitialized adapter with `mac` and `mtu`, link up at 10 Gbit/s.
    pub fn new(mac: [u8; 6], mtu: u32) -> Self {
        Rndis {
            mac,
            mtu,
            link_speed: 100_000_000,
            link_up: true,
            filter: 0,
            initialized: false,
        }
    }

    /// Answers one control message (`split` output): `Ok(Some(answer))`, `Ok(None)` for
    /// messages without an answer (HALT), or the reason the message is malformed.
    pub fn control(&mut self, msg: &[u8]) -> Result<Option<Vec<u8>>, RndisError> {
        let t = msg_type(msg);
        let need = match t {
            MSG_INIT => HEADER_LEN + 16,
            MSG_QUERY | MSG_SET => HEADER_LEN + QUERY_REQUEST_LEN,
            MSG_HALT | MSG_KEEPALIVE | MSG_RESET => HEADER_LEN + 4,
            other => return Err(RndisError::UnknownType(other)),
        };
        if msg.len() < need {
            return Err(RndisError::Length(format!(
                "{}-byte message of type {t:#x}, {need} needed",
                msg.len()
            )));
        }
        let req_id = u32_at(msg, 8).unwrap_or(0);
        Ok(match t {
            MSG_INIT => {
                let mut a = vec![0u8; HEADER_LEN + INIT_COMPLETE_LEN];
                put(&mut a, 0, MSG_INIT_C);
                let len = a.len() as u32;
                put(&mut a, 4, len);
                put(&mut a, 8, req_id);
                put(&mut a, 12, STATUS_SUCCESS);
                put(&mut a, 16, MAJOR_VERSION);
                put(&mut a, 20, MINOR_VERSION);
                put(&mut a, 24, DF_CONNECTIONLESS);
                put(&mut a, 28, MEDIUM_802_3);
                put(&mut a, 32, 1); // max_pkt_per_msg: no batching
                put(&mut a, 36, 0x4000); // max_xfer_size
                put(&mut a, 40, 3); // pkt_alignment_factor: 8 bytes
                self.initialized = true;
                Some(a)
            }
            MSG_HALT => {
                self.initialized = false;
                self.filter = 0;
                None
            }
            MSG_KEEPALIVE => Some(simple(MSG_KEEPALIVE_C, req_id, STATUS_SUCCESS)),
            MSG_RESET => {
                // { status, addressing_reset }: no request id.
                self.filter = 0;
                Some(simple(MSG_RESET_C, STATUS_SUCCESS, 0))
            }
            MSG_QUERY => {
                let oid = u32_at(msg, 12).unwrap_or(0);
                let (status, info) = match self.query(oid) {
                    Some(info) => (STATUS_SUCCESS, info),
                    None => (STATUS_NOT_SUPPORTED, Vec::new()),
                };
                let mut a = vec![0u8; HEADER_LEN + QUERY_COMPLETE_LEN];
                put(&mut a, 0, MSG_QUERY_C);
                let len = (a.len() + info.len()) as u32;
                put(&mut a, 4, len);
                put(&mut a, 8, req_id);
                put(&mut a, 12, status);
                put(&mut a, 16, info.len() as u32);
                let off = if info.is_empty() {
                    0
                } else {
                    QUERY_COMPLETE_LEN
                };
                put(&mut a, 20, off as u32);
                a.extend_from_slice(&info);
                Some(a)
            }
            MSG_SET => {
                let oid = u32_at(msg, 12).unwrap_or(0);
                let len = u32_at(msg, 16).unwrap_or(0) as usize;
                let off = u32_at(msg, 20).unwrap_or(0) as usize;
                let start = HEADER_LEN.saturating_add(off);
                let end = start.saturating_add(len);
                let status = if len > 0 && (off < QUERY_REQUEST_LEN || end > msg.len()) {
                    STATUS_INVALID_DATA
                } else {
                    self.set(oid, msg.get(start..end).unwrap_or(&[]))
                };
                Some(simple(MSG_SET_C, req_id, status))
            }
            _ => None,
        })
    }

    /// The value of a queried OID, or None if not supported.
    fn query(&self, oid: u32) -> Option<Vec<u8>> {
        let word = |v: u32| Some(v.to_le_bytes().to_vec());
        match oid {
            OID_GEN_SUPPORTED_LIST => {
                Some(SUPPORTED.iter().flat_map(|o| o.to_le_bytes()).collect())
            }
            OID_GEN_HARDWARE_STATUS => word(0), // NdisHardwareStatusReady
            OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => word(MEDIUM_802_3),
            OID_GEN_MAXIMUM_FRAME_SIZE => word(self.mtu),
            OID_GEN_MAXIMUM_TOTAL_SIZE => word(self.mtu + 14),
            OID_GEN_LINK_SPEED => word(self.link_speed),
            OID_GEN_MEDIA_CONNECT_STATUS => word(if self.link_up {
                MEDIA_STATE_CONNECTED
            } else {
                MEDIA_STATE_DISCONNECTED
            }),
            OID_GEN_CURRENT_PACKET_FILTER => word(self.filter),
            OID_802_3_PERMANENT_ADDRESS | OID_802_3_CURRENT_ADDRESS => Some(self.mac.to_vec()),
            OID_802_3_MAXIMUM_LIST_SIZE => word(32),
            OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES => {
                // struct ndis_offload, NDIS 6.0 size, no offload capability at all.
                let mut caps = vec![0u8; usize::from(NDIS_OFFLOAD_SIZE_6_0)];
                caps[0] = NDIS_OBJECT_TYPE_OFFLOAD;
                caps[1] = NDIS_OFFLOAD_REVISION_1;
                caps[2..4].copy_from_slice(&NDIS_OFFLOAD_SIZE_6_0.to_le_bytes());
                Some(caps)
            }
            _ => None,
        }
    }

    /// Applies a set OID; returns the RNDIS status.
    fn set(&mut self, oid: u32, value: &[u8]) -> u32 {
        match oid {
            OID_GEN_CURRENT_PACKET_FILTER => match u32_at(value, 0) {
                Some(f) if value.len() == 4 => {
                    self.filter = f;
                    STATUS_SUCCESS
                }
                _ => STATUS_INVALID_LENGTH,
            },
            // No offloads are offered; the guest asking for none (or "no change") is fine.
            OID_TCP_OFFLOAD_PARAMETERS | OID_802_3_MULTICAST_LIST => STATUS_SUCCESS,
            _ => STATUS_NOT_SUPPORTED,
        }
    }
}

/// OIDs answered by queries (OID_GEN_SUPPORTED_LIST).
const SUPPORTED: [u32; 12] = [
    OID_GEN_SUPPORTED_LIST,
    OID_GEN_HARDWARE_STATUS,
    OID_GEN_MEDIA_SUPPORTED,
    OID_GEN_MEDIA_IN_USE,
    OID_GEN_MAXIMUM_FRAME_SIZE,
    OID_GEN_MAXIMUM_TOTAL_SIZE,
    OID_GEN_LINK_SPEED,
    OID_GEN_MEDIA_CONNECT_STATUS,
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_802_3_PERMANENT_ADDRESS,
    OID_802_3_CURRENT_ADDRESS,
    OID_802_3_MAXIMUM_LIST_SIZE,
];

/// A 16-byte completion `{ type, len, a, b }`.
fn simple(t: u32, a: u32, b: u32) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    put(&mut m, 0, t);
    put(&mut m, 4, 16);
    put(&mut m, 8, a);
    put(&mut m, 12, b);
    m
}
