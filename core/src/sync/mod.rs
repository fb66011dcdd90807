//! Sync between devices and a relay, without I/O: bytes in, bytes out, the
//! clock passed in. PROTOCOL.md is the specification.
//!
//! - [`wire`]: the messages and their CBOR encoding;
//! - [`client`]: the device's side of a session, over the device [`Store`];
//! - [`relay`]: the relay's side of a session, over a [`storage::RelayStorage`];
//! - [`storage`]: the seam to the relay's database, its contract, and the
//!   relay's rules that run inside its transactions;
//! - [`scope`]: who may see what (volunteer tokens' scopes);
//! - [`timers`]: the sessions' timers (`poll_timeout`/`handle_timeout`) and
//!   the reconnection backoff;
//! - [`memory`]: an in-memory relay storage for simulations and tests.
//!
//! The drivers that own sockets (and sleep until a session's
//! `poll_timeout`) live elsewhere: the tokio client
//! (feature `client`) and the `muster-server` crate.
//!
//! [`Store`]: crate::store::Store

pub mod client;
pub mod memory;
pub mod relay;
pub mod scope;
pub mod storage;
pub mod timers;
pub mod wire;
