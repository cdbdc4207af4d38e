//! `proofpix plugin new`: the scaffolded crate passes its own tests, builds to a component, and
//! that component is a plugin the host loads.
//!
//! One test, because it compiles a crate and its dependencies for two targets (about a
//! minute the first time; the target directory is kept in `CARGO_TARGET_TMPDIR`). The crate
//! depends on this checkout's SDK by path and gets this workspace's `Cargo.lock`, so it
//! builds offline with the versions the workspace uses.

use std::path::Path;
use std::process::{Command, Output};

fn proofpix(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(args)
        .env("PROOFPIX_HOME", home)
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .output()
        .unwrap()
}

/// `cargo` for the scaffolded crate, with none of this test run's build settings.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(args).arg("--offline").env(
        "CARGO_TARGET_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded-plugin"),
    );
    // Outside the repository, rustup would pick its default toolchain; use the repository's.
    if std::env::var_os("RUSTUP_TOOLCHAIN").is_none() {
        let toolchain = std::fs::read_to_string(repo.join("rust-toolchain.toml")).unwrap();
        if let Some(channel) = toolchain.lines().find_map(|l| l.strip_prefix("channel = ")) {
            cmd.env("RUSTUP_TOOLCHAIN", channel.trim().trim_matches('"'));
        }
    }
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_scaffolded_plugin_passes_its_tests_builds_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("acme-drive");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    let out = proofpix(
        &home,
        &[
            "plugin",
            "new",
            "acme-drive",
            "--dir",
            dir.to_str().unwrap(),
            "--sdk",
            sdk.to_str().unwrap(),
        ],
    );
    ok("plugin new", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("created plugin acme-drive in "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for f in ["Cargo.toml", "src/lib.rs", "README.md"] {
        assert!(dir.join(f).is_file(), "{f}");
    }

    // A second run never overwrites.
    let again = proofpix(
        &home,
        &[
            "plugin",
            "new",
            "acme-drive",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists and is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bad = proofpix(&home, &["plugin", "new", "Acme_Drive"]);
    assert_eq!(bad.status.code(), Some(2));

    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let test = cargo(&dir, &["test", "--quiet"]);
    ok("cargo test", &test);
    assert!(
        String::from_utf8_lossy(&test.stdout).contains("2 passed"),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    ok(
        "cargo build --target wasm32-wasip2",
        &cargo(&dir, &["build", "--target", "wasm32-wasip2", "--quiet"]),
    );

    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scaffolded-plugin/wasm32-wasip2/debug/acme_drive.wasm");
    let inspect = proofpix(&home, &["plugin", "inspect", wasm.to_str().unwrap()]);
    ok("plugin inspect", &inspect);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("acme-drive"), "{text}");
    assert!(text.contains("contract: proofpix:plugin@0.3.0"), "{text}");
}
