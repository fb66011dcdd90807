//! End-to-end scenarios live in `it/` (one integration test binary, so it
//! links once): a real `muster-server` process on 127.0.0.1 and several
//! devices. This library is empty on purpose.
