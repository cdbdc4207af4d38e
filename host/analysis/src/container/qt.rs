//! Vendor tables in QuickTime/MP4 user data, read from the ISO-BMFF box walk ([`super::bmff`]):
//! the ones that hold a serial number, GPS or a preview, each at the place and with the layout
//! of ExifTool's table of the same name.
//!
//! | box | where | table | what |
//! |---|---|---|---|
//! | `udta`/`NCDT`/`NCTG` | Nikon MOV | `Nikon::NCTG` | records of a 32-bit tag, an EXIF format code and a 16-bit count, big-endian: `SerialNumber`, `LensSerialNumber`, the GPS tags (0x120xxxx mirror the GPS IFD) |
//! | `udta`/`NCDT`/`NCTH`, `NCVW`, `NCM1`, `NCM2` | Nikon MOV | `Nikon::NCDT` | `ThumbnailImage`, `PreviewImage`, `PreviewImage1`, `PreviewImage2` |
//! | `udta`/`PENT` | Pentax MOV (Optio WG-2 GPS) | `Pentax::PENT` | binary data, little-endian: GPS latitude/longitude (3 rationals, the reference letter 2 bytes before), `PreviewImage` (a JPEG from 0x7d3 to the end) |
//! | `free` starting with a `Seri` atom | Kodak MP4 | `Kodak::Free` | atoms; `Seri` is a length byte, a zero, the serial |
//! | `udta`/`XMP_` | QuickTime | XMP | the XMP packet, read as everywhere else |
//! | `udta`/`uuid` | FLIR MP4 (a top-level `udta`) | `FLIR::UserData`, `FLIR::SerialNums`, `FLIR::GPS_UUID` | by the box's UUID: the camera serial (a 9-byte string at 0x7e), GPS (big-endian floats 1 and 2), a JPEG thumbnail after 4 bytes |
//!
//! Offsets and names come from the generated data (`data/privacy-tags.tsv`) where ExifTool's ids
//! are numbers; Kodak's four-letter atom names are not in its index and are named here.
//!
//! Threat model: a child box is read only inside its parent; at most [`MAX_CHILDREN`] children
//! per parent; record tables are read into memory capped at [`MAX_TABLE_BYTES`]; images are
//! never read, only measured (and their first bytes checked for a JPEG SOI).

use crate::bytes::be32;
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff;
use crate::model::Family;

/// Most children walked in one user-data box.
const MAX_CHILDREN: u32 = 1024;
/// Largest record table read into memory (NCTG, a FLIR uuid, Kodak's free atom).
const MAX_TABLE_BYTES: u64 = 1024 * 1024;

pub(crate) const UUID_FLIR_SERIAL: [u8; 16] = [
    0x57, 0xf5, 0xb9, 0x3e, 0x51, 0xe4, 0x48, 0xaf, 0xa0, 0xd9, 0xc3, 0xef, 0x1b, 0x37, 0xf7, 0x12,
];
pub(crate) const UUID_FLIR_GPS: [u8; 16] = [
    0x7f, 0x2e, 0x21, 0x00, 0x8b, 0x46, 0x49, 0x18, 0xaf, 0xb1, 0xde, 0x70, 0x9a, 0x74, 0xf6, 0xf5,
];
const UUID_FLIR_THUMB: [u8; 16] = [
    0x91, 0xaf, 0x9b, 0x93, 0x45, 0x9b, 0x44, 0x56, 0x98, 0xd1, 0x5e, 0x76, 0xea, 0x01, 0x04, 0xac,
];

/// One child box: (type, absolute body offset, body length).
type Child = ([u8; 4], u64, u64);

/// The child boxes of `[start, end)`. A zero size word ends the list (old QuickTime user data
/// ends with one); a size past the parent ends it with an error.
fn children(ctx: &mut Ctx<'_>, what: &str, start: u64, end: u64) -> Vec<Child> {
    let mut out = Vec::new();
    let mut pos = start;
    let mut n = 0u32;
    while pos.saturating_add(8) <= end && n < MAX_CHILDREN {
        n = n.saturating_add(1);
        let Ok(h) = ctx.r.read(pos, 8) else {
            ctx.error(format!("{what}: box header at {pos} unreadable"));
            break;
        };
        let size = u64::from(be32(&h, 0).unwrap_or(0));
        if size == 0 {
            break;
        }
        if size < 8 || pos.saturating_add(size) > end {
            ctx.error(format!("{what}: box at {pos} has a bad size"));
            break;
        }
        let typ: [u8; 4] = h
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        out.push((typ, pos.saturating_add(8), size.saturating_sub(8)));
        pos = pos.saturating_add(size);
    }
    out
}

fn read_table(ctx: &mut Ctx<'_>, what: &str, off: u64, len: u64) -> Option<Vec<u8>> {
    if len > MAX_TABLE_BYTES {
        ctx.error(format!(
            "{what}: {len} bytes; larger than the table cap, not read"
        ));
        return None;
    }
    match ctx.r.read(off, len) {
        Ok(b) => Some(b),
        Err(e) => {
            ctx.read_error(what, &e);
            None
        }
    }
}

/// A `udta` box (in `moov`, a `trak`, or at the top of a FLIR file).
pub(crate) fn udta(ctx: &mut Ctx<'_>, body: u64, end: u64) {
    if !ctx.enter() {
        return;
    }
    for (typ, off, len) in children(ctx, "QuickTime udta", body, end) {
        if !ctx.alive() {
            break;
        }
        match &typ {
            b"NCDT" => ncdt(ctx, off, off.saturating_add(len)),
            b"PENT" => pent(ctx, off, len),
            b"uuid" => flir_uuid(ctx, off, len),
            // QuickTime's XMP packet (ExifTool's UserData `XMP_`).
            b"XMP_" => {
                if let Some(b) = read_table(ctx, "QuickTime XMP", off, len.min(MAX_TABLE_BYTES)) {
                    crate::family::xmp::parse(ctx, &b, Some(off));
                }
            }
            _ => {}
        }
    }
    ctx.leave();
}

/// Nikon's `NCDT` atom: the tag records (`NCTG`) and the thumbnail and previews.
fn ncdt(ctx: &mut Ctx<'_>, start: u64, end: u64) {
    for (typ, off, len) in children(ctx, "Nikon NCDT", start, end) {
        let name = match &typ {
            b"NCTG" => {
                if let Some(b) = read_table(ctx, "Nikon NCTG", off, len) {
                    nctg(ctx, &b, Some(off));
                }
                continue;
            }
            b"NCTH" => "ThumbnailImage",
            b"NCVW" => "PreviewImage",
            b"NCM1" => "PreviewImage1",
            b"NCM2" => "PreviewImage2",
            _ => continue,
        };
        let tag = String::from_utf8_lossy(&typ).into_owned();
        ctx.image(
            Family::MakerNote,
            "Nikon",
            &tag,
            name,
            EmbeddedImage {
                offset: Some(off),
                len,
                data: None,
                ..Default::default()
            },
        );
    }
}

/// Bytes per value of an EXIF format code (1–13), as in a TIFF IFD.
fn format_size(fmt: u16) -> Option<usize> {
    Some(match fmt {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => return None,
    })
}

/// Nikon `NCTG` records: tag (32-bit), EXIF format (16-bit), count (16-bit), then the value,
/// all big-endian (ExifTool's ProcessNikonMOV). Serials are text; the GPS pair is decoded from
/// its three rationals and reference letters.
pub(crate) fn nctg(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>) {
    let mut pos = 0usize;
    let mut lat: Option<(f64, usize)> = None;
    let mut lon: Option<f64> = None;
    let (mut south, mut west) = (false, false);
    let mut n = 0u32;
    while pos.saturating_add(8) < b.len() && n < 4096 {
        n = n.saturating_add(1);
        let (Some(tag), Some(fmt), Some(count)) = (
            be32(b, pos),
            crate::bytes::be16(b, pos.saturating_add(4)),
            crate::bytes::be16(b, pos.saturating_add(6)),
        ) else {
            break;
        };
        pos = pos.saturating_add(8);
        let Some(unit) = format_size(fmt) else {
            ctx.error(format!(
                "Nikon NCTG: unknown format {fmt} for tag 0x{tag:x}"
            ));
            break;
        };
        let size = unit.saturating_mul(usize::from(count));
        let Some(v) = b.get(pos..pos.saturating_add(size)) else {
            ctx.error(format!("Nikon NCTG: tag 0x{tag:x} truncated"));
            break;
        };
        let at = abs.and_then(|a| a.checked_add(pos as u64));
        match tag {
            0x0120_0001 => south = v.first() == Some(&b'S'),
            0x0120_0003 => west = v.first() == Some(&b'W'),
            0x0120_0002 | 0x0120_0004 if fmt == 5 => {
                let d = dms(v, false);
                if tag == 0x0120_0002 {
                    lat = d.map(|x| (x, pos));
                } else {
                    lon = d;
                }
            }
            _ => {
                if let Some(info) = crate::tagdata::lookup("Nikon::NCTG", tag)
                    && crate::tagdata::is_plain(info.category)
                {
                    ctx.text(
                        Family::MakerNote,
                        "Nikon",
                        &format!("0x{tag:07x}"),
                        info.name,
                        at,
                        &tiff::ascii(v),
                    );
                }
            }
        }
        pos = pos.saturating_add(size);
    }
    if lat.is_some() != lon.is_some() {
        ctx.error("Nikon NCTG: GPS latitude or longitude missing");
    }
    if let (Some((la, p)), Some(lo)) = (lat, lon) {
        gps(
            ctx,
            "GPS",
            "0x1200002",
            abs.and_then(|a| a.checked_add(p as u64)),
            if south { -la } else { la },
            if west { -lo } else { lo },
        );
    }
}

/// Three unsigned rationals (degrees, minutes, seconds) in decimal degrees.
fn dms(v: &[u8], le: bool) -> Option<f64> {
    let r = |i: usize| -> Option<f64> {
        let n = tiff::u32_at(v, i.saturating_mul(8), le)?;
        let d = tiff::u32_at(v, i.saturating_mul(8).saturating_add(4), le)?;
        Some(if d == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(d)
        })
    };
    Some(r(0)? + r(1)? / 60.0 + r(2)? / 3600.0)
}

fn gps(ctx: &mut Ctx<'_>, group: &str, tag: &str, at: Option<u64>, lat: f64, lon: f64) {
    if lat.abs() > 90.0 || lon.abs() > 180.0 {
        ctx.error(format!("{group}: coordinates out of range"));
        return;
    }
    ctx.gps(
        Family::MakerNote,
        group,
        tag,
        "GPSLatitude",
        at,
        lat,
        lon,
        1.0,
    );
}

/// Bytes of a `PENT` box read: everything before the preview, and its first bytes.
const PENT_HEAD: u64 = 0x7d3 + 4;

/// Pentax `PENT` (little-endian binary data, offsets from `Pentax::PENT`).
pub(crate) fn pent(ctx: &mut Ctx<'_>, off: u64, len: u64) {
    let Ok(b) = ctx.r.read(off, len.min(PENT_HEAD)) else {
        ctx.error("Pentax PENT: unreadable");
        return;
    };
    pent_data(ctx, &b, Some(off), len);
}

/// The `PENT` table over its first bytes `b` (of `len` in all).
pub(crate) fn pent_data(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>, len: u64) {
    // ExifTool reads the GPS tags only when GPSVersionID (8 bytes at 0xc7) starts with "GPS_".
    let has_gps = b.get(0xc7..0xcb) == Some(b"GPS_");
    let mut lat = None;
    let mut lon = None;
    for (id, info) in crate::tagdata::rows("Pentax::PENT") {
        let p = id as usize;
        match (info.category, info.name) {
            ("gps", _) if !has_gps => {}
            ("gps", name) => {
                let v = b.get(p..p.saturating_add(24));
                let Some(d) = v.and_then(|v| dms(v, true)) else {
                    ctx.error(format!("Pentax PENT: {name} truncated"));
                    continue;
                };
                // The reference letter (GPSLatitudeRef / GPSLongitudeRef) is 2 bytes before.
                let r = b.get(p.saturating_sub(2)).copied();
                if name == "GPSLatitude" {
                    lat = Some(if r == Some(b'S') { -d } else { d });
                } else if name == "GPSLongitude" {
                    lon = Some(if r == Some(b'W') { -d } else { d });
                }
            }
            ("thumbnail", name)
                if len > u64::from(id) && b.get(p..p.saturating_add(2)) == Some(b"\xff\xd8") =>
            {
                ctx.image(
                    Family::MakerNote,
                    "Pentax",
                    &format!("0x{id:04x}"),
                    name,
                    EmbeddedImage {
                        offset: abs.and_then(|a| a.checked_add(u64::from(id))),
                        len: len.saturating_sub(u64::from(id)),
                        data: None,
                        ..Default::default()
                    },
                );
            }
            (cat, name) if crate::tagdata::is_plain(cat) => {
                let n = info.count as usize;
                if let Some(v) = b.get(p..p.saturating_add(n)) {
                    ctx.text(
                        Family::MakerNote,
                        "Pentax",
                        &format!("0x{id:04x}"),
                        name,
                        abs.and_then(|a| a.checked_add(u64::from(id))),
                        &tiff::ascii(v),
                    );
                }
            }
            _ => {}
        }
    }
    if let (Some(la), Some(lo)) = (lat, lon) {
        gps(
            ctx,
            "GPS",
            "0x00d1",
            abs.and_then(|a| a.checked_add(0xd1)),
            la,
            lo,
        );
    }
}

/// A `uuid` box in user data: FLIR's serial, GPS and thumbnail boxes.
fn flir_uuid(ctx: &mut Ctx<'_>, off: u64, len: u64) {
    let Ok(u) = ctx.r.read(off, 16.min(len)) else {
        return;
    };
    let kind = u.as_slice();
    if kind == UUID_FLIR_THUMB {
        // 16-byte UUID, 4 bytes, then the JPEG.
        if let Ok(h) = ctx
            .r
            .read(off.saturating_add(20), 3.min(len.saturating_sub(20)))
            && h.as_slice() == b"\xff\xd8\xff"
        {
            ctx.image(
                Family::MakerNote,
                "FLIR",
                "uuid",
                "ThumbnailImage",
                EmbeddedImage {
                    offset: Some(off.saturating_add(20)),
                    len: len.saturating_sub(20),
                    data: None,
                    ..Default::default()
                },
            );
        }
    } else if (kind == UUID_FLIR_SERIAL || kind == UUID_FLIR_GPS)
        && let Some(b) = read_table(ctx, "FLIR uuid", off, len)
    {
        flir_table(ctx, &b, Some(off));
    }
}

/// A FLIR user-data `uuid` box in memory (its 16-byte UUID first).
pub(crate) fn flir_table(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>) {
    let Some(body) = b.get(16..) else { return };
    let at = |p: usize| abs.and_then(|a| a.checked_add(16u64.saturating_add(p as u64)));
    if b.get(..16) == Some(&UUID_FLIR_SERIAL) {
        for (id, info) in crate::tagdata::rows("FLIR::SerialNums") {
            let (p, n) = (id as usize, info.count as usize);
            if !crate::tagdata::is_plain(info.category) {
                continue;
            }
            match body.get(p..p.saturating_add(n)) {
                Some(v) => ctx.text(
                    Family::MakerNote,
                    "FLIR",
                    &format!("0x{id:04x}"),
                    info.name,
                    at(p),
                    &tiff::ascii(v),
                ),
                None => ctx.error(format!("FLIR SerialNums: {} truncated", info.name)),
            }
        }
    } else if b.get(..16) == Some(&UUID_FLIR_GPS) {
        // Big-endian floats (QuickTime's byte order), indexed in 4-byte units.
        let f = |i: usize| {
            body.get(i.saturating_mul(4)..i.saturating_mul(4).saturating_add(4))
                .and_then(|x| x.try_into().ok())
                .map(|x| f64::from(f32::from_be_bytes(x)))
        };
        let mut lat = None;
        let mut lon = None;
        for (id, info) in crate::tagdata::rows("FLIR::GPS_UUID") {
            match info.name {
                "GPSLatitude" => lat = f(id as usize),
                "GPSLongitude" => lon = f(id as usize),
                _ => {}
            }
        }
        match (lat, lon) {
            (Some(la), Some(lo)) => gps(ctx, "FLIR", "0x0001", at(4), la, lo),
            _ => ctx.error("FLIR GPS_UUID: truncated"),
        }
    }
}

/// A `free` box whose first atom is `Seri` (ExifTool's `Kodak::Free`, Kodak MP4 videos).
pub(crate) fn kodak_free(ctx: &mut Ctx<'_>, off: u64, len: u64) {
    let Ok(h) = ctx.r.read(off, 8.min(len)) else {
        return;
    };
    if !(h.get(..3) == Some(&[0, 0, 0]) && h.get(4..8) == Some(b"Seri")) {
        return;
    }
    if let Some(b) = read_table(ctx, "Kodak free", off, len) {
        kodak_free_data(ctx, &b, Some(off));
    }
}

/// Kodak's `free` atoms in memory: size (32-bit BE), type, value; `Seri` is a length byte, a
/// zero byte and the serial.
pub(crate) fn kodak_free_data(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>) {
    let mut pos = 0usize;
    let mut n = 0u32;
    while pos.saturating_add(8) <= b.len() && n < MAX_CHILDREN {
        n = n.saturating_add(1);
        let size = be32(b, pos).map_or(0, |s| s as usize);
        if size < 8 || pos.saturating_add(size) > b.len() {
            if size != 0 {
                ctx.error("Kodak free: atom runs past its box");
            }
            break;
        }
        let body = b
            .get(pos.saturating_add(8)..pos.saturating_add(size))
            .unwrap_or(&[]);
        if b.get(pos.saturating_add(4)..pos.saturating_add(8)) == Some(b"Seri") {
            let n = usize::from(body.first().copied().unwrap_or(0));
            match body.get(2..2usize.saturating_add(n)) {
                Some(s) => ctx.text(
                    Family::MakerNote,
                    "Kodak",
                    "Seri",
                    "SerialNumber",
                    abs.and_then(|a| a.checked_add((pos as u64).saturating_add(10))),
                    &tiff::ascii(s),
                ),
                None => ctx.error("Kodak free: SerialNumber truncated"),
            }
        }
        pos = pos.saturating_add(size);
    }
}
