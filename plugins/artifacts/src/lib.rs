//! The plugins this workspace builds, as WebAssembly components.
//!
//! `build.rs` compiles each guest crate to `wasm32-wasip2`; this crate exposes
//! their paths, and the first-party plugins' bytes for embedding in the
//! `proofpix` binary.
//!
//! Layering (checked by .ci/layers): floor 2, may use only the host crates below it (proofpix-analysis, proofpix-model, proofpix-policy, proofpix-signing, proofpix-vault).

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The first-party plugins shipped inside the `proofpix` binary: (id, bytes).
pub fn first_party() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (
            "local-folder",
            include_bytes!(concat!(
                env!("OUT_DIR"),
                "/proofpix_plugin_local_folder.wasm"
            )),
        ),
        (
            "salesforce",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_salesforce.wasm")),
        ),
        (
            "sharepoint",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_sharepoint.wasm")),
        ),
        (
            "slack",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_slack.wasm")),
        ),
        (
            "teams",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_teams.wasm")),
        ),
        (
            "google-drive",
            include_bytes!(concat!(
                env!("OUT_DIR"),
                "/proofpix_plugin_google_drive.wasm"
            )),
        ),
        (
            "box",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_box.wasm")),
        ),
        (
            "dropbox",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_dropbox.wasm")),
        ),
        (
            "webhook",
            include_bytes!(concat!(env!("OUT_DIR"), "/proofpix_plugin_webhook.wasm")),
        ),
    ]
}

/// The bytes of one first-party plugin.
pub fn first_party_plugin(id: &str) -> Option<&'static [u8]> {
    first_party()
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, b)| b)
}
