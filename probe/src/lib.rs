//! Host facts -> findings -> verdict against a supported-server list.
//!
//! `HostSource` is the only thing that touches the host; everything after it is pure.
