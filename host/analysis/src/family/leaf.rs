//! Leaf MOS: the records Leaf Capture writes in IFD0 tag 0x8606 (ExifTool's `LeafData`, read
//! with its `Leaf::Main` table).
//!
//! The data is a run of PKTS records: a 52-byte header (`PKTS`, 4 version bytes, the record's
//! name as NUL-padded text in 40 bytes, its size as a 32-bit number in the TIFF's byte order),
//! then the value. A value that itself starts with `PKTS\0\0\0\x01` is a directory of records
//! (camera profile, capture profile, ...). What is privacy-relevant:
//!
//! | record | finding |
//! |---|---|
//! | `JPEG_preview_data` | `PreviewImage` (the back's JPEG preview of the whole frame) |
//! | `back_serial_number` | `BackSerial`, the digital back's serial number |
//! | `CaptProf_serial_number` | `CaptureSerial`, the serial the capture profile was made for |
//!
//! ExifTool's names for the two serials do not end in `SerialNumber`, so the category table
//! does not classify them; they are reported as serials by name here (a finding ExifTool's
//! reading holds under another name). Any other record in a sub-directory whose ExifTool name
//! the category table knows is reported through it.
//!
//! Threat model: only the 52-byte headers are read while walking; a value is read only when it
//! is one of the records above (capped at [`MAX_TEXT`]) or its first 8 bytes to see whether it
//! is a directory. A record that runs past its directory ends the walk with an error (records
//! before it are kept); record counts and nesting are bounded.

use crate::ctx::Ctx;
use crate::family::tiff::{Data, Entry, Tiff, ascii, u32_at};
use crate::model::{Category, Family};

/// Header of one record.
const HEADER: u64 = 52;
/// Longest text value read.
const MAX_TEXT: u64 = 256;
/// Most records walked in one directory.
const MAX_RECORDS: u32 = 4096;
/// Magic of a record, and of a value that is a directory of records.
const PKTS: &[u8] = b"PKTS";
const PKTS_DIR: &[u8] = b"PKTS\0\0\0\x01";

/// IFD entry `e` (0x8606) of `t`: walk its records if it holds PKTS data.
pub(crate) fn parse(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, e: &Entry) {
    let Some(view) = t.data.slice(e.value_off, e.size) else {
        ctx.error("Leaf data: value outside the TIFF data");
        return;
    };
    match view.get(ctx, 0, 4) {
        Ok(m) if m.as_ref() == PKTS => {}
        _ => return,
    }
    // Image offsets are relative to the TIFF data `t` reads, so walk in its view.
    walk(ctx, t, e.value_off, e.size, true);
}

/// The records of the directory at `start`, `len` bytes, in `t`'s view.
fn walk(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, start: u64, len: u64, main: bool) {
    if !ctx.enter() {
        return;
    }
    let end = start.saturating_add(len);
    let mut pos = start;
    let mut n = 0u32;
    while pos.saturating_add(HEADER) <= end && n < MAX_RECORDS && ctx.alive() {
        n = n.saturating_add(1);
        let Ok(h) = t.data.get(ctx, pos, HEADER) else {
            ctx.error("Leaf data: record header unreadable");
            break;
        };
        if h.get(..4) != Some(PKTS) {
            break;
        }
        let size = u64::from(u32_at(&h, 48, t.le).unwrap_or(0));
        let name_raw = h.get(8..48).unwrap_or(&[]);
        let name_end = name_raw
            .iter()
            .position(|c| *c == 0)
            .unwrap_or(name_raw.len());
        let name = String::from_utf8_lossy(name_raw.get(..name_end).unwrap_or(&[])).into_owned();
        let value = pos.saturating_add(HEADER);
        if value.saturating_add(size) > end {
            ctx.error("Leaf data: truncated record");
            break;
        }
        record(ctx, t, &name, value, size, main);
        pos = value.saturating_add(size);
    }
    ctx.leave();
}

fn record(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, name: &str, value: u64, size: u64, main: bool) {
    if name.is_empty() || size == 0 {
        return;
    }
    let abs = t.data.abs(value);
    match name {
        "JPEG_preview_data" => {
            t.embedded_image(
                ctx,
                Family::MakerNote,
                "Leaf",
                name,
                "PreviewImage",
                value,
                size,
            );
            return;
        }
        "back_serial_number" | "CaptProf_serial_number" => {
            let shown = if name == "back_serial_number" {
                "BackSerial"
            } else {
                "CaptureSerial"
            };
            if let Some(v) = text(ctx, t.data, value, size) {
                // ExifTool prints the part before the first space.
                let serial = v.split(' ').next().unwrap_or("").to_owned();
                ctx.text_as(
                    Category::Serial,
                    Family::MakerNote,
                    "Leaf",
                    name,
                    shown,
                    abs,
                    &serial,
                );
            }
            return;
        }
        _ => {}
    }
    if size >= 8
        && t.data
            .get(ctx, value, 8)
            .is_ok_and(|b| b.as_ref() == PKTS_DIR)
    {
        walk(ctx, t, value, size, false);
        return;
    }
    // ExifTool extracts unknown records of the sub-directories (not of the main one) under a
    // name made from the record's ([`exiftool_name`]).
    if main || size > MAX_TEXT {
        return;
    }
    let exif_name = exiftool_name(name);
    if crate::classify::classify(&exif_name).is_some()
        && let Some(v) = text(ctx, t.data, value, size)
    {
        ctx.text(Family::MakerNote, "Leaf", name, &exif_name, abs, &v);
    }
}

/// A record's value as text (newlines as spaces, trailing NULs dropped), at most [`MAX_TEXT`].
fn text(ctx: &mut Ctx<'_>, data: Data<'_>, value: u64, size: u64) -> Option<String> {
    let b = data.get(ctx, value, size.min(MAX_TEXT)).ok()?;
    Some(ascii(&b).replace(['\n', '\r'], " "))
}

/// ExifTool's name for a record it has no table entry for: the first letter upper case and
/// `_x` as `X` (`ShootObj_owner_name` is `ShootObjOwnerName`).
fn exiftool_name(record: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in record.chars() {
        if c == '_' && !up {
            up = true;
            continue;
        }
        if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_become_exiftools() {
        assert_eq!(exiftool_name("CamProf_back_type"), "CamProfBackType");
        assert_eq!(exiftool_name("owner_name"), "OwnerName");
    }
}
