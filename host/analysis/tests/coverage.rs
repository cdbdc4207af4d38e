//! Issue 15, "coverage from a reference": the README's maker-note coverage list is tied to the
//! generated tag data. Every table of `data/privacy-tags.tsv` in ExifTool's `MakerNotes` family
//! (the `family0` column) that holds a serial, owner, person, place or GPS tag must be named in
//! the README either as decoded, with the test that proves it (a `#[test]` function that exists
//! in the file named), or as not decoded, with a reason. A new table in the data (a newer
//! ExifTool, a wider category pattern) fails here until it is accounted for.
//!
//! Also here: synthetic maker notes for the tables whose decoding had no test of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::value;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proofpix_analysis::{Analyzer, Options, Policy, Report};

const TSV: &str = include_str!("../data/privacy-tags.tsv");
const README: &str = include_str!("../README.md");
const TIED: &[&str] = &["serial", "owner", "person", "location-text", "gps"];

/// The data's maker-note tables that hold a tag of a tied category.
fn data_tables() -> BTreeSet<String> {
    let header = TSV
        .lines()
        .find(|l| l.starts_with("# table\t"))
        .expect("the data's column header");
    let cols: Vec<&str> = header.trim_start_matches("# ").split('\t').collect();
    let col = |n: &str| {
        cols.iter()
            .position(|c| *c == n)
            .unwrap_or_else(|| panic!("no {n} column in {header:?}"))
    };
    let (table, cat, g0) = (col("table"), col("category"), col("family0"));
    TSV.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| {
            f.get(g0) == Some(&"MakerNotes") && f.get(cat).is_some_and(|c| TIED.contains(c))
        })
        .map(|f| f[table].to_owned())
        .collect()
}

/// The rows of the README table under `### {heading}` in the maker-note coverage section:
/// the first column's `Table::Name`s (several may share a row), and the other cells.
fn readme_rows(heading: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let section = README
        .split("\n## Maker-note coverage")
        .nth(1)
        .expect("README has a Maker-note coverage section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let part = section
        .split(&format!("\n### {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README coverage section has no ### {heading}"));
    let part = part.split("\n### ").next().unwrap_or(part);
    part.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            let tables = cells[0]
                .split(',')
                .map(|t| t.trim().trim_matches('`').to_owned())
                .collect();
            (tables, cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn every_maker_note_table_in_the_data_is_decoded_with_a_test_or_listed_with_a_reason() {
    let data = data_tables();
    assert!(
        data.len() > 40,
        "only {} maker-note tables in the data",
        data.len()
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut decoded: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for (tables, cells) in readme_rows("Decoded") {
        // Cells: where it is decoded, then the test as `path::function` (crate-relative).
        let test = cells
            .get(1)
            .map(|c| c.trim_matches('`').to_owned())
            .unwrap_or_default();
        let (file, func) = test.rsplit_once("::").unwrap_or(("", ""));
        let src = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let named = src
            .match_indices(&format!("fn {func}()"))
            .any(|(i, _)| src[..i].trim_end().ends_with("#[test]"));
        if func.is_empty() || !named {
            problems.push(format!(
                "{tables:?}: test {test:?} is not a #[test] fn in {file}"
            ));
        }
        for t in tables {
            decoded.insert(t, test.clone());
        }
    }
    let mut not_decoded = BTreeSet::new();
    for (tables, cells) in readme_rows("Not decoded") {
        if cells.first().is_none_or(|r| r.len() < 10) {
            problems.push(format!(
                "{tables:?}: listed as not decoded without a reason"
            ));
        }
        not_decoded.extend(tables);
    }
    for t in &data {
        match (decoded.contains_key(t), not_decoded.contains(t)) {
            (false, false) => problems.push(format!(
                "{t}: in data/privacy-tags.tsv (a maker-note table with a serial, owner, person, place or GPS tag) but not in README's coverage list"
            )),
            (true, true) => problems.push(format!("{t}: listed both as decoded and not decoded")),
            _ => {}
        }
    }
    for t in decoded.keys().chain(not_decoded.iter()) {
        if !data.contains(t) {
            problems.push(format!("{t}: in README's coverage list but not a maker-note table of the data with such a tag"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- Synthetic notes for tables that had no test of their own ----

fn analyze_exif(ifd0: &[E], note: &[u8]) -> Report {
    let t = tiff(ifd0, &[undefined(0x927c, note)], &[], &[]);
    let a = Analyzer::new(Policy::default(), Options::default().with_show_values(true));
    a.analyze(&jpeg(&[app1_exif(&t)], 8, 8))
}

/// A maker note: `header`, then an IFD whose offsets are relative to the TIFF header (the note
/// is the ExifIFD's only value, so it sits at `exif_values_at`).
fn tiff_relative_note(ifd0: &[E], header: &[u8], entries: &[E]) -> Vec<u8> {
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, entries, 0, exif_values_at(ifd0, 1) + header.len());
    let mut note = header.to_vec();
    note.extend_from_slice(&ifd);
    note
}

#[test]
fn canon_lens_info_lens_serial() {
    // Canon::LensInfo (0x4019): the first 5 bytes are the lens serial, shown as hex digits.
    let ifd0 = [ascii(0x010f, "Canon")];
    let mut info = vec![0x00, 0x00, 0x12, 0x34, 0x56];
    info.resize(30, 0);
    let note = tiff_relative_note(&ifd0, b"", &[undefined(0x4019, &info)]);
    let r = analyze_exif(&ifd0, &note);
    assert_eq!(
        value(&r, "LensSerialNumber").as_deref(),
        Some("0000123456"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn hp_type6_serial() {
    // HP::Type6: "IIII\x06\0", fixed positions; SerialNumber string[26] at 0x58.
    let mut hp = b"IIII\x06\0".to_vec();
    hp.resize(0x58, 0);
    hp.extend_from_slice(b"SERIAL NUMBER:CN6543210");
    hp.resize(0x80, 0);
    let r = analyze_exif(&[ascii(0x010f, "Hewlett-Packard")], &hp);
    assert!(
        value(&r, "SerialNumber").is_some_and(|v| v.contains("CN6543210")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn panasonic_face_rec_info_names() {
    // Panasonic::FaceRecInfo (0x0061): names at bytes 4, 52 and 100, string[20] each.
    let ifd0 = [ascii(0x010f, "Panasonic")];
    let mut rec = vec![0u8; 120];
    rec[0] = 2;
    rec[4..13].copy_from_slice(b"Ann Smith");
    rec[52..60].copy_from_slice(b"Bo Jones");
    let note = tiff_relative_note(&ifd0, b"Panasonic\0\0\0", &[undefined(0x0061, &rec)]);
    let r = analyze_exif(&ifd0, &note);
    assert_eq!(
        value(&r, "RecognizedFace1Name").as_deref(),
        Some("Ann Smith"),
        "{:#?}",
        r.findings
    );
    assert_eq!(
        value(&r, "RecognizedFace2Name").as_deref(),
        Some("Bo Jones")
    );
    assert!(r.findings.iter().any(|f| f.category.as_str() == "person"));
}

#[test]
fn pentax_camera_info_internal_serial() {
    // Pentax::CameraInfo (0x0215): int32u words; InternalSerialNumber is word 4 (byte 16).
    let mut ci = vec![0u8; 20];
    ci[16..20].copy_from_slice(&4_321_987u32.to_le_bytes());
    let mut note = b"PENTAX \0II".to_vec();
    write_ifd_based(&mut note, &[undefined(0x0215, &ci)], 0, 0);
    let r = analyze_exif(&[ascii(0x010f, "PENTAX")], &note);
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("4321987"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn reconyx_main_serial() {
    // Reconyx::Main (HyperFire): 0x01 0xf1, version 2 or 3; int16u words, SerialNumber
    // undef[30] at word 0x15 (byte 42).
    let mut note = vec![0x01, 0xf1, 0x03, 0x00];
    note.resize(42, 0);
    let serial: Vec<u8> = "H500ABC1234"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    note.extend_from_slice(&serial);
    note.resize(0x60, 0);
    let r = analyze_exif(&[ascii(0x010f, "RECONYX")], &note);
    assert!(
        value(&r, "SerialNumber").is_some_and(|v| v.contains("H500ABC1234")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn ricoh_main_serial() {
    // Ricoh::Main 0x0005: undef[16]; text is the SerialNumber.
    let ifd0 = [ascii(0x010f, "RICOH")];
    let note = tiff_relative_note(
        &ifd0,
        b"Ricoh\0\0\0",
        &[undefined(0x0005, b"RC1234567890ABCD")],
    );
    let r = analyze_exif(&ifd0, &note);
    assert!(
        r.findings
            .iter()
            .any(|f| f.category.as_str() == "serial" && f.value.contains("RC1234567890")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn sigma_main_serial() {
    // Sigma::Main 0x0002: "SIGMA\0\0\0" + a version word, then the IFD.
    let ifd0 = [ascii(0x010f, "SIGMA")];
    let note = tiff_relative_note(&ifd0, b"SIGMA\0\0\0\x01\0", &[ascii(0x0002, "1234567")]);
    let r = analyze_exif(&ifd0, &note);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("1234567"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn sony_main_serial() {
    // Sony::Main 0x2031: SerialNumber string, in a "SONY DSC" note.
    let ifd0 = [ascii(0x010f, "SONY"), ascii(0x0110, "ILCE-7M3")];
    let note = tiff_relative_note(&ifd0, b"SONY DSC \0\0\0", &[ascii(0x2031, "3123456")]);
    let r = analyze_exif(&ifd0, &note);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("3123456"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn sony_tag9050b_and_c_internal_serials() {
    // Tag9050b (ILCE-7M3) and Tag9050c (ILCE-7M4: 0x88, ILCE-1: 0x8a): int8u[6], each byte
    // enciphered as b^3 mod 249.
    let enc = |b: u64| ((b * b * b) % 249) as u8;
    for (model, at) in [
        ("ILCE-7M3", 0x88usize),
        ("ILCE-7M4", 0x88),
        ("ILCE-1", 0x8a),
    ] {
        let mut block = vec![0u8; 0x100];
        for (i, b) in [1u64, 2, 3, 4, 5, 6].into_iter().enumerate() {
            block[at + i] = enc(b);
        }
        let ifd0 = [ascii(0x010f, "SONY"), ascii(0x0110, model)];
        let note = tiff_relative_note(&ifd0, b"SONY DSC \0\0\0", &[undefined(0x9050, &block)]);
        let r = analyze_exif(&ifd0, &note);
        let v = value(&r, "InternalSerialNumber")
            .unwrap_or_else(|| panic!("{model}: {:#?}", r.findings));
        assert_eq!(v, "1 2 3 4 5 6", "{model}");
    }
}

#[test]
fn every_truncation_of_these_notes_is_safe() {
    let ifd0 = [ascii(0x010f, "Panasonic")];
    let mut rec = vec![0u8; 120];
    rec[4..13].copy_from_slice(b"Ann Smith");
    let notes = [
        tiff_relative_note(&ifd0, b"Panasonic\0\0\0", &[undefined(0x0061, &rec)]),
        {
            let mut n = vec![0x01, 0xf1, 0x03, 0x00];
            n.resize(0x60, 0x41);
            n
        },
        {
            let mut n = b"IIII\x06\0".to_vec();
            n.resize(0x80, 0x41);
            n
        },
    ];
    for note in &notes {
        for n in 0..note.len() {
            let _ = analyze_exif(&ifd0, &note[..n]);
        }
    }
}
