//! Photoshop image resource blocks ("8BIM"): IPTC (0x0404), thumbnails (0x0409, 0x040C), EXIF
//! (0x0422), XMP (0x0424) and ICC (0x040F).
//!
//! Threat model: resource sizes come from the file and are checked against the block; a bad
//! signature ends the walk. Thumbnails are reported by size, and kept in memory only when small.

use crate::bytes::{be16, be32};
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff::MAX_KEPT_IMAGE_BYTES;
use crate::family::{icc, iptc, tiff, xmp};
use crate::model::Family;

/// Walk a resource block; `abs` is the file offset of `data[0]` when known.
pub(crate) fn parse(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>) {
    let mut pos = 0usize;
    let mut iptc_n = 0u32;
    let mut count = 0u32;
    while pos.saturating_add(12) <= data.len() {
        count = count.saturating_add(1);
        if count > 10_000 || !ctx.alive() {
            break;
        }
        let Some(sig) = data.get(pos..pos.saturating_add(4)) else {
            break;
        };
        if !matches!(sig, b"8BIM" | b"MeSa" | b"PHUT" | b"AgHg" | b"DCSR") {
            if pos == 0 {
                ctx.error("Photoshop: no resource signature");
            }
            break;
        }
        let Some(id) = be16(data, pos.saturating_add(4)) else {
            break;
        };
        let name_len = usize::from(data.get(pos.saturating_add(6)).copied().unwrap_or(0));
        // Pascal string padded to an even total length (length byte included).
        let name_total = (name_len.saturating_add(2)) & !1;
        let size_pos = pos.saturating_add(6).saturating_add(name_total);
        let Some(size) = be32(data, size_pos).map(|v| v as usize) else {
            break;
        };
        let start = size_pos.saturating_add(4);
        let Some(end) = start.checked_add(size) else {
            break;
        };
        let Some(val) = data.get(start..end) else {
            ctx.error("Photoshop: resource runs past its block");
            break;
        };
        let off = abs.and_then(|a| a.checked_add(start as u64));
        // Other signatures (PHUT, AgHg, DCSR, MeSa) are walked past but, as ExifTool does, not
        // interpreted: their ids do not mean the 8BIM resources.
        let id = if sig == b"8BIM" { id } else { 0 };
        match id {
            0x0404 => {
                iptc_n = iptc_n.saturating_add(1);
                let g = if iptc_n == 1 {
                    "IPTC".to_owned()
                } else {
                    format!("IPTC{iptc_n}")
                };
                iptc::parse(ctx, val, off, &g);
            }
            0x0409 | 0x040c => {
                // 28-byte header, then JPEG.
                if let Some(img) = val.get(28..) {
                    let name = if id == 0x040c {
                        "PhotoshopThumbnail"
                    } else {
                        "PhotoshopBGRThumbnail"
                    };
                    let len = img.len() as u64;
                    ctx.image(
                        Family::Photoshop,
                        "Photoshop",
                        &format!("0x{id:04x}"),
                        name,
                        EmbeddedImage {
                            offset: off.and_then(|o| o.checked_add(28)),
                            len,
                            data: (len <= MAX_KEPT_IMAGE_BYTES).then(|| img.to_vec()),
                            ..Default::default()
                        },
                    );
                }
            }
            0x0422 => {
                tiff::parse(ctx, tiff::Data::Mem(val, off), tiff::Host::Embedded);
            }
            0x0424 => xmp::parse(ctx, val, off),
            0x040f => icc::parse(ctx, val, off),
            _ => {}
        }
        pos = end.saturating_add(end & 1);
    }
}
