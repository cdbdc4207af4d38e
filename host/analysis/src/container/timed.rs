//! Timed-metadata tracks of a QuickTime/MP4 movie: which samples of which tracks are read, and
//! where a sample lies, found through the track's sample tables (ISO/IEC 14496-12 §8.7).
//!
//! | sample entry | maker | table | what is read |
//! |---|---|---|---|
//! | `gpmd` | GoPro (HERO5 and later) | `GoPro::GPMF` ([`crate::family::gpmf`]) | the first sample in full (device records and GPS); then, until a GPS fix is found, a few more samples for GPS only ([`sample_plan`]) |
//! | `fdsc` starting `GPRO` | GoPro (HERO5, HERO6) | `GoPro::fdsc` | the first sample's head: `SerialNumber` at its offset in the generated data |
//!
//! Findings are grouped `Track1`, `Track2`... by the track's number in the file, as ExifTool
//! groups them with `-ee -G1` (ExifTool reads timed metadata only with `-ee`; the shared
//! corpus's readings are made without it, so its scorer never counts these).
//!
//! A sample is located as ISO-BMFF says: `stsc` runs map it to a chunk and its place in the
//! chunk, `stco`/`co64` give the chunk's offset, and `stsz` the sizes of the samples before it
//! in that chunk. Only the table entries needed are read, never a whole table.
//!
//! Threat model: every count, index and offset comes from the file. At most
//! [`MAX_STSC_ENTRIES`] sample-to-chunk entries are read; a run whose first chunk does not
//! increase ends the table; at most [`MAX_CHUNK_SAMPLES`] sizes are summed to place a sample in
//! its chunk; a sample past the end of the file or over [`MAX_SAMPLE_BYTES`] is an error and is
//! not read; at most [`HEAD_SAMPLES`] + [`SPREAD_SAMPLES`] samples are read per track, so the
//! bytes read stay a few samples (a GoPro sample is one second of telemetry, a few KB) whatever
//! the movie's length. A GoPro `gpmd` sample that does not start with a FourCC is not GPMF
//! (dashcams reuse the name) and is skipped.
//!
//! Range mode: a table entry or sample not fetched yet does not stop the track; every planned
//! sample still asks for its range, so a host fetches them in one round (about 8 samples of a
//! few KB) instead of one round per sample, and never falls back to downloading a long video
//! whole because the rounds ran out. Any other failure (a lie) stops the track.

use crate::bytes::{be32, be64};
use crate::ctx::Ctx;
use crate::family::gpmf::Gpmf;
use crate::family::tiff;
use crate::model::Family;
use crate::source::ReadError;

/// Largest sample read (a GoPro `gpmd` sample holds one second of every sensor: tens of KB).
pub(crate) const MAX_SAMPLE_BYTES: u64 = 1024 * 1024;
/// Samples read from the start of a `gpmd` track (a camera needs seconds to get a GPS lock).
pub(crate) const HEAD_SAMPLES: u64 = 4;
/// Samples read across the rest of a `gpmd` track when the first ones hold no fix.
pub(crate) const SPREAD_SAMPLES: u64 = 4;
/// Most `stsc` entries read (movies have one to a few).
const MAX_STSC_ENTRIES: u32 = 4096;
/// Most sample sizes summed to place a sample inside its chunk.
const MAX_CHUNK_SAMPLES: u64 = 4096;
/// Bytes of an `fdsc` sample read: its fixed fields end at 0x76.
const FDSC_HEAD: u64 = 0x80;

/// Where a track's sample tables lie: body offset and length of `stsz`, `stsc` and `stco` (or
/// `co64`, with `true`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tables {
    pub stsz: Option<(u64, u64)>,
    pub stsc: Option<(u64, u64)>,
    pub stco: Option<(u64, u64, bool)>,
}

/// The `index`th track, whose first sample entry has format `entry`: its timed metadata, if it
/// is a kind we read.
pub(crate) fn track(ctx: &mut Ctx<'_>, index: u32, entry: [u8; 4], t: Tables) {
    if !matches!(&entry, b"gpmd" | b"fdsc") {
        return;
    }
    let group = format!("Track{index}");
    let Some(s) = Samples::read(ctx, &group, t) else {
        return;
    };
    if &entry == b"fdsc" {
        fdsc(ctx, &group, &s);
        return;
    }
    for (k, i) in sample_plan(u64::from(s.count)).into_iter().enumerate() {
        if !ctx.alive() {
            break;
        }
        let (off, len) = match s.locate(ctx, &group, i) {
            Ok(l) => l,
            Err(Stop::Missing) => continue,
            Err(Stop::Bad) => break,
        };
        if len > MAX_SAMPLE_BYTES {
            ctx.error(format!(
                "{group}: gpmd sample {i} is {len} bytes; over the cap, not read"
            ));
            continue;
        }
        let b = match table_read(ctx, &format!("{group}: gpmd sample {i}"), off, len) {
            Ok(b) => b,
            Err(Stop::Missing) => continue,
            Err(Stop::Bad) => break,
        };
        let fourcc = b
            .get(..4)
            .is_some_and(|k| k.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' '));
        if !fourcc {
            // Not GPMF: a dashcam's own `gpmd` layout (ExifTool reads a few by their signature).
            if k == 0 {
                return;
            }
            continue;
        }
        let mut g = Gpmf::new(&group, k == 0);
        g.read(ctx, &b, Some(off));
        if g.gps {
            break;
        }
    }
}

/// The samples read of a `gpmd` track of `n` samples, in order: the first [`HEAD_SAMPLES`],
/// then [`SPREAD_SAMPLES`] spread evenly over the rest, the last one included.
pub(crate) fn sample_plan(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n.min(HEAD_SAMPLES)).collect();
    let last = n.saturating_sub(1);
    for q in 1..=SPREAD_SAMPLES {
        let i = last
            .saturating_mul(q)
            .checked_div(SPREAD_SAMPLES)
            .unwrap_or(0);
        if i < n && !v.contains(&i) {
            v.push(i);
        }
    }
    v
}

/// An `fdsc` track's first sample (`GoPro::fdsc`, when it starts `GPRO`): its text fields at
/// the offsets the generated data lists.
fn fdsc(ctx: &mut Ctx<'_>, group: &str, s: &Samples) {
    let Ok((off, len)) = s.locate(ctx, group, 0) else {
        return;
    };
    let b = match ctx.r.read(off, len.min(FDSC_HEAD)) {
        Ok(b) => b,
        Err(e) => {
            ctx.read_error(&format!("{group}: fdsc sample"), &e);
            return;
        }
    };
    if !b.starts_with(b"GPRO") {
        return;
    }
    for (id, info) in crate::tagdata::rows("GoPro::fdsc") {
        if !crate::tagdata::is_plain(info.category) {
            continue;
        }
        let p = id as usize;
        match b.get(p..p.saturating_add(info.count as usize)) {
            Some(v) => ctx.text(
                Family::MakerNote,
                group,
                &format!("0x{id:04x}"),
                info.name,
                off.checked_add(u64::from(id)),
                &tiff::ascii(v),
            ),
            None => ctx.error(format!("{group}: fdsc {} truncated", info.name)),
        }
    }
}

/// Why a sample was not located: its table entries are not fetched yet (range mode), or the
/// tables do not place it (an error was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Missing,
    Bad,
}

/// A read of table or sample bytes, with its failure recorded and classified.
fn table_read(ctx: &mut Ctx<'_>, what: &str, off: u64, len: u64) -> Result<Vec<u8>, Stop> {
    ctx.r.read(off, len).map_err(|e| {
        ctx.read_error(what, &e);
        if matches!(e, ReadError::Missing(..)) {
            Stop::Missing
        } else {
            Stop::Bad
        }
    })
}

/// What the sample tables say, read as far as needed.
#[derive(Debug)]
struct Samples {
    /// Samples in the track (`stsz`).
    count: u32,
    /// The size of every sample, or 0: a table of sizes follows at `sizes`.
    fixed: u32,
    sizes: u64,
    sizes_end: u64,
    /// `stsc` runs: (first chunk, 1-based; samples per chunk).
    runs: Vec<(u32, u32)>,
    /// Chunk offsets: where the table starts, how many, 8-byte entries.
    chunks: u64,
    chunks_end: u64,
    chunk_count: u32,
    wide: bool,
}

impl Samples {
    fn read(ctx: &mut Ctx<'_>, group: &str, t: Tables) -> Option<Self> {
        let (Some((zb, zl)), Some((cb, cl)), Some((ob, ol, wide))) = (t.stsz, t.stsc, t.stco)
        else {
            ctx.error(format!("{group}: timed metadata without its sample tables"));
            return None;
        };
        let head = |ctx: &mut Ctx<'_>, what: &str, off: u64, want: u64, have: u64| match ctx
            .r
            .read(off, want.min(have))
        {
            Ok(b) => Some(b),
            Err(e) => {
                ctx.read_error(&format!("{group}: {what}"), &e);
                None
            }
        };
        // stsz: version/flags, sample size, sample count, then the sizes.
        let z = head(ctx, "stsz", zb, 12, zl)?;
        // stco/co64: version/flags, entry count, then the offsets.
        let o = head(ctx, "stco", ob, 8, ol)?;
        // stsc: version/flags, entry count, then (first chunk, samples per chunk, entry index).
        let c0 = head(ctx, "stsc", cb, 8, cl)?;
        let (Some(fixed), Some(count), Some(chunk_count), Some(n)) =
            (be32(&z, 4), be32(&z, 8), be32(&o, 4), be32(&c0, 4))
        else {
            ctx.error(format!("{group}: sample tables truncated"));
            return None;
        };
        let n = n.min(MAX_STSC_ENTRIES);
        let c = head(
            ctx,
            "stsc",
            cb,
            8u64.saturating_add(u64::from(n).saturating_mul(12)),
            cl,
        )?;
        let runs: Vec<(u32, u32)> = c
            .get(8..)
            .unwrap_or(&[])
            .chunks_exact(12)
            .take(n as usize)
            .filter_map(|e| Some((be32(e, 0)?, be32(e, 4)?)))
            .collect();
        Some(Self {
            count,
            fixed,
            sizes: zb.saturating_add(12),
            sizes_end: zb.saturating_add(zl),
            runs,
            chunks: ob.saturating_add(8),
            chunks_end: ob.saturating_add(ol),
            chunk_count,
            wide,
        })
    }

    /// Absolute offset and size of sample `i` (0-based); an error is recorded when the tables
    /// do not place it inside the file ([`Stop::Bad`]) or are not fetched yet.
    fn locate(&self, ctx: &mut Ctx<'_>, group: &str, i: u64) -> Result<(u64, u64), Stop> {
        let bad = |ctx: &mut Ctx<'_>, why: &str| {
            ctx.error(format!("{group}: sample {i} not located: {why}"));
            Err(Stop::Bad)
        };
        if i >= u64::from(self.count) {
            return bad(ctx, "past the sample count");
        }
        let mut before = 0u64;
        for (j, &(first, per)) in self.runs.iter().enumerate() {
            let next = self
                .runs
                .get(j.saturating_add(1))
                .map_or(u64::from(self.chunk_count).saturating_add(1), |r| {
                    u64::from(r.0)
                });
            let (first, per) = (u64::from(first), u64::from(per));
            if first == 0 || per == 0 || next <= first {
                return bad(ctx, "bad sample-to-chunk table");
            }
            let run = next.saturating_sub(first).saturating_mul(per);
            let k = i.saturating_sub(before);
            if i >= before && k < run {
                let chunk = first.saturating_add(k.checked_div(per).unwrap_or(0));
                let within = k.checked_rem(per).unwrap_or(0);
                if within > MAX_CHUNK_SAMPLES {
                    return bad(ctx, "too many samples before it in its chunk");
                }
                let chunk_off = self.chunk_offset(ctx, group, chunk.saturating_sub(1))?;
                let (skip, size) = if self.fixed != 0 {
                    let f = u64::from(self.fixed);
                    (f.saturating_mul(within), f)
                } else {
                    let from = i.saturating_sub(within);
                    let at = self.sizes.saturating_add(from.saturating_mul(4));
                    let want = within.saturating_add(1).saturating_mul(4);
                    if at.saturating_add(want) > self.sizes_end {
                        return bad(ctx, "sample size table truncated");
                    }
                    let b = table_read(ctx, &format!("{group}: stsz"), at, want)?;
                    let v: Vec<u64> = b
                        .chunks_exact(4)
                        .filter_map(|x| be32(x, 0).map(u64::from))
                        .collect();
                    let Some((last, prior)) = v.split_last() else {
                        return bad(ctx, "sample size table truncated");
                    };
                    (prior.iter().fold(0u64, |a, x| a.saturating_add(*x)), *last)
                };
                let off = chunk_off.saturating_add(skip);
                if off.checked_add(size).is_none_or(|e| e > ctx.r.len()) {
                    return bad(ctx, "it lies past the end of the file");
                }
                return Ok((off, size));
            }
            before = before.saturating_add(run);
        }
        bad(ctx, "no chunk holds it")
    }

    /// The offset of chunk `c` (0-based) from `stco`/`co64`.
    fn chunk_offset(&self, ctx: &mut Ctx<'_>, group: &str, c: u64) -> Result<u64, Stop> {
        let w = if self.wide { 8u64 } else { 4 };
        let at = self.chunks.saturating_add(c.saturating_mul(w));
        if c >= u64::from(self.chunk_count) || at.saturating_add(w) > self.chunks_end {
            ctx.error(format!("{group}: chunk {c} past the chunk offset table"));
            return Err(Stop::Bad);
        }
        let b = table_read(ctx, &format!("{group}: chunk offsets"), at, w)?;
        let o = if self.wide {
            be64(&b, 0)
        } else {
            be32(&b, 0).map(u64::from)
        };
        o.ok_or(Stop::Bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short track is read whole; a long one at its start and at four points across it, the
    /// last sample included; never more than eight samples.
    #[test]
    fn the_sample_plan_reads_the_start_then_spreads_over_the_rest() {
        assert_eq!(sample_plan(0), Vec::<u64>::new());
        assert_eq!(sample_plan(1), vec![0]);
        assert_eq!(sample_plan(3), vec![0, 1, 2]);
        assert_eq!(sample_plan(100), vec![0, 1, 2, 3, 24, 49, 74, 99]);
        assert_eq!(sample_plan(u64::from(u32::MAX)).len(), 8);
    }
}
