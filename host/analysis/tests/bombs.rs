//! Resource bombs: inputs that declare or expand to far more than they contain must cost an
//! error, never an allocation of what they claim or a stack overflow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use proofpix_analysis::{Analyzer, Report};

fn analyze(b: &[u8]) -> Report {
    Analyzer::default().analyze(&b.to_vec())
}

#[test]
fn a_ztxt_chunk_that_inflates_past_the_cap_is_an_error() {
    // 40 MiB of zeros compress to about 40 KB; the inflate cap is 16 MiB.
    let zeros = vec![0u8; 40 << 20];
    let z = miniz_oxide::deflate::compress_to_vec_zlib(&zeros, 9);
    let mut body = b"Comment\0\0".to_vec();
    body.extend_from_slice(&z);
    let r = analyze(&png(&[png_chunk(b"zTXt", &body)]));
    assert!(
        r.error.as_deref().unwrap_or("").contains("inflate"),
        "{:?}",
        r.error
    );
}

#[test]
fn deeply_nested_xmp_stops_at_the_depth_cap() {
    let open = "<a:b xmlns:a=\"urn:x\">".repeat(100_000);
    let close = "</a:b>".repeat(100_000);
    let r = analyze(&jpeg(&[app1_xmp(&format!("{open}{close}"))], 8, 8));
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("nesting too deep"),
        "{:?}",
        r.error
    );
}

#[test]
fn a_heif_item_claiming_gigabytes_is_refused_without_allocating() {
    // ftyp, meta { hdlr, iinf { infe Exif id 1 }, iloc { item 1: extent 0 + 4 GiB } }
    fn bx(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(t);
        v.extend_from_slice(body);
        v
    }
    let mut infe = vec![2, 0, 0, 0, 0, 1, 0, 0];
    infe.extend_from_slice(b"Exif\0");
    let mut iinf = vec![0, 0, 0, 0, 0, 1];
    iinf.extend(bx(b"infe", &infe));
    // iloc v0: offset_size 4, length_size 4, base 0; one item, one extent.
    let mut iloc = vec![0, 0, 0, 0, 0x44, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
    iloc.extend_from_slice(&0u32.to_be_bytes());
    iloc.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
    let mut meta = vec![0, 0, 0, 0];
    meta.extend(bx(b"iinf", &iinf));
    meta.extend(bx(b"iloc", &iloc));
    let mut f = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
    f.extend(bx(b"meta", &meta));
    let r = analyze(&f);
    assert!(
        r.error.as_deref().unwrap_or("").contains("refused"),
        "{:?}",
        r.error
    );
}

#[test]
fn a_tiff_tag_with_a_four_gigabyte_count_is_skipped() {
    let mut t = tiff(&[ascii(0x013b, "Eve")], &[], &[], &[]);
    // Rewrite the Artist count to 0xffffffff.
    t[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    let r = analyze(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(r.findings.iter().all(|f| f.source.name != "Artist"));
}

#[test]
fn thousands_of_tiny_jpeg_segments_are_cut_off() {
    let segs: Vec<Vec<u8>> = (0..10_000).map(|_| seg(0xe5, b"x")).collect();
    let r = analyze(&jpeg(&segs, 8, 8));
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("too many segments"),
        "{:?}",
        r.error
    );
}
