//! Issue 15's missing decoders: GoPro's `GPMF` box in an MP4's `moov/udta` (ExifTool's
//! UserData `GPMF`, read with the GoPro::GPMF table): the camera serial (`CASN`) and a GPS fix
//! (`GPS5` scaled by `SCAL`) when the box holds one. The movie is built here from the layout
//! ExifTool's tables describe; where exiftool is installed it reads the same bytes and the
//! values are compared. Cut or lying boxes yield a partial result with an error, never a panic,
//! and never hide another finding of the file.
//!
//! The timed metadata too: a track whose sample entry is `gpmd` (GPMF samples in `mdat`, found
//! through `stsc`/`stsz`/`stco`/`co64`) or `fdsc` (`GoPro::fdsc`), read as ExifTool reads them
//! with `-ee` (grouped `TrackN`); and the GPMF records beyond the serial and GPS5: `MINF`,
//! `MUID`, `GPS9`, `GLPI`, `GPRI` with their `TYPE` and `SCAL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{exiftool_json, exiftool_json_with, no_panic, value};

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

// ---- timed metadata: `gpmd` and `fdsc` tracks ------------------------------------------------

fn be32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// A `gpmd` sample: one DEVC with a GPS stream (STNM, GPSF, GPSU, SCAL, GPS5 with `fixes`
/// samples of latitude/longitude in degrees), padded with an accelerometer record of `pad`
/// samples so samples differ in size.
fn gpmd_sample(fixes: &[(f64, f64)], pad: u16) -> Vec<u8> {
    let mut gps = Vec::new();
    for (la, lo) in fixes {
        gps.extend(be32s(&[
            (la * 1e7).round() as i32,
            (lo * 1e7).round() as i32,
            35_000,
            120,
            130,
        ]));
    }
    let mut strm = klv(b"STNM", b'c', 1, 3, b"GPS");
    strm.extend(klv(b"GPSF", b'L', 4, 1, &3u32.to_be_bytes()));
    strm.extend(klv(b"GPSU", b'U', 16, 1, b"200101120000.000"));
    strm.extend(klv(
        b"SCAL",
        b'l',
        4,
        5,
        &be32s(&[10_000_000, 10_000_000, 1000, 1000, 100]),
    ));
    strm.extend(klv(b"GPS5", b'l', 20, fixes.len() as u16, &gps));
    let accl = klv(b"ACCL", b's', 6, pad, &vec![1u8; usize::from(pad) * 6]);
    let accl_strm = klv(b"STRM", 0, 4, (accl.len() / 4) as u16, &accl);
    let mut devc = klv(b"DVNM", b'c', 1, 6, b"Camera");
    devc.extend(accl_strm);
    devc.extend(klv(b"STRM", 0, 4, (strm.len() / 4) as u16, &strm));
    klv(b"DEVC", 0, 4, (devc.len() / 4) as u16, &devc)
}

fn full_box(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    bx(typ, &[&[0u8, 0, 0, 0][..], body].concat())
}

/// One `trak`: handler `handler`, one sample entry of format `entry`, and sample tables that
/// put `sizes` samples `per_chunk` to a chunk at `chunk_offsets` (64-bit offsets when `wide`).
fn trak(
    handler: &[u8; 4],
    entry: &[u8; 4],
    sizes: &[u32],
    per_chunk: u32,
    chunk_offsets: &[u64],
    wide: bool,
) -> Vec<u8> {
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(handler);
    hdlr.extend_from_slice(&[0; 12]);
    hdlr.extend_from_slice(b"GoPro MET\0");
    let sample_entry = bx(entry, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    let mut stsd = 1u32.to_be_bytes().to_vec();
    stsd.extend(sample_entry);
    let mut stts = 1u32.to_be_bytes().to_vec();
    stts.extend((sizes.len() as u32).to_be_bytes());
    stts.extend(1000u32.to_be_bytes());
    let mut stsc = 1u32.to_be_bytes().to_vec();
    stsc.extend(be32s(&[1, per_chunk as i32, 1]));
    let mut stsz = 0u32.to_be_bytes().to_vec();
    stsz.extend((sizes.len() as u32).to_be_bytes());
    for s in sizes {
        stsz.extend(s.to_be_bytes());
    }
    let mut stco = (chunk_offsets.len() as u32).to_be_bytes().to_vec();
    for o in chunk_offsets {
        if wide {
            stco.extend(o.to_be_bytes());
        } else {
            stco.extend((*o as u32).to_be_bytes());
        }
    }
    let mut stbl = full_box(b"stsd", &stsd);
    stbl.extend(full_box(b"stts", &stts));
    stbl.extend(full_box(b"stsc", &stsc));
    stbl.extend(full_box(b"stsz", &stsz));
    stbl.extend(full_box(if wide { b"co64" } else { b"stco" }, &stco));
    let minf = bx(b"minf", &[bx(b"gmhd", &[]), bx(b"stbl", &stbl)].concat());
    let mut mdhd = vec![0u8; 24];
    mdhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    let mdia = bx(
        b"mdia",
        &[bx(b"mdhd", &mdhd), bx(b"hdlr", &hdlr), minf].concat(),
    );
    let mut tkhd = vec![0u8; 84];
    tkhd[3] = 7;
    bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat())
}

/// A movie: a video track with no samples first (so the metadata track is `Track2`), then a
/// timed-metadata track of sample entry `entry` holding `samples`, `per_chunk` to a chunk, in
/// `mdat`; `udta` holds `udta`.
fn timed_movie(
    entry: &[u8; 4],
    samples: &[Vec<u8>],
    per_chunk: usize,
    wide: bool,
    udta: &[Vec<u8>],
) -> Vec<u8> {
    let sizes: Vec<u32> = samples.iter().map(|s| s.len() as u32).collect();
    let build = |mdat_body: u64| {
        let mut offsets = Vec::new();
        let mut at = mdat_body;
        for (i, s) in samples.iter().enumerate() {
            if i % per_chunk == 0 {
                offsets.push(at);
            }
            at += s.len() as u64;
        }
        let mut ftyp = b"mp41".to_vec();
        ftyp.extend_from_slice(&[0, 0, 0, 0]);
        ftyp.extend_from_slice(b"mp41isom");
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[20..24].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        let mut moov = bx(b"mvhd", &mvhd);
        moov.extend(trak(b"vide", b"avc1", &[], 1, &[], false));
        moov.extend(trak(
            b"meta",
            entry,
            &sizes,
            per_chunk as u32,
            &offsets,
            wide,
        ));
        if !udta.is_empty() {
            moov.extend(bx(b"udta", &udta.concat()));
        }
        let mut v = bx(b"ftyp", &ftyp);
        v.extend(bx(b"moov", &moov));
        v
    };
    let head = build(0).len() as u64 + 8;
    let mut v = build(head);
    v.extend(bx(b"mdat", &samples.concat()));
    v
}

fn gps(r: &Report) -> Option<&proofpix_analysis::Finding> {
    r.findings.iter().find(|f| f.category.as_str() == "gps")
}

fn xmp_author() -> Vec<u8> {
    let xmp = xmp_packet("<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>");
    bx(b"XMP_", xmp.as_bytes())
}

/// The GoPro telemetry track: the first GPS5 sample of the first `gpmd` sample, scaled by its
/// SCAL, grouped by the track's number, as ExifTool reads it with `-ee` (and does not without).
#[test]
fn gopro_gpmd_track_gps_fix_as_exiftool_reads_it_with_ee() {
    let samples = vec![
        gpmd_sample(&[(-33.8568, 151.2153), (-33.8569, 151.2154)], 3),
        gpmd_sample(&[(-33.857, 151.2155)], 7),
    ];
    let f = timed_movie(b"gpmd", &samples, 1, false, &[]);
    let r = run(&f);
    assert_eq!(r.format, Format::QuickTime);
    assert_eq!(r.error, None);
    let g = gps(&r).unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(g.source.group, "Track2");
    assert_eq!(g.source.name, "GPSLatitude");
    assert!(g.value.starts_with("-33.8568"), "{}", g.value);
    assert!(g.value.contains("151.2153"), "{}", g.value);
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.category.as_str() == "gps")
            .count(),
        1
    );
    if let Some(et) = exiftool_json_with("gpmd.mp4", &f, &["-ee"]) {
        // ExifTool prints the sample's last GPS5 fix, we keep its first: the same place
        // within a second's travel.
        let lat = et["Track2:GPSLatitude"].as_f64().unwrap_or(f64::NAN);
        let lon = et["Track2:GPSLongitude"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (lat + 33.8568).abs() < 2e-4 && (lon - 151.2153).abs() < 2e-4,
            "{et}"
        );
        assert_eq!(et["Track2:MetaFormat"], "gpmd", "{et}");
    }
    // Without -ee (how the shared corpus's readings are made) ExifTool reads no telemetry.
    if let Some(et) = exiftool_json("gpmd-plain.mp4", &f) {
        assert!(et.get("Track2:GPSLatitude").is_none(), "{et}");
    }
    // The same with 64-bit chunk offsets and both samples in one chunk.
    let r = run(&timed_movie(b"gpmd", &samples, 2, true, &[]));
    assert_eq!(r.error, None);
    assert!(
        gps(&r).is_some_and(|g| g.value.starts_with("-33.8568")),
        "{:#?}",
        r.findings
    );
}

/// A camera without a lock writes zeros: the fix is the first sample with coordinates, read at
/// the start of the track or at one of the points spread over it (here the last sample, in
/// the middle of a chunk of three), and only those few samples are read.
#[test]
fn a_fix_later_in_a_long_track_is_found_reading_a_few_samples() {
    let mut samples: Vec<Vec<u8>> = (0..40)
        .map(|i| gpmd_sample(&[(0.0, 0.0)], 1000 + i))
        .collect();
    samples[39] = gpmd_sample(&[(0.0, 0.0), (51.5007, -0.1246)], 1000);
    let total: usize = samples.iter().map(Vec::len).sum();
    for wide in [false, true] {
        let f = timed_movie(b"gpmd", &samples, 3, wide, &[]);
        let r = run(&f);
        assert_eq!(r.error, None);
        let g = gps(&r).unwrap_or_else(|| panic!("{:#?}", r.findings));
        assert!(g.value.starts_with("51.5007"), "{}", g.value);
        assert!(g.value.contains("-0.1246"), "{}", g.value);
        // Eight samples of about 6 KB of forty, plus the boxes.
        assert!(
            r.bytes_read < (total / 3) as u64,
            "{} of {}",
            r.bytes_read,
            f.len()
        );
    }
    // No fix anywhere: no GPS finding, no error.
    samples[39] = gpmd_sample(&[(0.0, 0.0)], 1000);
    let r = run(&timed_movie(b"gpmd", &samples, 3, false, &[]));
    assert!(gps(&r).is_none());
    assert_eq!(r.error, None);
}

/// HERO11 and later write GPS9 (a `?` structure described by TYPE `lllllllSS`); a record whose
/// TYPE is missing, whose SCAL is zero or whose coordinates are out of range is an error.
#[test]
fn gps9_decodes_through_its_type_and_bad_scales_are_errors() {
    let gps9 = |typ: Option<&[u8]>, scal: &[i32], lat: i32| {
        let mut strm = Vec::new();
        if let Some(t) = typ {
            strm.extend(klv(b"TYPE", b'c', 1, t.len() as u16, t));
        }
        strm.extend(klv(b"SCAL", b'l', 4, scal.len() as u16, &be32s(scal)));
        let mut s = be32s(&[lat, -1_223_000_000, 10_000, 0, 0, 8000, 3_600_000]);
        s.extend_from_slice(&[0, 150, 0, 3]);
        strm.extend(klv(b"GPS9", b'?', 32, 1, &s));
        let devc = klv(b"STRM", 0, 4, (strm.len() / 4) as u16, &strm);
        klv(b"DEVC", 0, 4, (devc.len() / 4) as u16, &devc)
    };
    let scal = [10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1];
    let r = run(&timed_movie(
        b"gpmd",
        &[gps9(Some(b"lllllllSS"), &scal, 377_000_000)],
        1,
        false,
        &[],
    ));
    assert_eq!(r.error, None);
    let g = gps(&r).unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert!(g.value.starts_with("37.7"), "{}", g.value);
    assert!(g.value.contains("-122.3"), "{}", g.value);
    for (sample, why) in [
        (gps9(None, &scal, 377_000_000), "no coordinates"),
        (gps9(Some(b"lllllllSS"), &[0], 377_000_000), "zero scale"),
        (gps9(Some(b"lllllllSS"), &[1], 377_000_000), "out of range"),
        (gps9(Some(b"l"), &scal, 377_000_000), "no coordinates"),
    ] {
        refused_beside_the_author(sample, why);
    }
}

/// GoPro's `fdsc` track (HERO5/6): the serial at its fixed offset, as ExifTool reads it with -ee.
#[test]
fn gopro_fdsc_track_serial_as_exiftool_reads_it_with_ee() {
    let mut s = b"GPRO".to_vec();
    s.resize(0x08, 0);
    s.extend_from_slice(b"HD6.01.01.51.00");
    s.resize(0x17, 0);
    s.extend_from_slice(b"C3221324657219\0\0");
    s.resize(0x66, 0);
    s.extend_from_slice(b"HERO6 Black\0\0\0\0\0");
    s.resize(0x100, 0);
    let f = timed_movie(b"fdsc", &[s.clone()], 1, false, &[]);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("C3221324657219"));
    let sn = r
        .findings
        .iter()
        .find(|f| f.source.name == "SerialNumber")
        .unwrap();
    assert_eq!(sn.source.group, "Track2");
    if let Some(et) = exiftool_json_with("fdsc.mp4", &f, &["-ee"]) {
        assert_eq!(et["Track2:SerialNumber"], "C3221324657219", "{et}");
    }
    // Another fdsc layout (not GPRO) is not read; a cut sample is an error.
    s[..4].copy_from_slice(b"GP\0\0");
    let r = run(&timed_movie(b"fdsc", &[s.clone()], 1, false, &[]));
    assert!(value(&r, "SerialNumber").is_none());
    s[..4].copy_from_slice(b"GPRO");
    let r = run(&timed_movie(b"fdsc", &[s[..0x20].to_vec()], 1, false, &[]));
    assert!(
        r.error.as_deref().unwrap_or("").contains("fdsc"),
        "{:?}",
        r.error
    );
}

/// The device records of GPMF beside the serial: the model (`MINF`) and the media's unique id
/// (`MUID`, eight 32-bit numbers), as ExifTool prints them; and Karma's GLPI structure.
#[test]
fn gpmf_model_media_id_and_glpi_in_app6_as_exiftool_reads_them() {
    let muid: Vec<u8> = [1_226_518_844u32, 2_828_866_582, 7, 8, 0, 0, 0, 0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let mut strm = klv(b"TYPE", b'c', 1, 9, b"LllllsssS");
    strm.extend(klv(
        b"SCAL",
        b'l',
        4,
        9,
        &be32s(&[1000, 10_000_000, 10_000_000, 1000, 1000, 100, 100, 100, 100]),
    ));
    let mut s = be32s(&[5000, 525_200_000, 134_050_000, 40_000, 0]);
    s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    strm.extend(klv(b"GLPI", b'?', 28, 1, &s));
    let mut devc = klv(b"MINF", b'c', 1, 11, b"HERO6 Black");
    devc.extend(klv(b"MUID", b'L', 4, 8, &muid));
    devc.extend(klv(b"STRM", 0, 4, (strm.len() / 4) as u16, &strm));
    let mut p = b"GoPro\0".to_vec();
    p.extend(klv(b"DEVC", 0, 4, (devc.len() / 4) as u16, &devc));
    let f = jpeg(&[seg(0xe6, &p)], 8, 8);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "Model").as_deref(), Some("HERO6 Black"));
    assert_eq!(
        value(&r, "MediaUniqueID").as_deref(),
        Some("1226518844 2828866582 7 8 0 0 0 0")
    );
    let g = gps(&r).unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert!(g.value.starts_with("52.52"), "{}", g.value);
    assert!(g.value.contains("13.405"), "{}", g.value);
    if let Some(et) = exiftool_json("glpi.jpg", &f) {
        assert_eq!(et["GoPro:Model"], "HERO6 Black", "{et}");
        assert_eq!(
            et["GoPro:MediaUniqueID"], "1226518844 2828866582 7 8 0 0 0 0",
            "{et}"
        );
        // ExifTool 12.57 reports a GLPI fix (its verbose dump shows the scaled 52.52 and
        // 13.405 decoded from the structure), though the value it prints is another number.
        assert!(et["GoPro:GPSLatitude"].as_f64().is_some(), "{et}");
    }
}

/// Sample tables that lie (offsets past the end, a chunk past the table, zero samples per
/// chunk, a run that goes backwards, a sample count the size table cannot hold, a sample over
/// the cap) and GPMF that lies (a repeat count past its list, nesting past the limit, a huge
/// repeat of GPS5): an error naming the place, no panic, and the XMP author in `udta` kept.
#[test]
fn lying_sample_tables_and_hostile_gpmf_keep_the_rest() {
    let sample = gpmd_sample(&[(-33.8568, 151.2153)], 2);
    let good = timed_movie(
        b"gpmd",
        &[sample.clone(), sample.clone()],
        1,
        false,
        &[xmp_author()],
    );
    // The metadata track's tables (the video track before it has its own).
    let find = |f: &[u8], typ: &[u8; 4]| f.windows(4).rposition(|w| w == typ).unwrap() + 4;
    let put = |f: &mut Vec<u8>, at: usize, x: u32| f[at..at + 4].copy_from_slice(&x.to_be_bytes());
    let stco = find(&good, b"stco");
    let stsc = find(&good, b"stsc");
    let stsz = find(&good, b"stsz");
    type Lie = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Lie)> = vec![
        (
            "offset past the end",
            Box::new(move |f| put(f, stco + 8, 0xffff_fff0)),
        ),
        ("no chunks", Box::new(move |f| put(f, stco + 4, 0))),
        ("zero per chunk", Box::new(move |f| put(f, stsc + 12, 0))),
        ("backwards run", Box::new(move |f| put(f, stsc + 8, 9))),
        (
            "over the cap",
            Box::new(move |f| {
                put(f, stsz + 4, 0x7fff_ffff);
            }),
        ),
    ];
    for (why, lie) in &cases {
        let mut f = good.clone();
        lie(&mut f);
        let r = run(&f);
        no_panic(&r);
        assert!(
            r.error.as_deref().unwrap_or("").contains("Track2"),
            "{why}: {:?}",
            r.error
        );
        assert!(r.findings.iter().any(|f| f.value == "Ann Smith"), "{why}");
    }
    // A sample count the size table cannot hold, in a track with no fix: the samples spread
    // over the claimed count lie past the table.
    let nofix = gpmd_sample(&[(0.0, 0.0)], 2);
    let mut f = timed_movie(b"gpmd", &[nofix.clone(), nofix], 1, false, &[xmp_author()]);
    let at = find(&f, b"stsz");
    put(&mut f, at + 8, 0xffff_ffff);
    let r = run(&f);
    assert!(
        r.error.as_deref().unwrap_or("").contains("Track2: sample"),
        "{:?}",
        r.error
    );
    assert!(r.findings.iter().any(|f| f.value == "Ann Smith"));
    // GPMF that lies, inside a well-formed sample.
    let mut lying_repeat = sample.clone();
    lying_repeat[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
    let mut deep = klv(b"GPS5", b'l', 20, 1, &be32s(&[1, 1, 0, 0, 0]));
    for _ in 0..40 {
        deep = klv(b"STRM", 0, 4, (deep.len() / 4) as u16, &deep);
    }
    let huge = klv(b"GPS5", b'l', 255, 0xffff, &[]);
    for (gpmf, why) in [
        (lying_repeat, "runs past its list"),
        (deep, "nesting too deep"),
        (huge, "runs past its list"),
    ] {
        refused_beside_the_author(gpmf, why);
    }
    // A dashcam's own `gpmd` layout (not GPMF): nothing read, no error.
    let r = run(&timed_movie(b"gpmd", &[vec![0u8; 64]], 1, false, &[]));
    assert_eq!(r.error, None);
    assert!(r.findings.iter().all(|f| f.category.as_str() != "gps"));
    // Every truncation of the movie.
    for n in 0..good.len() {
        no_panic(&run(&good[..n]));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes as a `gpmd` sample (after a DEVC key, so they are read as GPMF), beside an
    /// XMP author: no panic, the author survives.
    #[test]
    fn any_bytes_as_a_gpmd_sample(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let mut s = b"DEVC".to_vec();
        s.extend_from_slice(&body);
        let r = run(&timed_movie(b"gpmd", &[s], 1, false, &[xmp_author()]));
        no_panic(&r);
        proptest::prop_assert!(r.findings.iter().any(|f| f.value == "Ann Smith"));
    }
}

/// A source that holds only the ranges a host has fetched (range mode).
struct Fetched {
    data: Vec<u8>,
    have: Vec<(u64, u64)>,
}

impl proofpix_analysis::source::ByteSource for Fetched {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), proofpix_analysis::source::SourceError> {
        let end = offset + buf.len() as u64;
        if end > self.data.len() as u64 {
            return Err(proofpix_analysis::source::SourceError::OutOfBounds);
        }
        if self.have.iter().any(|(o, l)| *o <= offset && end <= o + l) {
            buf.copy_from_slice(&self.data[offset as usize..end as usize]);
            Ok(())
        } else {
            Err(proofpix_analysis::source::SourceError::Missing {
                offset,
                len: buf.len() as u64,
            })
        }
    }
}

/// Range mode: with only the movie's boxes fetched, one pass lists every planned sample, so
/// the second pass finds a fix that only the last sample holds, after a few KB per sample
/// (a host that ran out of rounds would download the whole video).
#[test]
fn range_mode_lists_every_planned_sample_in_one_round() {
    let mut samples: Vec<Vec<u8>> = (0..40)
        .map(|i| gpmd_sample(&[(0.0, 0.0)], 1000 + i))
        .collect();
    samples[39] = gpmd_sample(&[(0.0, 0.0), (51.5007, -0.1246)], 1000);
    let f = timed_movie(b"gpmd", &samples, 3, false, &[]);
    let mdat = f.windows(4).rposition(|w| w == b"mdat").unwrap() as u64 + 4;
    let mut src = Fetched {
        data: f.clone(),
        have: vec![(0, mdat)],
    };
    let a = Analyzer::new(Policy::default(), Options::default().with_show_values(true));
    let first = a.analyze(&src);
    assert!(gps(&first).is_none());
    // The first four samples (one range: the reader joins neighbours), then four more.
    assert_eq!(first.needs.len(), 5, "{:?}", first.needs);
    src.have
        .extend(first.needs.iter().map(|n| (n.offset, n.len)));
    let second = a.analyze(&src);
    assert!(second.needs.is_empty(), "{:?}", second.needs);
    let g = gps(&second).unwrap_or_else(|| panic!("{:#?}", second.findings));
    assert!(g.value.starts_with("51.5007"), "{}", g.value);
    let fetched: u64 = src.have.iter().map(|(_, l)| l).sum();
    assert!(fetched < f.len() as u64 / 3, "{fetched} of {}", f.len());
}

/// A movie whose one `gpmd` sample is `sample`, beside an XMP author in `udta`: no GPS, an
/// error that says `why`, and the author still found.
fn refused_beside_the_author(sample: Vec<u8>, why: &str) {
    let r = run(&timed_movie(b"gpmd", &[sample], 1, false, &[xmp_author()]));
    no_panic(&r);
    assert!(gps(&r).is_none(), "{why}");
    assert!(
        r.error.as_deref().unwrap_or("").contains(why),
        "{why}: {:?}",
        r.error
    );
    assert!(r.findings.iter().any(|f| f.value == "Ann Smith"), "{why}");
}
