//! The plugins this workspace builds, as WebAssembly components.
//!
//! `build.rs` compiles each guest crate to `wasm32-wasip2`; this crate exposes
//! their paths, and the first-party plugins' bytes for embedding in the
//! `proofpix` binary.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The first-party plugins shipped inside the `proofpix` binary: (id, bytes).
pub fn first_party() -> [(&'static str, &'static [u8]); 1] {
    [(
        "local-folder",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/proofpix_plugin_local_folder.wasm"
        )),
    )]
}
