//! UniFFI's bindings generator, pinned to the crate's UniFFI version
//! (`cargo run -p muster-mobile --features bindgen --bin uniffi-bindgen`).
//! `scripts/bindings` runs it on the built library.

fn main() {
    uniffi::uniffi_bindgen_main()
}
