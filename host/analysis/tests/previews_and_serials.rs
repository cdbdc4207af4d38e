//! Issue 15, the part left after the first pass: HEIF image items (thumbnails and JPEG
//! previews), RAW preview pointers in IFDs and maker notes, and the serial-bearing maker-note
//! tables still unmet (Canon CameraInfo and SerialInfo, Phase One). Every structure is built
//! here from its specification or ExifTool's tag table, never copied from a corpus file; each
//! test also feeds a truncated or lying variant and expects a partial result with an error,
//! never a panic, and never the loss of another family's finding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::value;

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
    assert!(r.error.is_none(), "{:?} {:#?}", r.error, r.findings);
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

// ---------------------------------------------------------------------------------------------
// Maker-note serials

fn analyze_exif(ifd0: &[E], exif: &[E]) -> Report {
    run(&jpeg(&[app1_exif(&tiff(ifd0, exif, &[], &[]))], 8, 8))
}

/// A Phase One directory: header (`IIII` + `tag4`, or `MMMM` + `tag4`), the entries at 12,
/// then the values; every offset is relative to the directory's start. `entries` are
/// (tag, value bytes); `entry_size` 16 (main, with a format word) or 12 (SensorCalibration).
fn phaseone_dir(
    le: bool,
    tag4: &[u8; 4],
    entry_size: usize,
    entries: &[(u32, Vec<u8>)],
) -> Vec<u8> {
    let u32b = |x: u32| if le { x.to_le_bytes() } else { x.to_be_bytes() };
    let mut d = if le {
        b"IIII".to_vec()
    } else {
        b"MMMM".to_vec()
    };
    d.extend_from_slice(tag4);
    d.extend_from_slice(&u32b(12));
    d.extend_from_slice(&u32b(entries.len() as u32));
    d.extend_from_slice(&u32b(0));
    let mut values_at = 12 + 8 + entries.len() * entry_size;
    let mut values = Vec::new();
    for (tag, v) in entries {
        d.extend_from_slice(&u32b(*tag));
        if entry_size == 16 {
            d.extend_from_slice(&u32b(1));
        }
        d.extend_from_slice(&u32b(v.len() as u32));
        d.extend_from_slice(&u32b(values_at as u32));
        values.extend_from_slice(v);
        values_at += v.len();
    }
    d.extend_from_slice(&values);
    d
}

fn phaseone_note(le: bool) -> Vec<u8> {
    let (main_tag, cal_tag): (&[u8; 4], &[u8; 4]) = if le {
        (b"\x01waR", b"\x01\0\0\0")
    } else {
        (b"Raw\x01", b"\0\0\0\x01")
    };
    let cal = phaseone_dir(
        le,
        cal_tag,
        12,
        &[(0x0400, vec![0; 8]), (0x0407, b"EH021337\0".to_vec())],
    );
    phaseone_dir(
        le,
        main_tag,
        16,
        &[
            (0x0102, b"LD001234\0".to_vec()),
            (0x0105, vec![100, 0, 0, 0, 0, 0, 0, 0]),
            (0x0110, cal),
        ],
    )
}

#[test]
fn phase_one_maker_note_serials_in_both_byte_orders() {
    for le in [true, false] {
        let r = analyze_exif(
            &[ascii(0x010f, "Phase One")],
            &[undefined(0x927c, &phaseone_note(le))],
        );
        let mut serials: Vec<String> = r
            .findings
            .iter()
            .filter(|f| f.category.as_str() == "serial")
            .map(|f| format!("{} {}", f.source.tag, f.value))
            .collect();
        serials.sort();
        assert_eq!(
            serials,
            ["0x0102 LD001234", "0x0407 EH021337"],
            "le {le}: {:#?}",
            r.findings
        );
        assert!(r.error.is_none(), "{:?} {:#?}", r.error, r.findings);
    }
}

#[test]
fn an_iiq_file_whose_exif_does_not_point_at_its_note_is_still_read() {
    // TIFF header, the note at 8 (as IIQ files have it), then IFD0 with only a Make.
    let note = phaseone_note(true);
    let ifd_at = 8 + note.len() as u32;
    let mut f = b"II*\0".to_vec();
    f.extend_from_slice(&ifd_at.to_le_bytes());
    f.extend_from_slice(&note);
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, &[ascii(0x010f, "Phase One")], 0, ifd_at as usize);
    f.extend_from_slice(&ifd);
    let r = run(&f);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("LD001234"),
        "{:#?}",
        r.findings
    );
    // Read once, even though both paths could reach it.
    assert_eq!(
        r.findings.iter().filter(|f| f.value == "LD001234").count(),
        1
    );
}

#[test]
fn a_lying_phase_one_note_costs_an_error_not_the_gps_fix() {
    let gps = gps_entries((48, 51, 0), true, (2, 21, 0), true);
    // 1. The SensorCalibration offset points far outside the note: the main serial stays.
    let mut note = phaseone_note(true);
    let cal_entry = 12 + 8 + 2 * 16;
    note[cal_entry + 12..cal_entry + 16].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let t = tiff(
        &[ascii(0x010f, "Phase One")],
        &[undefined(0x927c, &note)],
        &gps,
        &[],
    );
    let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("LD001234"));
    assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("PhaseOne"),
        "{:?}",
        r.error
    );
    // 2. An entry count of 5000, and every truncation: partial results, no panic, GPS kept.
    let mut note = phaseone_note(false);
    note[12..16].copy_from_slice(&5000u32.to_be_bytes());
    let t = tiff(
        &[ascii(0x010f, "Phase One")],
        &[undefined(0x927c, &note)],
        &gps,
        &[],
    );
    let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("entry count"),
        "{:?}",
        r.error
    );
    let note = phaseone_note(true);
    for n in 0..note.len() {
        let t = tiff(
            &[ascii(0x010f, "Phase One")],
            &[undefined(0x927c, &note[..n])],
            &gps,
            &[],
        );
        let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
        assert!(
            r.findings.iter().any(|f| f.category.as_str() == "gps"),
            "cut at {n}"
        );
    }
}

#[test]
fn canon_5ds_lens_serial_from_camera_info_unknown() {
    let mut info = vec![0u8; 0x200];
    info[0x16b..0x170].copy_from_slice(&[0, 0, 0x98, 0x76, 0x54]);
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 5DS R")];
    let base = exif_values_at(&ifd0, 1);
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, &[undefined(0x000d, &info)], 0, base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &ifd)]);
    assert!(
        value(&r, "LensSerialNumber").is_some_and(|v| v.contains("987654")),
        "{:#?}",
        r.findings
    );
    // A model with its own table (or none) does not read those bytes as a serial.
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS R5")];
    let base = exif_values_at(&ifd0, 1);
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, &[undefined(0x000d, &info)], 0, base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &ifd)]);
    assert!(value(&r, "LensSerialNumber").is_none(), "{:#?}", r.findings);
    // A 5DS block cut before the serial: an error, the rest of the note still read.
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 5DS")];
    let base = exif_values_at(&ifd0, 1);
    let mut ifd = Vec::new();
    write_ifd_based(
        &mut ifd,
        &[undefined(0x000d, &info[..0x100]), ascii(0x0009, "Kim Ode")],
        0,
        base,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &ifd)]);
    assert_eq!(value(&r, "OwnerName").as_deref(), Some("Kim Ode"));
    assert!(value(&r, "LensSerialNumber").is_none());
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("outside its block"),
        "{:?}",
        r.error
    );
}

#[test]
fn canon_5d_internal_serial_sits_nine_bytes_into_serial_info() {
    let mut block = vec![0u8, 1, 0, 0, 0, 0, 0, 0, 0];
    block.extend_from_slice(b"0620104488\0\0");
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 5D")];
    let base = exif_values_at(&ifd0, 1);
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, &[undefined(0x0096, &block)], 0, base);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &ifd)]);
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("0620104488"),
        "{:#?}",
        r.findings
    );
    // Other models: the text itself, trailing 0xff padding dropped.
    let ifd0 = [ascii(0x010f, "Canon"), ascii(0x0110, "Canon EOS 500D")];
    let base = exif_values_at(&ifd0, 1);
    let mut ifd = Vec::new();
    write_ifd_based(
        &mut ifd,
        &[undefined(0x0096, b"HA0123456\xff\xff\xff")],
        0,
        base,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &ifd)]);
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("HA0123456")
    );
}

// ---------------------------------------------------------------------------------------------
// RAW and maker-note previews

/// A small JPEG standing for a preview (SOI, SOF0 64x48, padding, EOI).
fn preview_bytes() -> Vec<u8> {
    tiny_jpeg(64, 48, 200)
}

/// A maker note: `header`, an IFD, then a preview. `note_at` is the note's position relative
/// to the origin its offsets count from (the TIFF header: the note's position in the EXIF; the
/// note itself: 0); `entries(preview_offset, preview_len)` builds the IFD.
fn note_with_preview(
    header: &[u8],
    note_at: isize,
    entries: impl Fn(u32, u32) -> Vec<E>,
) -> Vec<u8> {
    let pv = preview_bytes();
    let ifd_base = (note_at + header.len() as isize) as usize;
    let mut probe = Vec::new();
    write_ifd_based(&mut probe, &entries(0, 0), 0, ifd_base);
    let at = (ifd_base + probe.len()) as u32;
    let mut ifd = Vec::new();
    write_ifd_based(&mut ifd, &entries(at, pv.len() as u32), 0, ifd_base);
    assert_eq!(ifd.len(), probe.len());
    let mut note = header.to_vec();
    note.extend_from_slice(&ifd);
    note.extend_from_slice(&pv);
    note
}

fn previews(r: &Report) -> Vec<String> {
    let mut v = names(r, "thumbnail");
    v.sort();
    v
}

#[test]
fn olympus_and_pentax_preview_pointers_in_the_main_maker_note_ifd() {
    // Old Olympus notes ("OLYMP\0", IFD at 8, TIFF-relative offsets): 0x1036/0x1037 and
    // 0x0088/0x0089 are listed in the generated Olympus::Main rows, not the hand table.
    for (start, len) in [(0x1036u16, 0x1037u16), (0x0088, 0x0089)] {
        let ifd0 = [
            ascii(0x010f, "OLYMPUS OPTICAL CO.,LTD"),
            ascii(0x0110, "E-10"),
        ];
        let at = exif_values_at(&ifd0, 1) as isize;
        let note = note_with_preview(b"OLYMP\0\x01\0", at, |o, l| {
            vec![long(start, o), long(len, l)]
        });
        let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
        assert_eq!(
            previews(&r),
            ["Olympus:PreviewImage"],
            "0x{start:04x}: {:#?}",
            r.findings
        );
        assert!(r.error.is_none(), "{:?} {:#?}", r.error, r.findings);
    }
    // Pentax "AOC\0" notes: 0x0004 start, 0x0003 length, TIFF-relative.
    let ifd0 = [
        ascii(0x010f, "PENTAX Corporation"),
        ascii(0x0110, "PENTAX K10D"),
    ];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"AOC\0II", at, |o, l| {
        vec![long(0x0004, o), long(0x0003, l)]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(previews(&r), ["Pentax:PreviewImage"], "{:#?}", r.findings);
}

#[test]
fn sigma_notes_hold_two_preview_pairs_under_the_same_names() {
    let ifd0 = [ascii(0x010f, "SIGMA"), ascii(0x0110, "SIGMA SD14")];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"SIGMA\0\0\0\x01\0", at, |o, l| {
        vec![
            long(0x001a, o),
            long(0x001b, l),
            // The second pair: the same image's second half.
            long(0x001c, o + l / 2),
            long(0x001d, l / 2),
        ]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        previews(&r),
        ["Sigma:PreviewImage", "Sigma:PreviewImage"],
        "{:#?}",
        r.findings
    );
}

#[test]
fn sony_ericsson_phone_note_preview() {
    // "SEMC MS\0": IFD at 20, offsets relative to the note + 12.
    let ifd0 = [ascii(0x010f, "Sony Ericsson"), ascii(0x0110, "K850i")];
    let mut header = b"SEMC MS\0".to_vec();
    header.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0]);
    let note = note_with_preview(&header, -12, |o, l| vec![long(0x0201, o), long(0x0202, l)]);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(previews(&r), ["Sony:PreviewImage"], "{:#?}", r.findings);
}

#[test]
fn ricoh_image_info_block_preview() {
    // Ricoh::ImageInfo (tag 0x1001): int16u start at byte 28, length at 30, TIFF-relative.
    let ifd0 = [ascii(0x010f, "RICOH"), ascii(0x0110, "Caplio RR30")];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"Ricoh\0\0\0", at, |o, l| {
        let mut block = vec![0u8; 32];
        block[28..30].copy_from_slice(&(o as u16).to_le_bytes());
        block[30..32].copy_from_slice(&(l as u16).to_le_bytes());
        vec![undefined(0x1001, &block)]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(previews(&r), ["Ricoh:PreviewImage"], "{:#?}", r.findings);
    // The GR's 0x1001 is a single int16u (ExposureProgram): not a block, nothing read.
    let note = note_with_preview(b"Ricoh\0\0\0", at, |_, _| vec![short(0x1001, 3)]);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert!(previews(&r).is_empty());
    assert!(r.error.is_none(), "{:?} {:#?}", r.error, r.findings);
}

#[test]
fn nikon_preview_ifd_inside_a_type3_note() {
    // "Nikon\0\x02\x10\0\0", then the note's own TIFF header: PreviewIFD (0x0011) holds
    // 0x0201/0x0202 relative to that header.
    let pv = preview_bytes();
    let mut inner = b"II*\0\x08\0\0\0".to_vec();
    let main = |pifd: u32| vec![(0x0011u16, 13u16, 1u32, pifd.to_le_bytes().to_vec())];
    let mut probe = Vec::new();
    write_ifd_based(&mut probe, &main(0), 0, 8);
    let pifd_at = 8 + probe.len();
    write_ifd_based(&mut inner, &main(pifd_at as u32), 0, 0);
    let pentries = |o: u32| vec![long(0x0201, o), long(0x0202, pv.len() as u32)];
    let mut pprobe = Vec::new();
    write_ifd_based(&mut pprobe, &pentries(0), 0, pifd_at);
    let pv_at = pifd_at + pprobe.len();
    write_ifd_based(&mut inner, &pentries(pv_at as u32), 0, 0);
    inner.extend_from_slice(&pv);
    let mut note = b"Nikon\0\x02\x10\0\0".to_vec();
    note.extend_from_slice(&inner);
    let ifd0 = [
        ascii(0x010f, "NIKON CORPORATION"),
        ascii(0x0110, "NIKON D850"),
    ];
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        previews(&r),
        ["PreviewIFD:PreviewImage"],
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_preview_pointer_outside_the_data_costs_an_error_not_the_gps_fix() {
    let ifd0 = [
        ascii(0x010f, "OLYMPUS OPTICAL CO.,LTD"),
        ascii(0x0110, "E-10"),
    ];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"OLYMP\0\x01\0", at, |_, _| {
        vec![long(0x1036, 0x7fff_0000), long(0x1037, 5000)]
    });
    let gps = gps_entries((48, 51, 0), true, (2, 21, 0), true);
    let t = tiff(&ifd0, &[undefined(0x927c, &note)], &gps, &[]);
    let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
    assert!(previews(&r).is_empty(), "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
    assert!(
        r.error.as_deref().unwrap_or("").contains("outside"),
        "{:?}",
        r.error
    );
    // A start with no length, and a Sigma pair cut short by the note's end: no image, no panic.
    let ifd0 = [ascii(0x010f, "SIGMA"), ascii(0x0110, "SIGMA SD14")];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"SIGMA\0\0\0\x01\0", at, |o, _| vec![long(0x001a, o)]);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert!(previews(&r).is_empty());
    let note = note_with_preview(b"SIGMA\0\0\0\x01\0", at, |o, l| {
        vec![long(0x001a, o), long(0x001b, l)]
    });
    for n in 0..note.len() {
        let _ = analyze_exif(&ifd0, &[undefined(0x927c, &note[..n])]);
    }
}

#[test]
fn raw_ifd_previews_by_exiftool_names() {
    // A DNG-like TIFF: IFD0 the reduced preview (JPEG strips), SubIFD1 the raw, SubIFD2 a lossy
    // (34892) semantic matte that ExifTool calls OtherImage.
    let t = tiff_image(&[long(0x00fe, 1), short(0x0103, 7), long(0x014a, 0)]);
    let at = t.len() as u32;
    let mut t = t;
    // Two SubIFDs: the raw (SubfileType 0) and the matte.
    let pix = [0u8; 64];
    let sub = |strip: u32, subfile: u32, comp: u16| {
        vec![
            long(0x00fe, subfile),
            long(0x0100, 4),
            long(0x0101, 4),
            short(0x0103, comp),
            long(0x0111, strip),
            long(0x0117, 32),
        ]
    };
    let mut probe = Vec::new();
    write_ifd_based(&mut probe, &sub(0, 0, 7), 0, 0);
    let sub1_at = at + 8; // after the two-pointer array
    let sub2_at = sub1_at + probe.len() as u32;
    let pix_at = sub2_at + probe.len() as u32;
    t.extend_from_slice(&sub1_at.to_le_bytes());
    t.extend_from_slice(&sub2_at.to_le_bytes());
    write_ifd_based(&mut t, &sub(pix_at, 0, 7), 0, 0);
    write_ifd_based(&mut t, &sub(pix_at + 32, 4, 34892), 0, 0);
    t.extend_from_slice(&pix);
    // Point IFD0's SubIFDs entry (count 2) at the array.
    let n = u16::from_le_bytes([t[8], t[9]]) as usize;
    for i in 0..n {
        let p = 10 + 12 * i;
        if u16::from_le_bytes([t[p], t[p + 1]]) == 0x014a {
            t[p + 4..p + 8].copy_from_slice(&2u32.to_le_bytes());
            t[p + 8..p + 12].copy_from_slice(&at.to_le_bytes());
        }
    }
    let r = run(&t);
    let got = previews(&r);
    assert!(
        got.contains(&"SubIFD2:OtherImage".to_owned()),
        "{got:?} {:#?}",
        r.findings
    );
    assert!(got.contains(&"IFD0:PreviewImage".to_owned()), "{got:?}");
    // The full-resolution raw (SubfileType 0) is not a preview.
    assert!(!got.iter().any(|g| g.starts_with("SubIFD1")), "{got:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any bytes behind each new parser's signature: a Phase One directory (both kinds), a
    /// HEIF `iref` box, a Sony Ericsson or Sigma note, a Ricoh ImageInfo block, an HP text note. No panic, and
    /// the GPS fix beside the maker note survives.
    #[test]
    fn new_parsers_take_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), k in 0usize..6) {
        let gps = gps_entries((48, 51, 0), true, (2, 21, 0), true);
        let (make, head): (&str, &[u8]) = [
            ("Phase One", &b"IIII\x01waR"[..]),
            ("Phase One", &b"MMMMRaw\x01"[..]),
            ("Sony Ericsson", &b"SEMC MS\0"[..]),
            ("SIGMA", &b"SIGMA\0\0\0\x01\0"[..]),
            ("RICOH", &b"Ricoh\0\0\0"[..]),
            ("Hewlett-Packard", &b"610\0"[..]),
        ][k];
        let mut note = head.to_vec();
        note.extend_from_slice(&body);
        let t = tiff(&[ascii(0x010f, make)], &[undefined(0x927c, &note)], &gps, &[]);
        let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
        proptest::prop_assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
        let mut f = heif(&[(2, b"hvc1", vec![1; 8])], &[(b"thmb", 2, 1)]);
        let p = f.windows(4).position(|w| w == b"iref").unwrap();
        let end = p + 4 + u32::from_be_bytes([f[p - 4], f[p - 3], f[p - 2], f[p - 1]]) as usize - 8;
        f.splice(p + 8..end, body.iter().copied());
        let r = run(&f);
        proptest::prop_assert!(!r.error.as_deref().unwrap_or("").contains("internal error"));
    }
}

#[test]
fn kodak_type8_camera_info_and_sub_ifd0_serials() {
    let ifd0 = [
        ascii(0x010f, "EASTMAN KODAK COMPANY"),
        ascii(0x0110, "KODAK Z1015 IS"),
    ];
    let at = exif_values_at(&ifd0, 1);
    // SubIFD0 held in place (UNDEFINED), its value offsets counted from its own start.
    let mut sub0 = Vec::new();
    write_ifd_based(&mut sub0, &[ascii(0xfa19, "KCKAM90123456")], 0, 0);
    // The main IFD (MakerNoteKodak8a: a bare IFD, TIFF-relative offsets); CameraInfo
    // (0xff00) points past it at an IFD holding 0xfa04.
    let main = |ci: u32| vec![undefined(0xfc00, &sub0), long(0xff00, ci)];
    let mut probe = Vec::new();
    write_ifd_based(&mut probe, &main(0), 0, at);
    let ci_at = at + probe.len();
    let mut note = Vec::new();
    write_ifd_based(&mut note, &main(ci_at as u32), 0, at);
    write_ifd_based(&mut note, &[ascii(0xfa04, "KCXFF1234567")], 0, at);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    let mut serials: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.category.as_str() == "serial")
        .map(|f| f.value.clone())
        .collect();
    serials.sort();
    assert_eq!(
        serials,
        ["KCKAM90123456", "KCXFF1234567"],
        "{:?} {:#?}",
        r.error,
        r.findings
    );

    // MakerNoteKodak8c: the same IFD behind a TIFF header, offsets from the note's start.
    let mut note = b"II*\0\x08\0\0\0".to_vec();
    write_ifd_based(&mut note, &[undefined(0xfc00, &sub0)], 0, 0);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("KCKAM90123456"),
        "{:#?}",
        r.findings
    );

    // CameraInfo pointing outside the EXIF: an error; SubIFD0's serial and the GPS fix stay.
    let mut note = Vec::new();
    write_ifd_based(&mut note, &main(0x7fff_0000), 0, at);
    let gps = gps_entries((48, 51, 0), true, (2, 21, 0), true);
    let t = tiff(&ifd0, &[undefined(0x927c, &note)], &gps, &[]);
    let r = run(&jpeg(&[app1_exif(&t)], 8, 8));
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("KCKAM90123456"));
    assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
    assert!(r.error.is_some());
}

#[test]
fn a_cr2_raw_ifd_with_slices_is_not_a_thumbnail() {
    // IFD0 a full-size image; IFD1 lossless-JPEG (compression 6) strips carrying CR2Slice
    // (0xc640): Canon's raw sensor data, which ExifTool does not extract as an image.
    let page = |extra: &[E]| {
        let t = tiff_image(&[]);
        let mut ifd1: Vec<E> = vec![short(0x0103, 6), long(0x0111, 8), long(0x0117, 4)];
        ifd1.extend_from_slice(extra);
        let at = t.len();
        let mut b = Vec::new();
        write_ifd_based(&mut b, &ifd1, 0, at);
        let mut t = t;
        let n = u16::from_le_bytes([t[8], t[9]]) as usize;
        let p = 10 + 12 * n;
        t[p..p + 4].copy_from_slice(&(at as u32).to_le_bytes());
        t.extend_from_slice(&b);
        t
    };
    let slices = (0xc640u16, 3u16, 3u32, vec![1, 0, 0x10, 0, 0x10, 0]);
    let r = run(&page(&[slices]));
    assert!(previews(&r).is_empty(), "{:#?}", r.findings);
    // Without the slices, the same IFD stays a thumbnail as before.
    assert_eq!(previews(&run(&page(&[]))), ["IFD1:ThumbnailImage"]);
}

#[test]
fn olympus_camera_settings_preview_relative_to_the_note() {
    // "OLYMPUS\0II\x03\0": IFD at 12, offsets from the note's start; CameraSettings (0x2020, an
    // IFD pointer) holds PreviewImageStart/Length (0x0101/0x0102), as in ORF files.
    let pv = preview_bytes();
    let header = b"OLYMPUS\0II\x03\0".to_vec();
    let main = |cs: u32| vec![(0x2020u16, 13u16, 1u32, cs.to_le_bytes().to_vec())];
    let mut probe = Vec::new();
    write_ifd_based(&mut probe, &main(0), 0, 12);
    let cs_at = 12 + probe.len();
    let settings = |o: u32| vec![long(0x0101, o), long(0x0102, pv.len() as u32)];
    let mut probe2 = Vec::new();
    write_ifd_based(&mut probe2, &settings(0), 0, cs_at);
    let pv_at = cs_at + probe2.len();
    let mut note = header;
    write_ifd_based(&mut note, &main(cs_at as u32), 0, 0);
    write_ifd_based(&mut note, &settings(pv_at as u32), 0, 0);
    note.extend_from_slice(&pv);
    let ifd0 = [
        ascii(0x010f, "OLYMPUS IMAGING CORP."),
        ascii(0x0110, "E-M5"),
    ];
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(previews(&r), ["Olympus:PreviewImage"], "{:#?}", r.findings);
    // The same note cut inside the preview: in EXIF (unlike a TIFF file's own IFDs) the missing
    // bytes are not a truncated image but a pointer outside the data, so an error, no image.
    let cut = &note[..note.len() - 50];
    let r = analyze_exif(&ifd0, &[undefined(0x927c, cut)]);
    assert!(previews(&r).is_empty());
    assert!(
        r.error.as_deref().unwrap_or("").contains("outside"),
        "{:?}",
        r.error
    );
}

#[test]
fn canon_preview_image_info_points_at_the_cr2_preview() {
    // Canon notes have no header; offsets are TIFF-relative. 0x00b6 PreviewImageInfo: int32u
    // words 1 quality, 2 length, 3 width, 4 height, 5 start.
    let ifd0 = [
        ascii(0x010f, "Canon"),
        ascii(0x0110, "Canon EOS 350D DIGITAL"),
    ];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"", at, |o, l| {
        let mut words = Vec::new();
        for w in [24u32, 3, l, 64, 48, o] {
            words.extend_from_slice(&w.to_le_bytes());
        }
        vec![(0x00b6, 4, 6, words)]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(previews(&r), ["Canon:PreviewImage"], "{:#?}", r.findings);
}

#[test]
fn panasonic_rw2_jpg_from_raw_and_its_own_exif() {
    // RW2: a TIFF header with magic 0x55; IFD0 tag 0x002e holds a whole JPEG with its EXIF.
    let inner = jpeg(
        &[app1_exif(&tiff(&[ascii(0x013b, "Rui Ota")], &[], &[], &[]))],
        8,
        8,
    );
    let mut t = tiff(
        &[ascii(0x010f, "Panasonic"), undefined(0x002e, &inner)],
        &[],
        &[],
        &[],
    );
    t[2] = 0x55;
    let r = run(&t);
    assert_eq!(previews(&r), ["IFD0:JpgFromRaw"], "{:#?}", r.findings);
    assert_eq!(value(&r, "Artist").as_deref(), Some("Rui Ota"));
    // The tag's count claims more than the file holds: an error, no panic, Make still read.
    let p = t.windows(2).position(|w| w == [0x2e, 0x00]).unwrap();
    t[p + 4..p + 8].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let r = run(&t);
    assert!(r.findings.iter().any(|f| f.source.name == "Make"));
    assert!(r.error.is_some());
}

#[test]
fn hp_type2_text_note_serial_and_preview() {
    // "610\0" + text + a JPEG preview (ExifTool's MakerNoteHP2, read by scanning).
    let mut note = b"610\0\0\0Lens Shading: 1\nSERIAL NUMBER:  SG6230B2XK\0\0\0".to_vec();
    let mut pv = vec![0xff, 0xd8, 0xff, 0xdb, 0, 4, 0, 0];
    pv.extend_from_slice(&[7u8; 100]);
    pv.extend_from_slice(&[0xff, 0xd9]);
    note.extend_from_slice(&pv);
    note.extend_from_slice(&[0u8; 16]);
    let ifd0 = [
        ascii(0x010f, "Hewlett-Packard"),
        ascii(0x0110, "HP PhotoSmart E427"),
    ];
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("SG6230B2XK"),
        "{:#?}",
        r.findings
    );
    assert_eq!(previews(&r), ["HP:PreviewImage"]);
    // A preview with no end marker and no serial: nothing, and no panic.
    let r = analyze_exif(
        &ifd0,
        &[undefined(0x927c, b"610\x01\xff\xd8\xff\xdb no end")],
    );
    assert!(previews(&r).is_empty() && value(&r, "SerialNumber").is_none());
}

#[test]
fn kodak_dcr_textual_info_serial() {
    // IFD0 tag 0x8290 points at a Kodak IFD whose 0x03f1 holds "key: value" lines.
    let t = tiff_image(&[long(0x8290, 0)]);
    let at = t.len();
    let mut sub = Vec::new();
    write_ifd_based(
        &mut sub,
        &[undefined(
            0x03f1,
            b"Camera: DCS Pro 14N\r\nSerial Number: K141234\r\nOwner:\0junk",
        )],
        0,
        at,
    );
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
        value(&r, "SerialNumber").as_deref(),
        Some("K141234"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn sony_a7_ii_internal_serial_sits_at_0x7c_of_the_enciphered_block() {
    // Tag9050a for the ILCE-7M2: int8u[4] at 0x7c, each byte enciphered as b^3 mod 249.
    let enc = |b: u64| ((b * b * b) % 249) as u8;
    let mut block = vec![0u8; 0x100];
    for (i, b) in [0x12u64, 0x34, 0x56, 0x78].into_iter().enumerate() {
        block[0x7c + i] = enc(b);
    }
    // Something else at 0x88, where newer bodies keep theirs.
    block[0x88] = enc(0x99);
    let ifd0 = [ascii(0x010f, "SONY"), ascii(0x0110, "ILCE-7M2")];
    let at = exif_values_at(&ifd0, 1) as isize;
    let note = note_with_preview(b"SONY DSC \0\0\0", at, |_, _| {
        vec![undefined(0x9050, &block)]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("18 52 86 120"),
        "{:#?}",
        r.findings
    );
    // A block cut before the serial: an error, no serial.
    let note = note_with_preview(b"SONY DSC \0\0\0", at, |_, _| {
        vec![undefined(0x9050, &block[..0x70])]
    });
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert!(value(&r, "InternalSerialNumber").is_none());
    assert!(
        r.error.as_deref().unwrap_or("").contains("0x9050"),
        "{:?}",
        r.error
    );
}

#[test]
fn samsung_stmn_preview_in_the_jpeg_trailer() {
    // STMN notes: int32u word 2 is the preview's offset in the file, word 3 its length.
    let pv = preview_bytes();
    let ifd0 = [
        ascii(0x010f, "SAMSUNG TECHWIN"),
        ascii(0x0110, "Digimax V4"),
    ];
    let build = |start: u32, len: u32| {
        let mut note = b"STMN100\0".to_vec();
        note.extend_from_slice(&start.to_le_bytes());
        note.extend_from_slice(&len.to_le_bytes());
        note.extend_from_slice(&[0u8; 32]);
        jpeg(
            &[app1_exif(&tiff(
                &ifd0,
                &[undefined(0x927c, &note)],
                &[],
                &[],
            ))],
            8,
            8,
        )
    };
    let at = build(0, 0).len() as u32;
    let mut f = build(at, pv.len() as u32);
    f.extend_from_slice(&pv);
    let r = run(&f);
    assert!(
        previews(&r).contains(&"Samsung:PreviewImage".to_owned()),
        "{:#?}",
        r.findings
    );
    // Without a preview (MakerNoteSamsung1a: zero words) nothing; past the end, an error.
    assert!(!previews(&run(&build(0, 0))).contains(&"Samsung:PreviewImage".to_owned()));
    let r = run(&build(at, 0x7fff_0000));
    assert!(!previews(&r).contains(&"Samsung:PreviewImage".to_owned()));
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("outside the file"),
        "{:?}",
        r.error
    );
}
