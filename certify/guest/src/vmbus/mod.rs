//! The guest's VMBus client: SynIC messages and events (synic.rs), the connection and
//! channel management (conn.rs), ring buffers (ring.rs), and the storvsc and netvsc
//! clients on top (storvsc.rs, netvsc.rs). Wire definitions in wire.rs. Everything runs
//! in ring 3 and polls; the gate is entered for MSRs, hypercalls and EOM only.
pub mod conn;
pub mod netvsc;
pub mod ring;
pub mod storvsc;
pub mod synic;
pub mod wire;
