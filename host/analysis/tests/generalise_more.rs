//! Issue 15, the layouts left from the first round: Kodak PixPro notes with widened entry
//! counts, the Sony DSLR-A100's Minolta white-balance block, Leaf MOS records and the CR3
//! full-size JPEG track. Each is built here from the layout ExifTool's tables describe (never
//! from corpus files), with a truncated or lying variant that costs an error, never a panic
//! and never another family's finding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::value;

use common::*;
use proofpix_analysis::{Analyzer, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn has(r: &Report, category: &str) -> bool {
    r.findings.iter().any(|f| f.category.as_str() == category)
}

fn gps() -> Vec<E> {
    gps_entries((48, 51, 0), true, (2, 21, 0), true)
}

/// A JPEG with IFD0 `ifd0`, the maker note `note` in the ExifIFD, and a GPS fix.
fn with_note(ifd0: &[E], note: &[u8]) -> Vec<u8> {
    jpeg(
        &[app1_exif(&tiff(
            ifd0,
            &[undefined(0x927c, note)],
            &gps(),
            &[],
        ))],
        8,
        8,
    )
}

/// One IFD entry in either byte order: tag, type, count, value bytes (already in that order).
type Ent = (u16, u16, u32, Vec<u8>);

fn a(tag: u16, s: &str) -> Ent {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    (tag, 2, v.len() as u32, v)
}

fn u(tag: u16, b: &[u8]) -> Ent {
    (tag, 7, b.len() as u32, b.to_vec())
}

/// `entries` as 12-byte IFD entries, a zero next-IFD pointer and the out-of-line values; a
/// value's offset is `first_value_at` plus its position among the values.
fn entries(es: &[Ent], le: bool, first_value_at: usize) -> Vec<u8> {
    let (w16, w32) = if le {
        (
            u16::to_le_bytes as fn(u16) -> [u8; 2],
            u32::to_le_bytes as fn(u32) -> [u8; 4],
        )
    } else {
        (
            u16::to_be_bytes as fn(u16) -> [u8; 2],
            u32::to_be_bytes as fn(u32) -> [u8; 4],
        )
    };
    let mut out = Vec::new();
    let mut values = Vec::new();
    for (tag, typ, count, data) in es {
        out.extend_from_slice(&w16(*tag));
        out.extend_from_slice(&w16(*typ));
        out.extend_from_slice(&w32(*count));
        if data.len() <= 4 {
            let mut d = data.clone();
            d.resize(4, 0);
            out.extend_from_slice(&d);
        } else {
            out.extend_from_slice(&w32((first_value_at + values.len()) as u32));
            values.extend_from_slice(data);
            if data.len() % 2 == 1 {
                values.push(0);
            }
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&values);
    out
}

/// A complete IFD (2-byte count first) whose offsets count from its own start.
fn ifd_own_base(es: &[Ent], le: bool) -> Vec<u8> {
    let n = es.len() as u16;
    let mut v = if le { n.to_le_bytes() } else { n.to_be_bytes() }.to_vec();
    v.extend(entries(es, le, 2 + 12 * es.len() + 4));
    v
}

/// A Kodak note with a widened count (ExifTool's Kodak8b / Kodak11 / Kodak12): TIFF header,
/// 4 count bytes at 8, entries from 12, offsets from the note's start.
fn kodak_wide(le: bool, count4: [u8; 4], es: &[Ent]) -> Vec<u8> {
    let mut note = if le {
        b"II*\0\x08\0\0\0".to_vec()
    } else {
        b"MM\0*\0\0\0\x08".to_vec()
    };
    note.extend_from_slice(&count4);
    note.extend(entries(es, le, 12 + 12 * es.len() + 4));
    note
}

#[test]
fn kodak_pixpro_s1_type11_lens_serial() {
    // PixPro S-1: Make "JK Imaging, Ltd.", a little-endian 4-byte count.
    let ifd0 = [
        ascii(0x010f, "JK Imaging, Ltd."),
        ascii(0x0110, "KODAK PIXPRO S-1"),
    ];
    let note = kodak_wide(
        true,
        [2, 0, 0, 0],
        &[a(0x0207, "S-1"), a(0x0308, "LS12345678")],
    );
    let r = run(&with_note(&ifd0, &note));
    assert_eq!(
        value(&r, "LensSerialNumber").as_deref(),
        Some("LS12345678"),
        "{:#?}",
        r.findings
    );
    assert!(has(&r, "gps"));
    // The same note under a model that names neither Kodak nor PixPro is not ExifTool's Type11.
    let other = [ascii(0x010f, "JK Imaging, Ltd."), ascii(0x0110, "X-1")];
    let r = run(&with_note(&other, &note));
    assert!(!has(&r, "serial"), "{:#?}", r.findings);
}

#[test]
fn kodak_pixpro_az901_type12_big_endian_lens_serial() {
    let ifd0 = [
        ascii(0x010f, "JK Imaging, Ltd."),
        ascii(0x0110, "KODAK PIXPRO AZ901"),
    ];
    let note = kodak_wide(false, [0, 0, 0, 1], &[a(0x0308, "AZ9010042")]);
    let r = run(&with_note(&ifd0, &note));
    assert_eq!(
        value(&r, "LensSerialNumber").as_deref(),
        Some("AZ9010042"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn kodak_pixpro_az_type8b_serial_in_its_subifd0() {
    // AZ251 and kin: Make "Kodak", big-endian, the count's two extra bytes after it; the
    // serial (0xfa19) is in SubIFD0 (0xfc00), held in place with offsets from its own start.
    let ifd0 = [ascii(0x010f, "Kodak"), ascii(0x0110, "PIXPRO AZ251")];
    let sub = ifd_own_base(&[a(0xfa19, "AZ2511234567")], false);
    let note = kodak_wide(false, [0, 1, 0, 0], &[u(0xfc00, &sub)]);
    let r = run(&with_note(&ifd0, &note));
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("AZ2511234567"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_lying_or_truncated_pixpro_note_costs_an_error_not_the_gps_fix() {
    let ifd0 = [
        ascii(0x010f, "JK Imaging, Ltd."),
        ascii(0x0110, "KODAK PIXPRO S-1"),
    ];
    // A count of 255 entries (the most Type11's header allows) in a 40-byte note.
    let mut lying = kodak_wide(true, [0xff, 0, 0, 0], &[a(0x0308, "LS12345678")]);
    lying.truncate(40);
    let r = run(&with_note(&ifd0, &lying));
    assert!(has(&r, "gps"), "{:#?}", r.findings);
    // The one whole entry is still read: a partial result, with the truncation reported.
    assert_eq!(value(&r, "LensSerialNumber").as_deref(), Some("LS12345678"));
    assert!(r.error.is_some(), "the bad note is reported");
    // The serial's value offset points past the note: an error, the fix kept.
    let mut far = kodak_wide(true, [1, 0, 0, 0], &[a(0x0308, "LS12345678")]);
    far[20..24].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let r = run(&with_note(&ifd0, &far));
    assert!(has(&r, "gps"));
    assert!(!has(&r, "serial"));
    assert!(r.error.is_some());
    // Cut inside the count: no panic.
    for n in 0..14 {
        let r = run(&with_note(&ifd0, &far[..n]));
        assert!(has(&r, "gps"));
    }
}

/// A Sony note ("SONY DSC \0\0\0", offsets from the TIFF header) placed as the first ExifIFD
/// value, whose 0xb028 points at a Minolta IFD holding `wb` as tag 0x0020.
fn sony_a100(model: &str, wb: &[u8]) -> Vec<u8> {
    let ifd0 = [ascii(0x010f, "SONY"), ascii(0x0110, model)];
    // The ExifIFD holds the note only; IFD0 also gets the GPS pointer, and the GPS IFD comes
    // after the ExifIFD, so the note's place is fixed.
    let mut with_gps = ifd0.to_vec();
    with_gps.push(long(0x8825, 0));
    let base = exif_values_at(&with_gps, 1);
    let mut note = b"SONY DSC \0\0\0".to_vec();
    let minolta_at = base + 12 + 2 + 12 + 4;
    write_ifd_based(&mut note, &[long(0xb028, minolta_at as u32)], 0, base);
    assert_eq!(note.len() + base, minolta_at);
    write_ifd_based(&mut note, &[undefined(0x0020, wb)], 0, base);
    with_note(&ifd0, &note)
}

fn wb_block(serial: &str) -> Vec<u8> {
    let mut wb = vec![0u8; 0x49dc + 12];
    wb[0x49dc..0x49dc + serial.len()].copy_from_slice(serial.as_bytes());
    wb
}

#[test]
fn sony_a100_internal_serial_from_the_minolta_white_balance_block() {
    let r = run(&sony_a100("DSLR-A100", &wb_block("0123456789A")));
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("0123456789A"),
        "{:#?}",
        r.findings
    );
    // ExifTool reads the block for the A100 only.
    let r = run(&sony_a100("DSLR-A700", &wb_block("0123456789A")));
    assert!(!has(&r, "serial"), "{:#?}", r.findings);
}

#[test]
fn a_short_a100_block_costs_an_error_not_the_gps_fix() {
    let r = run(&sony_a100("DSLR-A100", &[7u8; 600]));
    assert!(has(&r, "gps"), "{:#?}", r.findings);
    assert!(!has(&r, "serial"));
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("InternalSerialNumber"),
        "{:?}",
        r.error
    );
}

/// One PKTS record: magic, version, name (40 bytes), size (little-endian, as the TIFF), value.
fn pkts(name: &str, value: &[u8], dir: bool) -> Vec<u8> {
    let mut v = b"PKTS".to_vec();
    v.extend_from_slice(if dir { &[0, 0, 0, 1] } else { &[0, 0, 0, 0] });
    let mut n = name.as_bytes().to_vec();
    n.resize(40, 0);
    v.extend(n);
    v.extend_from_slice(&(value.len() as u32).to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// A small JPEG's bytes.
fn small_jpeg() -> Vec<u8> {
    jpeg(&[], 16, 12)
}

fn leaf_data() -> Vec<u8> {
    let capture = pkts("CaptProf_serial_number", b"CS-4711 x\0", true);
    let camera = pkts("CamProf_capture_profile", &capture, true);
    let mut data = pkts("back_serial_number", b"L0042319 Aptus 75\0", false);
    data.extend(pkts("camera_profile", &camera, false));
    data.extend(pkts("JPEG_preview_data", &small_jpeg(), false));
    data
}

#[test]
fn leaf_mos_back_serial_capture_serial_and_preview() {
    let t = tiff_image(&[ascii(0x013b, "Jane Roe"), undefined(0x8606, &leaf_data())]);
    let r = run(&t);
    assert_eq!(
        value(&r, "BackSerial").as_deref(),
        Some("L0042319"),
        "{:#?}",
        r.findings
    );
    assert_eq!(value(&r, "CaptureSerial").as_deref(), Some("CS-4711"));
    let pv = r
        .findings
        .iter()
        .find(|f| f.source.name == "PreviewImage")
        .expect("the Leaf preview");
    assert_eq!(pv.category.as_str(), "thumbnail");
    assert_eq!(pv.source.group, "Leaf");
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn truncated_leaf_records_keep_what_came_before_and_the_artist() {
    let mut data = leaf_data();
    // The last record (the preview) now claims more bytes than the data holds.
    let last = data.len() - small_jpeg().len() - 4;
    data[last..last + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let t = tiff_image(&[ascii(0x013b, "Jane Roe"), undefined(0x8606, &data)]);
    let r = run(&t);
    assert_eq!(value(&r, "BackSerial").as_deref(), Some("L0042319"));
    assert_eq!(value(&r, "Artist").as_deref(), Some("Jane Roe"));
    assert!(value(&r, "PreviewImage").is_none());
    assert!(
        r.error.as_deref().unwrap_or("").contains("Leaf"),
        "{:?}",
        r.error
    );
    // Any cut of the data: no panic, the artist kept.
    let whole = leaf_data();
    for n in (0..whole.len()).step_by(7) {
        let t = tiff_image(&[ascii(0x013b, "Jane Roe"), undefined(0x8606, &whole[..n])]);
        let r = run(&t);
        assert_eq!(
            value(&r, "Artist").as_deref(),
            Some("Jane Roe"),
            "cut at {n}"
        );
    }
}

/// An ISO-BMFF box.
fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

/// A CR3: ftyp, moov { Canon uuid { CMT1 with an Artist }, trak { mdia { hdlr vide, minf {
/// stbl { stsd CRAW (with a JPEG box when `flag`), stsz, co64 } } } } }, mdat with the JPEG.
/// `chunk` overrides the first chunk offset.
fn cr3(flag: bool, chunk: Option<u64>) -> Vec<u8> {
    let jpg = small_jpeg();
    let build = |mdat_at: u64| {
        // Reserved, data reference index, VisualSampleEntry's fields, and the 4 bytes Canon's
        // CRAW entries have before their child boxes.
        let mut craw = vec![0u8; 6 + 2 + 70 + 4];
        if flag {
            craw.extend(bx(b"JPEG", &[0; 4]));
        }
        craw.extend(bx(b"free", &[0; 2]));
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(bx(b"CRAW", &craw));
        let mut stsz = vec![0u8; 4];
        stsz.extend_from_slice(&(jpg.len() as u32).to_be_bytes());
        stsz.extend_from_slice(&1u32.to_be_bytes());
        let mut co64 = vec![0, 0, 0, 0, 0, 0, 0, 1];
        co64.extend_from_slice(&chunk.unwrap_or(mdat_at).to_be_bytes());
        let mut stbl = bx(b"stsd", &stsd);
        stbl.extend(bx(b"stsz", &stsz));
        stbl.extend(bx(b"co64", &co64));
        let minf = bx(b"stbl", &stbl);
        let mut mdia = bx(b"hdlr", b"\0\0\0\0\0\0\0\0vide\0\0\0\0\0\0\0\0\0\0\0\0\0");
        mdia.extend(bx(b"minf", &minf));
        let trak = bx(b"mdia", &mdia);
        let mut canon = vec![
            0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b,
            0x6a, 0x48,
        ];
        canon.extend(bx(
            b"CMT1",
            &tiff(&[ascii(0x013b, "Jane Roe")], &[], &[], &[]),
        ));
        let mut moov = bx(b"uuid", &canon);
        moov.extend(bx(b"trak", &trak));
        let mut f = bx(b"ftyp", b"crx \0\0\0\x01crx isom");
        f.extend(bx(b"moov", &moov));
        f
    };
    let head = build(0).len() as u64 + 8;
    let mut f = build(head);
    f.extend(bx(b"mdat", &jpg));
    f
}

#[test]
fn cr3_full_size_jpeg_track_is_jpg_from_raw() {
    let r = run(&cr3(true, None));
    let f = r
        .findings
        .iter()
        .find(|f| f.source.name == "JpgFromRaw")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.category.as_str(), "thumbnail");
    assert_eq!(f.source.group, "Track1");
    assert_eq!(value(&r, "Artist").as_deref(), Some("Jane Roe"));
    assert!(r.error.is_none(), "{:?}", r.error);
    // Without Canon's JPEG box the track is raw sensor data, not an image to report.
    let r = run(&cr3(false, None));
    assert!(value(&r, "JpgFromRaw").is_none(), "{:#?}", r.findings);
}

#[test]
fn a_cr3_track_pointing_outside_the_file_costs_an_error_not_the_artist() {
    let r = run(&cr3(true, Some(u64::MAX - 3)));
    assert!(value(&r, "JpgFromRaw").is_none());
    assert_eq!(value(&r, "Artist").as_deref(), Some("Jane Roe"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("JpgFromRaw"),
        "{:?}",
        r.error
    );
    // Any cut of the file: no panic, and the artist while its box is whole.
    let whole = cr3(true, None);
    for n in (0..whole.len()).step_by(5) {
        let _ = run(&whole[..n]);
    }
}

/// Ricoh's APP5 RMETA: byte order, block 0, the directory at 10 (field count), and from 20 the
/// sections: names (1), text values (2), numbers (3), each size counting 2 header bytes.
fn rmeta(names: &[&str], texts: &[&str], nums: &[u16], nums_size: Option<u16>) -> Vec<u8> {
    let mut d = b"RMETA\0".to_vec();
    let mut body = b"II\0\0\0\0\0\0".to_vec();
    body.extend_from_slice(&10u16.to_le_bytes());
    body.extend_from_slice(&(names.len() as u16).to_le_bytes());
    body.extend_from_slice(&[0; 8]);
    let section = |typ: u16, data: &[u8], size: Option<u16>| {
        let mut s = typ.to_le_bytes().to_vec();
        s.extend_from_slice(&size.unwrap_or(data.len() as u16 + 2).to_le_bytes());
        s.extend_from_slice(data);
        s
    };
    body.extend(section(1, names.join("\0").as_bytes(), None));
    body.extend(section(2, texts.join("\0").as_bytes(), None));
    let n: Vec<u8> = nums.iter().flat_map(|x| x.to_le_bytes()).collect();
    body.extend(section(3, &n, nums_size));
    d.extend(body);
    seg(0xe5, &d)
}

#[test]
fn ricoh_rmeta_fields_are_named_as_exiftool_names_them() {
    let exif = app1_exif(&tiff(&[ascii(0x013b, "Jane Roe")], &[], &[], &[]));
    let seg5 = rmeta(&["Sign type", "Location"], &["", "Pier 39"], &[3, 4], None);
    let r = run(&jpeg(&[exif.clone(), seg5], 8, 8));
    let f = r
        .findings
        .iter()
        .find(|f| f.source.name == "Location")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.category.as_str(), "location-text");
    assert_eq!(f.value, "Pier 39");
    assert_eq!(f.source.group, "RMETA");
    assert!(r.error.is_none(), "{:?}", r.error);
    // A numbers section that claims more than the segment: the fields read so far stay, with
    // an error, and the EXIF artist is untouched.
    let lying = rmeta(&["Location"], &["Pier 39"], &[4], Some(0x7fff));
    let r = run(&jpeg(&[exif.clone(), lying.clone()], 8, 8));
    assert_eq!(value(&r, "Location").as_deref(), Some("Pier 39"));
    assert_eq!(value(&r, "Artist").as_deref(), Some("Jane Roe"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("RMETA"),
        "{:?}",
        r.error
    );
    // Every cut of the segment's body: no panic, the artist kept.
    for n in 4..lying.len() {
        let mut cut = lying[..n].to_vec();
        let l = (n - 2) as u16;
        cut[2..4].copy_from_slice(&l.to_be_bytes());
        let r = run(&jpeg(&[exif.clone(), cut], 8, 8));
        assert_eq!(
            value(&r, "Artist").as_deref(),
            Some("Jane Roe"),
            "cut at {n}"
        );
    }
}

/// One GPMF record: FourCC, type, structure size, repeat (big-endian), data padded to 4.
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

fn gopro_gpmf() -> Vec<u8> {
    let scal: Vec<u8> = [10_000_000i32, 10_000_000, 1000, 1000, 100]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let gps5: Vec<u8> = [488_500_000i32, 23_500_000, 35_000, 0, 0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let mut strm = klv(b"SCAL", b'l', 4, 5, &scal);
    strm.extend(klv(b"GPS5", b'l', 20, 1, &gps5));
    let mut devc = klv(b"CASN", b'c', 1, 14, b"C3221324657219");
    devc.extend(klv(b"STRM", 0, 4, (strm.len() / 4) as u16, &strm));
    klv(b"DEVC", 0, 4, (devc.len() / 4) as u16, &devc)
}

#[test]
fn gopro_gpmf_camera_serial_and_gps_fix_in_app6() {
    let mut p = b"GoPro\0".to_vec();
    p.extend(gopro_gpmf());
    let r = run(&jpeg(&[seg(0xe6, &p)], 8, 8));
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("C3221324657219"),
        "{:#?}",
        r.findings
    );
    let g = r
        .findings
        .iter()
        .find(|f| f.category.as_str() == "gps")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(g.source.group, "GoPro");
    assert!(g.value.starts_with("48.85"), "{}", g.value);
    assert!(r.error.is_none(), "{:?}", r.error);
    // The stream list claims 4 KB more than the segment: the serial before it stays, with an
    // error; the EXIF artist in another segment is untouched; any cut is no panic.
    let mut lying = gopro_gpmf();
    lying[8 + 24 + 6..8 + 24 + 8].copy_from_slice(&1000u16.to_be_bytes());
    let mut p = b"GoPro\0".to_vec();
    p.extend(&lying);
    let exif = app1_exif(&tiff(&[ascii(0x013b, "Jane Roe")], &[], &[], &[]));
    let r = run(&jpeg(&[exif.clone(), seg(0xe6, &p)], 8, 8));
    assert_eq!(
        value(&r, "CameraSerialNumber").as_deref(),
        Some("C3221324657219")
    );
    assert_eq!(value(&r, "Artist").as_deref(), Some("Jane Roe"));
    assert!(!has(&r, "gps"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("GPMF"),
        "{:?}",
        r.error
    );
    for n in 0..p.len() {
        let r = run(&jpeg(&[exif.clone(), seg(0xe6, &p[..n])], 8, 8));
        assert_eq!(
            value(&r, "Artist").as_deref(),
            Some("Jane Roe"),
            "cut at {n}"
        );
    }
}

#[test]
fn hp_tdhd_serial_in_app6() {
    let rec = |tag: &[u8; 4], typ: u32, data: &[u8]| {
        let mut v = tag.to_vec();
        v.extend_from_slice(&typ.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    };
    let mut inner = rec(b"FWRV", 0, b"1.0\0");
    inner.extend(rec(b"CMSN", 0, b"CN63712345\0"));
    // TDHD and LSLV are directories by name (their type word is 1, as ExifTool's signature
    // "TDHD\x01\0\0\0" says); other directories have type 0x10001.
    let mut lslv = rec(b"LSLV", 1, &inner);
    lslv.extend(rec(b"XTRA", 0x10001, &rec(b"CMSN", 0, b"CN00000002\0")));
    let tdhd = rec(b"TDHD", 1, &lslv);
    let r = run(&jpeg(&[seg(0xe6, &tdhd)], 8, 8));
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("CN63712345"),
        "{:#?}",
        r.findings
    );
    assert!(r.findings.iter().any(|f| f.value == "CN00000002"));
    for n in 0..tdhd.len() {
        let _ = run(&jpeg(&[seg(0xe6, &tdhd[..n])], 8, 8));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes behind each new layout's header: a PixPro note (8b, 11, 12), an A100 Minolta
    /// block, Leaf PKTS data, a CR3 track's sample tables, RMETA, GPMF and TDHD segments. No
    /// panic, and the GPS fix or artist elsewhere in the file survives.
    #[test]
    fn the_new_layouts_take_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700), k in 0usize..3) {
        let (head, make, model): (&[u8], &str, &str) = [
            (&b"MM\0*\0\0\0\x08\0"[..], "Kodak", "PIXPRO AZ251"),
            (&b"II*\0\x08\0\0\0"[..], "JK Imaging, Ltd.", "KODAK PIXPRO S-1"),
            (&b"MM\0*\0\0\0\x08\0\0\0"[..], "JK Imaging, Ltd.", "KODAK PIXPRO AZ901"),
        ][k];
        let mut note = head.to_vec();
        note.extend_from_slice(&body);
        let r = run(&with_note(&[ascii(0x010f, make), ascii(0x0110, model)], &note));
        proptest::prop_assert!(has(&r, "gps"));
        let r = run(&sony_a100("DSLR-A100", &body));
        proptest::prop_assert!(has(&r, "gps"));
        let mut leaf = b"PKTS\0\0\0\x01".to_vec();
        leaf.extend_from_slice(&body);
        let r = run(&tiff_image(&[ascii(0x013b, "Jane Roe"), undefined(0x8606, &leaf)]));
        proptest::prop_assert!(value(&r, "Artist").as_deref() == Some("Jane Roe"));
        let mut trak = bx(b"hdlr", b"\0\0\0\0\0\0\0\0vide\0\0\0\0");
        trak.extend(bx(b"stbl", &body));
        let mut f = bx(b"ftyp", b"crx \0\0\0\x01crx isom");
        f.extend(bx(b"moov", &bx(b"trak", &bx(b"mdia", &trak))));
        let _ = run(&f);
        let exif = app1_exif(&tiff(&[ascii(0x013b, "Jane Roe")], &[], &[], &[]));
        let cut = &body[..body.len().min(600)];
        for sig in [&b"RMETA\0II\0\0\0\0\0\0\x0a\0"[..], b"GoPro\0", b"TDHD\x01\0\0\0"] {
            let mut p = sig.to_vec();
            p.extend_from_slice(cut);
            let marker = if sig.starts_with(b"RMETA") { 0xe5 } else { 0xe6 };
            let r = run(&jpeg(&[exif.clone(), seg(marker, &p)], 8, 8));
            proptest::prop_assert!(value(&r, "Artist").as_deref() == Some("Jane Roe"));
        }
    }
}
