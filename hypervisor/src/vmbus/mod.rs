//! VMBus: the synthetic devices' host side (storvsc, netvsc) behind the channel contract.
pub mod device;
pub mod netvsc;
pub mod rndis;
pub mod storvsc;
