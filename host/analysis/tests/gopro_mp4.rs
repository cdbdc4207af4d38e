//! Issue 15's missing decoders: GoPro's `GPMF` box in an MP4's `moov/udta` (ExifTool's
//! UserData `GPMF`, read with the GoPro::GPMF table): the camera serial (`CASN`) and a GPS fix
//! (`GPS5` scaled by `SCAL`) when the box holds one. The movie is built here from the layout
//! ExifTool's tables describe; where exiftool is installed it reads the same bytes and the
//! values are compared. Cut or lying boxes yield a partial result with an error, never a panic,
//! and never hide another finding of the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{exiftool_json, no_panic, value};

use common::*;
use proofpix_analysis::{Analyzer, Format, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

/// A GPMF record: key, type, structure size, repeat count (big-endian), data padded to 4.
fn klv(key: &[u8; 4], typ: u8, size: u8, count: u16, data: &[u8]) -> Vec<u8> {
    let mut v = key.to_vec();
    v.push(typ);
    v.push(size);
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(data);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// A DEVC list with the camera serial and, optionally, a stream with one GPS5 sample.
fn gpmf(with_gps: bool) -> Vec<u8> {
    let mut devc = klv(b"DVNM", b'c', 1, 7, b"Camera\0");
    devc.extend(klv(b"CASN", b'c', 1, 14, b"C3441325123456"));
    if with_gps {
        let scal: Vec<u8> = [10_000_000i32, 10_000_000, 1000, 1000, 100]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let gps5: Vec<u8> = [-337_000_000i32, 1_512_000_000, 35_000, 0, 0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let mut strm = klv(b"SCAL", b'l', 4, 5, &scal);
        strm.extend(klv(b"GPS5", b'l', 20, 1, &gps5));
        devc.extend(klv(b"STRM", 0, 4, (strm.len() / 4) as u16, &strm));
    }
    klv(b"DEVC", 0, 4, (devc.len() / 4) as u16, &devc)
}

/// An MP4 (`ftyp` mp41, `moov` with `mvhd` and `udta`, `mdat`) whose `udta` holds `children`.
fn movie(children: &[Vec<u8>]) -> Vec<u8> {
    let mut ftyp = b"mp41".to_vec();
    ftyp.extend_from_slice(&[0, 0, 0, 0]);
    ftyp.extend_from_slice(b"mp41isom");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[20..24].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    let udta: Vec<u8> = children.concat();
    let mut moov = bx(b"mvhd", &mvhd);
    moov.extend(bx(b"udta", &udta));
    let mut v = bx(b"ftyp", &ftyp);
    v.extend(bx(b"moov", &moov));
    v.extend(bx(b"mdat", &[0u8; 16]));
    v
}

#[test]
fn gopro_udta_gpmf_camera_serial_and_gps_as_exiftool_reads_them() {
    let f = movie(&[bx(b"GPMF", &gpmf(true))]);
    let r = run(&f);
    assert_eq!(r.format, Format::QuickTime);
    assert_eq!(r.error, None);
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("C3441325123456"),
        "{:#?}",
        r.findings
    );
    let g = r
        .findings
        .iter()
        .find(|f| f.category.as_str() == "gps")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(g.source.group, "GoPro");
    assert!(g.value.starts_with("-33.7"), "{}", g.value);
    assert!(g.value.contains("151.2"), "{}", g.value);
    if let Some(et) = exiftool_json("gopro.mp4", &f) {
        assert_eq!(et["GoPro:CameraSerialNumber"], "C3441325123456", "{et}");
        let lat = et["GoPro:GPSLatitude"].as_f64().unwrap_or(f64::NAN);
        let lon = et["GoPro:GPSLongitude"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (lat + 33.7).abs() < 1e-6 && (lon - 151.2).abs() < 1e-6,
            "{et}"
        );
    }
    // Without a GPS stream: the serial, no fix.
    let r = run(&movie(&[bx(b"GPMF", &gpmf(false))]));
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("C3441325123456")
    );
    assert!(r.findings.iter().all(|f| f.category.as_str() != "gps"));
}

#[test]
fn a_cut_or_lying_gpmf_box_keeps_the_rest() {
    let xmp = xmp_packet("<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>");
    let xmp_box = bx(b"XMP_", xmp.as_bytes());
    // The DEVC list claims 4 KB more than the box holds: an error, the XMP author kept.
    let mut lying = gpmf(true);
    lying[6..8].copy_from_slice(&1000u16.to_be_bytes());
    let r = run(&movie(&[bx(b"GPMF", &lying), xmp_box.clone()]));
    no_panic(&r);
    assert!(
        r.error.as_deref().unwrap_or("").contains("GPMF"),
        "{:?}",
        r.error
    );
    assert!(r.findings.iter().any(|f| f.value == "Ann Smith"));
    // A record inside the list that runs past it: the serial before it stays.
    let mut inner = gpmf(true);
    let at = inner.windows(4).position(|w| w == b"STRM").unwrap();
    inner[at + 6..at + 8].copy_from_slice(&1000u16.to_be_bytes());
    let r = run(&movie(&[bx(b"GPMF", &inner), xmp_box.clone()]));
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("C3441325123456")
    );
    assert!(r.error.is_some());
    assert!(r.findings.iter().any(|f| f.value == "Ann Smith"));
    // Every truncation of the movie, and every size word of the GPMF box set to a lie.
    let f = movie(&[bx(b"GPMF", &gpmf(true)), xmp_box]);
    for n in 0..f.len() {
        no_panic(&run(&f[..n]));
    }
    let at = f.windows(4).position(|w| w == b"GPMF").unwrap() - 4;
    let truth = u32::from_be_bytes(f[at..at + 4].try_into().unwrap());
    for lie in [0u32, 1, 7, 8, truth - 1, truth + 1, 0xffff_ffff] {
        let mut g = f.clone();
        g[at..at + 4].copy_from_slice(&lie.to_be_bytes());
        no_panic(&run(&g));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes as a udta `GPMF` box, beside an XMP author: no panic, the author survives.
    #[test]
    fn any_bytes_in_a_gpmf_box(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let xmp = xmp_packet("<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>");
        let r = run(&movie(&[bx(b"GPMF", &body), bx(b"XMP_", xmp.as_bytes())]));
        no_panic(&r);
        proptest::prop_assert!(r.findings.iter().any(|f| f.value == "Ann Smith"));
    }
}
