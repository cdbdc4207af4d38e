//! Issue 15: makers, previews and containers outside the original nine, each from bytes built
//! here in the layout ExifTool's tables describe (never from corpus files). Every test also
//! checks that a truncated or lying variant yields a partial result with an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::value;

use common::*;
use proofpix_analysis::{Analyzer, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn analyze_exif(ifd0: &[E], exif: &[E]) -> Report {
    run(&jpeg(&[app1_exif(&tiff(ifd0, exif, &[], &[]))], 8, 8))
}

fn has(r: &Report, category: &str) -> bool {
    r.findings.iter().any(|f| f.category.as_str() == category)
}

/// A maker note (header + IFD) whose IFD value offsets are relative to `base` plus the IFD's
/// position in the note.
fn note_with_ifd(header: &[u8], entries: &[E], base: usize) -> Vec<u8> {
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, entries, 0, base);
    let mut note = header.to_vec();
    note.extend_from_slice(&ifd);
    note
}

#[test]
fn leica_type5_serial_and_internal_serial_come_from_the_generated_table() {
    // "LEICA\0\x05\0" (X2): IFD at 8, offsets relative to the note start.
    let ifd0 = [ascii(0x010f, "LEICA CAMERA AG")];
    let note = note_with_ifd(
        b"LEICA\0\x05\0",
        &[
            long(0x0305, 4_512_345),
            undefined(0x0500, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]),
        ],
        8,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("4512345"),
        "{:#?}",
        r.findings
    );
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("deadbeef01020304")
    );
}

#[test]
fn leica_m8_type2_serial_with_note_relative_offsets() {
    // "LEICA\0\0\0" with Make "Leica Camera AG" (M8): IFD at 8, offsets from the IFD start.
    let ifd0 = [ascii(0x010f, "Leica Camera AG")];
    let note = note_with_ifd(b"LEICA\0\0\0", &[long(0x0303, 3_101_234)], 0);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("3101234"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn leica_m_typ240_lens_serial_with_tiff_relative_offsets() {
    let ifd0 = [ascii(0x010f, "Leica Camera AG")];
    let base = exif_values_at(&ifd0, 1) + 8;
    let note = note_with_ifd(b"LEICA\0\x02\xff", &[long(0x0321, 77_001)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "LensSerialNumber").as_deref(),
        Some("77001"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_lying_leica_note_costs_an_error_not_the_gps_fix() {
    // Entry count 0xffff and a value offset far past the end.
    let mut note = b"LEICA\0\x05\0".to_vec();
    note.extend_from_slice(&[
        0xff, 0xff, 0x05, 0x03, 4, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f,
    ]);
    let ifd0 = [ascii(0x010f, "LEICA CAMERA AG")];
    let gps = gps_entries((48, 51, 0), true, (2, 21, 0), true);
    let t = tiff(&ifd0, &[undefined(0x927c, &note)], &gps, &[]);
    let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(has(&r, "gps"), "{:#?}", r.findings);
    assert!(!has(&r, "serial"));
    assert!(r.error.is_some(), "the bad note is reported");
}

#[test]
fn kodak_type7_serial_is_the_start_of_the_note() {
    let mut note = b"KCKAM9370012\0\0\0\0".to_vec();
    note.extend_from_slice(&[0u8; 40]);
    let r = analyze_exif(
        &[ascii(0x010f, "EASTMAN KODAK COMPANY")],
        &[undefined(0x927c, &note)],
    );
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("KCKAM9370012"),
        "{:#?}",
        r.findings
    );
    // A note that only looks like one for a few bytes is not a serial.
    let mut bad = b"KCKAM9x".to_vec();
    bad.extend_from_slice(&[0u8; 40]);
    let r = analyze_exif(
        &[ascii(0x010f, "EASTMAN KODAK COMPANY")],
        &[undefined(0x927c, &bad)],
    );
    assert!(!has(&r, "serial"), "{:#?}", r.findings);
}

#[test]
fn reconyx_type2_and_type3_serials_from_their_binary_layouts() {
    // Type2 ("RECONYXUF\0"): string[15] at byte 0x4b.
    let mut uf = b"RECONYXUF\0".to_vec();
    uf.resize(0x4b, 0);
    uf.extend_from_slice(b"UF2014A12345678");
    uf.resize(0x70, 0);
    let r = analyze_exif(&[ascii(0x010f, "RECONYX")], &[undefined(0x927c, &uf)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("UF2014A12345678"),
        "{:#?}",
        r.findings
    );
    // Type3 ("RECONYXH2\0"): unicode[15] (UCS-2 little-endian) at byte 0x7e.
    let mut h2 = b"RECONYXH2\0".to_vec();
    h2.resize(0x7e, 0);
    for c in "H2X7654321".encode_utf16() {
        h2.extend_from_slice(&c.to_le_bytes());
    }
    h2.resize(0x7e + 30, 0);
    let r = analyze_exif(&[ascii(0x010f, "RECONYX")], &[undefined(0x927c, &h2)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("H2X7654321"),
        "{:#?}",
        r.findings
    );
    // Truncated before the serial: an error, no panic, no serial.
    let r = analyze_exif(
        &[ascii(0x010f, "RECONYX")],
        &[undefined(0x927c, &h2[..0x80])],
    );
    assert!(!has(&r, "serial"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("SerialNumber"),
        "{:?}",
        r.error
    );
}

#[test]
fn nintendo_camera_info_internal_serial() {
    // Nintendo::CameraInfo (tag 0x1101, little-endian binary): undef[4] at byte 0x18.
    let mut info = b"3DS1".to_vec();
    info.resize(0x18, 0);
    info.extend_from_slice(&[0x57, 0x5b, 0xbd, 0xf3]);
    info.resize(0x30, 0);
    let ifd0 = [ascii(0x010f, "Nintendo")];
    let base = exif_values_at(&ifd0, 1);
    let note = note_with_ifd(b"", &[undefined(0x1101, &info)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("0x575bbdf3"),
        "{:#?}",
        r.findings
    );
}

/// A FLIR APP1 segment holding an FFF file with the given (type, record) pairs.
fn flir_segment(records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut fff = b"FFF\0".to_vec();
    fff.resize(0x14, 0);
    fff.extend_from_slice(&100u32.to_be_bytes()); // version 100: big-endian
    fff.extend_from_slice(&0x40u32.to_be_bytes()); // directory at 0x40
    fff.extend_from_slice(&(records.len() as u32).to_be_bytes());
    fff.resize(0x40, 0);
    let mut at = 0x40 + 0x20 * records.len();
    let mut data = Vec::new();
    for (kind, rec) in records {
        let mut e = vec![0u8; 0x20];
        e[0..2].copy_from_slice(&kind.to_be_bytes());
        e[0x0c..0x10].copy_from_slice(&(at as u32).to_be_bytes());
        e[0x10..0x14].copy_from_slice(&(rec.len() as u32).to_be_bytes());
        fff.extend_from_slice(&e);
        data.extend_from_slice(rec);
        at += rec.len();
    }
    fff.extend_from_slice(&data);
    let mut p = b"FLIR\0\x01\0\0".to_vec();
    p.extend_from_slice(&fff);
    seg(0xe1, &p)
}

fn flir_gps(lat: f64, lon: f64, valid: u32) -> Vec<u8> {
    let mut g = vec![0u8; 0x60];
    g[0..4].copy_from_slice(&valid.to_le_bytes());
    g[8] = b'S';
    g[10] = b'E';
    g[0x10..0x18].copy_from_slice(&lat.to_le_bytes());
    g[0x18..0x20].copy_from_slice(&lon.to_le_bytes());
    g
}

#[test]
fn flir_gps_record_camera_serials_and_embedded_image() {
    let mut cam = vec![0u8; 0x240];
    cam[0x104..0x10d].copy_from_slice(b"441234567");
    cam[0x1a0..0x1a8].copy_from_slice(b"LNS-0077");
    cam[0x21c..0x224].copy_from_slice(b"FLT-0042");
    let mut raw = vec![0u8; 32];
    raw.extend_from_slice(b"\x89PNG\r\n\x1a\n----thermal----");
    let seg = flir_segment(&[(0x20, cam), (0x2b, flir_gps(33.5, 151.25, 1)), (0x01, raw)]);
    let r = run(&jpeg(&[seg], 8, 8));
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("441234567"),
        "{:#?}",
        r.findings
    );
    assert_eq!(value(&r, "FilterSerialNumber").as_deref(), Some("FLT-0042"));
    assert_eq!(value(&r, "LensSerialNumber").as_deref(), Some("LNS-0077"));
    let gps = r
        .findings
        .iter()
        .find(|f| f.category.as_str() == "gps")
        .expect("FLIR GPS");
    assert!(gps.value.contains("-33.5"), "{}", gps.value);
    assert!(
        r.findings
            .iter()
            .any(|f| f.source.name == "RawThermalImage" && f.category.as_str() == "thumbnail")
    );
}

#[test]
fn flir_gps_marked_invalid_or_out_of_range_is_not_a_fix() {
    let r = run(&jpeg(
        &[flir_segment(&[(0x2b, flir_gps(33.5, 151.25, 0))])],
        8,
        8,
    ));
    assert!(!has(&r, "gps"), "{:#?}", r.findings);
    let r = run(&jpeg(
        &[flir_segment(&[(0x2b, flir_gps(1e300, 151.25, 1))])],
        8,
        8,
    ));
    assert!(!has(&r, "gps"));
    assert!(r.error.is_some());
    // A record that claims more bytes than the segment holds: an error, no panic.
    let mut s = flir_segment(&[(0x2b, flir_gps(33.5, 151.25, 1))]);
    let n = s.len();
    s.truncate(n - 0x40);
    let len = (s.len() - 2) as u16;
    s[2..4].copy_from_slice(&len.to_be_bytes());
    let r = run(&jpeg(&[s], 8, 8));
    assert!(!has(&r, "gps"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("FLIR"),
        "{:?}",
        r.error
    );
}

#[test]
fn jpeg_compressed_strips_in_a_tiff_are_previews_and_strip_still_keeps_the_image() {
    // Compression 7 with no SubfileType: ExifTool's IFD0:PreviewImage (first strip).
    let t = tiff_image(&[]);
    let mut t2 = t.clone();
    // Patch Compression (0x0103) from 1 to 7.
    let n = u16::from_le_bytes([t2[8], t2[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t2[p], t2[p + 1]]) == 0x0103 {
            t2[p + 8] = 7;
        }
    }
    assert!(!has(&run(&t), "thumbnail"));
    let r = run(&t2);
    let f = r
        .findings
        .iter()
        .find(|f| f.category.as_str() == "thumbnail")
        .expect("preview");
    assert_eq!(f.source.name, "PreviewImage");
    // The strips are the image a sanitised copy keeps: strip does not refuse over them.
    let out = proofpix_analysis::strip(&t2, &proofpix_analysis::StripOptions::default());
    assert!(out.is_ok(), "{:?}", out.err());
    // Marked as the full-resolution image (SubfileType 0): not a preview.
    let t3 = tiff_image(&[long(0x00fe, 0)]);
    let mut t3 = t3;
    let n = u16::from_le_bytes([t3[8], t3[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t3[p], t3[p + 1]]) == 0x0103 {
            t3[p + 8] = 7;
        }
    }
    assert!(!has(&run(&t3), "thumbnail"));
}

#[test]
fn an_xmp_thumbnail_is_an_image_finding_without_its_text() {
    let xml = xmp_packet(
        r#"<xmp:Thumbnails xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpGImg="http://ns.adobe.com/xap/1.0/g/img/"><rdf:Alt><rdf:li rdf:parseType="Resource"><xmpGImg:format>JPEG</xmpGImg:format>
<xmpGImg:image>/9j/4AAQSkZJRgABAgEASABIAAD/7QAsUGhvdG9zaG9w</xmpGImg:image></rdf:li></rdf:Alt></xmp:Thumbnails>"#,
    );
    let r = run(&jpeg(&[app1_xmp(&xml)], 8, 8));
    let f = r
        .findings
        .iter()
        .find(|f| f.category.as_str() == "thumbnail")
        .expect("thumbnail");
    assert_eq!(f.source.name, "ThumbnailImage");
    assert!(!f.value.contains("/9j/"), "{}", f.value);
}

#[test]
fn vendor_preview_jpegs_in_app_segments_are_previews() {
    let mut pv = b"\xff\xd8\xff\xdb\x00\x43".to_vec();
    pv.extend_from_slice(&[7u8; 200]);
    // Samsung/HP: APP3 continued in APP4; BenQ: APP2 after "QVGA\0".
    let r = run(&jpeg(&[seg(0xe3, &pv), seg(0xe4, &[9u8; 300])], 8, 8));
    let f = r
        .findings
        .iter()
        .find(|f| f.source.name == "PreviewImage")
        .expect("APP3 preview");
    assert_eq!(f.source.group, "APP3");
    assert_eq!(f.value, "506-byte embedded image", "{:#?}", r.findings);
    let mut q = b"QVGA\0".to_vec();
    q.extend_from_slice(&pv);
    let r = run(&jpeg(&[seg(0xe2, &q)], 8, 8));
    assert!(has(&r, "thumbnail"), "{:#?}", r.findings);
    // An APP2 ICC profile or an APP3 that is not a JPEG is no preview.
    let r = run(&jpeg(
        &[
            seg(0xe2, b"ICC_PROFILE\0\x01\x01...."),
            seg(0xe3, &[1u8; 40]),
        ],
        8,
        8,
    ));
    assert!(!has(&r, "thumbnail"), "{:#?}", r.findings);
}

/// A PNG text chunk "Raw profile type KIND" in ImageMagick's hex form, zTXt-compressed.
fn raw_profile_ztxt(kind: &str, data: &[u8]) -> Vec<u8> {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("\n{kind}\n{:8}\n{hex}\n", data.len());
    let mut body = format!("Raw profile type {kind}\0\0").into_bytes();
    body.extend_from_slice(&miniz_oxide_deflate(text.as_bytes()));
    png_chunk(b"zTXt", &body)
}

/// zlib stream with stored (uncompressed) deflate blocks: enough for a test.
fn miniz_oxide_deflate(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        out.extend_from_slice(&(c.len() as u16).to_le_bytes());
        out.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in data {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

#[test]
fn a_png_raw_exif_profile_with_a_thumbnail_and_gps_is_read() {
    let thumb = {
        let mut t = b"\xff\xd8\xff\xdb".to_vec();
        t.extend_from_slice(&[5u8; 100]);
        t.extend_from_slice(b"\xff\xd9");
        t
    };
    // IFD1 with JPEGInterchangeFormat/Length pointing at the thumbnail appended after the IFDs.
    let gps = gps_entries((51, 30, 0), true, (0, 7, 0), false);
    let probe = tiff(
        &[ascii(0x010f, "Cam")],
        &[],
        &gps,
        &[long(0x0201, 0), long(0x0202, 0)],
    );
    let at = probe.len() as u32;
    let mut t = tiff(
        &[ascii(0x010f, "Cam")],
        &[],
        &gps,
        &[long(0x0201, at), long(0x0202, thumb.len() as u32)],
    );
    t.extend_from_slice(&thumb);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&t);
    let r = run(&png(&[raw_profile_ztxt("exif", &exif)]));
    assert!(has(&r, "gps"), "{:#?} {:?}", r.findings, r.error);
    assert!(has(&r, "thumbnail"), "{:#?}", r.findings);
    // Truncated hex: an error, no panic.
    let mut bad = raw_profile_ztxt("exif", &exif);
    let n = bad.len();
    bad.truncate(n - 30);
    let _ = run(&png(&[bad]));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes as a FLIR record file, or as a maker note under each new make, or as a
    /// vendor APP preview: no panic.
    #[test]
    fn new_parsers_take_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), k in 0usize..8) {
        proofpix_analysis::fuzzing::parse_flir(&body);
        let mut fff = b"FFF\0".to_vec();
        fff.extend_from_slice(&body);
        proofpix_analysis::fuzzing::parse_flir(&fff);
        let makes = ["LEICA CAMERA AG", "Leica Camera AG", "LEICA", "Nintendo", "Kodak", "RECONYX", "EASTMAN KODAK COMPANY", "FLIR Systems AB"];
        let heads: [&[u8]; 8] = [b"LEICA\0\x05\0", b"LEICA\0\0\0", b"LEICA0\x03\0", b"", b"KCKAM", b"RECONYXH2\0", b"RECONYXUF\0", b"LEICA\0\x02\xff"];
        let mut note = heads[k].to_vec();
        note.extend_from_slice(&body);
        let r = analyze_exif(&[ascii(0x010f, makes[k])], &[undefined(0x927c, &note)]);
        proptest::prop_assert!(!r.error.as_deref().unwrap_or("").contains("internal error"));
        let mut seg3 = b"\xff\xd8\xff\xdb".to_vec();
        seg3.extend_from_slice(&body[..body.len().min(400)]);
        let r = run(&jpeg(&[seg(0xe3, &seg3), seg(0xe4, &body[..body.len().min(300)])], 8, 8));
        proptest::prop_assert!(!r.error.as_deref().unwrap_or("").contains("internal error"));
    }
}

/// Files written by ExifTool itself (`exiftool -TAG=value`) into a temporary directory: the
/// tags ExifTool can write for these makers come back as findings. Skips when exiftool is
/// not installed (CI installs it).
#[test]
fn files_written_by_exiftool_come_back_with_their_findings() {
    if std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_err()
    {
        eprintln!("note: exiftool not installed; skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("proofpix-generalise-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8], args: &[&str]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = std::process::Command::new("exiftool")
            .args(["-q", "-overwrite_original"])
            .args(args)
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(&p).unwrap()
    };
    // TIFF author fields: Artist, XPAuthor, XMP dc:creator.
    let t = write(
        "a.tif",
        &tiff_image(&[]),
        &[
            "-Artist=Ann Smith",
            "-XPAuthor=Bo Lee",
            "-XMP-dc:Creator=Cy Doe",
        ],
    );
    let r = run(&t);
    for n in ["Artist", "XPAuthor"] {
        assert!(
            r.findings
                .iter()
                .any(|f| f.source.name == n && f.category.as_str() == "author"),
            "{n}: {:#?}",
            r.findings
        );
    }
    // A JPEG with GPS, owner and body serial written into EXIF by ExifTool.
    let j = write(
        "b.jpg",
        &jpeg(&[], 8, 8),
        &[
            "-GPSLatitude=12.5",
            "-GPSLatitudeRef=S",
            "-GPSLongitude=33.25",
            "-GPSLongitudeRef=E",
            "-OwnerName=Dee",
            "-SerialNumber=SN-42",
        ],
    );
    let r = run(&j);
    assert!(
        has(&r, "gps") && has(&r, "owner") && has(&r, "serial"),
        "{:#?}",
        r.findings
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn leica_m9_subdirectory_serial_and_r8_serial_info() {
    // Leica4 ("LEICA0\x03\0", M9): sub-IFD 0x3100 holds SerialNumber 0x3103. Offsets are
    // relative to the note start; the sub-IFD sits after the main IFD.
    let mut sub = Vec::new();
    let sub_at = 8 + 2 + 12 + 4; // note header + one-entry IFD
    write_ifd_based(&mut sub, &[ascii(0x3103, "4801234")], 0, sub_at);
    let mut main = Vec::new();
    write_ifd_based(&mut main, &[long(0x3100, sub_at as u32)], 0, 8);
    main[2 + 2..2 + 4].copy_from_slice(&13u16.to_le_bytes()); // type IFD
    let mut note = b"LEICA0\x03\0".to_vec();
    note.extend_from_slice(&main);
    note.extend_from_slice(&sub);
    let r = analyze_exif(
        &[ascii(0x010f, "Leica Camera AG")],
        &[undefined(0x927c, &note)],
    );
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("4801234"),
        "{:#?}",
        r.findings
    );

    // Leica3 (R8/R9, a bare IFD): 0x000b SerialInfo, string[8] at byte 4.
    let mut info = b"\0\0\0\0".to_vec();
    info.extend_from_slice(b"R9123456");
    let ifd0 = [ascii(0x010f, "Leica Camera AG"), ascii(0x0110, "R9")];
    let base = exif_values_at(&ifd0, 1);
    let note = note_with_ifd(b"", &[undefined(0x000b, &info)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("R9123456"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn ricoh_gxr_serial_info_and_hp_type4_serial() {
    let mut info = vec![0u8; 0x40];
    info[0x10..0x18].copy_from_slice(b"BODY0001");
    info[0x30..0x38].copy_from_slice(b"LENS0002");
    let ifd0 = [ascii(0x010f, "RICOH")];
    let base = exif_values_at(&ifd0, 1) + 8;
    let note = note_with_ifd(b"Ricoh\0\0\0", &[undefined(0x002c, &info)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "BodySerialNumber").as_deref(),
        Some("BODY0001"),
        "{:#?}",
        r.findings
    );
    assert_eq!(value(&r, "LensSerialNumber").as_deref(), Some("LENS0002"));

    let mut hp = b"IIII\x04\0".to_vec();
    hp.resize(0x5c, 0);
    hp.extend_from_slice(b"SERIAL NUMBER:CN12345678");
    hp.resize(0x80, 0);
    let r = analyze_exif(
        &[ascii(0x010f, "Hewlett-Packard")],
        &[undefined(0x927c, &hp)],
    );
    assert!(
        value(&r, "SerialNumber").is_some_and(|v| v.contains("CN12345678")),
        "{:#?}",
        r.findings
    );
    // Cut before the serial: an error, no finding.
    let r = analyze_exif(
        &[ascii(0x010f, "Hewlett-Packard")],
        &[undefined(0x927c, &hp[..0x60])],
    );
    assert!(!has(&r, "serial"));
    assert!(r.error.is_some());
}

#[test]
fn canon_camera_info_by_model_owner_and_lens_serial() {
    let mut info = vec![0u8; 0x200];
    info[0x10f..0x116].copy_from_slice(b"Jo Tan\0");
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 450D")];
    let base = exif_values_at(&ifd0, 1);
    let note = note_with_ifd(b"", &[undefined(0x000d, &info)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "OwnerName").as_deref(),
        Some("Jo Tan"),
        "{:#?}",
        r.findings
    );
    // The same block from another model is not read with the 450D's layout.
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 4500D")];
    let base = exif_values_at(&ifd0, 1);
    let note = note_with_ifd(b"", &[undefined(0x000d, &info)], base);
    assert!(!has(
        &analyze_exif(&ifd0, &[undefined(0x927c, &note)]),
        "owner"
    ));

    let mut info = vec![0u8; 0x200];
    info[0x164..0x169].copy_from_slice(&[0, 0, 0x12, 0x34, 0x56]);
    let ifd0 = [
        ascii(0x010f, "Canon"),
        ascii(0x0110, "Canon EOS 5D Mark III"),
    ];
    let base = exif_values_at(&ifd0, 1);
    let note = note_with_ifd(b"", &[undefined(0x000d, &info)], base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert!(
        value(&r, "LensSerialNumber").is_some_and(|v| v.contains("123456")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn kodak_dcr_private_ifd_sensor_serial() {
    // IFD0 tag 0x8290 points at a Kodak IFD holding SensorSerialNumber (0x09ce).
    let t = tiff_image(&[long(0x8290, 0)]);
    let at = t.len();
    let mut sub = Vec::new();
    write_ifd_based(&mut sub, &[ascii(0x09ce, "KS-778899")], 0, at);
    let mut t = t;
    let n = u16::from_le_bytes([t[8], t[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t[p], t[p + 1]]) == 0x8290 {
            t[p + 8..p + 12].copy_from_slice(&(at as u32).to_le_bytes());
        }
    }
    t.extend_from_slice(&sub);
    let r = run(&t);
    assert_eq!(
        value(&r, "SensorSerialNumber").as_deref(),
        Some("KS-778899"),
        "{:#?}",
        r.findings
    );
}

/// Kodak::KDC_IFD: IFD0 tag 0xfe00 points at the KDC IFD, whose 0xfa00 is the serial.
#[test]
fn kodak_kdc_private_ifd_serial() {
    let t = tiff_image(&[long(0xfe00, 0)]);
    let at = t.len();
    let mut sub = Vec::new();
    write_ifd_based(&mut sub, &[ascii(0xfa00, "KDC-4455667")], 0, at);
    let mut t = t;
    let n = u16::from_le_bytes([t[8], t[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t[p], t[p + 1]]) == 0xfe00 {
            t[p + 8..p + 12].copy_from_slice(&(at as u32).to_le_bytes());
        }
    }
    t.extend_from_slice(&sub);
    let r = run(&t);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("KDC-4455667"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn later_pages_of_a_multi_page_tiff_are_not_thumbnails() {
    // IFD0 2x2, IFD1 a second 2x2 page (SubfileType 2, then unmarked): no thumbnail; a 1x1
    // reduced image (SubfileType 1) is one.
    let page = |extra: &[E]| {
        let t = tiff_image(&[]);
        let mut ifd1: Vec<E> = vec![
            long(0x0100, 2),
            long(0x0101, 2),
            short(0x0103, 1),
            long(0x0111, 8),
            long(0x0117, 4),
        ];
        ifd1.extend_from_slice(extra);
        let at = t.len();
        let mut b = Vec::new();
        write_ifd_based(&mut b, &ifd1, 0, at);
        let mut t = t;
        // IFD0's next-IFD pointer sits right after its entries.
        let n = u16::from_le_bytes([t[8], t[9]]) as usize;
        let p = 10 + 12 * n;
        t[p..p + 4].copy_from_slice(&(at as u32).to_le_bytes());
        t.extend_from_slice(&b);
        t
    };
    assert!(!has(&run(&page(&[long(0x00fe, 2)])), "thumbnail"));
    assert!(!has(&run(&page(&[])), "thumbnail"));
    let r = run(&page(&[long(0x00fe, 1)]));
    assert!(has(&r, "thumbnail"), "{:#?}", r.findings);
}

#[test]
fn sony_camcorder_note_preview_from_the_generated_table() {
    // "SONY CAM \0\0\0" (camcorders): IFD at 12, offsets relative to the TIFF header. 0x2001
    // PreviewImage is not in the hand table; the generated Sony::Main row makes it an image.
    let mut pv = b"\xff\xd8\xff\xdb".to_vec();
    pv.extend_from_slice(&[3u8; 60]);
    let ifd0 = [ascii(0x010f, "SONY"), ascii(0x0110, "DCR-SR42")];
    let base = exif_values_at(&ifd0, 1) + 12;
    let note = note_with_ifd(
        b"SONY CAM \0\0\0",
        &[undefined(0x2001, &pv), ascii(0x2031, "0123456")],
        base,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    let f = r
        .findings
        .iter()
        .find(|f| f.source.name == "PreviewImage")
        .expect("preview");
    assert_eq!(f.source.group, "Sony", "{:#?}", r.findings);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("0123456"));
}
