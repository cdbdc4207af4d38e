//! Issue 15's last two items: the video-only vendor tables (Nikon `NCTG`, Pentax `PENT`, Kodak
//! `free`, FLIR user-data `uuid` boxes in QuickTime/MP4) and FlashPix in JPEG APP2 `FPXR`
//! segments. Every file is built here in the layout ExifTool's tables describe (ExifTool cannot
//! write these tables); where exiftool is installed, each built file is also read by ExifTool and
//! its values compared, so the layouts are ExifTool's, not ours. Truncated and lying variants
//! yield a partial result with an error, never a panic, and never hide another family's finding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{exiftool_json, no_panic, value};

use common::*;
use proofpix_analysis::{Analyzer, Format, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn gps(r: &Report) -> Option<String> {
    r.findings
        .iter()
        .find(|f| f.category.as_str() == "gps")
        .map(|f| f.value.clone())
}

// ---- QuickTime / MP4 ------------------------------------------------------------------------

fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

fn movie(brand: &[u8; 4], top: &[Vec<u8>]) -> Vec<u8> {
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&[0, 0, 2, 0]);
    ftyp.extend_from_slice(brand);
    let mut v = bx(b"ftyp", &ftyp);
    for t in top {
        v.extend_from_slice(t);
    }
    v.extend(bx(b"mdat", &[0u8; 16]));
    v
}

fn nctg_record(tag: u32, fmt: u16, count: u16, value: &[u8]) -> Vec<u8> {
    let mut v = tag.to_be_bytes().to_vec();
    v.extend_from_slice(&fmt.to_be_bytes());
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn rationals_be(r: &[(u32, u32)]) -> Vec<u8> {
    r.iter()
        .flat_map(|(n, d)| [n.to_be_bytes(), d.to_be_bytes()].concat())
        .collect()
}

fn nctg() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(nctg_record(0x0000_0001, 2, 6, b"NIKON\0"));
    t.extend(nctg_record(0x0110_a431, 2, 8, b"3012345\0"));
    t.extend(nctg_record(0x0110_a435, 2, 7, b"LS-991\0"));
    t.extend(nctg_record(0x0120_0001, 2, 2, b"S\0"));
    t.extend(nctg_record(
        0x0120_0002,
        5,
        3,
        &rationals_be(&[(12, 1), (30, 1), (0, 1)]),
    ));
    t.extend(nctg_record(0x0120_0003, 2, 2, b"W\0"));
    t.extend(nctg_record(
        0x0120_0004,
        5,
        3,
        &rationals_be(&[(33, 1), (15, 1), (0, 1)]),
    ));
    t
}

fn nikon_movie(nctg: &[u8]) -> Vec<u8> {
    let mut ncdt = bx(b"NCHD", b"0100\0");
    ncdt.extend(bx(b"NCTG", nctg));
    ncdt.extend(bx(b"NCTH", &jpeg(&[], 160, 120)));
    let udta = bx(b"udta", &bx(b"NCDT", &ncdt));
    movie(b"qt  ", &[bx(b"moov", &udta)])
}

#[test]
fn nikon_nctg_serials_gps_and_thumbnail() {
    let f = nikon_movie(&nctg());
    let r = run(&f);
    assert_eq!(r.format, Format::QuickTime);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("3012345"));
    assert_eq!(value(&r, "LensSerialNumber").as_deref(), Some("LS-991"));
    let g = gps(&r).expect("gps");
    assert!(g.contains("-12.5") && g.contains("-33.25"), "{g}");
    assert!(value(&r, "ThumbnailImage").is_some());
    if let Some(et) = exiftool_json("nikon.mov", &f) {
        assert_eq!(et["Nikon:SerialNumber"], 3012345);
        assert_eq!(et["Nikon:LensSerialNumber"], "LS-991");
        assert_eq!(et["GPS:GPSLatitude"], 12.5);
        assert_eq!(et["GPS:GPSLatitudeRef"], "S");
        assert_eq!(et["GPS:GPSLongitude"], 33.25);
        assert!(et.get("Nikon:ThumbnailImage").is_some(), "{et}");
    }
}

#[test]
fn a_cut_or_lying_nctg_keeps_what_came_before() {
    // Cut in the middle of the GPS latitude: the serials stay, an error says why the rest is missing.
    let t = nctg();
    let cut = &t[..t.len() - 52];
    let r = run(&nikon_movie(cut));
    no_panic(&r);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("3012345"));
    assert!(gps(&r).is_none());
    assert!(
        r.error.as_deref().unwrap().contains("NCTG"),
        "{:?}",
        r.error
    );
    // An unknown format code ends the walk with an error.
    let mut lying = nctg_record(0x0110_a431, 2, 8, b"3012345\0");
    lying.extend(nctg_record(0x0110_a435, 99, 7, b"LS-991\0"));
    let r = run(&nikon_movie(&lying));
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("3012345"));
    assert!(r.error.as_deref().unwrap().contains("unknown format"));
    // A count far past the box.
    let lying = nctg_record(0x0110_a431, 2, 0xffff, b"3012345\0");
    let r = run(&nikon_movie(&lying));
    no_panic(&r);
    assert!(value(&r, "SerialNumber").is_none());
    assert!(r.error.is_some());
}

fn pent(lat_ref: u8, lon_ref: u8, with_preview: bool) -> Vec<u8> {
    let mut b = vec![0u8; 0x7d3];
    b[..6].copy_from_slice(b"PENTAX");
    // GPSVersionID "GPS_" + 2.2.0.0: ExifTool reads the GPS tags only after it.
    b[0xc7..0xcf].copy_from_slice(b"GPS_\x02\x02\0\0");
    b[207] = lat_ref;
    let le = |r: &[(u32, u32)]| -> Vec<u8> {
        r.iter()
            .flat_map(|(n, d)| [n.to_le_bytes(), d.to_le_bytes()].concat())
            .collect()
    };
    b[209..233].copy_from_slice(&le(&[(48, 1), (51, 1), (2400, 100)]));
    b[233] = lon_ref;
    b[235..259].copy_from_slice(&le(&[(2, 1), (21, 1), (0, 1)]));
    if with_preview {
        b.extend(jpeg(&[], 640, 480));
    }
    b
}

#[test]
fn pentax_pent_gps_and_preview() {
    let f = movie(
        b"qt  ",
        &[bx(
            b"moov",
            &bx(b"udta", &bx(b"PENT", &pent(b'N', b'E', true))),
        )],
    );
    let r = run(&f);
    assert_eq!(r.error, None);
    let g = gps(&r).expect("gps");
    assert!(g.contains("48.8566") && g.contains("2.35"), "{g}");
    assert!(value(&r, "PreviewImage").is_some(), "{:#?}", r.findings);
    if let Some(et) = exiftool_json("pentax.mov", &f) {
        assert!(
            (et["GPS:GPSLatitude"].as_f64().unwrap() - 48.85666).abs() < 1e-4,
            "{et}"
        );
        assert_eq!(et["GPS:GPSLongitude"], 2.35);
        assert!(et.get("Pentax:PreviewImage").is_some(), "{et}");
    }
    // Cut before the longitude: no GPS, an error, no panic; South/West give negative values.
    let cut = &pent(b'N', b'E', false)[..240];
    let r = run(&movie(
        b"qt  ",
        &[bx(b"moov", &bx(b"udta", &bx(b"PENT", cut)))],
    ));
    no_panic(&r);
    assert!(gps(&r).is_none());
    assert!(
        r.error.as_deref().unwrap().contains("PENT"),
        "{:?}",
        r.error
    );
    let f = movie(
        b"qt  ",
        &[bx(
            b"moov",
            &bx(b"udta", &bx(b"PENT", &pent(b'S', b'W', false))),
        )],
    );
    let g = gps(&run(&f)).unwrap();
    assert!(g.contains("-48.8566") && g.contains("-2.35"), "{g}");
    // Without the GPSVersionID marker the bytes are not GPS (ExifTool's condition).
    let mut no_marker = pent(b'N', b'E', false);
    no_marker[0xc7..0xcb].copy_from_slice(b"\0\0\0\0");
    let f = movie(
        b"qt  ",
        &[bx(b"moov", &bx(b"udta", &bx(b"PENT", &no_marker)))],
    );
    assert!(gps(&run(&f)).is_none());
}

const FLIR_SERIAL: [u8; 16] = [
    0x57, 0xf5, 0xb9, 0x3e, 0x51, 0xe4, 0x48, 0xaf, 0xa0, 0xd9, 0xc3, 0xef, 0x1b, 0x37, 0xf7, 0x12,
];
const FLIR_GPS: [u8; 16] = [
    0x7f, 0x2e, 0x21, 0x00, 0x8b, 0x46, 0x49, 0x18, 0xaf, 0xb1, 0xde, 0x70, 0x9a, 0x74, 0xf6, 0xf5,
];
const FLIR_THUMB: [u8; 16] = [
    0x91, 0xaf, 0x9b, 0x93, 0x45, 0x9b, 0x44, 0x56, 0x98, 0xd1, 0x5e, 0x76, 0xea, 0x01, 0x04, 0xac,
];

fn flir_udta() -> Vec<u8> {
    let mut serial = FLIR_SERIAL.to_vec();
    serial.extend_from_slice(&[b' '; 0x7e]);
    serial.extend_from_slice(b"49012345\0");
    let mut g = FLIR_GPS.to_vec();
    for x in [0.0f32, 59.25, -17.5, 12.0] {
        g.extend_from_slice(&x.to_be_bytes());
    }
    let mut thumb = FLIR_THUMB.to_vec();
    thumb.extend_from_slice(&[0, 0, 0, 1]);
    thumb.extend(jpeg(&[], 80, 60));
    let mut u = bx(b"uuid", &serial);
    u.extend(bx(b"uuid", &g));
    u.extend(bx(b"uuid", &thumb));
    u
}

#[test]
fn flir_user_data_serial_gps_and_thumbnail() {
    let f = movie(b"mp42", &[bx(b"udta", &flir_udta())]);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "CameraSerialNumber").as_deref(), Some("49012345"));
    let g = gps(&r).expect("gps");
    assert!(g.contains("59.25") && g.contains("-17.5"), "{g}");
    assert!(value(&r, "ThumbnailImage").is_some());
    if let Some(et) = exiftool_json("flir.mp4", &f) {
        assert_eq!(et["FLIR:CameraSerialNumber"], 49012345);
        assert_eq!(et["FLIR:GPSLatitude"], 59.25);
        assert_eq!(et["FLIR:GPSLongitude"], -17.5);
        assert!(et.get("FLIR:ThumbnailImage").is_some(), "{et}");
    }
    // The serial box cut short: the GPS box after it is still read.
    let mut serial = FLIR_SERIAL.to_vec();
    serial.extend_from_slice(&[b' '; 0x70]);
    let mut g = FLIR_GPS.to_vec();
    for x in [0.0f32, 59.25, -17.5] {
        g.extend_from_slice(&x.to_be_bytes());
    }
    let mut u = bx(b"uuid", &serial);
    u.extend(bx(b"uuid", &g));
    let r = run(&movie(b"mp42", &[bx(b"udta", &u)]));
    no_panic(&r);
    assert!(value(&r, "CameraSerialNumber").is_none());
    assert!(gps(&r).is_some());
    assert!(r.error.as_deref().unwrap().contains("truncated"));
}

fn kodak_free(serial: &str) -> Vec<u8> {
    let mut seri = vec![serial.len() as u8, 0];
    seri.extend_from_slice(serial.as_bytes());
    let mut b = bx(b"Seri", &seri);
    b.extend(bx(b"SVer", b"\x041\0v1.0"));
    b.extend(bx(b"FNum", &[1, 0x40]));
    bx(b"free", &b)
}

#[test]
fn kodak_free_serial() {
    let f = movie(b"mp42", &[kodak_free("KCGHD12345678")]);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("KCGHD12345678"));
    if let Some(et) = exiftool_json("kodak.mp4", &f) {
        assert_eq!(et["Kodak:SerialNumber"], "KCGHD12345678", "{et}");
    }
    // A plain free box is nothing; a Seri atom whose length byte lies is an error.
    let r = run(&movie(b"mp42", &[bx(b"free", &[0u8; 64])]));
    assert_eq!(r.error, None);
    assert!(r.findings.is_empty());
    let mut seri = vec![200u8, 0];
    seri.extend_from_slice(b"KCG");
    let r = run(&movie(b"mp42", &[bx(b"free", &bx(b"Seri", &seri))]));
    no_panic(&r);
    assert!(value(&r, "SerialNumber").is_none());
    assert!(r.error.as_deref().unwrap().contains("Kodak"));
}

#[test]
fn a_broken_user_data_box_hides_no_other_finding() {
    let xmp = xmp_packet("<dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>");
    let mut xmp_box = vec![
        0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf,
        0xac,
    ];
    xmp_box.extend_from_slice(xmp.as_bytes());
    // udta whose child claims 4 GB; NCDT whose NCTG runs past it.
    let mut bad = 0xffff_fff0u32.to_be_bytes().to_vec();
    bad.extend_from_slice(b"NCDT");
    bad.extend_from_slice(&[0u8; 32]);
    let mut lying_ncdt = 0x100u32.to_be_bytes().to_vec();
    lying_ncdt.extend_from_slice(b"NCTG");
    lying_ncdt.extend_from_slice(&nctg()[..20]);
    let f = movie(
        b"qt  ",
        &[
            kodak_free("KCG999"),
            bx(b"uuid", &xmp_box),
            bx(
                b"moov",
                &[bx(b"udta", &bad), bx(b"udta", &bx(b"NCDT", &lying_ncdt))].concat(),
            ),
        ],
    );
    let r = run(&f);
    no_panic(&r);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("KCG999"));
    assert!(r.findings.iter().any(|f| f.category.as_str() == "author"));
    let e = r.error.unwrap();
    assert!(e.contains("bad size"), "{e}");
}

#[test]
fn old_quicktime_without_ftyp_is_read() {
    let mut f = bx(
        b"moov",
        &bx(b"udta", &bx(b"PENT", &pent(b'N', b'E', false))),
    );
    f.extend(bx(b"mdat", &[0; 8]));
    let r = run(&f);
    assert_eq!(r.format, Format::QuickTime);
    assert!(gps(&r).is_some());
}

// ---- FlashPix FPXR in JPEG APP2 -------------------------------------------------------------

fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// A contents list: (size, path, storage?).
fn fpxr_contents(entries: &[(u32, &str)]) -> Vec<u8> {
    let mut p = b"FPXR\0\0\x01".to_vec();
    p.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (size, name) in entries {
        p.extend_from_slice(&size.to_be_bytes());
        p.push(0);
        p.extend(utf16z(name));
        if *size == u32::MAX {
            p.extend_from_slice(&[0x11; 16]);
        }
    }
    seg(0xe2, &p)
}

fn fpxr_data(index: u16, offset: u32, data: &[u8]) -> Vec<u8> {
    let mut p = b"FPXR\0\0\x02".to_vec();
    p.extend_from_slice(&index.to_be_bytes());
    p.extend_from_slice(&offset.to_be_bytes());
    p.extend_from_slice(data);
    seg(0xe2, &p)
}

enum Prop<'a> {
    CodePage(u16),
    Lpwstr(&'a str),
    Lpstr(&'a str),
}

/// An OLE property-set stream with one set.
fn propset(props: &[(u32, Prop<'_>)]) -> Vec<u8> {
    let mut values: Vec<Vec<u8>> = Vec::new();
    for (_, p) in props {
        let mut v = Vec::new();
        match p {
            Prop::CodePage(c) => {
                v.extend_from_slice(&2u32.to_le_bytes());
                v.extend_from_slice(&c.to_le_bytes());
                v.extend_from_slice(&[0, 0]);
            }
            Prop::Lpwstr(s) => {
                v.extend_from_slice(&31u32.to_le_bytes());
                v.extend_from_slice(&((s.encode_utf16().count() + 1) as u32).to_le_bytes());
                v.extend(utf16z(s));
            }
            Prop::Lpstr(s) => {
                v.extend_from_slice(&30u32.to_le_bytes());
                v.extend_from_slice(&((s.len() + 1) as u32).to_le_bytes());
                v.extend_from_slice(s.as_bytes());
                v.push(0);
            }
        }
        while v.len() % 4 != 0 {
            v.push(0);
        }
        values.push(v);
    }
    let head = 8 + 8 * props.len();
    let size = head + values.iter().map(Vec::len).sum::<usize>();
    let mut set = (size as u32).to_le_bytes().to_vec();
    set.extend_from_slice(&(props.len() as u32).to_le_bytes());
    let mut off = head;
    for ((id, _), v) in props.iter().zip(&values) {
        set.extend_from_slice(&id.to_le_bytes());
        set.extend_from_slice(&(off as u32).to_le_bytes());
        off += v.len();
    }
    for v in values {
        set.extend(v);
    }
    let mut s = vec![0xfe, 0xff, 0, 0, 0, 0, 0, 0];
    s.extend_from_slice(&[0u8; 16]);
    s.extend_from_slice(&1u32.to_le_bytes());
    s.extend_from_slice(&[0x22; 16]);
    s.extend_from_slice(&48u32.to_le_bytes());
    s.extend(set);
    s
}

struct Fpxr {
    image_info: Vec<u8>,
    summary: Vec<u8>,
    screen_nail: Vec<u8>,
}

fn fpxr_streams() -> Fpxr {
    let image_info = propset(&[
        (1, Prop::CodePage(1200)),
        (0x2400_0000, Prop::Lpwstr("KODAK")),
        (0x2400_0002, Prop::Lpwstr("KCK-77001234")),
        (0x2800_0002, Prop::Lpwstr("SCN-5")),
    ]);
    let summary = propset(&[(1, Prop::CodePage(1252)), (4, Prop::Lpstr("Ann Smith"))]);
    let mut screen_nail = vec![0x33u8; 0x1c];
    screen_nail.extend_from_slice(&[0x44; 100]);
    screen_nail.extend(jpeg(&[], 160, 120));
    Fpxr {
        image_info,
        summary,
        screen_nail,
    }
}

/// A JPEG whose FPXR streams are split over segments, the Screen Nail in two with 5 bytes of
/// overlap (as cameras write them).
fn fpxr_jpeg(s: &Fpxr, extra: &[Vec<u8>]) -> Vec<u8> {
    let sn = &s.screen_nail;
    let half = sn.len() / 2;
    let mut segs = vec![
        fpxr_contents(&[
            (u32::MAX, "/"),
            (s.image_info.len() as u32, "/\u{5}Image Info"),
            (s.summary.len() as u32, "/\u{5}SummaryInformation"),
            (sn.len() as u32, "/\u{5}Screen Nail_bd0100609719a180"),
        ]),
        fpxr_data(1, 0, &s.image_info),
        fpxr_data(2, 0, &s.summary),
        fpxr_data(3, 0, &sn[..half]),
        fpxr_data(3, (half - 5) as u32, &sn[half - 5..]),
    ];
    segs.extend_from_slice(extra);
    jpeg(&segs, 160, 120)
}

#[test]
fn fpxr_serials_author_and_screen_nail() {
    let s = fpxr_streams();
    let f = fpxr_jpeg(&s, &[]);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("KCK-77001234"));
    assert_eq!(value(&r, "ScannerSerialNumber").as_deref(), Some("SCN-5"));
    assert_eq!(value(&r, "Author").as_deref(), Some("Ann Smith"));
    let sn_len = s.screen_nail.len() - 0x1c;
    let jpeg_len = s.screen_nail.len() - 0x1c - 100;
    assert_eq!(
        value(&r, "ScreenNail").as_deref(),
        Some(format!("{sn_len}-byte embedded image").as_str())
    );
    assert_eq!(
        value(&r, "PreviewImage").as_deref(),
        Some(format!("{jpeg_len}-byte embedded image").as_str())
    );
    for name in ["ScreenNail", "PreviewImage"] {
        let f = r.findings.iter().find(|f| f.source.name == name).unwrap();
        assert_eq!(f.category.as_str(), "thumbnail");
    }
    if let Some(et) = exiftool_json("fpxr.jpg", &f) {
        assert_eq!(et["FlashPix:SerialNumber"], "KCK-77001234", "{et}");
        assert_eq!(et["FlashPix:ScannerSerialNumber"], "SCN-5");
        assert_eq!(et["FlashPix:Author"], "Ann Smith");
        let bin = |k: &str| et[k].as_str().unwrap_or("").to_owned();
        assert!(
            bin("FlashPix:ScreenNail").contains(&format!("{sn_len} bytes")),
            "{et}"
        );
        assert!(
            bin("FlashPix:PreviewImage").contains(&format!("{jpeg_len} bytes")),
            "{et}"
        );
    }
}

#[test]
fn fujifilm_fpxr_previews_with_and_without_a_contents_list() {
    let j = jpeg(&[], 320, 240);
    let mut stream = vec![0x55u8; 47];
    stream.extend_from_slice(&j);
    let f = jpeg(
        &[
            fpxr_contents(&[(stream.len() as u32, "/Preview")]),
            fpxr_data(0, 0, &stream),
        ],
        640,
        480,
    );
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(
        value(&r, "PreviewImage").as_deref(),
        Some(format!("{}-byte embedded image", j.len()).as_str())
    );
    if let Some(et) = exiftool_json("fuji1.jpg", &f) {
        assert!(
            et["FlashPix:PreviewImage"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("{} bytes", j.len())),
            "{et}"
        );
    }
    // No contents list: index 512, the JPEG 60 bytes into each segment, split over two.
    let half = j.len() / 2;
    let fuji = |part: &[u8]| {
        let mut d = vec![0x66u8; 47];
        d.extend_from_slice(part);
        fpxr_data(512, 0, &d)
    };
    let f = jpeg(&[fuji(&j[..half]), fuji(&j[half..])], 640, 480);
    let r = run(&f);
    assert_eq!(r.error, None);
    assert_eq!(
        value(&r, "PreviewImage").as_deref(),
        Some(format!("{}-byte embedded image", j.len()).as_str())
    );
    if let Some(et) = exiftool_json("fuji2.jpg", &f) {
        let v = et
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with(":PreviewImage"))
            .map(|(_, v)| v.as_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        assert!(v.contains(&format!("{} bytes", j.len())), "{et}");
    }
}

#[test]
fn a_cut_or_lying_fpxr_keeps_the_rest() {
    let s = fpxr_streams();
    let exif = app1_exif(&tiff(
        &[],
        &[],
        &gps_entries((10, 20, 0), true, (30, 40, 0), true),
        &[],
    ));
    // The Screen Nail's second half missing: the part read is reported, with an error; the
    // EXIF GPS in APP1 before it and the serial are still there.
    let half = s.screen_nail.len() / 2;
    let segs = vec![
        exif.clone(),
        fpxr_contents(&[
            (s.image_info.len() as u32, "/\u{5}Image Info"),
            (
                s.screen_nail.len() as u32,
                "/\u{5}Screen Nail_bd0100609719a180",
            ),
        ]),
        fpxr_data(0, 0, &s.image_info),
        fpxr_data(1, 0, &s.screen_nail[..half]),
    ];
    let r = run(&jpeg(&segs, 160, 120));
    no_panic(&r);
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("KCK-77001234"));
    assert!(value(&r, "ScreenNail").is_some());
    assert!(gps(&r).is_some());
    assert!(
        r.error.as_deref().unwrap().contains("truncated"),
        "{:?}",
        r.error
    );
    // A contents list that claims more entries than it holds; a data segment for an entry
    // that does not exist; a property set whose offsets point outside it.
    // The third property (the serial) points far outside its set.
    let mut bad_props = s.image_info.clone();
    bad_props[48 + 8 + 16 + 4..48 + 8 + 16 + 8].copy_from_slice(&0xfff0u32.to_le_bytes());
    let mut lying = b"FPXR\0\0\x01\0\x09".to_vec();
    lying.extend_from_slice(&(bad_props.len() as u32).to_be_bytes());
    lying.push(0);
    lying.extend(utf16z("/\u{5}Image Info"));
    let segs = vec![
        seg(0xe2, &lying),
        fpxr_data(0, 0, &bad_props),
        fpxr_data(7, 0, b"nothing"),
        exif,
    ];
    let r = run(&jpeg(&segs, 160, 120));
    no_panic(&r);
    assert!(gps(&r).is_some());
    let e = r.error.clone().unwrap();
    assert!(e.contains("contents list truncated"), "{e}");
    assert!(e.contains("unlisted stream segment"), "{e}");
    // The lying serial is an error; the scanner serial after it is still read.
    assert!(
        e.contains("FlashPix::ImageInfo SerialNumber unreadable"),
        "{e}"
    );
    assert_eq!(value(&r, "ScannerSerialNumber").as_deref(), Some("SCN-5"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn the_new_parsers_take_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..900), k in 0usize..6) {
        proofpix_analysis::fuzzing::parse_fpxr(&body);
        proofpix_analysis::fuzzing::parse_quicktime_tables(&body);
        let f = match k {
            0 => jpeg(&[fpxr_contents(&[(body.len() as u32, "/\u{5}Image Info")]), fpxr_data(0, 0, &body)], 8, 8),
            1 => jpeg(&[fpxr_contents(&[(9, "/\u{5}Screen Nail")]), seg(0xe2, &[b"FPXR\0\0\x02".as_slice(), &body[..body.len().min(600)]].concat())], 8, 8),
            2 => movie(b"qt  ", &[bx(b"moov", &bx(b"udta", &body))]),
            3 => movie(b"qt  ", &[bx(b"moov", &bx(b"udta", &bx(b"NCDT", &bx(b"NCTG", &body))))]),
            4 => movie(b"mp42", &[bx(b"udta", &[bx(b"uuid", &[FLIR_GPS.as_slice(), &body].concat()), bx(b"PENT", &body)].concat())]),
            _ => movie(b"mp42", &[bx(b"free", &[b"\0\0\0\x10Seri".as_slice(), &body].concat())]),
        };
        let r = run(&f);
        proptest::prop_assert!(!r.error.as_deref().unwrap_or("").contains("internal error"));
    }
}
