//! GIF: comment extensions, XMP application extension, screen size.
//!
//! Threat model: sub-block chains are walked by their one-byte lengths with a block cap; the
//! XMP "magic trailer" is stripped before parsing; image data is skipped block by block.

use crate::ctx::Ctx;
use crate::family::xmp;
use crate::model::Family;

const MAX_BLOCKS: u32 = 1_000_000;
const MAX_XMP_BYTES: usize = 4 * 1024 * 1024;

/// Walk a sub-block chain from `pos`; returns (end position, data with or without length bytes).
fn sub_blocks(ctx: &mut Ctx<'_>, mut pos: u64, keep: bool, with_len: bool) -> (u64, Vec<u8>) {
    let mut out = Vec::new();
    let mut n = 0u32;
    loop {
        n = n.saturating_add(1);
        if n > MAX_BLOCKS || (n.is_multiple_of(4096) && !ctx.alive()) {
            return (u64::MAX, out);
        }
        let Ok(b) = ctx.r.read(pos, 1) else {
            return (u64::MAX, out);
        };
        let l = u64::from(b.first().copied().unwrap_or(0));
        if l == 0 {
            return (pos.saturating_add(1), out);
        }
        if keep && out.len() < MAX_XMP_BYTES {
            if with_len {
                out.push(b.first().copied().unwrap_or(0));
            }
            if let Ok(d) = ctx.r.read(pos.saturating_add(1), l) {
                out.extend_from_slice(&d);
            }
        }
        pos = pos.saturating_add(1).saturating_add(l);
    }
}

/// Parse a GIF file.
pub(crate) fn parse(ctx: &mut Ctx<'_>) {
    let Ok(h) = ctx.r.read(0, 13) else { return };
    let w = u16::from_le_bytes([
        h.get(6).copied().unwrap_or(0),
        h.get(7).copied().unwrap_or(0),
    ]);
    let hh = u16::from_le_bytes([
        h.get(8).copied().unwrap_or(0),
        h.get(9).copied().unwrap_or(0),
    ]);
    ctx.facts.main_dims = Some((u32::from(w), u32::from(hh)));
    let flags = h.get(10).copied().unwrap_or(0);
    let mut pos = 13u64;
    if flags & 0x80 != 0 {
        pos = pos.saturating_add(3u64.saturating_mul(1u64 << ((flags & 7).saturating_add(1))));
    }
    let mut guard = 0u32;
    while ctx.alive() {
        guard = guard.saturating_add(1);
        if guard > 100_000 {
            break;
        }
        let Ok(b) = ctx.r.read(pos, 1) else { break };
        match b.first().copied() {
            Some(0x21) => {
                let Ok(l) = ctx.r.read(pos.saturating_add(1), 1) else {
                    break;
                };
                let label = l.first().copied().unwrap_or(0);
                if label == 0xfe {
                    let (end, data) = sub_blocks(ctx, pos.saturating_add(2), true, false);
                    let s = String::from_utf8_lossy(&data).into_owned();
                    ctx.text(Family::Container, "File", "0xfe", "Comment", Some(pos), &s);
                    pos = end;
                } else if label == 0xff {
                    let Ok(app) = ctx.r.read(pos.saturating_add(2), 12) else {
                        break;
                    };
                    let is_xmp = app.get(1..12) == Some(b"XMP DataXMP");
                    let (end, data) = sub_blocks(ctx, pos.saturating_add(14), is_xmp, true);
                    if is_xmp {
                        // Drop the 257-byte magic trailer that makes raw XML a valid block chain.
                        let keep = data.len().saturating_sub(257);
                        xmp::parse(
                            ctx,
                            data.get(..keep).unwrap_or(&[]),
                            Some(pos.saturating_add(14)),
                        );
                    }
                    pos = end;
                } else {
                    pos = sub_blocks(ctx, pos.saturating_add(2), false, false).0;
                }
            }
            Some(0x2c) => {
                let Ok(d) = ctx.r.read(pos, 10) else { break };
                let f = d.get(9).copied().unwrap_or(0);
                let mut p = pos.saturating_add(10);
                if f & 0x80 != 0 {
                    p = p.saturating_add(3u64.saturating_mul(1u64 << ((f & 7).saturating_add(1))));
                }
                pos = sub_blocks(ctx, p.saturating_add(1), false, false).0;
            }
            Some(0x3b) => {
                ctx.facts.image_end = Some(pos.saturating_add(1));
                break;
            }
            _ => break,
        }
        if pos == u64::MAX {
            break;
        }
    }
}
