//! WebP (RIFF): EXIF, XMP and ICCP chunks, canvas size, and data after the RIFF size.
//!
//! Threat model: chunk sizes are checked against the RIFF size and the file; at most
//! [`MAX_CHUNKS`] chunks are walked; image chunks (VP8, VP8L, ANMF) are skipped by size.

use crate::bytes::le32;
use crate::ctx::Ctx;
use crate::family::tiff::{self, Data, Host};
use crate::family::{icc, xmp};
use crate::model::Category;

const MAX_CHUNKS: u32 = 10_000;
const MAX_META_CHUNK_BYTES: u64 = 64 * 1024 * 1024;

fn u24(b: &[u8], p: usize) -> Option<u32> {
    let s: [u8; 3] = b.get(p..p.checked_add(3)?)?.try_into().ok()?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], 0]))
}

/// Parse a WebP file.
pub(crate) fn parse(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    let Ok(h) = ctx.r.read(0, 12) else { return };
    let riff_end = u64::from(le32(&h, 4).unwrap_or(0)).saturating_add(8);
    let end = riff_end.min(len);
    let mut pos = 12u64;
    let mut n = 0u32;
    while pos.saturating_add(8) <= end {
        n = n.saturating_add(1);
        if n > MAX_CHUNKS || !ctx.alive() {
            break;
        }
        let Ok(ch) = ctx.r.read(pos, 8) else { break };
        let fourcc: [u8; 4] = ch
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        let size = u64::from(le32(&ch, 4).unwrap_or(0));
        let data = pos.saturating_add(8);
        let next = data.saturating_add(size).saturating_add(size & 1);
        if data.saturating_add(size) > len {
            ctx.error(format!(
                "WebP: chunk {} runs past the end",
                String::from_utf8_lossy(&fourcc)
            ));
        }
        let body = |ctx: &mut Ctx<'_>| {
            if size > MAX_META_CHUNK_BYTES {
                return None;
            }
            ctx.r.read_upto(data, size).ok()
        };
        match &fourcc {
            b"VP8X" => {
                if let Some(b) = body(ctx) {
                    let w = u24(&b, 4);
                    let h = u24(&b, 7);
                    if let (Some(w), Some(h)) = (w, h) {
                        ctx.facts.main_dims = Some((w.saturating_add(1), h.saturating_add(1)));
                    }
                }
            }
            b"EXIF" => {
                if let Some(b) = body(ctx) {
                    let s = if b.starts_with(b"Exif\0\0") {
                        b.get(6..).unwrap_or(&[])
                    } else {
                        &b[..]
                    };
                    let off = if b.starts_with(b"Exif\0\0") {
                        data.saturating_add(6)
                    } else {
                        data
                    };
                    tiff::parse(ctx, Data::Mem(s, Some(off)), Host::Embedded);
                }
            }
            b"XMP " => {
                if let Some(b) = body(ctx) {
                    xmp::parse(ctx, &b, Some(data));
                }
            }
            b"ICCP" => {
                if let Some(b) = body(ctx) {
                    icc::parse(ctx, &b, Some(data));
                }
            }
            _ => {}
        }
        pos = next;
    }
    ctx.facts.image_end = Some(riff_end.min(len));
    if riff_end < len {
        let extra = len.saturating_sub(riff_end);
        let sample = ctx
            .r
            .read_upto(riff_end, extra.min(4096))
            .unwrap_or_default();
        if !sample.iter().all(|b| *b == 0) {
            ctx.check(
                Category::Trailer,
                "RIFF",
                "DataAfterRIFF",
                Some(riff_end),
                format!("{extra} bytes after the end of the WebP image"),
            );
        }
    }
}
