//! Behaviour of the analyzer on generated files with known metadata.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use proofpix_analysis::{
    Analyzer, ByteRange, ByteSource, Category, Format, Options, Policy, Report, RiskLevel,
    SourceError,
};

fn analyze(b: &[u8]) -> Report {
    Analyzer::default().analyze(&b.to_vec())
}

fn cats(r: &Report) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = r.findings.iter().map(|f| f.category.as_str()).collect();
    c.sort();
    c.dedup();
    c
}

fn jpeg_with_everything() -> Vec<u8> {
    let t = tiff(
        &[
            ascii(0x010f, "Canon"),
            ascii(0x0110, "Canon EOS 5D"),
            ascii(0x013b, "Ann Smith"),
        ],
        &[
            ascii(0x9003, "2024:05:01 10:00:00"),
            ascii(0xa431, "0123456789"),
        ],
        &gps_entries((47, 22, 1234), true, (8, 32, 5678), true),
        &[],
    );
    let xmp = xmp_packet(
        r#"<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>
           <Iptc4xmpCore:CreatorContactInfo rdf:parseType="Resource"><Iptc4xmpCore:CiEmailWork>ann@example.com</Iptc4xmpCore:CiEmailWork></Iptc4xmpCore:CreatorContactInfo>
           <exif:GPSLatitude>47,22.2057N</exif:GPSLatitude><exif:GPSLongitude>8,32.0946E</exif:GPSLongitude>"#,
    );
    jpeg(
        &[
            seg(0xe0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0"),
            app1_exif(&t),
            app1_xmp(&xmp),
            app13_iptc(&[(80, "Ann Smith"), (90, "Zurich")]),
            seg(0xfe, b"holiday"),
        ],
        8,
        8,
    )
}

#[test]
fn precise_gps_with_a_named_person_is_critical() {
    let r = analyze(&jpeg_with_everything());
    assert_eq!(r.format, Format::Jpeg);
    assert_eq!(r.risk, RiskLevel::Critical, "{:#?}", r.findings);
    assert!(r.score >= 85);
    assert_eq!(
        cats(&r),
        [
            "author",
            "contact",
            "device",
            "gps",
            "location-text",
            "serial",
            "text",
            "timestamp"
        ]
    );
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn gps_is_reported_in_decimal_degrees_with_a_precision_class() {
    let show = Analyzer::new(Policy::default(), Options::default().with_show_values(true));
    let r = show.analyze(&jpeg_with_everything());
    let gps = r
        .findings
        .iter()
        .find(|f| f.code == "gps.coordinates")
        .unwrap();
    assert_eq!(gps.value, "47.370094, 8.549106");
    assert!(
        gps.detail.as_deref().unwrap().starts_with("exact"),
        "{:?}",
        gps.detail
    );
    assert_eq!(gps.source.group, "GPS");
    assert!(gps.source.offset.is_some());
}

#[test]
fn names_emails_and_gps_are_masked_by_default() {
    let r = analyze(&jpeg_with_everything());
    let v = |code: &str| {
        r.findings
            .iter()
            .find(|f| f.code == code)
            .map(|f| f.value.clone())
            .unwrap()
    };
    assert_eq!(v("author.name"), "A** S****");
    assert_eq!(v("contact.email"), "a**@e******.com");
    assert_eq!(v("gps.coordinates"), "47.4, 8.5 (masked)");
    assert_eq!(v("serial.body"), "******6789");
}

#[test]
fn the_same_field_in_exif_and_xmp_is_flagged_as_surviving_a_partial_strip() {
    let r = analyze(&jpeg_with_everything());
    let codes: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&"gps.cross_family"), "{codes:?}");
    assert!(codes.contains(&"author.cross_family"), "{codes:?}");
}

#[test]
fn the_json_object_has_the_documented_fields() {
    let r = analyze(&jpeg_with_everything());
    let j = r.to_json("a/b.jpg");
    for k in [
        "path",
        "format",
        "risk",
        "score",
        "findings",
        "bytes_read",
        "error",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    let f = &j["findings"][0];
    for k in ["category", "code", "severity", "source", "value"] {
        assert!(f.get(k).is_some(), "finding missing {k}");
    }
    assert_eq!(j["risk"], "critical");
    assert_eq!(j["format"], "jpeg");
}

#[test]
fn a_broken_maker_note_does_not_hide_the_gps_ifd() {
    // Make says Canon, the maker note is garbage pointing everywhere.
    let mut junk = vec![0xffu8; 64];
    junk[0] = 0x40;
    junk[1] = 0x00; // 64 entries, then nonsense
    let t = tiff(
        &[ascii(0x010f, "Canon")],
        &[undefined(0x927c, &junk)],
        &gps_entries((10, 0, 0), true, (20, 0, 0), false),
        &[],
    );
    let r = analyze(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(
        r.findings.iter().any(|f| f.category == Category::Gps),
        "{:#?}",
        r
    );
}

#[test]
fn an_ifd_loop_costs_an_error_not_a_hang() {
    // IFD0's next pointer points back at IFD0.
    let mut t = tiff(&[ascii(0x013b, "Loop")], &[], &[], &[]);
    let n = 1usize;
    let next_at = 8 + 2 + 12 * n;
    t[next_at..next_at + 4].copy_from_slice(&8u32.to_le_bytes());
    let r = analyze(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(
        r.error.as_deref().unwrap_or("").contains("loop"),
        "{:?}",
        r.error
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.code == "author.name")
            .count(),
        1
    );
}

#[test]
fn an_unknown_format_is_unsupported_not_guessed() {
    let r = analyze(b"%PDF-1.7 not an image");
    assert_eq!(r.format, Format::Unsupported);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("unsupported format")
    );
    assert!(r.findings.is_empty());
}

#[test]
fn data_after_the_jpeg_end_is_a_trailer() {
    let mut j = jpeg(&[], 8, 8);
    let mut hidden = vec![0xff, 0xd8, 0xff, 0xe0];
    hidden.extend(std::iter::repeat_n(0x55u8, 200));
    j.extend_from_slice(&hidden);
    let r = analyze(&j);
    let t = r
        .findings
        .iter()
        .find(|f| f.category == Category::Trailer)
        .unwrap();
    assert_eq!(t.code, "trailer.hidden_image");
    assert_eq!(t.severity, RiskLevel::Critical);
}

#[test]
fn deep_mode_finds_a_trailer_that_ends_in_an_eoi_marker() {
    // aCropalypse-style: the leftover of a larger JPEG ends with its own EOI.
    let mut j = jpeg(&[], 8, 8);
    let mut left = vec![0x11u8; 300];
    left.extend_from_slice(&[0xff, 0xd9]);
    j.extend_from_slice(&left);
    let range = analyze(&j);
    assert!(
        !range
            .findings
            .iter()
            .any(|f| f.category == Category::Trailer)
    );
    let deep = Analyzer::new(Policy::default(), Options::default().with_deep(true)).analyze(&j);
    assert!(
        deep.findings.iter().any(|f| f.code == "trailer.after_end"),
        "{:#?}",
        deep.findings
    );
}

#[test]
fn a_motion_photo_is_embedded_media() {
    let xmp = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MicroVideo="1" GCamera:MicroVideoOffset="500"/></rdf:RDF></x:xmpmeta>"#;
    let mut j = jpeg(&[app1_xmp(xmp)], 8, 8);
    let mut mp4 = vec![0, 0, 0, 24];
    mp4.extend_from_slice(b"ftypmp42");
    mp4.resize(500, 7);
    j.extend_from_slice(&mp4);
    let r = analyze(&j);
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "embedded_media.motion_photo"),
        "{:#?}",
        r.findings
    );
    assert!(!r.findings.iter().any(|f| f.category == Category::Trailer));
}

#[test]
fn a_stale_thumbnail_of_another_shape_is_a_mismatch() {
    // Main image 100x100, thumbnail 160x90.
    let thumb = jpeg(&[], 160, 90);
    let mut ifd1 = vec![long(0x0201, 0), long(0x0202, thumb.len() as u32)];
    let probe = tiff(&[ascii(0x010f, "X")], &[], &[], &ifd1);
    ifd1[0] = long(0x0201, probe.len() as u32);
    let mut t = tiff(&[ascii(0x010f, "X")], &[], &[], &ifd1);
    t.extend_from_slice(&thumb);
    let r = analyze(&jpeg(&[app1_exif(&t)], 100, 100));
    assert!(
        r.findings.iter().any(|f| f.code == "thumbnail.embedded"),
        "{:#?}",
        r.findings
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "thumbnail_mismatch.aspect"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn png_text_exif_and_data_after_iend_are_found() {
    let t = tiff(&[ascii(0x013b, "Bob")], &[], &[], &[]);
    let mut p = png(&[
        png_chunk(b"tEXt", b"Comment\0hello there"),
        png_chunk(b"eXIf", &t),
    ]);
    p.extend_from_slice(&png_chunk(b"IDAT", &[1, 2, 3, 4]));
    p.extend_from_slice(&png_chunk(b"IEND", &[]));
    let r = analyze(&p);
    assert_eq!(r.format, Format::Png);
    assert_eq!(cats(&r), ["author", "text", "trailer"]);
    assert!(r.findings.iter().any(|f| f.code == "trailer.hidden_image"));
}

#[test]
fn webp_exif_and_xmp_chunks_are_read() {
    let t = tiff(&[ascii(0x0110, "Pixel 8")], &[], &[], &[]);
    let x = xmp_packet("<photoshop:City>Lyon</photoshop:City>");
    let w = webp(
        &[riff_chunk(b"EXIF", &t), riff_chunk(b"XMP ", x.as_bytes())],
        0x0c,
    );
    let r = analyze(&w);
    assert_eq!(r.format, Format::Webp);
    assert_eq!(cats(&r), ["device", "location-text"]);
}

#[test]
fn a_tiff_file_reads_its_ifds_without_touching_the_pixels() {
    let t = tiff_image(&[ascii(0x013b, "Carol"), ascii(0x8298, "(c) Carol")]);
    let r = analyze(&t);
    assert_eq!(r.format, Format::Tiff);
    assert_eq!(cats(&r), ["author", "copyright"]);
}

#[test]
fn a_policy_file_changes_severities_and_the_policy_version() {
    let p = Policy::from_toml_str("gps_with_person = \"high\"\n[severity]\nserial = \"none\"\n")
        .unwrap();
    let a = Analyzer::new(p.clone(), Options::default());
    let r = a.analyze(&jpeg_with_everything());
    assert_eq!(r.risk, RiskLevel::High);
    assert!(!r.findings.iter().any(|f| f.category == Category::Serial));
    assert_eq!(r.policy_version, p.version());
    assert_ne!(p.version(), Policy::default().version());
}

/// A source that only has the first `head` and last `tail` bytes, like the daemon's range cache.
struct HeadTail {
    data: Vec<u8>,
    head: u64,
    tail: u64,
}

impl ByteSource for HeadTail {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset + buf.len() as u64;
        let len = self.data.len() as u64;
        if end > len {
            return Err(SourceError::OutOfBounds);
        }
        if end <= self.head || offset >= len - self.tail {
            buf.copy_from_slice(&self.data[offset as usize..end as usize]);
            Ok(())
        } else {
            Err(SourceError::Missing {
                offset,
                len: buf.len() as u64,
            })
        }
    }
}

#[test]
fn missing_ranges_are_listed_and_a_second_pass_completes_the_reading() {
    // XMP sits after a large COM segment, outside the fetched head.
    let big = vec![b'x'; 60_000];
    let x = xmp_packet("<photoshop:City>Oslo</photoshop:City>");
    let mut j = jpeg(&[seg(0xfe, &big), app1_xmp(&x)], 8, 8);
    j.extend(std::iter::repeat_n(0u8, 100_000));
    let src = HeadTail {
        data: j.clone(),
        head: 1024,
        tail: 65_536,
    };
    let r = Analyzer::default().analyze(&src);
    assert!(!r.needs.is_empty());
    assert!(
        !r.findings
            .iter()
            .any(|f| f.category == Category::LocationText)
    );
    // The host fetches what was listed and runs again.
    let needed: Vec<ByteRange> = r.needs.clone();
    let max = needed.iter().map(|n| n.offset + n.len).max().unwrap();
    let src2 = HeadTail {
        data: j,
        head: max.max(70_000),
        tail: 65_536,
    };
    let r2 = Analyzer::default().analyze(&src2);
    assert!(
        r2.findings
            .iter()
            .any(|f| f.category == Category::LocationText),
        "{:#?}",
        r2
    );
}

#[test]
fn range_mode_reads_only_the_head_and_the_tail_of_a_large_jpeg() {
    let mut j = jpeg(
        &[app1_exif(&tiff(&[ascii(0x013b, "Dan")], &[], &[], &[]))],
        8,
        8,
    );
    let eoi = j.split_off(j.len() - 2);
    j.extend(std::iter::repeat_n(0x22u8, 4_000_000));
    j.extend(eoi);
    let r = analyze(&j);
    assert!(r.bytes_read < 128 * 1024, "{}", r.bytes_read);
}

#[test]
fn xmp_with_a_doctype_is_refused_without_expanding_entities() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&lol2;</x:xmpmeta>"#;
    let r = analyze(&jpeg(&[app1_xmp(bomb)], 8, 8));
    assert!(r.error.as_deref().unwrap().contains("DOCTYPE refused"));
}

#[test]
fn the_summary_line_names_the_level_score_format_and_categories() {
    let r = analyze(&jpeg_with_everything());
    assert_eq!(
        r.summary(),
        "critical (100) jpeg: contact, gps×3, author×4, location-text, serial, timestamp, device×2, text"
    );
}

#[test]
fn the_unsupported_format_message_is_exact() {
    let r = analyze(b"BM not really");
    assert_eq!(
        r.error.as_deref(),
        Some(
            "unsupported format: not JPEG, TIFF/RAW, PNG, WebP, HEIF/AVIF/CR3, JPEG 2000, JPEG XL, GIF, PSD, CRW, RAF, MRW, X3F or QuickTime/MP4"
        )
    );
}

#[test]
fn the_example_policy_file_is_valid() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"))
            .unwrap();
    let p = Policy::from_toml_str(&text).unwrap();
    assert_eq!(p.precise_gps_meters(), 50.0);
}
