//! Everything a relay backend must do, over core's in-memory relay.

muster_conformance::relay_backend_tests!(muster_core::sync::memory::MemoryRelay);
