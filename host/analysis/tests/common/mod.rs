//! Shared test helpers: the corpus location and builders for tiny images with known metadata.
//!
//! Fixtures are generated here, never copied from the corpus.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use proofpix_analysis::Report;

/// `../shared/corpus` relative to the repository root, or `PROOFPIX_CORPUS`.
pub fn corpus() -> Option<PathBuf> {
    let p = std::env::var_os("PROOFPIX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("note: corpus not found at {}; skipping", p.display());
        None
    }
}

/// Every regular file under `dir`, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// One TIFF entry: tag, type, count, value bytes (little-endian).
pub type E = (u16, u16, u32, Vec<u8>);

pub fn ascii(tag: u16, s: &str) -> E {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    (tag, 2, v.len() as u32, v)
}
pub fn short(tag: u16, x: u16) -> E {
    (tag, 3, 1, x.to_le_bytes().to_vec())
}
pub fn long(tag: u16, x: u32) -> E {
    (tag, 4, 1, x.to_le_bytes().to_vec())
}
pub fn rationals(tag: u16, r: &[(u32, u32)]) -> E {
    let mut v = Vec::new();
    for (n, d) in r {
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&d.to_le_bytes());
    }
    (tag, 5, r.len() as u32, v)
}
pub fn undefined(tag: u16, b: &[u8]) -> E {
    (tag, 7, b.len() as u32, b.to_vec())
}

fn ifd_size(entries: &[E]) -> usize {
    let mut s = 2 + 12 * entries.len() + 4;
    for e in entries {
        if e.3.len() > 4 {
            s += e.3.len() + (e.3.len() & 1);
        }
    }
    s
}

fn write_ifd(buf: &mut Vec<u8>, entries: &[E], next: u32) {
    write_ifd_based(buf, entries, next, 0);
}

/// An IFD appended to `buf` whose value offsets are `buf` positions plus `base`
/// (for maker notes whose offsets are relative to the enclosing TIFF header).
pub fn write_ifd_based(buf: &mut Vec<u8>, entries: &[E], next: u32, base: usize) {
    let start = buf.len();
    let mut entries = entries.to_vec();
    entries.sort_by_key(|e| e.0);
    let mut values_at = base + start + 2 + 12 * entries.len() + 4;
    let mut values = Vec::new();
    buf.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, count, data) in &entries {
        buf.extend_from_slice(&tag.to_le_bytes());
        buf.extend_from_slice(&typ.to_le_bytes());
        buf.extend_from_slice(&count.to_le_bytes());
        if data.len() <= 4 {
            let mut d = data.clone();
            d.resize(4, 0);
            buf.extend_from_slice(&d);
        } else {
            buf.extend_from_slice(&(values_at as u32).to_le_bytes());
            values.extend_from_slice(data);
            if data.len() & 1 == 1 {
                values.push(0);
            }
            values_at += data.len() + (data.len() & 1);
        }
    }
    buf.extend_from_slice(&next.to_le_bytes());
    buf.extend_from_slice(&values);
}

/// Where the first out-of-line ExifIFD value lands in `tiff(ifd0, exif, ..)` (IFD0 gets the
/// Exif pointer added): a maker note placed first there can use absolute offsets.
pub fn exif_values_at(ifd0: &[E], exif_len: usize) -> usize {
    let mut ifd0 = ifd0.to_vec();
    ifd0.push(long(0x8769, 0));
    8 + ifd_size(&ifd0) + 2 + 12 * exif_len + 4
}

/// A little-endian TIFF structure: IFD0 (+ ExifIFD, GPS IFD, IFD1 when given).
pub fn tiff(ifd0: &[E], exif: &[E], gps: &[E], ifd1: &[E]) -> Vec<u8> {
    let mut ifd0 = ifd0.to_vec();
    // Pointer entries are placeholders with their final size, patched below.
    if !exif.is_empty() {
        ifd0.push(long(0x8769, 0));
    }
    if !gps.is_empty() {
        ifd0.push(long(0x8825, 0));
    }
    let s0 = ifd_size(&ifd0);
    let exif_at = 8 + s0;
    let gps_at = exif_at + if exif.is_empty() { 0 } else { ifd_size(exif) };
    let ifd1_at = gps_at + if gps.is_empty() { 0 } else { ifd_size(gps) };
    for e in ifd0.iter_mut() {
        if e.0 == 0x8769 {
            *e = long(0x8769, exif_at as u32);
        }
        if e.0 == 0x8825 {
            *e = long(0x8825, gps_at as u32);
        }
    }
    let mut b = b"II*\0\x08\0\0\0".to_vec();
    write_ifd(
        &mut b,
        &ifd0,
        if ifd1.is_empty() { 0 } else { ifd1_at as u32 },
    );
    if !exif.is_empty() {
        write_ifd(&mut b, exif, 0);
    }
    if !gps.is_empty() {
        write_ifd(&mut b, gps, 0);
    }
    if !ifd1.is_empty() {
        write_ifd(&mut b, ifd1, 0);
    }
    b
}

/// GPS IFD entries for a position in degrees, minutes and hundredths of seconds.
pub fn gps_entries(lat: (u32, u32, u32), north: bool, lon: (u32, u32, u32), east: bool) -> Vec<E> {
    vec![
        ascii(0x0001, if north { "N" } else { "S" }),
        rationals(0x0002, &[(lat.0, 1), (lat.1, 1), (lat.2, 100)]),
        ascii(0x0003, if east { "E" } else { "W" }),
        rationals(0x0004, &[(lon.0, 1), (lon.1, 1), (lon.2, 100)]),
    ]
}

/// A JPEG segment.
pub fn seg(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff, marker];
    v.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The image part of a tiny JPEG: SOF0 8x8 grey, DHT, SOS, scan bytes, EOI.
pub fn jpeg_image_part(w: u16, h: u16) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::new();
    head.extend(seg(0xdb, &[0u8; 65]));
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    head.extend(seg(0xc0, &sof));
    head.extend(seg(0xc4, &[0u8; 17]));
    head.extend(seg(0xda, &[1, 1, 0, 0, 63, 0]));
    // Entropy-coded bytes with stuffing and a restart marker, then EOI.
    let scan = vec![0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd0, 0x78, 0xff, 0xd9];
    (head, scan)
}

/// SOI + the given segments + a tiny image.
pub fn jpeg(segments: &[Vec<u8>], w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xff, 0xd8];
    for s in segments {
        v.extend_from_slice(s);
    }
    let (head, scan) = jpeg_image_part(w, h);
    v.extend(head);
    v.extend(scan);
    v
}

/// An APP1 Exif segment around a TIFF block.
pub fn app1_exif(tiff: &[u8]) -> Vec<u8> {
    let mut p = b"Exif\0\0".to_vec();
    p.extend_from_slice(tiff);
    seg(0xe1, &p)
}

/// An XMP packet with the given rdf:Description body.
pub fn xmp_packet(body: &str) -> String {
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">{body}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#
    )
}

/// An APP1 XMP segment.
pub fn app1_xmp(xml: &str) -> Vec<u8> {
    let mut p = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    p.extend_from_slice(xml.as_bytes());
    seg(0xe1, &p)
}

/// An APP13 Photoshop segment holding IPTC datasets (record 2).
pub fn app13_iptc(datasets: &[(u8, &str)]) -> Vec<u8> {
    let mut iim = Vec::new();
    for (ds, v) in datasets {
        iim.extend_from_slice(&[0x1c, 2, *ds]);
        iim.extend_from_slice(&(v.len() as u16).to_be_bytes());
        iim.extend_from_slice(v.as_bytes());
    }
    let mut p = b"Photoshop 3.0\0".to_vec();
    p.extend_from_slice(b"8BIM");
    p.extend_from_slice(&0x0404u16.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(iim.len() as u32).to_be_bytes());
    p.extend_from_slice(&iim);
    if iim.len() % 2 == 1 {
        p.push(0);
    }
    seg(0xed, &p)
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c: u32 = 0xffff_ffff;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

pub fn png_chunk(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    let mut c = typ.to_vec();
    c.extend_from_slice(body);
    v.extend_from_slice(&c);
    v.extend_from_slice(&crc32(&c).to_be_bytes());
    v
}

/// A 1x1 grey PNG with extra chunks before IDAT.
pub fn png(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(png_chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    for c in extra {
        v.extend_from_slice(c);
    }
    v.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    ));
    v.extend(png_chunk(b"IEND", &[]));
    v
}

pub fn riff_chunk(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = typ.to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// An extended WebP (VP8X) with a dummy VP8L image and extra chunks.
pub fn webp(extra: &[Vec<u8>], flags: u8) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&[3, 0, 0, 1, 0, 0]); // 4 x 2
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(
        b"VP8L",
        &[0x2f, 0x03, 0x40, 0x00, 0x00, 0x07, 0x10, 0x11, 0x48],
    ));
    for c in extra {
        body.extend_from_slice(c);
    }
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(&body);
    v
}

/// A minimal ICC profile (header, `acsp`, empty tag table).
pub fn icc_profile() -> Vec<u8> {
    let mut p = vec![0u8; 132];
    p[0..4].copy_from_slice(&132u32.to_be_bytes());
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[36..40].copy_from_slice(b"acsp");
    p
}

/// A single-strip 2x2 grey TIFF with the given extra IFD0 entries.
pub fn tiff_image(extra: &[E]) -> Vec<u8> {
    let pixels = [10u8, 20, 30, 40];
    let mut ifd0: Vec<E> = vec![
        long(0x0100, 2),
        long(0x0101, 2),
        short(0x0102, 8),
        short(0x0103, 1),
        short(0x0106, 1),
        long(0x0111, 0), // patched below
        short(0x0115, 1),
        long(0x0116, 2),
        long(0x0117, 4),
    ];
    ifd0.extend_from_slice(extra);
    let mut t = tiff(&ifd0, &[], &[], &[]);
    let at = t.len() as u32;
    t.extend_from_slice(&pixels);
    // Patch StripOffsets: find the 0x0111 entry in IFD0.
    let n = u16::from_le_bytes([t[8], t[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t[p], t[p + 1]]) == 0x0111 {
            t[p + 8..p + 12].copy_from_slice(&at.to_le_bytes());
        }
    }
    t
}

/// The finding named `name`'s value, if any.
pub fn value(r: &Report, name: &str) -> Option<String> {
    r.findings
        .iter()
        .find(|f| f.source.name == name)
        .map(|f| f.value.clone())
}

/// The report has no error from a caught panic.
pub fn no_panic(r: &Report) {
    assert!(
        !r.error.as_deref().unwrap_or("").contains("internal error"),
        "{:?}",
        r.error
    );
}

/// ExifTool's JSON reading of `bytes` (`-j -G1 -n -a`), or `None` without exiftool.
pub fn exiftool_json(name: &str, bytes: &[u8]) -> Option<serde_json::Value> {
    exiftool_json_with(name, bytes, &[])
}

/// [`exiftool_json`] with more options first (`-ee` for timed metadata).
pub fn exiftool_json_with(name: &str, bytes: &[u8], extra: &[&str]) -> Option<serde_json::Value> {
    std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .ok()?;
    let dir = std::env::temp_dir().join(format!("proofpix-exiftool-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = std::process::Command::new("exiftool")
        .args(extra)
        .args(["-j", "-G1", "-n", "-a"])
        .arg(&p)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v[0].clone())
}
