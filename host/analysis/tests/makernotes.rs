//! Maker notes, privacy subset: generated notes in each maker's layout come back as findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::value;

use common::*;
use proofpix_analysis::{Analyzer, Options, Policy, Report};

fn analyze_exif(ifd0: &[E], exif: &[E]) -> Report {
    let t = tiff(ifd0, exif, &[], &[]);
    let a = Analyzer::new(Policy::default(), Options::default().with_show_values(true));
    a.analyze(&jpeg(&[app1_exif(&t)], 8, 8))
}

#[test]
fn canon_owner_and_body_serial_are_read_from_a_tiff_relative_note() {
    let ifd0 = [ascii(0x010f, "Canon")];
    let base = exif_values_at(&ifd0, 1);
    let mut note = Vec::new();
    write_ifd_based(
        &mut note,
        &[ascii(0x0009, "Jane Roe"), long(0x000c, 560_018_150)],
        0,
        base,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "OwnerName").as_deref(),
        Some("Jane Roe"),
        "{:#?}",
        r.findings
    );
    assert_eq!(value(&r, "SerialNumber").as_deref(), Some("560018150"));
}

#[test]
fn nikon_type3_notes_use_their_own_tiff_header() {
    let mut inner = b"II*\0\x08\0\0\0".to_vec();
    write_ifd_based(&mut inner, &[ascii(0x001d, "7012345")], 0, 0);
    let mut note = b"Nikon\0\x02\x10\0\0".to_vec();
    note.extend_from_slice(&inner);
    let r = analyze_exif(
        &[ascii(0x010f, "NIKON CORPORATION")],
        &[undefined(0x927c, &note)],
    );
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("7012345"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn fujifilm_face_recognition_names_are_people() {
    // FaceRecInfo: one record (offset, length) pointing at a 62-byte block whose name
    // length and offset sit at +30 and +34.
    let name = b"Mia";
    let mut rec = vec![0u8; 8];
    let block_at = 8u32;
    let mut block = vec![0u8; 62];
    block[30..34].copy_from_slice(&(name.len() as u32).to_le_bytes());
    block[34..38].copy_from_slice(&(8 + 62u32).to_le_bytes());
    rec[0..4].copy_from_slice(&block_at.to_le_bytes());
    rec[4..8].copy_from_slice(&62u32.to_le_bytes());
    rec.extend_from_slice(&block);
    rec.extend_from_slice(name);
    let mut note = b"FUJIFILM\x0c\0\0\0".to_vec();
    let base = 0;
    // Offsets are relative to the note start; the IFD begins at 12.
    let mut ifd = vec![0u8; 12];
    write_ifd_based(
        &mut ifd,
        &[ascii(0x0010, "FPX 12345"), undefined(0x4282, &rec)],
        0,
        base,
    );
    note.extend_from_slice(&ifd[12..]);
    let r = analyze_exif(&[ascii(0x010f, "FUJIFILM")], &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "Face1Name").as_deref(),
        Some("Mia"),
        "{:#?}",
        r.findings
    );
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("FPX 12345")
    );
}

#[test]
fn panasonic_baby_names_and_cities_are_reported() {
    let ifd0 = [ascii(0x010f, "Panasonic")];
    let base = exif_values_at(&ifd0, 1) + 12;
    let mut ifd = Vec::new();
    write_ifd_based(
        &mut ifd,
        &[ascii(0x0066, "Little Leo"), ascii(0x006d, "Osaka")],
        0,
        base,
    );
    let mut note = b"Panasonic\0\0\0".to_vec();
    note.extend_from_slice(&ifd);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    let baby = r
        .findings
        .iter()
        .find(|f| f.source.name == "BabyName")
        .unwrap();
    assert_eq!(baby.code, "person.baby_name");
    assert_eq!(value(&r, "City").as_deref(), Some("Osaka"));
}

#[test]
fn apple_content_identifier_links_a_photo_to_its_live_video() {
    // Apple notes are big-endian; build the IFD by hand: one ASCII entry.
    let id = b"1B2C3D4E-AAAA-BBBB-CCCC-1234567890AB\0";
    let mut e = Vec::new();
    e.extend_from_slice(&1u16.to_be_bytes());
    e.extend_from_slice(&0x0011u16.to_be_bytes());
    e.extend_from_slice(&2u16.to_be_bytes());
    e.extend_from_slice(&(id.len() as u32).to_be_bytes());
    e.extend_from_slice(&(14u32 + 2 + 12 + 4).to_be_bytes());
    e.extend_from_slice(&0u32.to_be_bytes());
    e.extend_from_slice(id);
    let mut note = b"Apple iOS\0\0\x01MM".to_vec();
    note.extend_from_slice(&e);
    let r = analyze_exif(&[ascii(0x010f, "Apple")], &[undefined(0x927c, &note)]);
    let f = r
        .findings
        .iter()
        .find(|f| f.source.name == "ContentIdentifier")
        .unwrap();
    assert_eq!(f.code, "unique_id.content_identifier");
}

/// Olympus::Equipment (maker-note tag 0x2010, a sub-IFD): body, internal and lens serials, in a
/// new-style "OLYMPUS\0II" note whose offsets count from the note's start.
#[test]
fn olympus_equipment_sub_ifd_serials() {
    let mut note = b"OLYMPUS\0II\x03\0".to_vec();
    // Main IFD at 12 with one entry (0x2010, LONG) = 2 + 12 + 4 bytes; Equipment follows at 30.
    write_ifd_based(&mut note, &[long(0x2010, 30)], 0, 0);
    assert_eq!(note.len(), 30);
    write_ifd_based(
        &mut note,
        &[
            ascii(0x0101, "BHP123456"),
            ascii(0x0102, "4111222333"),
            ascii(0x0202, "ABJ987654"),
            ascii(0x0302, "EX1234"),
            ascii(0x1003, "FL5678"),
        ],
        0,
        0,
    );
    let r = analyze_exif(
        &[ascii(0x010f, "OLYMPUS IMAGING CORP.")],
        &[undefined(0x927c, &note)],
    );
    for (name, want) in [
        ("SerialNumber", "BHP123456"),
        ("InternalSerialNumber", "4111222333"),
        ("LensSerialNumber", "ABJ987654"),
        ("ExtenderSerialNumber", "EX1234"),
        ("FlashSerialNumber", "FL5678"),
    ] {
        assert_eq!(
            value(&r, name).as_deref(),
            Some(want),
            "{name}: {:#?}",
            r.findings
        );
    }
    assert!(
        r.findings
            .iter()
            .all(|f| f.category.as_str() != "serial" || f.source.group == "Olympus"),
        "{:#?}",
        r.findings
    );
}

/// Motorola::Main: "MOT\0" header, IFD at 8, offsets from the note's start; 0x5501 serial.
#[test]
fn motorola_serial_number() {
    let mut note = b"MOT\0\0\0\0\0".to_vec();
    write_ifd_based(&mut note, &[ascii(0x5501, "TA12345678")], 0, 0);
    let r = analyze_exif(&[ascii(0x010f, "Motorola")], &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("TA12345678"),
        "{:#?}",
        r.findings
    );
}

/// Nikon::LocationInfo (0x0039): version, text encoding at byte 4, country code, POI level,
/// the place name from byte 9; a UTF-16 name when the encoding byte is 2.
#[test]
fn nikon_location_info_place_name() {
    for (enc, name) in [(1u8, "Kyoto Station"), (2u8, "Zürich HB")] {
        let mut li = b"0100".to_vec();
        li.push(enc);
        li.extend_from_slice(b"JPN\0");
        let text: Vec<u8> = if enc == 2 {
            name.encode_utf16().flat_map(u16::to_be_bytes).collect()
        } else {
            name.as_bytes().to_vec()
        };
        li.extend_from_slice(&text);
        li.resize(79, 0);
        let mut inner = b"II*\0\x08\0\0\0".to_vec();
        write_ifd_based(&mut inner, &[undefined(0x0039, &li)], 0, 0);
        let mut note = b"Nikon\0\x02\x10\0\0".to_vec();
        note.extend_from_slice(&inner);
        let r = analyze_exif(
            &[ascii(0x010f, "NIKON CORPORATION")],
            &[undefined(0x927c, &note)],
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.source.name == "Location")
            .unwrap_or_else(|| panic!("no Location: {:#?}", r.findings));
        assert_eq!(f.value, name);
        assert_eq!(f.category.as_str(), "location-text");
    }
}

/// Samsung::Type2 (an IFD with no header, offsets from the TIFF header): 0xa002 serial and
/// 0x0123 face name.
#[test]
fn samsung_type2_serial_and_face_name() {
    let ifd0 = [ascii(0x010f, "SAMSUNG"), ascii(0x0110, "NX300")];
    let base = exif_values_at(&ifd0, 1);
    let mut note = Vec::new();
    write_ifd_based(
        &mut note,
        &[ascii(0xa002, "R2AB12345C"), ascii(0x0123, "Grandma Kim")],
        0,
        base,
    );
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("R2AB12345C"),
        "{:#?}",
        r.findings
    );
    let face = r
        .findings
        .iter()
        .find(|f| f.source.name == "FaceName")
        .unwrap();
    assert_eq!(
        (face.value.as_str(), face.category.as_str()),
        ("Grandma Kim", "person")
    );
}

/// Pentax::Main in a "PENTAX \0II" note (offsets from the note's start): 0x0229 serial and
/// 0x022e artist.
#[test]
fn pentax_main_serial_and_artist() {
    let mut note = b"PENTAX \0II".to_vec();
    write_ifd_based(
        &mut note,
        &[ascii(0x0229, "4123456"), ascii(0x022e, "Pat Shooter")],
        0,
        0,
    );
    let r = analyze_exif(&[ascii(0x010f, "PENTAX")], &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "SerialNumber").as_deref(),
        Some("4123456"),
        "{:#?}",
        r.findings
    );
    let artist = r
        .findings
        .iter()
        .find(|f| f.source.name == "Artist" && f.source.group == "Pentax")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(
        (artist.value.as_str(), artist.category.as_str()),
        ("Pat Shooter", "author")
    );
}

/// CanonRaw::Main in a CRW file (a CIFF heap: values first, the entry table at the offset in
/// the heap's last four bytes): 0x0810 owner, and the 0x180b serial of an EOS model (10 digits).
/// exiftool 12.57 reads the same bytes as CanonRaw:OwnerName `Jane Roe`, SerialNumber `0560018150`.
#[test]
fn canon_raw_crw_owner_and_serial() {
    let mut file = b"II".to_vec();
    file.extend_from_slice(&26u32.to_le_bytes());
    file.extend_from_slice(b"HEAPCCDR");
    file.extend_from_slice(&[1, 0, 2, 0]);
    file.extend_from_slice(&[0u8; 8]);
    assert_eq!(file.len(), 26);
    let mut heap = Vec::new();
    let mut table: Vec<(u16, u32, u32)> = Vec::new();
    for (typ, val) in [
        (0x080au16, b"Canon\0Canon EOS 10D\0".to_vec()),
        (0x0810, b"Jane Roe\0".to_vec()),
        (0x180b, 560_018_150u32.to_le_bytes().to_vec()),
    ] {
        table.push((typ, val.len() as u32, heap.len() as u32));
        heap.extend_from_slice(&val);
    }
    let toff = heap.len() as u32;
    heap.extend_from_slice(&(table.len() as u16).to_le_bytes());
    for (typ, size, off) in table {
        heap.extend_from_slice(&typ.to_le_bytes());
        heap.extend_from_slice(&size.to_le_bytes());
        heap.extend_from_slice(&off.to_le_bytes());
    }
    heap.extend_from_slice(&toff.to_le_bytes());
    file.extend_from_slice(&heap);
    let r =
        Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&file);
    let get = |name: &str| {
        r.findings
            .iter()
            .find(|f| f.source.group == "CanonRaw" && f.source.name == name)
            .map(|f| (f.value.clone(), f.category.as_str().to_owned()))
    };
    assert_eq!(
        get("OwnerName"),
        Some(("Jane Roe".to_owned(), "owner".to_owned())),
        "{:#?}",
        r.findings
    );
    assert_eq!(
        get("SerialNumber"),
        Some(("0560018150".to_owned(), "serial".to_owned())),
        "{:#?}",
        r.findings
    );
}

/// Panasonic::Main's place tags: 0x006b State and 0x006d City, and 0x0025 internal serial.
#[test]
fn panasonic_state_city_and_internal_serial() {
    let ifd0 = [ascii(0x010f, "Panasonic")];
    let base = exif_values_at(&ifd0, 1) + 12;
    let mut ifd = Vec::new();
    write_ifd_based(
        &mut ifd,
        &[
            ascii(0x0025, "F541234567890"),
            ascii(0x006b, "Kyoto-fu"),
            ascii(0x006d, "Kyoto"),
        ],
        0,
        base,
    );
    let mut note = b"Panasonic\0\0\0".to_vec();
    note.extend_from_slice(&ifd);
    let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
    assert_eq!(
        value(&r, "State").as_deref(),
        Some("Kyoto-fu"),
        "{:#?}",
        r.findings
    );
    assert_eq!(value(&r, "City").as_deref(), Some("Kyoto"));
    assert_eq!(
        value(&r, "InternalSerialNumber").as_deref(),
        Some("F541234567890")
    );
}

/// Olympus::Main's own serials in an old-style "OLYMP\0" note (IFD at 8, offsets from the TIFF
/// header): 0x0404 SerialNumber; and 0x101a SerialNumber in a second note.
#[test]
fn olympus_main_serials() {
    for (tag, serial) in [(0x0404u16, "J12345678"), (0x101a, "K98765432")] {
        let ifd0 = [ascii(0x010f, "OLYMPUS OPTICAL CO.,LTD")];
        let base = exif_values_at(&ifd0, 1) + 8;
        let mut ifd = Vec::new();
        write_ifd_based(&mut ifd, &[ascii(tag, serial)], 0, base);
        let mut note = b"OLYMP\0\x01\0".to_vec();
        note.extend_from_slice(&ifd);
        let r = analyze_exif(&ifd0, &[undefined(0x927c, &note)]);
        assert_eq!(
            value(&r, "SerialNumber").as_deref(),
            Some(serial),
            "0x{tag:04x}: {:#?}",
            r.findings
        );
    }
}
