//! The fuzz target's entry (`fuzzing::check_analyze`: header gate, bounded decode, QR search)
//! on a few thousand damaged images, on stable and in every test run: truncated, bit-flipped
//! and byte-smashed PNG, JPEG, GIF, WebP, BMP and TIFF files that hold a QR code, and
//! decompression bombs with lying headers. Each stays within the budget and ends either
//! decoded or skipped with a reason; none panics.

mod support;

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{DynamicImage, GrayImage, ImageFormat, Luma};
use proofpix_pixels::fuzzing::check_analyze;

/// xorshift64*: a reproducible stream without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A QR code on a grey page, in `format`.
fn encoded(format: ImageFormat) -> Vec<u8> {
    let code = support::qr("WIFI:T:WPA;S:fuzz;P:hunter22;;", 3);
    let mut page = GrayImage::from_pixel(code.width() + 40, code.height() + 24, Luma([200]));
    image::imageops::overlay(&mut page, &code, 20, 12);
    let img = match format {
        // WebP's encoder takes colour only; JPEG and the rest take grey.
        ImageFormat::WebP | ImageFormat::Gif => {
            DynamicImage::ImageRgba8(DynamicImage::ImageLuma8(page).to_rgba8())
        }
        _ => DynamicImage::ImageLuma8(page),
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    v.extend_from_slice(&crc32(&body).to_be_bytes());
    v
}

/// A PNG whose header says `w` x `h` grey pixels, with `idat` as its only data chunk.
fn png_declaring(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(chunk(b"IHDR", &ihdr));
    v.extend(chunk(b"IDAT", idat));
    v.extend(chunk(b"IEND", &[]));
    v
}

/// The IDAT payload of a real PNG (the zlib stream of its pixels).
fn idat_of(png: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 8;
    while i + 8 <= png.len() {
        let n = u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]) as usize;
        if &png[i + 4..i + 8] == b"IDAT" {
            out.extend_from_slice(&png[i + 8..i + 8 + n]);
        }
        i += 12 + n;
    }
    out
}

/// One damaged copy of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    match rng.below(5) {
        // Truncated anywhere, or inside the header.
        0 => v.truncate(rng.below(v.len())),
        1 => v.truncate(rng.below(64.min(v.len()))),
        // Bits flipped in the header (sizes, types, lengths) or anywhere.
        2 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(96.min(v.len()));
                v[i] ^= 1 << rng.below(8);
            }
        }
        3 => {
            for _ in 0..=rng.below(16) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        // Bytes smashed with the values parsers trip on, then maybe cut.
        _ => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(v.len());
                v[i] = [0x00, 0xff, 0x7f, 0x80, 0xfe, 0x01][rng.below(6)];
            }
            if rng.below(2) == 0 {
                v.truncate(v.len() - rng.below(v.len() / 2));
            }
        }
    }
    v
}

#[test]
fn damaged_images_of_every_format_are_decoded_or_skipped_with_a_reason() {
    let formats = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ];
    let mut rng = Rng(0x5eed_0016);
    let (mut decoded, mut skipped, mut read) = (0, 0, 0);
    let mut slowest = Duration::ZERO;
    for format in formats {
        let seed = encoded(format);
        // The undamaged file reads its code, so damaged copies reach the QR search.
        let r = check_analyze(&seed);
        assert_eq!(r.findings.len(), 1, "{format:?}: {r:?}");
        for _ in 0..500 {
            let bytes = mutate(&seed, &mut rng);
            let t = Instant::now();
            let r = check_analyze(&bytes);
            slowest = slowest.max(t.elapsed());
            if r.skipped.is_some() {
                skipped += 1;
            } else {
                decoded += 1;
                read += r.findings.len();
            }
            if bytes.len() < 8 {
                assert!(r.skipped.is_some(), "{format:?} {bytes:?}: {r:?}");
            }
        }
    }
    eprintln!(
        "3000 damaged images: {decoded} decoded ({read} codes read), {skipped} skipped; slowest {slowest:?}"
    );
    assert_eq!(decoded + skipped, 3000);
    assert!(skipped > 300 && decoded > 300, "{decoded} / {skipped}");
    assert!(slowest < Duration::from_secs(10), "{slowest:?}");
}

#[test]
fn random_bytes_behind_each_magic_number_are_decoded_or_skipped() {
    let magics: [&[u8]; 8] = [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
        b"\xff\xd8\xff\xe0",
        b"\xff\xd8\xff\xc0\x00\x11\x08",
        b"GIF89a",
        b"RIFF\x00\x00\x00\x00WEBPVP8X",
        b"BM",
        b"II*\x00",
        b"MM\x00*",
    ];
    let mut rng = Rng(16);
    for k in 0..1000 {
        let mut v = magics[k % magics.len()].to_vec();
        for _ in 0..rng.below(512) {
            v.push(rng.next() as u8);
        }
        let r = check_analyze(&v);
        assert!(r.skipped.is_some() || r.findings.is_empty(), "{r:?}");
    }
}

#[test]
fn a_png_declaring_100000_by_100000_pixels_is_refused_before_decoding() {
    let t = Instant::now();
    let r = check_analyze(&png_declaring(100_000, 100_000, &[0x78, 0x9c, 0x03, 0x00]));
    let why = r.skipped.unwrap_or_default();
    assert!(
        why.contains("100000 x 100000") && why.contains("pixel budget"),
        "{why}"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn bombs_in_other_formats_are_refused_from_their_headers() {
    // A JPEG frame header (SOF0) of 65500 x 65500, a GIF screen and frame of 65535 x 65535,
    // a WebP canvas (VP8X) of 16 M x 16 M, a BMP of 100000 x 100000.
    let mut jpeg = b"\xff\xd8\xff\xc0\x00\x0b\x08\xff\xdc\xff\xdc\x01\x01\x11\x00".to_vec();
    jpeg.extend_from_slice(b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x00\xff\xd9");
    let mut gif = b"GIF89a\xff\xff\xff\xff\x00\x00\x00".to_vec();
    gif.extend_from_slice(b"\x2c\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00\x3b");
    let mut webp = b"RIFF\x1a\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
    webp.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let mut bmp = b"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00".to_vec();
    bmp.extend_from_slice(&100_000u32.to_le_bytes());
    bmp.extend_from_slice(&100_000u32.to_le_bytes());
    bmp.extend_from_slice(b"\x01\x00\x18\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    bmp.extend_from_slice(&[0; 16]);
    for (name, bytes) in [("jpeg", jpeg), ("gif", gif), ("webp", webp), ("bmp", bmp)] {
        let t = Instant::now();
        let r = check_analyze(&bytes);
        let why = r.skipped.unwrap_or_default();
        assert!(!why.is_empty(), "{name}: decoded");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            t.elapsed()
        );
        eprintln!("{name}: {why}");
    }
}

#[test]
fn a_lying_png_header_over_a_larger_zlib_stream_stays_bounded() {
    // 2000 x 2000 grey pixels (4 MP, at the fuzz budget) compress to a few kilobytes; under a
    // header that says 100 x 100 the decoder reads only what it declared; under one that says
    // 2000 x 2000 with the stream cut short it fails with a reason.
    let big = GrayImage::from_pixel(2000, 2000, Luma([0]));
    let mut png = Cursor::new(Vec::new());
    DynamicImage::ImageLuma8(big)
        .write_to(&mut png, ImageFormat::Png)
        .expect("encodes");
    let idat = idat_of(png.get_ref());
    assert!(idat.len() < 64 * 1024, "{}", idat.len());
    let t = Instant::now();
    let small = check_analyze(&png_declaring(100, 100, &idat));
    assert!(
        small.skipped.is_some() || small.size == Some((100, 100)),
        "{small:?}"
    );
    let cut = check_analyze(&png_declaring(2000, 2000, &idat[..idat.len() / 3]));
    assert!(cut.skipped.is_some(), "{cut:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
