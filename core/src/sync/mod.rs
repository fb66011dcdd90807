//! Sync between devices and a relay, without I/O: bytes in, bytes out.
//!
//! - [`wire`]: the messages of PROTOCOL.md and their CBOR encoding.
pub mod wire;
