//! Issue 15, the part left after the first pass: HEIF image items (thumbnails and JPEG
//! previews), RAW preview pointers in IFDs and maker notes, and the serial-bearing maker-note
//! tables still unmet (Canon CameraInfo and SerialInfo, Phase One). Every structure is built
//! here from its specification or ExifTool's tag table, never copied from a corpus file; each
//! test also feeds a truncated or lying variant and expects a partial result with an error,
//! never a panic, and never the loss of another family's finding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use proofpix_analysis::{Analyzer, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn names(r: &Report, category: &str) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.category.as_str() == category)
        .map(|f| format!("{}:{}", f.source.group, f.source.name))
        .collect()
}

fn value(r: &Report, name: &str) -> Option<String> {
    r.findings
        .iter()
        .find(|f| f.source.name == name)
        .map(|f| f.value.clone())
}

// ---------------------------------------------------------------------------------------------
// HEIF

fn bx(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(t);
    v.extend_from_slice(body);
    v
}

/// `infe` version 2: item id, protection index 0, item type, empty name.
fn infe(id: u16, typ: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![2, 0, 0, 0];
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(typ);
    b.push(0);
    bx(b"infe", &b)
}

/// A JPEG of `w` x `h` (SOI, one SOF0, EOI) padded to `pad` bytes.
fn tiny_jpeg(w: u16, h: u16, pad: usize) -> Vec<u8> {
    let mut j = vec![0xff, 0xd8, 0xff, 0xc0, 0, 11, 8];
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.extend_from_slice(&[1, 1, 0x11, 0]);
    j.resize(pad.max(j.len() + 2) - 2, 0);
    j.extend_from_slice(&[0xff, 0xd9]);
    j
}

/// A HEIF file: the primary item 1 (hvc1), then `(id, type, data)` items and `iref`
/// references `(type, from, to)`. Items' data go into `mdat` in order; `iloc` version 0 with
/// 4-byte offsets and lengths.
fn heif(items: &[(u16, &[u8; 4], Vec<u8>)], refs: &[(&[u8; 4], u16, u16)]) -> Vec<u8> {
    let mut all: Vec<(u16, &[u8; 4], Vec<u8>)> = vec![(1, b"hvc1", vec![0x55; 32])];
    all.extend(items.iter().cloned());
    let mut iinf = vec![0, 0, 0, 0];
    iinf.extend_from_slice(&(all.len() as u16).to_be_bytes());
    for (id, t, _) in &all {
        iinf.extend(infe(*id, t));
    }
    let mut iref = vec![0, 0, 0, 0];
    for (t, from, to) in refs {
        let mut r = from.to_be_bytes().to_vec();
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&to.to_be_bytes());
        iref.extend(bx(t, &r));
    }
    let build = |mdat_at: u32| {
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0x00];
        iloc.extend_from_slice(&(all.len() as u16).to_be_bytes());
        let mut at = mdat_at;
        for (id, _, data) in &all {
            iloc.extend_from_slice(&id.to_be_bytes());
            iloc.extend_from_slice(&[0, 0, 0, 1]);
            iloc.extend_from_slice(&at.to_be_bytes());
            iloc.extend_from_slice(&(data.len() as u32).to_be_bytes());
            at += data.len() as u32;
        }
        let mut meta = vec![0, 0, 0, 0];
        meta.extend(bx(
            b"hdlr",
            b"\0\0\0\0\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ));
        meta.extend(bx(b"pitm", &[0, 0, 0, 0, 0, 1]));
        meta.extend(bx(b"iinf", &iinf));
        meta.extend(bx(b"iref", &iref));
        meta.extend(bx(b"iloc", &iloc));
        let mut f = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
        f.extend(bx(b"meta", &meta));
        f
    };
    let head_len = build(0).len() as u32 + 8;
    let mut f = build(head_len);
    let mut mdat = Vec::new();
    for (_, _, d) in &all {
        mdat.extend_from_slice(d);
    }
    f.extend(bx(b"mdat", &mdat));
    f
}

/// EXIF item payload: 4-byte offset to the TIFF header (0), then TIFF.
fn exif_item(t: &[u8]) -> Vec<u8> {
    let mut v = 0u32.to_be_bytes().to_vec();
    v.extend_from_slice(t);
    v
}

#[test]
fn a_heif_thumbnail_item_and_jpeg_previews_are_reported_by_exiftool_names() {
    let r = run(&heif(
        &[
            (2, b"hvc1", vec![0x66; 40]),
            (3, b"jpeg", tiny_jpeg(160, 120, 6000)),
            (4, b"jpeg", tiny_jpeg(640, 480, 9000)),
            (5, b"jpeg", tiny_jpeg(1920, 1280, 12000)),
        ],
        &[(b"thmb", 2, 1)],
    ));
    let mut got = names(&r, "thumbnail");
    got.sort();
    assert_eq!(
        got,
        [
            "HEIF:OtherImage",
            "HEIF:PreviewImage",
            "HEIF:ThumbnailImage",
            "HEIF:ThumbnailImage"
        ],
        "{:#?}",
        r.findings
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    // Only the JPEG items' heads are read, never their data or the primary's.
    assert!(r.bytes_read < 16_000, "{}", r.bytes_read);
}

#[test]
fn a_heif_auxiliary_image_and_the_primary_are_not_thumbnails() {
    let r = run(&heif(
        &[(2, b"hvc1", vec![0x66; 40])],
        &[(b"auxl", 2, 1), (b"dimg", 1, 2)],
    ));
    assert!(names(&r, "thumbnail").is_empty(), "{:#?}", r.findings);
}

#[test]
fn exif_of_a_non_primary_heif_item_is_read() {
    // EXIF that describes item 2 (cdsc 3 -> 2), not the primary.
    let t = tiff(&[ascii(0x013b, "Ann Lee")], &[], &[], &[]);
    let r = run(&heif(
        &[(2, b"hvc1", vec![0x66; 40]), (3, b"Exif", exif_item(&t))],
        &[(b"cdsc", 3, 2)],
    ));
    assert_eq!(
        value(&r, "Artist").as_deref(),
        Some("Ann Lee"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_lying_heif_iref_or_thumbnail_location_costs_an_error_not_the_exif() {
    let t = tiff(&[ascii(0x013b, "Ann Lee")], &[], &[], &[]);
    let good = heif(
        &[(2, b"hvc1", vec![0x66; 40]), (3, b"Exif", exif_item(&t))],
        &[(b"thmb", 2, 1)],
    );
    // 1. The thmb reference claims 65535 targets inside a 14-byte box.
    let mut bad = good.clone();
    let p = bad.windows(4).position(|w| w == b"thmb").unwrap();
    bad[p + 6..p + 8].copy_from_slice(&0xffffu16.to_be_bytes());
    let r = run(&bad);
    assert_eq!(
        value(&r, "Artist").as_deref(),
        Some("Ann Lee"),
        "{:#?}",
        r.findings
    );
    assert!(
        r.error.as_deref().unwrap_or("").contains("iref"),
        "{:?}",
        r.error
    );
    // 2. The thumbnail's extent starts past the end of the file.
    let mut bad = good.clone();
    let p = bad.windows(4).position(|w| w == b"iloc").unwrap();
    // iloc body: 4 (full box) + 2 (sizes) + 2 (count), then item 1 (14 bytes), item 2.
    let ext = p + 4 + 8 + 14 + 6;
    bad[ext..ext + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let r = run(&bad);
    assert_eq!(
        value(&r, "Artist").as_deref(),
        Some("Ann Lee"),
        "{:#?}",
        r.findings
    );
    assert!(names(&r, "thumbnail").is_empty());
    assert!(r.error.is_some());
    // 3. Truncated anywhere: no panic.
    for n in (8..good.len()).step_by(7) {
        let r = run(&good[..n]);
        assert!(
            !r.error.as_deref().unwrap_or("").contains("internal error"),
            "cut at {n}"
        );
    }
}
