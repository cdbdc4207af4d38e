//! ISO base media file format and its relatives: HEIC/HEIF/AVIF (Exif and XMP items located
//! through `iinf`/`iloc`), Canon CR3 (CMT1–CMT4 TIFF boxes, THMB), JPEG XL (`Exif`, `xml `
//! boxes) and JPEG 2000 (`uuid` XMP/IPTC/Exif boxes, `xml `).
//!
//! HEIF items, as ISO/IEC 23008-12 defines them and ExifTool reads them:
//!
//! | item | finding |
//! |---|---|
//! | `Exif` (any item, primary or not) | the EXIF it holds (after its 4-byte header offset) |
//! | `mime` `application/rdf+xml` (any item) | the XMP it holds |
//! | `jpeg` (any item: Fujifilm/Sony HIF previews) | `ThumbnailImage` when 160 px on a side, `OtherImage` when 1920, else `PreviewImage` (ExifTool's rule) |
//! | source of an `iref` `thmb` reference (the thumbnail, which refers to its master; HEVC, AV1 or JPEG coded) | `ThumbnailImage` |
//!
//! A `thmb` item coded as HEVC or AV1 is a real downscaled copy of the image it references, but
//! ExifTool 12.57 does not extract it (it extracts only `jpeg` items); we report it, as a
//! finding ExifTool misses. `auxl` items (alpha planes, depth maps, HDR gain maps) are
//! auxiliary planes, not viewable copies, and are not reported; neither are `dimg` grid tiles
//! (they are the primary image itself). Of an image item only a JPEG item's head is read (its
//! first [`JPEG_ITEM_HEAD`] bytes, for the frame size); the rest of its data never is.
//!
//! Threat model: box sizes (including 64-bit `largesize`) are checked against their parent;
//! nesting goes through [`Ctx::enter`]; `iloc` item and extent counts are capped
//! ([`MAX_ITEMS`], [`MAX_EXTENTS`]) and an item's total length is capped by the file size and
//! [`MAX_ITEM_BYTES`] before anything is allocated (HEIF `iloc` extents are a known
//! attacker-sized-allocation vector). Media data (`mdat`) is never read except the metadata
//! extents `iloc` points to and a few samples of a movie's timed-metadata tracks (GoPro
//! `gpmd`/`fdsc`, located and bounded by [`super::timed`]).

use super::qt;
use crate::bytes::{be16, be32, be64};
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::makernote;
use crate::family::tiff::{self, Data, Host, Ifd};
use crate::family::{iptc, xmp};
use crate::model::{Family, Format};

const MAX_ITEMS: u32 = 4096;
const MAX_EXTENTS: u16 = 64;
const MAX_ITEM_BYTES: u64 = 64 * 1024 * 1024;
const MAX_BOXES: u32 = 100_000;

const UUID_XMP: [u8; 16] = [
    0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf, 0xac,
];
const UUID_IPTC: [u8; 16] = [
    0x33, 0xc7, 0xa4, 0xd2, 0xb8, 0x1d, 0x47, 0x23, 0xa0, 0xba, 0xf1, 0xa3, 0xe0, 0x97, 0xad, 0x38,
];
const UUID_CANON: [u8; 16] = [
    0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b, 0x6a, 0x48,
];
const UUID_CANON_PRVW: [u8; 16] = [
    0xea, 0xf4, 0x2b, 0x5e, 0x1c, 0x98, 0x4b, 0x88, 0xb9, 0xfb, 0xb7, 0xdc, 0x40, 0x6e, 0x4d, 0x16,
];

#[derive(Debug, Default)]
struct Item {
    id: u32,
    typ: [u8; 4],
    content_type: String,
}

/// Most `iref` references kept (each names one source and up to [`MAX_REF_TARGETS`] targets).
const MAX_REFS: usize = 4096;
/// Most targets one `iref` reference may name.
const MAX_REF_TARGETS: u16 = 256;
/// Bytes of a JPEG item read to find its frame size (the SOF marker follows the tables).
const JPEG_ITEM_HEAD: u64 = 2048;

/// One `iref` single-item reference: `from` refers to each of `to` with this type.
#[derive(Debug)]
struct Ref {
    typ: [u8; 4],
    from: u32,
    to: Vec<u32>,
}

#[derive(Debug, Default)]
struct Loc {
    id: u32,
    method: u8,
    extents: Vec<(u64, u64)>,
}

#[derive(Default)]
struct State {
    items: Vec<Item>,
    locs: Vec<Loc>,
    refs: Vec<Ref>,
    primary: Option<u32>,
    idat: Option<(u64, u64)>,
    boxes: u32,
    /// `trak` boxes seen so far (ExifTool's Track1, Track2... groups count them).
    traks: u32,
    /// The track being walked.
    track: Option<Track>,
}

/// What one `trak` says about its first sample (CR3's JpgFromRaw track).
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    index: u32,
    /// `hdlr` handler type `vide`.
    video: bool,
    /// The first sample entry holds a `JPEG` box: Canon's flag for the full-size JPEG track.
    jpeg: bool,
    /// First chunk offset (`stco` / `co64`).
    chunk: Option<u64>,
    /// First sample size (`stsz`).
    size: Option<u64>,
    /// The first sample entry's format (`gpmd`, `fdsc`, `avc1`...).
    entry: [u8; 4],
    /// Where the sample tables lie, for the timed-metadata tracks ([`super::timed`]).
    tables: super::timed::Tables,
}

/// Bytes of a sample entry read to find its child boxes.
const SAMPLE_ENTRY_HEAD: u64 = 4096;

fn be_n(b: &[u8], p: usize, n: u8) -> Option<u64> {
    match n {
        0 => Some(0),
        4 => be32(b, p).map(u64::from),
        8 => be64(b, p),
        _ => None,
    }
}

/// Parse an ISO-BMFF-family file.
pub(crate) fn parse(ctx: &mut Ctx<'_>, format: Format) {
    let len = ctx.r.len();
    let mut st = State::default();
    boxes(ctx, 0, len, &mut st, format);
    resolve_items(ctx, &st);
}

fn boxes(ctx: &mut Ctx<'_>, start: u64, end: u64, st: &mut State, format: Format) {
    if !ctx.enter() {
        return;
    }
    let mut pos = start;
    while pos.saturating_add(8) <= end {
        st.boxes = st.boxes.saturating_add(1);
        if st.boxes > MAX_BOXES || !ctx.alive() {
            break;
        }
        let Ok(h) = ctx.r.read(pos, 16.min(end.saturating_sub(pos))) else {
            ctx.error(format!("box header at {pos} unreadable"));
            break;
        };
        let size32 = u64::from(be32(&h, 0).unwrap_or(0));
        let typ: [u8; 4] = h
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        let (size, hdr) = match size32 {
            0 => (end.saturating_sub(pos), 8u64),
            1 => (be64(&h, 8).unwrap_or(0), 16u64),
            s => (s, 8u64),
        };
        if size < hdr || pos.saturating_add(size) > end {
            ctx.error(format!(
                "box '{}' at {pos} has a bad size",
                String::from_utf8_lossy(&typ)
            ));
            break;
        }
        let body = pos.saturating_add(hdr);
        let body_len = size.saturating_sub(hdr);
        let body_end = pos.saturating_add(size);
        match &typ {
            b"meta" => {
                // ISO `meta` is a full box (4 bytes of version and flags before its children);
                // QuickTime's `moov/meta` is not: its `hdlr` child starts at once.
                // A `hdlr` of `mdta` or `mdir` makes it QuickTime metadata (`keys`/`ilst`).
                let first = qt::meta_first_child(ctx, body, body_end);
                if !qt::meta(ctx, first, body_end, st.track.map(|t| t.index)) {
                    boxes(ctx, first, body_end, st, format);
                }
            }
            b"trak" => {
                st.traks = st.traks.saturating_add(1);
                let outer = st.track.replace(Track {
                    index: st.traks,
                    ..Track::default()
                });
                boxes(ctx, body, body_end, st, format);
                if let Some(tr) = st.track.take() {
                    if format != Format::QuickTime {
                        jpeg_track(ctx, tr);
                    }
                    super::timed::track(ctx, tr.index, tr.entry, tr.tables);
                }
                st.track = outer;
            }
            // CR3's JpgFromRaw track, and the timed-metadata tracks of any movie (GoPro).
            b"hdlr" | b"stsd" | b"stsz" | b"stsc" | b"stco" | b"co64" if st.track.is_some() => {
                track_box(ctx, &typ, body, body_len, st, format != Format::QuickTime);
            }
            b"iprp" | b"ipco" | b"moov" | b"mdia" | b"minf" | b"stbl" | b"dinf" | b"jp2h"
            | b"res " => {
                boxes(ctx, body, body_end, st, format);
            }
            b"iinf" => iinf(ctx, body, body_len, st, format),
            b"iloc" => iloc(ctx, body, body_len, st),
            b"iref" => iref(ctx, body, body_len, st),
            b"pitm" => {
                if let Ok(b) = ctx.r.read(body, 8.min(body_len)) {
                    st.primary = if b.first() == Some(&0) {
                        be16(&b, 4).map(u32::from)
                    } else {
                        be32(&b, 4)
                    };
                }
            }
            b"idat" => st.idat = Some((body, body_len)),
            b"ispe" => {
                if let Ok(b) = ctx.r.read(body, 12.min(body_len))
                    && let (Some(w), Some(hh)) = (be32(&b, 4), be32(&b, 8))
                {
                    let bigger = ctx.facts.main_dims.is_none_or(|(a, c)| {
                        u64::from(w).saturating_mul(u64::from(hh))
                            > u64::from(a).saturating_mul(u64::from(c))
                    });
                    if bigger {
                        ctx.facts.main_dims = Some((w, hh));
                    }
                }
            }
            b"ihdr" => {
                if let Ok(b) = ctx.r.read(body, 8.min(body_len))
                    && let (Some(hh), Some(w)) = (be32(&b, 0), be32(&b, 4))
                {
                    ctx.facts.main_dims = Some((w, hh));
                }
            }
            b"Exif" => {
                // JPEG XL / JP2 Exif box: 4-byte offset to the TIFF header, then TIFF.
                if let Ok(b) = ctx.r.read(body, body_len.min(MAX_ITEM_BYTES)) {
                    exif_payload(ctx, &b, Some(body), format == Format::Jxl);
                }
            }
            b"xml " => {
                if let Ok(b) = ctx.r.read(body, body_len.min(MAX_ITEM_BYTES)) {
                    xmp::parse(ctx, &b, Some(body));
                }
            }
            b"brob" => {
                ctx.error("JPEG XL: Brotli-compressed metadata box not decoded");
            }
            b"uuid" => uuid_box(ctx, body, body_len),
            // QuickTime/MP4 user data and Kodak's `free` atoms: vendor tables (`qt.rs`).
            b"udta" => qt::udta(ctx, body, body_end, st.track.map(|t| t.index)),
            b"free" => qt::kodak_free(ctx, body, body_len),
            _ => {}
        }
        pos = body_end;
        if size == 0 {
            break;
        }
    }
    ctx.leave();
}

/// The sample-table boxes of a track that locate its first sample, and the handler and sample
/// entry that say what the sample is. Every track's table boxes are located and its first
/// sample entry's format noted; the rest (CR3's JPEG track) only when `cr3_fields`: a movie's
/// ordinary tracks are not read further.
fn track_box(
    ctx: &mut Ctx<'_>,
    typ: &[u8; 4],
    body: u64,
    len: u64,
    st: &mut State,
    cr3_fields: bool,
) {
    let Some(tr) = st.track.as_mut() else { return };
    match typ {
        b"stsz" => tr.tables.stsz = Some((body, len)),
        b"stsc" => tr.tables.stsc = Some((body, len)),
        b"stco" | b"co64" => tr.tables.stco = Some((body, len, typ == b"co64")),
        _ => {}
    }
    if typ == b"stsc" {
        return;
    }
    if !cr3_fields {
        // Full box: version/flags, entry count, then the first entry's size and format.
        if typ == b"stsd"
            && let Ok(b) = ctx.r.read(body, 16.min(len))
            && let Some(f) = b.get(12..16).and_then(|f| f.try_into().ok())
        {
            tr.entry = f;
        }
        return;
    }
    let want = if typ == b"stsd" {
        SAMPLE_ENTRY_HEAD.saturating_add(8)
    } else {
        16
    };
    let Ok(b) = ctx.r.read(body, want.min(len)) else {
        ctx.error(format!(
            "Track{}: '{}' box unreadable",
            tr.index,
            String::from_utf8_lossy(typ)
        ));
        return;
    };
    match typ {
        // Full box: version/flags, pre_defined, handler type.
        b"hdlr" => tr.video = b.get(8..12) == Some(b"vide"),
        // Full box: version/flags, entry count, then the first sample entry.
        b"stsd" => {
            if let Some(f) = b.get(12..16).and_then(|f| f.try_into().ok()) {
                tr.entry = f;
            }
            let entry = b.get(8..).unwrap_or(&[]);
            let size = be32(entry, 0).map_or(0, |x| x as usize).min(entry.len());
            let mut p = sample_entry_children(entry.get(..size).unwrap_or(&[]));
            while let Some(at) = p {
                let n = be32(entry, at).map_or(0, |x| x as usize);
                if entry.get(at.saturating_add(4)..at.saturating_add(8)) == Some(b"JPEG") {
                    tr.jpeg = true;
                    break;
                }
                p = (n >= 8 && at.saturating_add(n).saturating_add(8) <= size)
                    .then(|| at.saturating_add(n));
            }
        }
        // Full box: version/flags, sample size (0: a table of sizes follows the count).
        b"stsz" => {
            tr.size = match be32(&b, 4) {
                Some(0) => be32(&b, 12).map(u64::from),
                s => s.map(u64::from),
            };
            if tr.size.is_none() {
                ctx.error(format!("Track{}: stsz truncated", tr.index));
            }
        }
        // Full box: version/flags, entry count, then 32- or 64-bit chunk offsets.
        b"stco" | b"co64" => {
            let n = be32(&b, 4).unwrap_or(0);
            let first = if typ == b"co64" {
                be64(&b, 8)
            } else {
                be32(&b, 8).map(u64::from)
            };
            match first {
                Some(o) if n > 0 => tr.chunk = Some(o),
                _ => ctx.error(format!("Track{}: chunk offsets truncated", tr.index)),
            }
        }
        _ => {}
    }
}

/// Where the child boxes of a sample entry start, found as ExifTool finds them: the first
/// position after the 8-byte header from which a chain of boxes with word-character types
/// ends exactly at the end of the entry (Canon's CRAW entry has 4 bytes more than ISO/IEC
/// 14496-12's VisualSampleEntry before its children).
fn sample_entry_children(entry: &[u8]) -> Option<usize> {
    let end = entry.len();
    let mut pos = 8usize;
    let mut at = pos;
    while pos.saturating_add(8) <= end {
        let typ_ok = entry
            .get(at.saturating_add(4)..at.saturating_add(8))
            .is_some_and(|t| {
                t.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b' '))
            });
        let size = be32(entry, at).map_or(0, |x| x as usize);
        if !typ_ok {
            pos = pos.saturating_add(1);
            at = pos;
            continue;
        }
        if at.saturating_add(size) == end && size >= 8 {
            return Some(pos);
        }
        if size < 8 || at.saturating_add(size) > end.saturating_sub(8) {
            pos = pos.saturating_add(1);
            at = pos;
        } else {
            at = at.saturating_add(size);
        }
    }
    None
}

/// A video track whose sample entry carries Canon's `JPEG` box holds the full-size JPEG of a
/// CR3 (ExifTool's `TrackN:JpgFromRaw`): its first sample, located by the sample tables.
fn jpeg_track(ctx: &mut Ctx<'_>, tr: Track) {
    if !(tr.video && tr.jpeg) {
        return;
    }
    let group = format!("Track{}", tr.index);
    let (Some(off), Some(len)) = (tr.chunk, tr.size) else {
        ctx.error(format!("{group}:JpgFromRaw has no sample location"));
        return;
    };
    if off.checked_add(len).is_none_or(|e| e > ctx.r.len()) {
        ctx.error(format!("{group}:JpgFromRaw points outside the file"));
        return;
    }
    ctx.image(
        Family::Container,
        &group,
        "JPEG",
        "JpgFromRaw",
        EmbeddedImage {
            offset: Some(off),
            len,
            data: None,
            ..Default::default()
        },
    );
}

fn exif_payload(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>, with_offset: bool) {
    let mut start = 0usize;
    if with_offset || !(b.starts_with(b"II") || b.starts_with(b"MM") || b.starts_with(b"Exif")) {
        let off = be32(b, 0).unwrap_or(0) as usize;
        start = off.saturating_add(4);
    }
    let mut body = b.get(start..).unwrap_or(&[]);
    let mut babs = abs.and_then(|a| a.checked_add(start as u64));
    if body.starts_with(b"Exif\0\0") {
        body = body.get(6..).unwrap_or(&[]);
        babs = babs.and_then(|a| a.checked_add(6));
    }
    if !(body.starts_with(b"II") || body.starts_with(b"MM")) {
        // Some writers put the TIFF header elsewhere; search the first bytes.
        if let Some(p) = b
            .windows(4)
            .take(64)
            .position(|w| w == b"II*\0" || w == b"MM\0*")
        {
            body = b.get(p..).unwrap_or(&[]);
            babs = abs.and_then(|a| a.checked_add(p as u64));
        }
    }
    tiff::parse(ctx, Data::Mem(body, babs), Host::Embedded);
}

fn uuid_box(ctx: &mut Ctx<'_>, body: u64, len: u64) {
    let Ok(u) = ctx.r.read(body, 16.min(len)) else {
        return;
    };
    let data = body.saturating_add(16);
    let dlen = len.saturating_sub(16);
    if u.as_slice() == UUID_XMP {
        if let Ok(b) = ctx.r.read(data, dlen.min(MAX_ITEM_BYTES)) {
            xmp::parse(ctx, &b, Some(data));
        }
    } else if u.as_slice() == UUID_IPTC {
        if let Ok(b) = ctx.r.read(data, dlen.min(MAX_ITEM_BYTES)) {
            iptc::parse(ctx, &b, Some(data), "IPTC");
        }
    } else if u.as_slice() == b"JpgTiffExif->JP2" {
        if let Ok(b) = ctx.r.read(data, dlen.min(MAX_ITEM_BYTES)) {
            exif_payload(ctx, &b, Some(data), false);
        }
    } else if u.as_slice() == UUID_CANON {
        canon_boxes(ctx, data, data.saturating_add(dlen));
    } else if u.as_slice() == UUID_CANON_PRVW {
        // uuid PRVW: 8 bytes, then a PRVW box: header(8) + 8 bytes + size(4) + JPEG.
        if let Ok(b) = ctx.r.read(data, 40.min(dlen))
            && let Some(jl) = be32(&b, 28)
        {
            ctx.image(
                Family::Container,
                "QuickTime",
                "PRVW",
                "PreviewImage",
                EmbeddedImage {
                    offset: Some(data.saturating_add(32)),
                    len: u64::from(jl),
                    data: None,
                    ..Default::default()
                },
            );
        }
    }
}

fn canon_boxes(ctx: &mut Ctx<'_>, start: u64, end: u64) {
    let mut pos = start;
    let mut n = 0u32;
    while pos.saturating_add(8) <= end && n < 64 {
        n = n.saturating_add(1);
        let Ok(h) = ctx.r.read(pos, 8) else { break };
        let size = u64::from(be32(&h, 0).unwrap_or(0));
        if size < 8 || pos.saturating_add(size) > end {
            break;
        }
        let typ = h.get(4..8).unwrap_or(&[]);
        let body = pos.saturating_add(8);
        let blen = size.saturating_sub(8);
        let kind = match typ {
            b"CMT1" => Some(Ifd::Main(0)),
            b"CMT2" => Some(Ifd::Exif),
            b"CMT4" => Some(Ifd::Gps),
            _ => None,
        };
        if let Ok(b) = ctx.r.read(body, blen.min(MAX_ITEM_BYTES)) {
            if let Some(k) = kind {
                if let Some((mut t, first)) =
                    tiff::Tiff::open(ctx, Data::Mem(&b, Some(body)), Host::Embedded)
                {
                    if k == Ifd::Main(0) {
                        tiff::walk(ctx, &mut t, first);
                    } else {
                        tiff::walk_ifd(ctx, &mut t, first, k);
                    }
                }
            } else if typ == b"CMT3" {
                if let Some((mut t, first)) =
                    tiff::Tiff::open(ctx, Data::Mem(&b, Some(body)), Host::Embedded)
                {
                    makernote::walk_canon(ctx, &mut t, first);
                }
            } else if typ == b"THMB"
                && let Some(jl) = be32(&b, 8)
            {
                ctx.image(
                    Family::MakerNote,
                    "Canon",
                    "THMB",
                    "ThumbnailImage",
                    EmbeddedImage {
                        offset: Some(body.saturating_add(16)),
                        len: u64::from(jl),
                        data: None,
                        ..Default::default()
                    },
                );
            }
        }
        pos = pos.saturating_add(size);
    }
}

fn iinf(ctx: &mut Ctx<'_>, body: u64, len: u64, st: &mut State, _format: Format) {
    let Ok(b) = ctx.r.read(body, len.min(4 * 1024 * 1024)) else {
        ctx.error("HEIF: iinf unreadable");
        return;
    };
    let version = b.first().copied().unwrap_or(0);
    let mut p = if version == 0 { 6usize } else { 8usize };
    let mut count = 0u32;
    while p.saturating_add(8) <= b.len() && count < MAX_ITEMS {
        count = count.saturating_add(1);
        let size = be32(&b, p).unwrap_or(0) as usize;
        if size < 8 || p.saturating_add(size) > b.len() {
            break;
        }
        if b.get(p.saturating_add(4)..p.saturating_add(8)) == Some(b"infe") {
            let e = b
                .get(p.saturating_add(8)..p.saturating_add(size))
                .unwrap_or(&[]);
            let v = e.first().copied().unwrap_or(0);
            if v >= 2 {
                let (id, q) = if v == 2 {
                    (be16(e, 4).map(u32::from), 6usize)
                } else {
                    (be32(e, 4), 8usize)
                };
                let typ: [u8; 4] = e
                    .get(q.saturating_add(2)..q.saturating_add(6))
                    .and_then(|x| x.try_into().ok())
                    .unwrap_or([0; 4]);
                let rest = e.get(q.saturating_add(6)..).unwrap_or(&[]);
                let mut parts = rest.split(|c| *c == 0);
                let _name = parts.next();
                let content_type = if &typ == b"mime" {
                    parts
                        .next()
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                if let Some(id) = id {
                    st.items.push(Item {
                        id,
                        typ,
                        content_type,
                    });
                }
            }
        }
        p = p.saturating_add(size);
    }
}

fn iloc(ctx: &mut Ctx<'_>, body: u64, len: u64, st: &mut State) {
    let Ok(b) = ctx.r.read(body, len.min(4 * 1024 * 1024)) else {
        ctx.error("HEIF: iloc unreadable");
        return;
    };
    let version = b.first().copied().unwrap_or(0);
    let s1 = b.get(4).copied().unwrap_or(0);
    let s2 = b.get(5).copied().unwrap_or(0);
    let (off_sz, len_sz, base_sz) = (s1 >> 4, s1 & 15, s2 >> 4);
    let idx_sz = if version >= 1 { s2 & 15 } else { 0 };
    let (count, mut p) = if version < 2 {
        (be16(&b, 6).map(u32::from).unwrap_or(0), 8usize)
    } else {
        (be32(&b, 6).unwrap_or(0), 10usize)
    };
    let nb = |n: u8| usize::from(n);
    for _ in 0..count.min(MAX_ITEMS) {
        let id = if version < 2 {
            let v = be16(&b, p).map(u32::from);
            p = p.saturating_add(2);
            v
        } else {
            let v = be32(&b, p);
            p = p.saturating_add(4);
            v
        };
        let Some(id) = id else { break };
        let mut method = 0u8;
        if version >= 1 {
            method = be16(&b, p).map_or(0, |x| (x & 15) as u8);
            p = p.saturating_add(2);
        }
        p = p.saturating_add(2); // data_reference_index
        let Some(base) = be_n(&b, p, base_sz) else {
            break;
        };
        p = p.saturating_add(nb(base_sz));
        let Some(ext_count) = be16(&b, p) else { break };
        p = p.saturating_add(2);
        if ext_count > MAX_EXTENTS {
            ctx.error("HEIF: too many extents for one item");
            break;
        }
        let mut extents = Vec::new();
        for _ in 0..ext_count {
            if version >= 1 && idx_sz > 0 {
                p = p.saturating_add(nb(idx_sz));
            }
            let (Some(o), Some(l)) = (
                be_n(&b, p, off_sz),
                be_n(&b, p.saturating_add(nb(off_sz)), len_sz),
            ) else {
                return;
            };
            p = p.saturating_add(nb(off_sz)).saturating_add(nb(len_sz));
            extents.push((base.saturating_add(o), l));
        }
        if st.locs.len() < MAX_ITEMS as usize {
            st.locs.push(Loc {
                id,
                method,
                extents,
            });
        }
    }
}

/// `iref`: single-item references (ISO/IEC 14496-12 8.11.12), 16-bit ids in version 0 and
/// 32-bit ids in version 1. Counts are capped; a reference that runs past its box ends the
/// walk with an error, keeping the references read before it.
fn iref(ctx: &mut Ctx<'_>, body: u64, len: u64, st: &mut State) {
    let Ok(b) = ctx.r.read(body, len.min(1024 * 1024)) else {
        ctx.error("HEIF: iref unreadable");
        return;
    };
    let wide = b.first().copied().unwrap_or(0) >= 1;
    let id_len: usize = if wide { 4 } else { 2 };
    let id_at = |p: usize| {
        if wide {
            be32(&b, p)
        } else {
            be16(&b, p).map(u32::from)
        }
    };
    let mut p = 4usize;
    while p.saturating_add(8) <= b.len() && st.refs.len() < MAX_REFS {
        let size = be32(&b, p).unwrap_or(0) as usize;
        let end = p.saturating_add(size);
        if size < 8 || end > b.len() {
            ctx.error("HEIF: iref reference runs past its box");
            break;
        }
        let typ: [u8; 4] = b
            .get(p.saturating_add(4)..p.saturating_add(8))
            .and_then(|x| x.try_into().ok())
            .unwrap_or([0; 4]);
        let q = p.saturating_add(8);
        let (Some(from), Some(n)) = (id_at(q), be16(&b, q.saturating_add(id_len))) else {
            ctx.error("HEIF: iref reference truncated");
            break;
        };
        let mut to = Vec::new();
        let mut t = q.saturating_add(id_len).saturating_add(2);
        for _ in 0..n.min(MAX_REF_TARGETS) {
            if t.saturating_add(id_len) > end {
                ctx.error("HEIF: iref reference truncated");
                break;
            }
            if let Some(id) = id_at(t) {
                to.push(id);
            }
            t = t.saturating_add(id_len);
        }
        st.refs.push(Ref { typ, from, to });
        p = end;
    }
}

/// The bytes of an item's data in the file: (first extent's absolute offset, total length,
/// number of extents), or `None` (and an error) when the item has no usable location.
fn item_span(ctx: &mut Ctx<'_>, st: &State, id: u32) -> Option<(u64, u64, usize)> {
    let Some(loc) = st.locs.iter().find(|l| l.id == id) else {
        ctx.error(format!("HEIF: item {id} has no location"));
        return None;
    };
    let mut first = None;
    let mut total = 0u64;
    for (o, l) in &loc.extents {
        let abs = match loc.method {
            0 => *o,
            1 => match st.idat {
                Some((io, il)) if o.saturating_add(*l) <= il => io.saturating_add(*o),
                _ => {
                    ctx.error(format!("HEIF: item {id} lies outside idat"));
                    return None;
                }
            },
            _ => {
                ctx.error(format!(
                    "HEIF: item {id} uses construction method {}; not read",
                    loc.method
                ));
                return None;
            }
        };
        let l = if *l == 0 {
            ctx.r.len().saturating_sub(abs)
        } else {
            *l
        };
        if abs >= ctx.r.len() {
            ctx.error(format!("HEIF: item {id} starts past the end of the file"));
            return None;
        }
        first.get_or_insert(abs);
        total = total.saturating_add(l);
    }
    first.map(|f| (f, total, loc.extents.len()))
}

/// Embedded images among the items: every `jpeg` item, and every item that is the source of
/// a `thmb` reference (a thumbnail of the item it refers to).
fn image_items(ctx: &mut Ctx<'_>, st: &State) {
    let thumbs: Vec<u32> = st
        .refs
        .iter()
        .filter(|r| &r.typ == b"thmb" && !r.to.is_empty())
        .map(|r| r.from)
        .collect();
    for it in &st.items {
        if !ctx.alive() {
            break;
        }
        let is_jpeg = &it.typ == b"jpeg";
        let is_thumb = thumbs.contains(&it.id);
        if !(is_jpeg || is_thumb) || Some(it.id) == st.primary {
            continue;
        }
        let Some((off, len, extents)) = item_span(ctx, st, it.id) else {
            continue;
        };
        let mut name = if is_jpeg {
            "PreviewImage"
        } else {
            "ThumbnailImage"
        };
        if is_jpeg {
            let head = ctx.r.read(off, JPEG_ITEM_HEAD.min(len)).ok();
            // ExifTool's naming of HIF JPEG items (from Fujifilm's three sizes): 160 pixels
            // on a side is the thumbnail, 1920 a large preview, anything else the preview.
            match head.as_deref().and_then(crate::checks::jpeg_dims) {
                Some((w, h)) if w == 160 || h == 160 => name = "ThumbnailImage",
                Some((w, h)) if w == 1920 || h == 1920 => name = "OtherImage",
                _ if is_thumb => name = "ThumbnailImage",
                _ => {}
            }
        }
        let tag = String::from_utf8_lossy(&it.typ).into_owned();
        ctx.image(
            Family::Container,
            "HEIF",
            &tag,
            name,
            EmbeddedImage {
                // Scattered extents are not one run of bytes: no offset to read them from.
                offset: (extents == 1).then_some(off),
                len,
                data: None,
                ..Default::default()
            },
        );
    }
}

fn resolve_items(ctx: &mut Ctx<'_>, st: &State) {
    image_items(ctx, st);
    for it in &st.items {
        let is_exif = &it.typ == b"Exif";
        let is_xmp = &it.typ == b"mime"
            && (it.content_type.contains("rdf+xml") || it.content_type.contains("xmp"));
        if !(is_exif || is_xmp) {
            continue;
        }
        let Some(loc) = st.locs.iter().find(|l| l.id == it.id) else {
            ctx.error(format!("HEIF: item {} has no location", it.id));
            continue;
        };
        let total: u64 = loc
            .extents
            .iter()
            .map(|(_, l)| *l)
            .fold(0, u64::saturating_add);
        if total > MAX_ITEM_BYTES.min(ctx.r.len()) {
            ctx.error(format!(
                "HEIF: item {} declares {total} bytes; refused",
                it.id
            ));
            continue;
        }
        let mut buf = Vec::new();
        let mut first_abs = None;
        let mut ok = true;
        for (o, l) in &loc.extents {
            let abs = if loc.method == 1 {
                match st.idat {
                    Some((io, il)) if o.saturating_add(*l) <= il => io.saturating_add(*o),
                    _ => {
                        ok = false;
                        break;
                    }
                }
            } else {
                *o
            };
            // A zero length extent means "to the end of the file".
            let l = if *l == 0 {
                ctx.r.len().saturating_sub(abs)
            } else {
                *l
            };
            first_abs.get_or_insert(abs);
            match ctx.r.read(abs, l) {
                Ok(b) => buf.extend_from_slice(&b),
                Err(e) => {
                    ctx.read_error(&format!("HEIF item {}", it.id), &e);
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        if is_exif {
            exif_payload(ctx, &buf, first_abs, true);
        } else {
            xmp::parse(ctx, &buf, first_abs);
        }
    }
}
