//! The `proofpix` binary end to end: `scan` over generated images through
//! the local-folder plugin, incremental rescans, and bad input.
//!
//! Each test gets its own data directory (`PROOFPIX_HOME`) and its own copy
//! of the generated samples, so tests run in parallel without sharing state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

struct Env {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    samples: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let samples = tmp.path().join("samples");
    proofpix_fixtures::write_samples(&samples).unwrap();
    Env {
        _tmp: tmp,
        home,
        samples,
    }
}

fn proofpix(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(args)
        .env("PROOFPIX_HOME", &env.home)
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn summary(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find_map(|l| l.get("summary"))
        .expect("a summary line")
}

fn file<'a>(lines: &'a [Value], suffix: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no line for {suffix}"))
}

fn categories(line: &Value) -> Vec<String> {
    line["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap().to_string())
        .collect()
}

fn scan(env: &Env, extra: &[&str]) -> Output {
    let dir = env.samples.to_str().unwrap().to_string();
    let mut args = vec!["scan", dir.as_str(), "--json"];
    args.extend_from_slice(extra);
    proofpix(env, &args)
}

#[test]
fn scan_finds_the_known_gps_serial_and_owner_and_writes_a_report_per_image() {
    let env = env();
    let out = scan(&env, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "high-risk findings exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let s = summary(&lines);
    assert_eq!(
        s["analysed"], 7,
        "seven .jpg files; notes.txt is skipped by extension"
    );
    assert_eq!(s["failed"], 0);

    let photo = file(&lines, "site-visit/IMG_0001.jpg");
    assert_eq!(
        photo["risk"], "critical",
        "precise GPS with the owner's name"
    );
    let cats = categories(photo);
    for c in ["gps", "serial", "owner", "timestamp", "device"] {
        assert!(cats.contains(&c.to_string()), "{c} in {cats:?}");
    }
    let gps = photo["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "gps")
        .unwrap();
    let value = gps["value"].as_str().unwrap();
    assert!(
        value.starts_with("52.4, 4.9"),
        "GPS masked to about 10 km by default: {value}"
    );
    let shown = json_lines(&proofpix(
        &env,
        &[
            "analyze",
            "--json",
            "--show-values",
            env.samples
                .join("site-visit/IMG_0001.jpg")
                .to_str()
                .unwrap(),
        ],
    ));
    let gps = shown[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "gps")
        .unwrap();
    let value = gps["value"].as_str().unwrap();
    assert!(
        value.contains("52.3728") && value.contains("4.8936"),
        "GPS in decimal degrees: {value}"
    );

    let person = file(&lines, "site-visit/IMG_0002.jpg");
    assert!(
        categories(person).contains(&"person".to_string()),
        "XMP PersonInImage"
    );
    assert_eq!(file(&lines, "catalogue/clean.jpg")["risk"], "none");

    let reports = PathBuf::from(s["reports"].as_str().unwrap());
    let report: Value = serde_json::from_slice(
        &std::fs::read(reports.join("site-visit/IMG_0001.jpg.proofpix.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["risk"], "critical");
    assert_eq!(report["file"], "site-visit/IMG_0001.jpg");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["category"] == "gps")
    );
    assert!(!reports.join("notes.txt.proofpix.json").exists());
}

#[test]
fn a_second_scan_sees_no_changes_and_a_changed_file_is_analysed_alone() {
    let env = env();
    let first = scan(&env, &[]);
    assert_eq!(summary(&json_lines(&first))["analysed"], 7);

    let second = scan(&env, &[]);
    assert_eq!(
        second.status.code(),
        Some(0),
        "nothing new, nothing high-risk found in this run"
    );
    let lines = json_lines(&second);
    let s = summary(&lines);
    assert_eq!(s["analysed"], 0);
    assert_eq!(s["unchanged"], 7);

    // Change one file's content (and push its time past the first scan's).
    let changed = env.samples.join("catalogue/clean.jpg");
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes.extend_from_slice(b"appended after the end of the image");
    std::fs::write(&changed, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let third = scan(&env, &[]);
    let lines = json_lines(&third);
    assert_eq!(summary(&lines)["analysed"], 1);
    let only: Vec<&Value> = lines.iter().filter(|l| l.get("path").is_some()).collect();
    assert_eq!(only.len(), 1);
    assert!(
        only[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("catalogue/clean.jpg")
    );

    // --full re-analyses everything.
    let full = scan(&env, &["--full"]);
    assert_eq!(summary(&json_lines(&full))["analysed"], 7);
}

#[test]
fn broken_files_cost_only_their_own_result() {
    let env = env();
    let lines = json_lines(&scan(&env, &[]));
    let truncated = file(&lines, "broken/truncated.jpg");
    assert!(
        truncated["error"].as_str().unwrap().contains("truncated"),
        "{truncated}"
    );
    assert!(
        categories(truncated).contains(&"gps".to_string()),
        "the EXIF before the cut is still reported"
    );
    let text = file(&lines, "broken/not-an-image.jpg");
    assert_eq!(text["format"], "unsupported");
    assert!(
        text["error"]
            .as_str()
            .unwrap()
            .starts_with("unsupported format"),
        "{text}"
    );
    assert_eq!(
        summary(&lines)["failed"],
        0,
        "unreadable content is a result with an error, not a failure"
    );
}

#[test]
fn a_missing_folder_is_a_clear_error_with_exit_code_2() {
    let env = env();
    let out = proofpix(&env, &["scan", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "proofpix: cannot scan /definitely/not/here: No such file or directory (os error 2)"
    );
    let file = env.samples.join("notes.txt");
    let out = proofpix(&env, &["scan", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("not a folder (use `proofpix analyze` for single files)")
    );
}

#[test]
fn a_corrupt_wasm_plugin_is_refused_with_a_clear_error() {
    let env = env();
    let bad = env.samples.join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x0d\0\x01\0this is not a component").unwrap();
    let out = proofpix(&env, &["plugin", "inspect", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "proofpix: {} cannot be loaded: not a valid WebAssembly component:",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn analyze_prints_one_json_object_per_file_with_the_documented_fields() {
    let env = env();
    let out = proofpix(&env, &["analyze", "--json", env.samples.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 8, "every file, the text file included");
    for l in &lines {
        for key in [
            "path",
            "format",
            "risk",
            "score",
            "findings",
            "bytes_read",
            "error",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    let photo = file(&lines, "IMG_0001.jpg");
    let owner = photo["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "owner")
        .unwrap();
    assert_eq!(owner["value"], "J*** D**", "names are masked by default");
    let shown = json_lines(&proofpix(
        &env,
        &[
            "analyze",
            "--json",
            "--show-values",
            env.samples
                .join("site-visit/IMG_0001.jpg")
                .to_str()
                .unwrap(),
        ],
    ));
    let owner = shown[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "owner")
        .unwrap();
    assert_eq!(owner["value"], "Jane Doe");
}

#[test]
fn the_shipped_samples_are_what_the_generator_produces() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    for (name, bytes) in proofpix_fixtures::samples() {
        let on_disk = std::fs::read(shipped.join(name)).unwrap_or_else(|e| panic!("samples/{name}: {e}; run `cargo run -p proofpix-fixtures --example write_samples -- samples`"));
        assert!(
            on_disk == bytes,
            "samples/{name} differs from the generator; regenerate it"
        );
    }
}

/// `analyze --pixels` on a file larger than the pixel stage reads whole (a sparse 257 MiB
/// file, a phone photo and then zeros): its metadata is still analysed, by the ranges the
/// analysis needs rather than the whole file, and its pixel run is skipped, saying why.
#[test]
fn analyze_pixels_skips_a_file_too_large_to_read_whole_and_keeps_its_metadata() {
    let env = env();
    let big = env._tmp.path().join("huge.jpg");
    std::fs::copy(env.samples.join("site-visit/IMG_0001.jpg"), &big).unwrap();
    let size = 257u64 << 20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(size)
        .unwrap();

    let out = proofpix(
        &env,
        &["analyze", "--json", "--pixels", big.to_str().unwrap()],
    );
    let report = &json_lines(&out)[0];
    assert_eq!(report["risk"], "critical", "the metadata counts: {report}");
    assert!(categories(report).contains(&"gps".to_string()), "{report}");
    assert_eq!(
        report["pixels"]["skipped"], "the file is 257 MiB, over the pixel stage's 256 MiB",
        "{report}"
    );
    assert!(
        report["pixels"]["completed"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        report["bytes_read"].as_u64().unwrap() < 1 << 20,
        "range reads, not the whole file: {report}"
    );
}

/// What the picture shows: a Wi-Fi QR code in a photo without metadata is risk none to the
/// metadata analysis and high with `--pixels`, in `analyze` and through the whole pipeline
/// (`scan`), with the password masked and the code's box.
#[test]
fn pixels_find_a_wifi_password_that_metadata_cannot() {
    let env = env();
    let dir = env._tmp.path().join("whiteboard");
    std::fs::create_dir_all(&dir).unwrap();
    let photo = dir.join("office-wall.jpg");
    std::fs::write(
        &photo,
        proofpix_fixtures::qr_jpeg("WIFI:T:WPA;S:Office;P:hunter22;;", 6, 480),
    )
    .unwrap();
    let path = photo.to_str().unwrap();

    let plain = json_lines(&proofpix(&env, &["analyze", "--json", path]));
    assert_eq!(plain[0]["risk"], "none", "{}", plain[0]);
    assert!(plain[0].get("pixels").is_none());

    let out = proofpix(&env, &["analyze", "--json", "--pixels", path]);
    assert_eq!(out.status.code(), Some(1), "high risk found: exit 1");
    let seen = json_lines(&out);
    let report = &seen[0];
    assert_eq!(report["risk"], "high", "{report}");
    let wifi = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "barcode.wifi")
        .unwrap_or_else(|| panic!("no Wi-Fi finding: {report}"));
    assert_eq!(wifi["category"], "barcode");
    assert_eq!(wifi["source"]["family"], "pixels");
    assert_eq!(wifi["value"], "network Office, password ********");
    assert!(wifi["region"]["w"].as_u64().unwrap() > 100, "{wifi}");
    assert!(
        report["pixels"]["completed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "codes"),
        "{report}"
    );

    // The same through the pipeline: local-folder plugin, host fetch, pixel stage.
    let out = proofpix(&env, &["scan", dir.to_str().unwrap(), "--json", "--pixels"]);
    let lines = json_lines(&out);
    let scanned = file(&lines, "office-wall.jpg");
    assert_eq!(scanned["risk"], "high", "{scanned}");
    assert!(
        scanned["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "barcode.wifi"),
        "{scanned}"
    );
}
