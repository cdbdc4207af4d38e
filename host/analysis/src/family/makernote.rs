//! Maker notes, privacy subset: serial numbers, owner names, face and baby names, place names,
//! Apple's ContentIdentifier, and the previews makers hide in their notes.
//!
//! Threat model: maker notes are the least standard part of EXIF (libexif CVE-2016-6328,
//! CVE-2020-13114). Each maker's layout (header, where the IFD starts, what offsets are
//! relative to, byte order) comes from a small table; the IFD itself goes through the same
//! bounded walker as EXIF ([`Tiff::entries`]: entry cap, visited set, checked arithmetic).
//! Binary sub-structures (Canon preview info, Sony's enciphered 0x9050 block, Fujifilm face
//! records) are read with `get`-based helpers only. Any failure records an error and returns:
//! the caller's other IFDs (GPS among them) are unaffected.
//!
//! Only tags in the per-maker tables are decoded. Full maker-note coverage is ExifTool's job;
//! this module covers what can identify a person or a device. Tag ids follow ExifTool's tables.

use crate::ctx::Ctx;
use crate::family::tiff::{Data, Entry, Host, Tiff, ascii, u16_at, u32_at};
use crate::model::Family;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maker {
    Apple,
    Canon,
    Casio,
    Fujifilm,
    Minolta,
    Motorola,
    Nikon,
    Olympus,
    Panasonic,
    Pentax,
    Ricoh,
    Samsung,
    Sigma,
    Sony,
}

impl Maker {
    fn group(self) -> &'static str {
        match self {
            Maker::Apple => "Apple",
            Maker::Canon => "Canon",
            Maker::Casio => "Casio",
            Maker::Fujifilm => "FujiFilm",
            Maker::Minolta => "Minolta",
            Maker::Motorola => "Motorola",
            Maker::Nikon => "Nikon",
            Maker::Olympus => "Olympus",
            Maker::Panasonic => "Panasonic",
            Maker::Pentax => "Pentax",
            Maker::Ricoh => "Ricoh",
            Maker::Samsung => "Samsung",
            Maker::Sigma => "Sigma",
            Maker::Sony => "Sony",
        }
    }
}

/// How a tag's value is decoded.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Text (ASCII or UNDEFINED text).
    Text,
    /// Unsigned integer printed in decimal.
    Dec,
    /// The first n bytes as lowercase hex.
    Hex(usize),
    /// Preview start / length pair; the start is relative to the view the note's offsets use
    /// (the TIFF header or the note itself, per the maker's layout).
    PreviewStart,
    PreviewLen,
    /// An image stored inline as the tag value.
    Inline,
    /// A sub-IFD with its own table.
    SubIfd(&'static [(u16, &'static str, Kind)]),
    /// Maker-specific decoders.
    CanonPreviewInfo,
    CanonLensInfo,
    PentaxCameraInfo,
    Sony9050,
    FujiFaceRec,
    PanasonicFaceRec,
    RicohSerial,
    NikonPreviewIfd,
    NikonLocation,
}

type Table = &'static [(u16, &'static str, Kind)];

const APPLE: Table = &[
    (0x0011, "ContentIdentifier", Kind::Text),
    (0x0015, "ImageUniqueID", Kind::Text),
];
const CANON: Table = &[
    (0x0006, "ImageType", Kind::Text),
    (0x0009, "OwnerName", Kind::Text),
    (0x000c, "SerialNumber", Kind::Dec),
    (0x0028, "ImageUniqueID", Kind::Hex(16)),
    (0x0095, "LensModel", Kind::Text),
    (0x0096, "InternalSerialNumber", Kind::Text),
    (0x00b6, "PreviewImageInfo", Kind::CanonPreviewInfo),
    (0x4019, "LensInfo", Kind::CanonLensInfo),
];
const CASIO2: Table = &[
    (0x2000, "PreviewImage", Kind::Inline),
    (0x0004, "PreviewImageStart", Kind::PreviewStart),
    (0x0003, "PreviewImageLength", Kind::PreviewLen),
];
const FUJI: Table = &[
    (0x0010, "InternalSerialNumber", Kind::Text),
    (0x4282, "FaceRecInfo", Kind::FujiFaceRec),
];
const MINOLTA: Table = &[
    (0x0081, "ThumbnailImage", Kind::Inline),
    (0x0088, "PreviewImageStart", Kind::PreviewStart),
    (0x0089, "PreviewImageLength", Kind::PreviewLen),
];
const MOTOROLA: Table = &[(0x5501, "SerialNumber", Kind::Text)];
const NIKON: Table = &[
    (0x001d, "SerialNumber", Kind::Text),
    (0x00a0, "SerialNumber", Kind::Text),
    (0x0011, "PreviewIFD", Kind::NikonPreviewIfd),
    (0x0039, "LocationInfo", Kind::NikonLocation),
];
const OLYMPUS_EQUIPMENT: Table = &[
    (0x0101, "SerialNumber", Kind::Text),
    (0x0102, "InternalSerialNumber", Kind::Text),
    (0x0202, "LensSerialNumber", Kind::Text),
    (0x0203, "LensModel", Kind::Text),
];
const OLYMPUS_SETTINGS: Table = &[
    (0x0101, "PreviewImageStart", Kind::PreviewStart),
    (0x0102, "PreviewImageLength", Kind::PreviewLen),
];
const OLYMPUS: Table = &[
    (0x0100, "ThumbnailImage", Kind::Inline),
    (0x0280, "PreviewImage", Kind::Inline),
    (0x0404, "SerialNumber", Kind::Text),
    (0x101a, "SerialNumber", Kind::Text),
    (0x2010, "Equipment", Kind::SubIfd(OLYMPUS_EQUIPMENT)),
    (0x2020, "CameraSettings", Kind::SubIfd(OLYMPUS_SETTINGS)),
];
const PANASONIC: Table = &[
    (0x0025, "InternalSerialNumber", Kind::Text),
    (0x0051, "LensModel", Kind::Text),
    (0x0052, "LensSerialNumber", Kind::Text),
    (0x0061, "FaceRecInfo", Kind::PanasonicFaceRec),
    (0x0065, "Title", Kind::Text),
    (0x0066, "BabyName", Kind::Text),
    (0x0067, "Location", Kind::Text),
    (0x0069, "Country", Kind::Text),
    (0x006b, "State", Kind::Text),
    (0x006d, "City", Kind::Text),
    (0x006f, "Landmark", Kind::Text),
];
const PENTAX: Table = &[
    (0x0003, "PreviewImageLength", Kind::PreviewLen),
    (0x0004, "PreviewImageStart", Kind::PreviewStart),
    (0x0215, "CameraInfo", Kind::PentaxCameraInfo),
    (0x0229, "SerialNumber", Kind::Text),
    (0x022e, "Artist", Kind::Text),
    (0x022f, "Copyright", Kind::Text),
];
const RICOH: Table = &[(0x0005, "SerialNumber", Kind::RicohSerial)];
const SAMSUNG: Table = &[
    (0x0123, "FaceName", Kind::Text),
    (0xa002, "SerialNumber", Kind::Text),
    (0xa005, "InternalLensSerialNumber", Kind::Text),
];
const SIGMA: Table = &[
    (0x0002, "SerialNumber", Kind::Text),
    (0x0029, "PreviewImage", Kind::Inline),
];
const SONY: Table = &[
    (0x2031, "SerialNumber", Kind::Text),
    (0x9050, "Tag9050", Kind::Sony9050),
];

fn table(m: Maker) -> Table {
    match m {
        Maker::Apple => APPLE,
        Maker::Canon => CANON,
        Maker::Casio => CASIO2,
        Maker::Fujifilm => FUJI,
        Maker::Minolta => MINOLTA,
        Maker::Motorola => MOTOROLA,
        Maker::Nikon => NIKON,
        Maker::Olympus => OLYMPUS,
        Maker::Panasonic => PANASONIC,
        Maker::Pentax => PENTAX,
        Maker::Ricoh => RICOH,
        Maker::Samsung => SAMSUNG,
        Maker::Sigma => SIGMA,
        Maker::Sony => SONY,
    }
}

/// Where the note's IFD is and what its offsets are relative to.
#[derive(Debug, Clone, Copy)]
struct Layout {
    maker: Maker,
    /// IFD offset relative to the start of the note.
    ifd: u64,
    /// `None`: offsets relative to the enclosing TIFF header; `Some(k)`: relative to note + k.
    base: Option<u64>,
    /// `None`: detect; `Some(true)`: little-endian.
    le: Option<bool>,
    /// For Nikon type 3: the note holds its own TIFF header at this offset.
    own_tiff: Option<u64>,
}

fn layout(head: &[u8], make: &str) -> Option<Layout> {
    let l = |maker, ifd, base, le| {
        Some(Layout {
            maker,
            ifd,
            base,
            le,
            own_tiff: None,
        })
    };
    let mk = make.to_ascii_uppercase();
    if head.starts_with(b"Apple iOS\0") {
        let le = match head.get(12..14) {
            Some(b"II") => Some(true),
            Some(b"MM") => Some(false),
            _ => None,
        };
        return l(Maker::Apple, 14, Some(0), le);
    }
    if head.starts_with(b"Nikon\0\x02") {
        return Some(Layout {
            maker: Maker::Nikon,
            ifd: 0,
            base: Some(10),
            le: None,
            own_tiff: Some(10),
        });
    }
    if head.starts_with(b"Nikon\0\x01") {
        return l(Maker::Nikon, 8, None, None);
    }
    if head.starts_with(b"FUJIFILM") || head.starts_with(b"GENERALE") {
        let ifd = u32_at(head, 8, true)?;
        return l(Maker::Fujifilm, u64::from(ifd), Some(0), Some(true));
    }
    if head.starts_with(b"OLYMPUS\0") {
        return l(Maker::Olympus, 12, Some(0), None);
    }
    if head.starts_with(b"OM SYSTEM\0") {
        return l(Maker::Olympus, 16, Some(0), None);
    }
    if head.starts_with(b"OLYMP\0") || head.starts_with(b"EPSON\0") {
        return l(Maker::Olympus, 8, None, None);
    }
    if head.starts_with(b"Panasonic\0") {
        return l(Maker::Panasonic, 12, None, None);
    }
    if head.starts_with(b"AOC\0") {
        // "AOC\0" + byte order ("II"/"MM") or two spaces; offsets relative to the TIFF header
        // for old models, to the note for newer ones; ExifTool guesses. We try the note first.
        return l(Maker::Pentax, 6, None, None);
    }
    if head.starts_with(b"PENTAX \0") {
        return l(Maker::Pentax, 10, Some(0), None);
    }
    if head.starts_with(b"RICOH\0II") || head.starts_with(b"RICOH\0MM") {
        return l(Maker::Pentax, 8, Some(0), None);
    }
    if head.starts_with(b"SONY DSC ")
        || head.starts_with(b"SONY CAM ")
        || head.starts_with(b"SONY MOBILE")
    {
        return l(Maker::Sony, 12, None, None);
    }
    if head.starts_with(b"SIGMA\0") || head.starts_with(b"FOVEON\0") {
        return l(Maker::Sigma, 10, None, None);
    }
    if head.starts_with(b"QVC\0") || head.starts_with(b"DCI\0") {
        return l(Maker::Casio, 6, None, None);
    }
    if head.starts_with(b"MOT\0") {
        return l(Maker::Motorola, 8, Some(0), None);
    }
    if (head.starts_with(b"Ricoh") || head.starts_with(b"RICOH"))
        && (mk.starts_with("RICOH") || mk.starts_with("PENTAX RICOH"))
    {
        return l(Maker::Ricoh, 8, None, None);
    }
    if mk.starts_with("CANON") {
        return l(Maker::Canon, 0, None, None);
    }
    if mk.starts_with("NIKON") {
        return l(Maker::Nikon, 0, None, None);
    }
    if mk.starts_with("SAMSUNG") {
        return l(Maker::Samsung, 0, None, None);
    }
    if mk.starts_with("SONY") {
        return l(Maker::Sony, 0, None, None);
    }
    if mk.starts_with("KONICA MINOLTA") || mk.starts_with("MINOLTA") {
        return l(Maker::Minolta, 0, None, None);
    }
    if mk.starts_with("CASIO") {
        return l(Maker::Casio, 0, None, None);
    }
    None
}

/// Parse the maker note in entry `e` of the TIFF structure `t`.
pub(crate) fn parse(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, e: &Entry) {
    let make = ctx.facts.make.clone().unwrap_or_default();
    let Ok(head) = t.data.get(ctx, e.value_off, e.size.min(32)) else {
        ctx.error("MakerNote: value outside the EXIF data");
        return;
    };
    if head.starts_with(&[0x01, 0xf1])
        && (matches!(head.get(2..4), Some([2 | 3, 0])) || make == "RECONYX")
    {
        reconyx(ctx, t, e);
        return;
    }
    if make.to_ascii_uppercase().starts_with("EASTMAN KODAK") {
        kodak(ctx, t, e);
        return;
    }
    let Some(lay) = layout(&head, &make) else {
        return;
    };
    let note = e.value_off;
    run(ctx, t.data, t.shift, t.le, note, e.size, lay);
}

/// Kodak binary maker notes (DC200-series "type 4"): the original file name at byte 0x20.
fn kodak(ctx: &mut Ctx<'_>, t: &Tiff<'_>, e: &Entry) {
    if e.size != 72 {
        return;
    }
    let Some(v) = t.value(ctx, e) else { return };
    if let Some(b) = v.get(0x20..0x2c) {
        let s = ascii(b);
        if s.contains('.') && s.chars().all(|c| c.is_ascii_graphic()) {
            let abs = t.data.abs(e.value_off.saturating_add(0x20));
            ctx.text(
                Family::MakerNote,
                "Kodak",
                "0x0020",
                "OriginalFileName",
                abs,
                &s,
            );
        }
    }
}

/// Reconyx trail cameras: a fixed binary layout of 16-bit words, not an IFD.
fn reconyx(ctx: &mut Ctx<'_>, t: &Tiff<'_>, e: &Entry) {
    let Some(v) = t.value(ctx, e) else { return };
    let abs = t.data.abs(e.value_off);
    // Word 0x0b: int16u[6] seconds, minutes, hours, day, month, year.
    let w: Vec<u16> = (0..6usize)
        .filter_map(|i| u16_at(&v, 22usize.saturating_add(i.saturating_mul(2)), true))
        .collect();
    if let [s, mi, h, d, mo, y] = w.as_slice() {
        let dt = format!("{y:04}:{mo:02}:{d:02} {h:02}:{mi:02}:{s:02}");
        ctx.text(
            Family::MakerNote,
            "Reconyx",
            "0x000b",
            "DateTimeOriginal",
            abs,
            &dt,
        );
    }
    // Word 0x15: 30 bytes of UCS-2 (little-endian) serial number.
    if let Some(b) = v.get(42..72) {
        let s = crate::family::tiff::ucs2le(b);
        ctx.text(
            Family::MakerNote,
            "Reconyx",
            "0x0015",
            "SerialNumber",
            abs,
            &s,
        );
    }
}

/// A maker note copied out of its file (DNG `MakN`): `orig` is where it used to start.
pub(crate) fn parse_detached(ctx: &mut Ctx<'_>, mn: Data<'_>, orig: u64, le: bool) {
    let make = ctx.facts.make.clone().unwrap_or_default();
    let Ok(head) = mn.get(ctx, 0, mn.len().min(32)) else {
        return;
    };
    let Some(lay) = layout(&head, &make) else {
        return;
    };
    run(ctx, mn, orig, le, 0, mn.len(), lay);
}

fn run(
    ctx: &mut Ctx<'_>,
    data: Data<'_>,
    shift: u64,
    parent_le: bool,
    note: u64,
    size: u64,
    lay: Layout,
) {
    if !ctx.enter() {
        return;
    }
    let group = lay.maker.group();
    // Build the view the note's offsets are relative to.
    let (mut sub, ifd_off) = if let Some(ot) = lay.own_tiff {
        let Some(view) = data.slice(note.saturating_add(ot), size.saturating_sub(ot)) else {
            ctx.leave();
            return;
        };
        match Tiff::open(ctx, view, Host::Embedded) {
            Some((t, first)) => (t, first),
            None => {
                ctx.error(format!("{group} maker note: bad TIFF header"));
                ctx.leave();
                return;
            }
        }
    } else if let Some(k) = lay.base {
        let Some(view) = data.sub(note.saturating_add(k)) else {
            ctx.leave();
            return;
        };
        let le = lay.le.unwrap_or(parent_le);
        (
            Tiff::with_order(view, le, Host::Embedded),
            lay.ifd.saturating_sub(k),
        )
    } else {
        let mut t = Tiff::with_order(data, lay.le.unwrap_or(parent_le), Host::Embedded);
        t.shift = shift;
        (t, note.saturating_add(lay.ifd))
    };
    if lay.le.is_none() && lay.own_tiff.is_none() {
        sub.le = detect_order(ctx, &sub, ifd_off, parent_le);
    }
    walk_note(ctx, &mut sub, ifd_off, lay.maker, table(lay.maker), group);
    ctx.leave();
}

/// Walk a Canon maker-note IFD held in its own TIFF structure (CR3 `CMT3`).
pub(crate) fn walk_canon(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, off: u64) {
    walk_note(ctx, t, off, Maker::Canon, CANON, "Canon");
}

/// Pick the byte order under which the IFD's entry count is plausible.
fn detect_order(ctx: &Ctx<'_>, t: &Tiff<'_>, off: u64, prefer_le: bool) -> bool {
    let Ok(b) = t.data.get(ctx, off, 6) else {
        return prefer_le;
    };
    // Plausible: a small entry count and a known type in the first entry.
    let ok = |le: bool| {
        u16_at(&b, 0, le).is_some_and(|n| (1..=512).contains(&n))
            && u16_at(&b, 4, le).is_some_and(|t| (1..=13).contains(&t))
    };
    if ok(prefer_le) {
        prefer_le
    } else if ok(!prefer_le) {
        !prefer_le
    } else {
        prefer_le
    }
}

fn walk_note(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, off: u64, maker: Maker, tab: Table, group: &str) {
    let Some((mut entries, _)) = t.entries(ctx, off, group) else {
        return;
    };
    fix_base(&mut entries, off);
    let mut pv_start: Option<(u64, String)> = None;
    let mut pv_len: Option<u64> = None;
    for e in &entries {
        if !ctx.alive() {
            break;
        }
        let Some((_, name, kind)) = tab.iter().find(|(id, _, _)| *id == e.tag) else {
            continue;
        };
        let tag_s = format!("0x{:04x}", e.tag);
        let abs = t.data.abs(e.value_off);
        match *kind {
            Kind::Text => {
                if let Some(v) = t.text(ctx, e) {
                    ctx.text(Family::MakerNote, group, &tag_s, name, abs, &v);
                }
            }
            Kind::Dec if e.typ == 2 => {
                if let Some(v) = t.text(ctx, e) {
                    ctx.text(Family::MakerNote, group, &tag_s, name, abs, &v);
                }
            }
            Kind::Dec => {
                if let Some(n) = t.uint(ctx, e) {
                    ctx.text(Family::MakerNote, group, &tag_s, name, abs, &n.to_string());
                }
            }
            Kind::Hex(n) => {
                if let Some(v) = t.value(ctx, e) {
                    let b = v.get(..n.min(v.len())).unwrap_or(&[]);
                    if b.iter().all(|x| *x == 0) {
                        continue;
                    }
                    let h = hex(b);
                    ctx.text(Family::MakerNote, group, &tag_s, name, abs, &h);
                }
            }
            Kind::PreviewStart => {
                if let Some(n) = t.uint(ctx, e) {
                    pv_start = Some((n, tag_s.clone()));
                }
            }
            Kind::PreviewLen => pv_len = t.uint(ctx, e),
            Kind::Inline => {
                if e.size > 16 || (e.size > 0 && maker == Maker::Olympus) {
                    t.embedded_image(
                        ctx,
                        Family::MakerNote,
                        group,
                        &tag_s,
                        name,
                        e.value_off,
                        e.size,
                    );
                }
            }
            Kind::SubIfd(sub_tab) => {
                // An IFD-typed tag points at the IFD; an UNDEFINED one holds it in place.
                let sub_off = if matches!(e.typ, 4 | 13) {
                    t.ptr(u64::from(e.raw))
                } else {
                    e.value_off
                };
                if ctx.enter() {
                    walk_note(ctx, t, sub_off, maker, sub_tab, group);
                    ctx.leave();
                }
            }
            Kind::CanonPreviewInfo => canon_preview(ctx, t, e, group),
            Kind::CanonLensInfo => {
                if let Some(v) = t.value(ctx, e)
                    && let Some(b) = v.get(..5)
                    && !b.starts_with(&[0, 0, 0, 0])
                {
                    ctx.text(
                        Family::MakerNote,
                        group,
                        &tag_s,
                        "LensSerialNumber",
                        abs,
                        &hex(b),
                    );
                }
            }
            Kind::PentaxCameraInfo => {
                if let Some(v) = t.value(ctx, e)
                    && let Some(n) = u32_at(&v, 16, t.le)
                {
                    ctx.text(
                        Family::MakerNote,
                        group,
                        &tag_s,
                        "InternalSerialNumber",
                        abs,
                        &n.to_string(),
                    );
                }
            }
            Kind::Sony9050 => sony_9050(ctx, t, e, group),
            Kind::FujiFaceRec => fuji_faces(ctx, t, e, group),
            Kind::PanasonicFaceRec => {
                if let Some(v) = t.value(ctx, e) {
                    for (i, pos) in [4usize, 52, 100].into_iter().enumerate() {
                        if let Some(b) = v.get(pos..pos.saturating_add(20)) {
                            let n = format!("RecognizedFace{}Name", i.saturating_add(1));
                            ctx.text(Family::MakerNote, group, &tag_s, &n, abs, &ascii(b));
                        }
                    }
                }
            }
            Kind::RicohSerial => {
                if let Some(v) = t.value(ctx, e) {
                    let b = v.get(..16.min(v.len())).unwrap_or(&[]);
                    let is_text = b.iter().all(|c| {
                        c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_' || *c == b' '
                    });
                    if is_text {
                        ctx.text(
                            Family::MakerNote,
                            group,
                            &tag_s,
                            "SerialNumber",
                            abs,
                            &ascii(b),
                        );
                    } else {
                        ctx.text(
                            Family::MakerNote,
                            group,
                            &tag_s,
                            "InternalSerialNumber",
                            abs,
                            &hex(b),
                        );
                    }
                }
            }
            Kind::NikonLocation => {
                // Byte 4: text encoding (1 UTF-8, 2 UTF-16); bytes 9..79: the place name.
                if let Some(v) = t.value(ctx, e) {
                    let raw = v.get(9..79.min(v.len())).unwrap_or(&[]);
                    let text = if v.get(4) == Some(&2) {
                        let units: Vec<u16> = raw
                            .chunks_exact(2)
                            .filter_map(|c| u16_at(c, 0, false))
                            .take_while(|u| *u != 0)
                            .collect();
                        String::from_utf16_lossy(&units)
                    } else {
                        ascii(raw)
                    };
                    ctx.text(Family::MakerNote, group, &tag_s, "Location", abs, &text);
                }
            }
            Kind::NikonPreviewIfd => {
                let p = t.ptr(u64::from(e.raw));
                nikon_preview(ctx, t, p);
            }
        }
    }
    if let (Some((start, tag_s)), Some(len)) = (pv_start, pv_len) {
        let off = t.ptr(start);
        t.embedded_image(
            ctx,
            Family::MakerNote,
            group,
            &tag_s,
            "PreviewImage",
            off,
            len,
        );
    }
}

/// Some cameras write maker-note value offsets a few bytes short (ExifTool's "fix by N"
/// warning): the first out-of-line value then points into the IFD itself. Values normally
/// start right after the IFD and its next-IFD pointer, so shift them there.
fn fix_base(entries: &mut [Entry], ifd_off: u64) {
    let n = entries.len() as u64;
    let expected = ifd_off
        .saturating_add(2)
        .saturating_add(n.saturating_mul(12))
        .saturating_add(4);
    let Some(min) = entries
        .iter()
        .filter(|e| e.size > 4)
        .map(|e| e.value_off)
        .min()
    else {
        return;
    };
    if min < expected && expected.saturating_sub(min) <= 16 && min > ifd_off {
        let delta = expected.saturating_sub(min);
        for e in entries.iter_mut().filter(|e| e.size > 4) {
            e.value_off = e.value_off.saturating_add(delta);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn canon_preview(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, e: &Entry, group: &str) {
    let Some(v) = t.value(ctx, e) else { return };
    // int32u words: 1 quality, 2 length, 3 width, 4 height, 5 start.
    let w = |i: usize| u32_at(&v, i.saturating_mul(4), t.le).map(u64::from);
    if let (Some(len), Some(start)) = (w(2), w(5)) {
        let off = t.ptr(start);
        t.embedded_image(
            ctx,
            Family::MakerNote,
            group,
            "0x00b6",
            "PreviewImage",
            off,
            len,
        );
    }
}

fn nikon_preview(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, off: u64) {
    let Some((entries, _)) = t.entries(ctx, off, "PreviewIFD") else {
        return;
    };
    let mut start = None;
    let mut len = None;
    for e in &entries {
        match e.tag {
            0x0201 => start = t.uint(ctx, e),
            0x0202 => len = t.uint(ctx, e),
            _ => {}
        }
    }
    if let (Some(s), Some(l)) = (start, len) {
        let off = t.ptr(s);
        t.embedded_image(
            ctx,
            Family::MakerNote,
            "PreviewIFD",
            "0x0201",
            "PreviewImage",
            off,
            l,
        );
    }
}

/// Sony's 0x9050 block is enciphered with a byte substitution (c = b³ mod 249).
fn sony_9050(ctx: &mut Ctx<'_>, t: &Tiff<'_>, e: &Entry, group: &str) {
    let Some(v) = t.value(ctx, e) else { return };
    let model = ctx.facts.model.clone().unwrap_or_default();
    let pos: usize = if model.starts_with("ILCE-1") && !model.starts_with("ILCE-1 ") {
        0x8a
    } else if model.starts_with("ILCE-") || model.starts_with("ILME-") || model.starts_with("ZV-") {
        0x88
    } else if model.starts_with("SLT-") || model.starts_with("ILCA-") {
        0xf0
    } else if model.starts_with("NEX-") {
        0x7c
    } else {
        return;
    };
    let Some(b) = v.get(pos..pos.saturating_add(6)) else {
        return;
    };
    let dec = sony_decipher_table();
    let s: Vec<String> = b
        .iter()
        .map(|c| dec.get(usize::from(*c)).copied().unwrap_or(*c).to_string())
        .collect();
    let abs = t.data.abs(e.value_off.saturating_add(pos as u64));
    ctx.text(
        Family::MakerNote,
        group,
        "0x9050",
        "InternalSerialNumber",
        abs,
        &s.join(" "),
    );
}

fn sony_decipher_table() -> [u8; 256] {
    let mut dec = [0u8; 256];
    for (i, d) in dec.iter_mut().enumerate() {
        *d = u8::try_from(i).unwrap_or(0);
    }
    // Enciphered value c = b^3 mod 249 for b in 0..249; invert it (bytes 249..=255 are clear).
    for b in 0u64..249 {
        let c = b.wrapping_mul(b).wrapping_mul(b) % 249;
        if let (Some(slot), Ok(bv)) = (
            dec.get_mut(usize::try_from(c).unwrap_or(0)),
            u8::try_from(b),
        ) {
            *slot = bv;
        }
    }
    dec
}

fn fuji_faces(ctx: &mut Ctx<'_>, t: &Tiff<'_>, e: &Entry, group: &str) {
    let Some(v) = t.value(ctx, e) else { return };
    let end = v.len();
    let mut pos = 0usize;
    for i in 1..=8u32 {
        let (Some(off), Some(len)) = (
            u32_at(&v, pos, t.le),
            u32_at(&v, pos.saturating_add(4), t.le),
        ) else {
            break;
        };
        let (off, len) = (off as usize, len as usize);
        if len < 62 || off.checked_add(len).is_none_or(|x| x > end) {
            break;
        }
        let n = u32_at(&v, off.saturating_add(30), t.le).unwrap_or(0) as usize;
        let p = u32_at(&v, off.saturating_add(34), t.le).unwrap_or(0) as usize;
        if let Some(b) = v.get(p..p.saturating_add(n)) {
            let name = format!("Face{i}Name");
            ctx.text(
                Family::MakerNote,
                group,
                "0x4282",
                &name,
                t.data.abs(e.value_off),
                &ascii(b),
            );
        }
        pos = pos.saturating_add(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
    fn the_sony_cipher_round_trips() {
        let dec = sony_decipher_table();
        for b in 2u64..248 {
            let c = (b * b * b) % 249;
            assert_eq!(u64::from(dec[c as usize]), b, "byte {b}");
        }
    }
}
