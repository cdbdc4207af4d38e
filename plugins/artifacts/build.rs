//! Builds every guest crate to `wasm32-wasip2` and tells the library where
//! the components are.
//!
//! This is how a clean clone needs nothing but `cargo build`/`cargo test`:
//! the plugins are built by the build itself, the way wasmtime builds its
//! test programs. A nested `cargo build` runs with its own target directory
//! (next to the outer one) so the two cargo processes never wait on each
//! other's lock, and with the workspace's `wasm-plugin` profile.
//!
//! Set `PROOFPIX_PLUGIN_DIR` to a directory holding prebuilt `.wasm` files
//! (named after the crates, with underscores) to skip the nested build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest crates: (constant name, package name, directory).
const GUESTS: &[(&str, &str, &str)] = &[
    (
        "LOCAL_FOLDER",
        "proofpix-plugin-local-folder",
        "plugins/local-folder",
    ),
    (
        "SALESFORCE",
        "proofpix-plugin-salesforce",
        "plugins/salesforce",
    ),
    (
        "SHAREPOINT",
        "proofpix-plugin-sharepoint",
        "plugins/sharepoint",
    ),
    ("SLACK", "proofpix-plugin-slack", "plugins/slack"),
    ("TEAMS", "proofpix-plugin-teams", "plugins/teams"),
    (
        "GOOGLE_DRIVE",
        "proofpix-plugin-google-drive",
        "plugins/google-drive",
    ),
    ("BOX", "proofpix-plugin-box", "plugins/box"),
    ("DROPBOX", "proofpix-plugin-dropbox", "plugins/dropbox"),
    ("WEBHOOK", "proofpix-plugin-webhook", "plugins/webhook"),
    (
        "TEST_HOSTILE",
        "proofpix-test-plugin-hostile",
        "tests/plugins/hostile",
    ),
    (
        "TEST_WELL_BEHAVED",
        "proofpix-test-plugin-well-behaved",
        "tests/plugins/well-behaved",
    ),
    (
        "TEST_WELL_BEHAVED_V2",
        "proofpix-test-plugin-well-behaved-v2",
        "tests/plugins/well-behaved-v2",
    ),
    (
        "TEST_LEGACY_V0_1",
        "proofpix-test-plugin-legacy-v0-1",
        "tests/plugins/legacy-v0-1",
    ),
    (
        "TEST_CONTRACT_V0_3",
        "proofpix-test-plugin-contract-v0-3",
        "tests/plugins/contract-v0-3",
    ),
    (
        "TEST_CUSTOM_DIALECT",
        "proofpix-test-plugin-custom-dialect",
        "tests/plugins/custom-dialect",
    ),
];

/// The guests shipped inside the binary, signed with the first-party key.
const FIRST_PARTY: &[&str] = &[
    "LOCAL_FOLDER",
    "SALESFORCE",
    "SHAREPOINT",
    "SLACK",
    "TEAMS",
    "GOOGLE_DRIVE",
    "BOX",
    "DROPBOX",
    "WEBHOOK",
];

const TARGET: &str = "wasm32-wasip2";

/// The first-party signing key and whether it is a development key.
///
/// `PROOFPIX_FIRST_PARTY_KEY` names the release key file: a release build.
/// Without it, the build makes a key of its own, kept in OUT_DIR (so a
/// rebuild in the same target directory keeps it) and never committed or
/// shared: a development build. Its plugins prove only "built on this
/// machine", so hosts trust them only when the operator opts in
/// (`trust_development_build`). No key is read from the repository: the key
/// once committed there is revoked (`proofpix_signing::REVOKED_KEYS`).
fn first_party_key(out_dir: &Path) -> (proofpix_signing::KeyPair, bool) {
    println!("cargo:rerun-if-env-changed=PROOFPIX_FIRST_PARTY_KEY");
    if let Some(path) = std::env::var_os("PROOFPIX_FIRST_PARTY_KEY").map(PathBuf::from) {
        println!("cargo:rerun-if-changed={}", path.display());
        let key = proofpix_signing::KeyPair::read(&path)
            .unwrap_or_else(|e| panic!("cannot use the first-party release key: {e}"));
        assert!(
            !proofpix_signing::is_revoked(&key.public().id()),
            "{} is the revoked development key; a release needs a key of its own",
            path.display()
        );
        return (key, false);
    }
    let name = "proofpix-first-party-development-build";
    let path = out_dir.join(format!("{name}.key"));
    if let Ok(key) = proofpix_signing::KeyPair::read(&path) {
        return (key, true);
    }
    let key = proofpix_signing::KeyPair::generate(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(out_dir.join(format!("{name}.pub")));
    key.write(out_dir)
        .unwrap_or_else(|e| panic!("cannot store the development key in OUT_DIR: {e}"));
    (key, true)
}
const PROFILE: &str = "wasm-plugin";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root exists");
    for watched in [
        "sdk",
        "wit",
        "plugins",
        "tests/plugins",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=PROOFPIX_PLUGIN_DIR");

    let out_dir = match env::var_os("PROOFPIX_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_guests(&root),
    };

    // Copy next to the generated code so `include_bytes!` has a stable path.
    let dest_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let (key, development) = first_party_key(&dest_dir);
    let mut generated = String::new();
    for (constant, package, _) in GUESTS {
        let name = format!("{}.wasm", package.replace('-', "_"));
        let built = out_dir.join(&name);
        assert!(
            built.exists(),
            "plugin {package} was not built: {} is missing",
            built.display()
        );
        let file = dest_dir.join(&name);
        if FIRST_PARTY.contains(constant) {
            // First-party plugins ship signed, like any installable plugin.
            let bytes = std::fs::read(&built).expect("the built plugin is readable");
            let signed = proofpix_signing::sign(
                &bytes,
                &key,
                serde_json::json!({"package": package, "development": development}),
            )
            .expect("a built component can be signed");
            std::fs::write(&file, signed).expect("OUT_DIR is writable");
        } else {
            std::fs::copy(&built, &file).expect("OUT_DIR is writable");
        }
        generated.push_str(&format!(
            "/// Path of the built `{package}` component.\npub const {constant}: &str = {:?};\n",
            file.display().to_string()
        ));
    }
    generated.push_str(&format!(
        "/// The public key the first-party plugins are signed with (`.pub` form).\npub const FIRST_PARTY_PUBLIC_KEY: &str = {:?};\n",
        key.public().to_line()
    ));
    generated.push_str(&format!(
        "/// Whether this is a development build: the first-party plugins are signed with a key\n/// made by this build (no `PROOFPIX_FIRST_PARTY_KEY`), which hosts trust only by the\n/// operator's explicit choice.\npub const FIRST_PARTY_DEVELOPMENT: bool = {development};\n"
    ));
    std::fs::write(dest_dir.join("artifacts.rs"), generated).expect("OUT_DIR is writable");
}

fn build_guests(root: &Path) -> PathBuf {
    ensure_target_installed();
    let target_dir = nested_target_dir();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--profile")
        .arg(PROFILE)
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, package, _) in GUESTS {
        cmd.arg("-p").arg(package);
    }
    // The outer build's settings (clippy's wrapper, host rustflags, coverage
    // instrumentation) are not meant for the guests.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_LLVM_COV",
        "CARGO_LLVM_COV_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("cargo can be started to build the plugins");
    assert!(
        status.success(),
        "building the wasm32-wasip2 plugins failed (see the errors above)"
    );
    target_dir.join(TARGET).join(PROFILE)
}

/// `<target>/wasm-plugins`, derived from OUT_DIR
/// (`<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`).
fn nested_target_dir() -> PathBuf {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let build = out
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .expect("OUT_DIR lies under a build directory");
    let profile_dir = build.parent().expect("build directory has a parent");
    profile_dir
        .parent()
        .expect("profile directory has a parent")
        .join("wasm-plugins")
}

/// rust-toolchain.toml names the target, but rustup only installs it when it
/// installs the toolchain; add it when an existing toolchain lacks it.
fn ensure_target_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(Path::exists) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
    assert!(
        ok,
        "the {TARGET} target is missing; run `rustup target add {TARGET}`"
    );
}
