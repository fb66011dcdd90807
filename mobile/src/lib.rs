//! UniFFI bindings over muster-core. Its code arrives with the mobile issue (#5).
