//! The VMBus devices' host side (storvsc, netvsc) driven through a fake channel: every
//! message of their protocols, and malformed ones, without a VM.

#[path = "vmbus_devices/fake.rs"]
mod fake;
#[path = "vmbus_devices/netvsc.rs"]
mod netvsc;
#[path = "vmbus_devices/proptests.rs"]
mod proptests;
#[path = "vmbus_devices/storvsc.rs"]
mod storvsc;
