//! Issue 15's missing decoders: FLIR Public image Format files (`.fpf`, ExifTool's
//! `FLIR::FPF`): an 892-byte header holding the camera, lens and filter serials. Built here
//! from ExifTool's table (field offsets, little-endian unless FPFVersion's low half is zero);
//! where exiftool is installed it reads the same bytes and the values are compared. A cut
//! header is read as far as it goes, with an error; any bytes after the signature never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{exiftool_json, no_panic, value};

use proofpix_analysis::{Analyzer, Format, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

/// An FPF file: the header with the given fields, then 4x2 16-bit pixels.
fn fpf(big_endian: bool) -> Vec<u8> {
    let mut h = vec![0u8; 892];
    h[..24].copy_from_slice(b"FPF Public Image Format\0");
    let put32 = |h: &mut Vec<u8>, at: usize, x: u32| {
        let b = if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        h[at..at + 4].copy_from_slice(&b);
    };
    put32(&mut h, 0x20, 2); // FPFVersion
    put32(&mut h, 0x24, 892); // ImageDataOffset
    let mut put_str = |at: usize, s: &str| h[at..at + s.len()].copy_from_slice(s.as_bytes());
    put_str(0x78, "FLIR T640");
    put_str(0xb8, "62101234");
    put_str(0xe0, "FOL25");
    put_str(0x120, "55012345");
    put_str(0x180, "F0099");
    for (i, x) in [2021u32, 6, 15, 13, 45, 30, 250].into_iter().enumerate() {
        put32(&mut h, 0x248 + 4 * i, x);
    }
    h.extend_from_slice(&[0x10; 16]);
    h
}

#[test]
fn fpf_header_serials_as_exiftool_reads_them() {
    for be in [false, true] {
        let f = fpf(be);
        let r = run(&f);
        assert_eq!(r.format, Format::Fpf);
        assert_eq!(r.error, None);
        assert_eq!(
            value(&r, "CameraSerialNumber").as_deref(),
            Some("62101234"),
            "{:#?}",
            r.findings
        );
        assert_eq!(value(&r, "LensSerialNumber").as_deref(), Some("55012345"));
        assert_eq!(value(&r, "FilterSerialNumber").as_deref(), Some("F0099"));
        assert_eq!(
            value(&r, "DateTimeOriginal").as_deref(),
            Some("2021:06:15 13:45:30.250")
        );
        let serials = r
            .findings
            .iter()
            .filter(|f| f.category.as_str() == "serial")
            .count();
        assert_eq!(serials, 3);
        if let Some(et) = exiftool_json("thermal.fpf", &f) {
            for (k, v) in [
                ("CameraSerialNumber", "62101234"),
                ("LensSerialNumber", "55012345"),
                ("FilterSerialNumber", "F0099"),
            ] {
                let got = et
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(key, _)| key.ends_with(&format!(":{k}")))
                    .map(|(_, v)| v.to_string().trim_matches('"').to_owned());
                assert_eq!(got.as_deref(), Some(v), "{k}: {et}");
            }
            let dt = et["FLIR:DateTimeOriginal"].as_str().unwrap_or("");
            assert!(dt.starts_with("2021:06:15 13:45:30"), "{et}");
        }
    }
}

#[test]
fn a_cut_fpf_header_keeps_what_it_holds() {
    let f = fpf(false);
    // Cut after the camera serial: the serial, an error, nothing from past the cut.
    let r = run(&f[..0xe0]);
    assert_eq!(value(&r, "CameraSerialNumber").as_deref(), Some("62101234"));
    assert!(value(&r, "LensSerialNumber").is_none());
    assert!(
        r.error.as_deref().unwrap_or("").contains("FPF"),
        "{:?}",
        r.error
    );
    for n in 0..f.len() {
        no_panic(&run(&f[..n]));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes after the FPF signature: no panic, no internal error.
    #[test]
    fn any_bytes_after_the_fpf_signature(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1200)) {
        let mut f = b"FPF Public Image Format\0".to_vec();
        f.extend_from_slice(&body);
        let r = run(&f);
        proptest::prop_assert_eq!(r.format, Format::Fpf);
        no_panic(&r);
    }
}
