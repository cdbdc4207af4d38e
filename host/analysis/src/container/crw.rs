//! Canon CRW (CIFF heaps), also found in Canon PowerShot JPEG APP0 segments.
//!
//! Threat model: a heap's table offset and every entry's offset/size come from the file and are
//! checked against the heap; nested heaps go through [`Ctx::enter`]; at most
//! [`MAX_ENTRIES`] entries per heap.

use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff::{ascii, u16_at, u32_at};
use crate::model::Family;

const MAX_ENTRIES: u16 = 1024;

/// Most entries visited over all heaps of one file: nested heaps that point back at their
/// parent (or at each other) would otherwise multiply the work at every level.
const MAX_TOTAL_ENTRIES: u32 = 20_000;

/// Heaps already walked (start, length) and the entries visited so far.
#[derive(Default)]
struct Walk {
    seen: std::collections::HashSet<(u64, u64)>,
    entries: u32,
}

impl Walk {
    /// False when this heap was walked already or the entry budget is spent.
    fn enter_heap(&mut self, ctx: &mut Ctx<'_>, start: u64, len: u64) -> bool {
        if !self.seen.insert((start, len)) {
            ctx.error("CRW: heap visited twice; loop cut");
            return false;
        }
        true
    }
    fn entry(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.entries = self.entries.saturating_add(1);
        if self.entries > MAX_TOTAL_ENTRIES {
            if self.entries == MAX_TOTAL_ENTRIES.saturating_add(1) {
                ctx.error("CRW: too many entries; walk cut");
            }
            return false;
        }
        ctx.alive()
    }
}

/// Parse a CRW file.
pub(crate) fn parse_file(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    let Ok(h) = ctx.r.read(0, 14) else { return };
    let le = h.get(0..2) == Some(b"II");
    let hlen = u64::from(u32_at(&h, 2, le).unwrap_or(0));
    if hlen >= len {
        ctx.error("CRW: header length past the end");
        return;
    }
    // CRW heaps are small next to the raw data but can reference it; read the whole heap
    // structure lazily through the reader.
    heap_file(
        ctx,
        &mut Walk::default(),
        hlen,
        len.saturating_sub(hlen),
        le,
        "CanonRaw",
    );
}

/// Parse a CIFF block held in memory (JPEG APP0).
pub(crate) fn parse_mem(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>, group: &str) {
    let le = data.get(0..2) == Some(b"II");
    let hlen = u32_at(data, 2, le).unwrap_or(0) as usize;
    let Some(heap) = data.get(hlen..) else { return };
    let heap_abs = abs.and_then(|a| a.checked_add(hlen as u64));
    heap_mem(ctx, &mut Walk::default(), heap, 0, heap_abs, le, group);
}

fn heap_file(ctx: &mut Ctx<'_>, w: &mut Walk, start: u64, len: u64, le: bool, group: &str) {
    // The table sits at the end of the heap; read it and resolve entries with small reads.
    if len < 4 || !w.enter_heap(ctx, start, len) || !ctx.enter() {
        return;
    }
    let tail = start.saturating_add(len).saturating_sub(4);
    let Some(toff) = ctx.r.read(tail, 4).ok().and_then(|b| u32_at(&b, 0, le)) else {
        ctx.leave();
        return;
    };
    let tpos = start.saturating_add(u64::from(toff));
    let Some(count) = ctx.r.read(tpos, 2).ok().and_then(|b| u16_at(&b, 0, le)) else {
        ctx.leave();
        return;
    };
    if count > MAX_ENTRIES {
        ctx.error("CRW: implausible entry count");
        ctx.leave();
        return;
    }
    let Ok(tab) = ctx
        .r
        .read(tpos.saturating_add(2), u64::from(count).saturating_mul(10))
    else {
        ctx.leave();
        return;
    };
    for ent in tab.chunks_exact(10) {
        if !w.entry(ctx) {
            break;
        }
        let (Some(typ), Some(size), Some(off)) =
            (u16_at(ent, 0, le), u32_at(ent, 2, le), u32_at(ent, 6, le))
        else {
            continue;
        };
        let id = typ & 0x3fff;
        let in_record = typ & 0xc000 == 0x4000;
        let dtype = typ & 0x3800;
        let abs = start.saturating_add(u64::from(off));
        if in_record {
            entry(
                ctx,
                id,
                ent.get(2..10).unwrap_or(&[]),
                Some(start),
                le,
                group,
            );
            continue;
        }
        if u64::from(off).saturating_add(u64::from(size)) > len {
            ctx.error("CRW: entry outside its heap");
            continue;
        }
        if matches!(dtype, 0x2800 | 0x3000) {
            heap_file(ctx, w, abs, u64::from(size), le, group);
            continue;
        }
        match id {
            0x2007 | 0x2008 => {
                let name = if id == 0x2007 {
                    "JpgFromRaw"
                } else {
                    "ThumbnailImage"
                };
                ctx.image(
                    Family::MakerNote,
                    group,
                    &format!("0x{id:04x}"),
                    name,
                    EmbeddedImage {
                        offset: Some(abs),
                        len: u64::from(size),
                        data: None,
                        ..Default::default()
                    },
                );
            }
            0x0810 | 0x080a | 0x0816 | 0x0805 | 0x180b | 0x180e => {
                if let Ok(v) = ctx.r.read(abs, u64::from(size).min(4096)) {
                    entry(ctx, id, &v, Some(abs), le, group);
                }
            }
            _ => {}
        }
    }
    ctx.leave();
}

/// `rel` is the heap's offset within the outermost heap (the key for the visited set).
#[allow(clippy::too_many_arguments)]
fn heap_mem(
    ctx: &mut Ctx<'_>,
    w: &mut Walk,
    heap: &[u8],
    rel: u64,
    abs: Option<u64>,
    le: bool,
    group: &str,
) {
    if heap.len() < 4 || !w.enter_heap(ctx, rel, heap.len() as u64) || !ctx.enter() {
        return;
    }
    let toff = u32_at(heap, heap.len().saturating_sub(4), le).unwrap_or(0) as usize;
    let count = u16_at(heap, toff, le).unwrap_or(0).min(MAX_ENTRIES);
    for i in 0..usize::from(count) {
        if !w.entry(ctx) {
            break;
        }
        let p = toff.saturating_add(2).saturating_add(i.saturating_mul(10));
        let Some(ent) = heap.get(p..p.saturating_add(10)) else {
            break;
        };
        let (Some(typ), Some(size), Some(off)) =
            (u16_at(ent, 0, le), u32_at(ent, 2, le), u32_at(ent, 6, le))
        else {
            continue;
        };
        let id = typ & 0x3fff;
        let dtype = typ & 0x3800;
        if typ & 0xc000 == 0x4000 {
            entry(ctx, id, ent.get(2..10).unwrap_or(&[]), abs, le, group);
            continue;
        }
        let (o, s) = (off as usize, size as usize);
        let Some(v) = o.checked_add(s).and_then(|e| heap.get(o..e)) else {
            continue;
        };
        let vabs = abs.and_then(|a| a.checked_add(o as u64));
        if matches!(dtype, 0x2800 | 0x3000) {
            heap_mem(ctx, w, v, rel.saturating_add(o as u64), vabs, le, group);
        } else if matches!(id, 0x2007 | 0x2008) {
            let name = if id == 0x2007 {
                "JpgFromRaw"
            } else {
                "ThumbnailImage"
            };
            ctx.image(
                Family::MakerNote,
                group,
                &format!("0x{id:04x}"),
                name,
                EmbeddedImage {
                    offset: vabs,
                    len: s as u64,
                    data: None,
                    ..Default::default()
                },
            );
        } else {
            entry(ctx, id, v, vabs, le, group);
        }
    }
    ctx.leave();
}

fn entry(ctx: &mut Ctx<'_>, id: u16, v: &[u8], abs: Option<u64>, le: bool, group: &str) {
    let tag = format!("0x{id:04x}");
    match id {
        0x0810 => ctx.text(Family::MakerNote, group, &tag, "OwnerName", abs, &ascii(v)),
        0x0816 => ctx.text(
            Family::MakerNote,
            group,
            &tag,
            "OriginalFileName",
            abs,
            &ascii(v),
        ),
        0x0805 => ctx.text(
            Family::MakerNote,
            group,
            &tag,
            "CanonFileDescription",
            abs,
            &ascii(v),
        ),
        0x080a => {
            let mut parts = v.split(|b| *b == 0);
            let make = parts.next().map(ascii).unwrap_or_default();
            let model = parts.next().map(ascii).unwrap_or_default();
            if ctx.facts.make.is_none() && !make.is_empty() {
                ctx.facts.make = Some(make.clone());
            }
            if ctx.facts.model.is_none() && !model.is_empty() {
                ctx.facts.model = Some(model.clone());
            }
            ctx.text(Family::MakerNote, group, &tag, "Make", abs, &make);
            ctx.text(Family::MakerNote, group, &tag, "Model", abs, &model);
        }
        0x180b => {
            if ctx
                .facts
                .model
                .as_deref()
                .is_some_and(|m| m.contains("EOS"))
                && let Some(n) = u32_at(v, 0, le)
            {
                ctx.text(
                    Family::MakerNote,
                    group,
                    &tag,
                    "SerialNumber",
                    abs,
                    &format!("{n:010}"),
                );
            }
        }
        0x180e => {
            if let Some(t) = u32_at(v, 0, le) {
                ctx.text(
                    Family::MakerNote,
                    group,
                    &tag,
                    "DateTimeOriginal",
                    abs,
                    &unix_time(u64::from(t)),
                );
            }
        }
        _ => {}
    }
}

/// Seconds since 1970 as "YYYY:MM:DD HH:MM:SS" (UTC), without a date library.
#[allow(clippy::arithmetic_side_effects)] // i64 civil-date arithmetic on a u32 input
pub(crate) fn unix_time(t: u64) -> String {
    let days = t / 86_400;
    let rem = t % 86_400;
    // Civil-from-days (H. Hinnant), in i64 with no overflow for u32 inputs.
    let z = i64::try_from(days).unwrap_or(0).saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}:{m:02}:{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_times_format_as_exif_dates() {
        assert_eq!(super::unix_time(0), "1970:01:01 00:00:00");
        assert_eq!(super::unix_time(1_000_000_000), "2001:09:09 01:46:40");
    }
}
