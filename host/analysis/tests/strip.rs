//! Lossless stripping: generated files with known metadata come out with none of it, the
//! image data byte for byte, ICC and orientation kept by default; the corpus run checks every
//! sanitised output against ExifTool's reading when ExifTool is installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use proofpix_analysis::{Analyzer, Category, FileSource, StripError, StripOptions, strip};

/// The image payload of a PNG (IDAT bodies) or a WebP (VP8/VP8L/ALPH/ANMF bodies).
fn pixel_chunks(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if b.starts_with(b"\x89PNG") {
        let mut p = 8;
        while p + 12 <= b.len() {
            let len = u32::from_be_bytes(b[p..p + 4].try_into().unwrap()) as usize;
            let Some(body) = b.get(p + 8..p + 8 + len) else {
                break;
            };
            if &b[p + 4..p + 8] == b"IDAT" {
                out.extend_from_slice(body);
            }
            if &b[p + 4..p + 8] == b"IEND" {
                break;
            }
            p += 12 + len;
        }
    } else if b.starts_with(b"RIFF") {
        let end = (u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize + 8).min(b.len());
        let mut p = 12;
        while p + 8 <= end {
            let len = u32::from_le_bytes(b[p + 4..p + 8].try_into().unwrap()) as usize;
            let Some(body) = b.get(p + 8..p + 8 + len) else {
                break;
            };
            if matches!(&b[p..p + 4], b"VP8 " | b"VP8L" | b"ALPH" | b"ANMF") {
                out.extend_from_slice(body);
            }
            p += 8 + len + (len & 1);
        }
    }
    out
}

/// JPEG bytes from the first SOS to the end of the image.
fn jpeg_scan(b: &[u8]) -> &[u8] {
    let mut p = 2;
    loop {
        let m = b[p + 1];
        let len = u16::from_be_bytes([b[p + 2], b[p + 3]]) as usize;
        if m == 0xda {
            // The first EOI marker after the scan starts (stuffed FF00 and RSTn are data).
            let mut i = p + 2 + len;
            while i + 1 < b.len() {
                if b[i] == 0xff && b[i + 1] == 0xd9 {
                    return &b[p..i + 2];
                }
                i += 1;
            }
            return &b[p..];
        }
        p += 2 + len;
    }
}

fn everything_jpeg() -> Vec<u8> {
    let t = tiff(
        &[ascii(0x013b, "Ann"), short(0x0112, 6)],
        &[ascii(0xa431, "SN1")],
        &gps_entries((1, 2, 3), true, (4, 5, 6), true),
        &[],
    );
    let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc.extend(icc_profile());
    let x = xmp_packet("<photoshop:City>Rome</photoshop:City>");
    let mut j = jpeg(
        &[
            seg(0xe0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0"),
            app1_exif(&t),
            seg(0xe2, &icc),
            app1_xmp(&x),
            app13_iptc(&[(80, "Ann")]),
            seg(0xfe, b"comment"),
        ],
        8,
        8,
    );
    j.extend_from_slice(b"trailing secret data that must go away........");
    j
}

#[test]
fn a_jpeg_loses_its_metadata_and_trailer_but_keeps_image_icc_and_orientation() {
    let input = everything_jpeg();
    let s = strip(&input, &StripOptions::default()).unwrap();
    assert_eq!(jpeg_scan(&s.bytes), jpeg_scan(&input));
    let r = Analyzer::default().analyze(&s.bytes);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(s.kept.contains(&"ICC profile".to_owned()), "{:?}", s.kept);
    assert!(s.kept.contains(&"orientation 6".to_owned()), "{:?}", s.kept);
    assert!(
        s.removed
            .iter()
            .any(|x| x.starts_with("data after the end")),
        "{:?}",
        s.removed
    );
    assert!(s.bytes.ends_with(&[0xff, 0xd9]));
}

#[test]
fn icc_and_orientation_can_be_dropped_too() {
    let input = everything_jpeg();
    let s = strip(
        &input,
        &StripOptions::default()
            .with_drop_icc(true)
            .with_drop_orientation(true),
    )
    .unwrap();
    assert!(s.kept.is_empty(), "{:?}", s.kept);
    assert!(!s.bytes.windows(11).any(|w| w == b"ICC_PROFILE"));
    assert!(!s.bytes.windows(4).any(|w| w == b"Exif"));
}

#[test]
fn metadata_hidden_between_scans_is_removed() {
    let mut j = jpeg(&[], 8, 8);
    // Insert a COM and an APP1 after the first SOS, before EOI (a second scan follows).
    let eoi = j.split_off(j.len() - 2);
    j.extend(seg(0xfe, b"between scans: Ann Smith"));
    j.extend(seg(0xda, &[1, 1, 0, 0, 63, 0]));
    j.extend_from_slice(&[0x01, 0x02]);
    j.extend(eoi);
    let s = strip(&j, &StripOptions::default()).unwrap();
    assert!(!s.bytes.windows(9).any(|w| w == b"Ann Smith"));
    assert!(
        s.removed.iter().any(|x| x.contains("between scans")),
        "{:?}",
        s.removed
    );
}

#[test]
fn a_jpeg_without_an_end_marker_is_refused() {
    let mut j = jpeg(&[seg(0xfe, b"x")], 8, 8);
    j.truncate(j.len() - 2);
    match strip(&j, &StripOptions::default()) {
        Err(StripError::Refused(m)) => assert!(m.contains("end-of-image"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_png_keeps_only_pixel_chunks_and_is_truncated_after_iend() {
    let t = tiff(&[ascii(0x013b, "Bo"), short(0x0112, 3)], &[], &[], &[]);
    let mut p = png(&[
        png_chunk(b"tEXt", b"Author\0Bo"),
        png_chunk(b"eXIf", &t),
        png_chunk(b"pHYs", &[0, 0, 0, 1, 0, 0, 0, 1, 0]),
    ]);
    p.extend_from_slice(&png_chunk(b"IDAT", &[9, 9, 9]));
    let s = strip(&p, &StripOptions::default()).unwrap();
    let r = Analyzer::default().analyze(&s.bytes);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(s.kept.contains(&"orientation 3".to_owned()));
    assert!(s.bytes.ends_with(&png_chunk(b"IEND", &[])));
    let idat = png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    assert!(s.bytes.windows(idat.len()).any(|w| w == idat.as_slice()));
}

#[test]
fn a_png_with_an_unknown_critical_chunk_is_refused() {
    let p = png(&[png_chunk(b"ZZZZ", b"?")]);
    assert!(matches!(
        strip(&p, &StripOptions::default()),
        Err(StripError::Refused(_))
    ));
}

#[test]
fn a_webp_loses_exif_and_xmp_and_its_flags() {
    let t = tiff(&[ascii(0x0110, "Cam")], &[], &[], &[]);
    let x = xmp_packet("<photoshop:City>Lyon</photoshop:City>");
    let w = webp(
        &[riff_chunk(b"EXIF", &t), riff_chunk(b"XMP ", x.as_bytes())],
        0x0c,
    );
    let s = strip(&w, &StripOptions::default()).unwrap();
    let r = Analyzer::default().analyze(&s.bytes);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(s.bytes[20] & 0x0c, 0, "VP8X metadata flags cleared");
    let vp8l = riff_chunk(
        b"VP8L",
        &[0x2f, 0x03, 0x40, 0x00, 0x00, 0x07, 0x10, 0x11, 0x48],
    );
    assert!(s.bytes.windows(vp8l.len()).any(|w| w == vp8l.as_slice()));
}

#[test]
fn a_tiff_keeps_its_strips_byte_for_byte_and_drops_the_rest() {
    let t = tiff_image(&[
        ascii(0x013b, "Carol"),
        ascii(0x010f, "Nikon"),
        short(0x0112, 8),
    ]);
    let s = strip(&t, &StripOptions::default()).unwrap();
    let r = Analyzer::default().analyze(&s.bytes);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(s.bytes.ends_with(&[10, 20, 30, 40]));
    assert!(s.kept.contains(&"orientation".to_owned()));
}

#[test]
fn formats_without_a_writer_are_refused_with_a_reason() {
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    assert_eq!(
        strip(&gif, &StripOptions::default())
            .unwrap_err()
            .to_string(),
        "cannot strip gif files losslessly; convert the image or use another tool"
    );
}

/// High-risk categories ExifTool still reports for a file (same table as the scorer).
fn exiftool_high_risk(dir: &std::path::Path) -> Option<Vec<(String, Vec<String>)>> {
    let out = std::process::Command::new("exiftool")
        .args(["-j", "-G1", "-a", "-n", "-r", "-q", "-q", "-m"])
        .arg(dir)
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let skip = |g: &str| {
        matches!(
            g,
            "Composite" | "System" | "ExifTool" | "File" | "JFIF" | "Photoshop" | "MakerNotes"
        ) || g.starts_with("ICC")
    };
    let mut res = Vec::new();
    for rec in v.as_array()? {
        let mut hits = Vec::new();
        for (k, val) in rec.as_object()? {
            let Some((g, tag)) = k.split_once(':') else {
                continue;
            };
            if skip(g) && !(g == "File" && tag == "Comment") {
                continue;
            }
            if val
                .as_str()
                .is_some_and(proofpix_analysis::classify::is_empty_value)
            {
                continue;
            }
            let Some(c) = proofpix_analysis::classify::classify(tag) else {
                continue;
            };
            let zero_gps = c == Category::Gps && val.as_f64() == Some(0.0);
            if c.is_high_risk() && !zero_gps {
                hits.push(k.clone());
            }
        }
        res.push((rec["SourceFile"].as_str().unwrap_or("").to_owned(), hits));
    }
    Some(res)
}

#[test]
fn every_sanitised_corpus_file_reads_clean_in_exiftool_and_keeps_its_image_data() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    if std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_err()
    {
        eprintln!("note: exiftool not installed; skipping the re-read check");
        return;
    }
    let out_dir = std::env::temp_dir().join(format!("proofpix-strip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut written = 0;
    for set in ["exiftool-t", "exif-samples", "exiv2", "mat2", "hostile"] {
        for (i, f) in common::files_under(&corpus.join(set))
            .into_iter()
            .enumerate()
        {
            let src = FileSource::new(std::fs::File::open(&f).unwrap()).unwrap();
            let Ok(s) = strip(&src, &StripOptions::default()) else {
                continue;
            };
            let input = std::fs::read(&f).unwrap();
            if s.format == proofpix_analysis::Format::Jpeg {
                assert!(
                    jpeg_scan(&s.bytes) == jpeg_scan(&input),
                    "image data changed: {}",
                    f.display()
                );
            }
            if matches!(
                s.format,
                proofpix_analysis::Format::Png | proofpix_analysis::Format::Webp
            ) {
                assert!(
                    pixel_chunks(&s.bytes) == pixel_chunks(&input),
                    "image data changed: {}",
                    f.display()
                );
            }
            let name = format!("{set}-{i}.{}", s.format.as_str());
            std::fs::write(out_dir.join(name), &s.bytes).unwrap();
            written += 1;
        }
    }
    assert!(written > 100, "only {written} files stripped");
    let reading = exiftool_high_risk(&out_dir).expect("exiftool output");
    let dirty: Vec<_> = reading.into_iter().filter(|(_, h)| !h.is_empty()).collect();
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(
        dirty.is_empty(),
        "ExifTool still sees high-risk tags: {dirty:#?}"
    );
}
