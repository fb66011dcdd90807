//! End-to-end scenarios: a real `muster-server` process on 127.0.0.1 and
//! devices syncing through it. One binary, several modules.

mod access;
mod bad_clients;
mod cli;
mod convergence;
mod device;
mod faults;
mod harness;
#[path = "../../server/tests/pg/mod.rs"]
mod pg;
mod postgres;
