//! Camera RAW containers that are not TIFF: Fujifilm RAF, Minolta MRW, Sigma X3F.
//!
//! Each locates its embedded TIFF/EXIF or JPEG preview by offsets from the header, checked
//! against the file, and hands it to the shared parsers. Pixel data is never read.

use crate::bytes::{be32, le32};
use crate::container::jpeg;
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff::{self, Data, Host};
use crate::model::Family;

/// Fujifilm RAF: a JPEG preview (with the EXIF and maker note) at an offset in the header.
pub(crate) fn parse_raf(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    let Ok(h) = ctx.r.read(0, 92) else {
        ctx.error("RAF: truncated header");
        return;
    };
    let (Some(off), Some(jl)) = (be32(&h, 84), be32(&h, 88)) else {
        return;
    };
    let (off, jl) = (u64::from(off), u64::from(jl));
    if off.saturating_add(jl) > len || jl == 0 {
        ctx.error("RAF: JPEG preview outside the file");
        return;
    }
    ctx.image(
        Family::Container,
        "RAF",
        "JpgFromRaw",
        "PreviewImage",
        EmbeddedImage {
            offset: Some(off),
            len: jl,
            data: None,
            ..Default::default()
        },
    );
    jpeg::parse_embedded(ctx, Data::File(off, jl));
}

/// Minolta MRW: blocks after an "\0MRM" header; "\0TTW" holds a TIFF structure.
pub(crate) fn parse_mrw(ctx: &mut Ctx<'_>) {
    let Ok(h) = ctx.r.read(0, 8) else { return };
    let data_start = u64::from(be32(&h, 4).unwrap_or(0))
        .saturating_add(8)
        .min(ctx.r.len());
    let mut pos = 8u64;
    let mut n = 0u32;
    while pos.saturating_add(8) <= data_start && n < 64 {
        n = n.saturating_add(1);
        let Ok(b) = ctx.r.read(pos, 8) else { break };
        let blen = u64::from(be32(&b, 4).unwrap_or(0));
        if b.get(..4) == Some(b"\0TTW")
            && let Some(d) = Data::File(
                pos.saturating_add(8),
                blen.min(data_start.saturating_sub(pos.saturating_add(8))),
            )
            .slice(
                0,
                blen.min(data_start.saturating_sub(pos.saturating_add(8))),
            )
        {
            tiff::parse(ctx, d, Host::Embedded);
        }
        pos = pos.saturating_add(8).saturating_add(blen);
    }
}

/// FLIR Public image Format (ExifTool's `FLIR::FPF`, read as its ProcessFPF reads it): an
/// 892-byte header, little-endian unless FPFVersion's low 16 bits are zero. Privacy-relevant
/// fields: the camera, lens and filter serials and models (`string[32]` each) and
/// DateTimeOriginal (seven `int32u`: year, month, day, hour, minute, second, milliseconds).
/// A file shorter than the header is read as far as it goes, with an error.
pub(crate) fn parse_fpf(ctx: &mut Ctx<'_>) {
    const HEADER: u64 = 892;
    let len = ctx.r.len();
    if len < HEADER {
        ctx.error(format!("FLIR FPF: header cut at {len} of {HEADER} bytes"));
    }
    let Ok(h) = ctx.r.read(0, HEADER.min(len)) else {
        return;
    };
    let le = le32(&h, 0x20).is_none_or(|v| v & 0xffff != 0);
    let u32_at = |o: usize| if le { le32(&h, o) } else { be32(&h, o) };
    for (off, name) in [
        (0x78usize, "CameraModel"),
        (0xb8, "CameraSerialNumber"),
        (0xe0, "LensModel"),
        (0x120, "LensSerialNumber"),
        (0x180, "FilterSerialNumber"),
    ] {
        if let Some(v) = h.get(off..off.saturating_add(32)) {
            let tag = format!("0x{off:04x}");
            ctx.text(
                Family::MakerNote,
                "FLIR",
                &tag,
                name,
                Some(off as u64),
                &tiff::ascii(v),
            );
        }
    }
    let dt: Vec<u32> = (0..7usize)
        .map_while(|i| u32_at(0x248usize.saturating_add(i.saturating_mul(4))))
        .collect();
    if let [y, mo, d, h, mi, s, ms] = dt.as_slice()
        && *y != 0
    {
        let v = format!("{y:04}:{mo:02}:{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}");
        ctx.text(
            Family::MakerNote,
            "FLIR",
            "0x0248",
            "DateTimeOriginal",
            Some(0x248),
            &v,
        );
    }
}

/// Sigma X3F: a section directory at the end; PROP holds camera properties (serial number),
/// image sections may hold a JPEG preview with EXIF.
pub(crate) fn parse_x3f(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    // Header: "FOVb", version, then a 16-byte unique identifier.
    if let Ok(h) = ctx.r.read(0, 24.min(len))
        && let Some(id) = h.get(8..24)
    {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        ctx.text(
            Family::MakerNote,
            "SigmaRaw",
            "header",
            "ImageUniqueID",
            Some(8),
            &hex,
        );
    }
    let Some(dir) = ctx
        .r
        .read(len.saturating_sub(4), 4)
        .ok()
        .and_then(|b| le32(&b, 0))
    else {
        return;
    };
    let dir = u64::from(dir);
    let Ok(dh) = ctx.r.read(dir, 12) else {
        ctx.error("X3F: directory outside the file");
        return;
    };
    if dh.get(..4) != Some(b"SECd") {
        ctx.error("X3F: no section directory");
        return;
    }
    let count = le32(&dh, 8).unwrap_or(0).min(256);
    let Ok(ents) = ctx
        .r
        .read(dir.saturating_add(12), u64::from(count).saturating_mul(12))
    else {
        return;
    };
    for e in ents.chunks_exact(12) {
        if !ctx.alive() {
            break;
        }
        let (Some(off), Some(slen)) = (le32(e, 0), le32(e, 4)) else {
            continue;
        };
        let (off, slen) = (u64::from(off), u64::from(slen));
        if off.saturating_add(slen) > len {
            continue;
        }
        match e.get(8..12) {
            Some(b"PROP") => x3f_prop(ctx, off, slen),
            Some(b"IMA2") | Some(b"IMAG") => {
                let Ok(ih) = ctx.r.read(off, 28.min(slen)) else {
                    continue;
                };
                let format = le32(&ih, 12).unwrap_or(0);
                if format == 18 && slen > 28 {
                    let joff = off.saturating_add(28);
                    let jl = slen.saturating_sub(28);
                    ctx.image(
                        Family::MakerNote,
                        "SigmaRaw",
                        "IMA2",
                        "JpgFromRaw",
                        EmbeddedImage {
                            offset: Some(joff),
                            len: jl,
                            data: None,
                            ..Default::default()
                        },
                    );
                    jpeg::parse_embedded(ctx, Data::File(joff, jl));
                }
            }
            _ => {}
        }
    }
}

fn x3f_prop(ctx: &mut Ctx<'_>, off: u64, slen: u64) {
    let Ok(b) = ctx.r.read(off, slen.min(1 << 20)) else {
        return;
    };
    if b.get(..4) != Some(b"SECp") {
        return;
    }
    let n = le32(&b, 8).unwrap_or(0).min(4096) as usize;
    let chars_start = 24usize.saturating_add(n.saturating_mul(8));
    let chars = b.get(chars_start..).unwrap_or(&[]);
    let utf16_at = |idx: usize| -> String {
        crate::bytes::utf16le_to_nul(chars.get(idx.saturating_mul(2)..).unwrap_or(&[]), 1024)
    };
    for i in 0..n {
        let p = 24usize.saturating_add(i.saturating_mul(8));
        let (Some(k), Some(v)) = (le32(&b, p), le32(&b, p.saturating_add(4))) else {
            break;
        };
        let key = utf16_at(k as usize);
        let name = match key.as_str() {
            "CAMSERIAL" => "SerialNumber",
            "CAMMANUF" => "Make",
            "CAMMODEL" => "Model",
            "TIME" => "DateTimeOriginal",
            _ => continue,
        };
        let mut val = utf16_at(v as usize);
        if name == "DateTimeOriginal" {
            match val.trim().parse::<u64>() {
                Ok(t) => val = crate::container::crw::unix_time(t),
                Err(_) => continue,
            }
        }
        ctx.text(Family::MakerNote, "SigmaRaw", &key, name, Some(off), &val);
    }
}

/// Phase One IIQ: the maker note sits right after the TIFF header (ExifTool writes it there
/// too). The IFD walk reads it when EXIF's MakerNote tag points at it; an IIQ whose EXIF does
/// not is read here, from byte 8.
pub(crate) fn parse_phaseone(ctx: &mut Ctx<'_>) {
    const NOTE_START: u64 = 8;
    if ctx.items.iter().any(|i| i.group == "PhaseOne") {
        return;
    }
    let len = ctx.r.len().saturating_sub(NOTE_START);
    crate::family::makernote::phaseone(ctx, Data::File(NOTE_START, len));
}
