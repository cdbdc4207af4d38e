//! FlashPix in JPEG APP2 `FPXR` segments (Kodak, Fujifilm, HP, Samsung and Sanyo cameras): the
//! streams of a small compound document split over segments, reassembled as ExifTool does.
//!
//! Segment layout (after `FPXR\0`, a version byte and a type byte):
//!
//! | type | body |
//! |---|---|
//! | 1, contents list | entry count (16-bit BE); per entry a stream size (32-bit BE, `0xffffffff` for a storage, which a 16-byte class id follows), a default byte and a NUL-terminated UTF-16LE path starting with `/` |
//! | 2, stream data | contents-list index (16-bit BE), offset in the stream (32-bit BE), data |
//! | 3 | reserved |
//!
//! The first data segment of a stream starts it whatever its offset says; a later one skips the
//! bytes that overlap what is already there, as ExifTool does (its samples repeat them). A
//! stream is complete at its listed size; one still short at the end of the walk is read as far
//! as it goes, with an error.
//!
//! Of the streams, only those that can hold a privacy finding are kept (by their name without
//! the instance number or class-id suffix): `\x05Image Info` (the camera's and the scanner's
//! serial number, ExifTool's `FlashPix::ImageInfo`), `\x05SummaryInformation` (`Author`),
//! `\x05Screen Nail` (a preview picture for the camera's LCD: `ScreenNail`, and the JPEG in it
//! as `PreviewImage`, ExifTool's composite rule) and `Preview` (Fujifilm: a 47-byte header, then
//! a JPEG). Fujifilm also writes its preview with no contents list at all, in segments of index
//! 512 whose data starts 60 bytes in with a JPEG; those are joined into `PreviewImage` too. The property sets are parsed only as far as the tag ids of those tables: the
//! generated data (`FlashPix::ImageInfo`, `FlashPix::SummaryInfo`) names them.
//!
//! Threat model: counts, sizes and offsets come from the file. At most [`MAX_ENTRIES`] entries
//! are listed, kept streams together hold at most [`MAX_STREAM_BYTES`], a property set is read
//! within its stream only, with at most [`MAX_PROPS`] properties and [`MAX_VECTOR`] vector
//! elements each.

use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff::MAX_KEPT_IMAGE_BYTES;
use crate::model::Family;

/// Most contents-list entries kept.
const MAX_ENTRIES: usize = 256;
/// Most bytes of kept streams, all together.
const MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;
/// Most properties read from one property set.
const MAX_PROPS: usize = 1024;
/// Most elements of a vector value read.
const MAX_VECTOR: usize = 16;
/// The stream header ExifTool skips before a ScreenNail's data.
const SCREEN_NAIL_HEADER: usize = 0x1c;
/// Fujifilm's header before the JPEG of a `Preview` stream.
const FUJI_PREVIEW_HEADER: usize = 47;

/// What a kept stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ImageInfo,
    Summary,
    ScreenNail,
    Preview,
}

#[derive(Debug)]
struct Entry {
    kind: Option<Kind>,
    size: u64,
    stream: Option<Vec<u8>>,
    done: bool,
}

/// FPXR segments being reassembled over one JPEG walk.
#[derive(Debug, Default)]
pub(crate) struct Fpxr {
    entries: Option<Vec<Entry>>,
    kept: usize,
    /// Fujifilm's preview stored without a contents list (index 512, a 47-byte header after
    /// the segment's 13, then a JPEG), concatenated as ExifTool does.
    fuji: Option<Vec<u8>>,
}

/// The stream's base name: the path's last component without ExifTool's suffixes (an instance
/// number ` 000000` or a class id `_bd0100609719a180`).
fn kind_of(path: &str) -> Option<Kind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let base = match name.rsplit_once(' ') {
        Some((b, n)) if n.len() == 6 && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => match name.rsplit_once('_') {
            Some((b, h))
                if h.len() == 16 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                b
            }
            _ => name,
        },
    };
    match base {
        "\u{5}Image Info" => Some(Kind::ImageInfo),
        "\u{5}SummaryInformation" => Some(Kind::Summary),
        "\u{5}Screen Nail" => Some(Kind::ScreenNail),
        "Preview" => Some(Kind::Preview),
        _ => None,
    }
}

fn be16(b: &[u8], p: usize) -> Option<u16> {
    crate::bytes::be16(b, p)
}

fn be32(b: &[u8], p: usize) -> Option<u32> {
    crate::bytes::be32(b, p)
}

fn le16(b: &[u8], p: usize) -> Option<u16> {
    b.get(p..p.checked_add(2)?)
        .and_then(|x| x.try_into().ok())
        .map(u16::from_le_bytes)
}

fn le32(b: &[u8], p: usize) -> Option<u32> {
    b.get(p..p.checked_add(4)?)
        .and_then(|x| x.try_into().ok())
        .map(u32::from_le_bytes)
}

/// UTF-16LE to the first NUL (the crate's one decoder, uncapped here: the slices are bounded).
fn utf16le(b: &[u8]) -> String {
    crate::bytes::utf16le_to_nul(b, usize::MAX)
}

impl Fpxr {
    /// One APP2 segment's payload (starting with `FPXR\0`).
    pub(crate) fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &[u8]) {
        if seg.len() < 13 {
            ctx.error("FPXR: segment too small");
            return;
        }
        match seg.get(6) {
            Some(1) => self.contents(ctx, seg),
            Some(2) => self.data(ctx, seg),
            Some(3) => {}
            t => ctx.error(format!(
                "FPXR: unknown segment type {}",
                t.copied().unwrap_or(0)
            )),
        }
    }

    fn contents(&mut self, ctx: &mut Ctx<'_>, seg: &[u8]) {
        if self.entries.is_some() {
            ctx.error("FPXR: more than one contents list; the first is kept");
            return;
        }
        let n = usize::from(be16(seg, 7).unwrap_or(0));
        let mut entries = Vec::new();
        let mut pos = 9usize;
        for _ in 0..n.min(MAX_ENTRIES) {
            let Some(size) = be32(seg, pos) else {
                ctx.error("FPXR: contents list truncated");
                break;
            };
            // Name: UTF-16LE from pos + 5, NUL-terminated (an aligned pair of zero bytes).
            let start = pos.saturating_add(5);
            let mut end = start;
            loop {
                match le16(seg, end) {
                    Some(0) => break,
                    Some(_) => end = end.saturating_add(2),
                    None => {
                        end = usize::MAX;
                        break;
                    }
                }
            }
            let Some(raw) = seg.get(start..end) else {
                ctx.error("FPXR: contents list truncated in a stream name");
                break;
            };
            let name = utf16le(raw);
            if !name.starts_with('/') {
                ctx.error("FPXR: invalid stream name in the contents list");
                break;
            }
            pos = end.saturating_add(2);
            if size == u32::MAX {
                // A storage: its class id follows.
                pos = pos.saturating_add(16);
                if pos > seg.len() {
                    ctx.error("FPXR: contents list truncated in a class id");
                    break;
                }
            }
            entries.push(Entry {
                kind: (size != u32::MAX).then(|| kind_of(&name)).flatten(),
                size: u64::from(size),
                stream: None,
                done: false,
            });
        }
        self.entries = Some(entries);
    }

    fn data(&mut self, ctx: &mut Ctx<'_>, seg: &[u8]) {
        let (Some(index), Some(offset)) = (be16(seg, 7), be32(seg, 9)) else {
            return;
        };
        let listed = self
            .entries
            .as_ref()
            .is_some_and(|e| usize::from(index) < e.len());
        if !listed
            && index == 512
            && seg.len() > 60
            && (self.fuji.is_some() || seg.get(60..64) == Some(b"\xff\xd8\xff\xdb"))
        {
            let more = seg.get(60..).unwrap_or(&[]);
            if self.kept.saturating_add(more.len()) > MAX_STREAM_BYTES {
                ctx.error("FPXR: Fujifilm preview larger than the assembly cap; cut");
                return;
            }
            self.kept = self.kept.saturating_add(more.len());
            self.fuji
                .get_or_insert_with(Vec::new)
                .extend_from_slice(more);
            return;
        }
        let Some(entries) = self.entries.as_mut() else {
            // Kodak marks a free segment with index 255.
            if index != 255 {
                ctx.error(format!(
                    "FPXR: stream segment {index} before any contents list"
                ));
            }
            return;
        };
        let Some(e) = entries.get_mut(usize::from(index)) else {
            if index != 255 {
                ctx.error(format!("FPXR: unlisted stream segment (index {index})"));
            }
            return;
        };
        if e.kind.is_none() || e.done {
            return;
        }
        let body = seg.get(13..).unwrap_or(&[]);
        let add = match &e.stream {
            None => body,
            Some(s) => {
                let have = s.len() as u64;
                match have.checked_sub(u64::from(offset)) {
                    Some(overlap) if (overlap as usize) <= body.len() => {
                        body.get(overlap as usize..).unwrap_or(&[])
                    }
                    _ => {
                        ctx.error(format!("FPXR: bad offset in stream {index}"));
                        body
                    }
                }
            }
        };
        let want = usize::try_from(e.size).unwrap_or(usize::MAX);
        let have = e.stream.as_ref().map_or(0, Vec::len);
        let take = add.len().min(want.saturating_sub(have));
        if self.kept.saturating_add(take) > MAX_STREAM_BYTES {
            ctx.error("FPXR: streams larger than the assembly cap; rest skipped");
            e.done = true;
            return;
        }
        self.kept = self.kept.saturating_add(take);
        let s = e.stream.get_or_insert_with(Vec::new);
        s.extend_from_slice(add.get(..take).unwrap_or(&[]));
        if s.len() >= want {
            e.done = true;
        }
    }

    /// After the last segment: read the kept streams.
    pub(crate) fn finish(self, ctx: &mut Ctx<'_>) {
        if let Some(j) = &self.fuji {
            jpeg(ctx, j);
        }
        let Some(entries) = self.entries else {
            return;
        };
        for (i, e) in entries.into_iter().enumerate() {
            let (Some(kind), Some(s)) = (e.kind, e.stream) else {
                continue;
            };
            if s.is_empty() {
                continue;
            }
            if (s.len() as u64) < e.size {
                ctx.error(format!(
                    "FPXR: stream {i} truncated ({} of {} bytes); read as far as it goes",
                    s.len(),
                    e.size
                ));
            }
            stream(ctx, kind, &s);
        }
    }
}

/// Read one reassembled stream.
fn stream(ctx: &mut Ctx<'_>, kind: Kind, s: &[u8]) {
    match kind {
        Kind::ImageInfo => properties(ctx, s, "FlashPix::ImageInfo"),
        Kind::Summary => properties(ctx, s, "FlashPix::SummaryInfo"),
        Kind::ScreenNail => {
            if s.len() > SCREEN_NAIL_HEADER {
                let img = EmbeddedImage {
                    offset: None,
                    len: s.len().saturating_sub(SCREEN_NAIL_HEADER) as u64,
                    data: None,
                    ..Default::default()
                };
                ctx.image(
                    Family::Container,
                    "FlashPix",
                    "ScreenNail",
                    "ScreenNail",
                    img,
                );
            }
            // ExifTool's composite PreviewImage: the JPEG inside the ScreenNail.
            if let Some(p) = s.windows(3).position(|w| w == b"\xff\xd8\xff") {
                jpeg(ctx, s.get(p..).unwrap_or(&[]));
            }
        }
        Kind::Preview => {
            if let Some(j) = s.get(FUJI_PREVIEW_HEADER..)
                && j.starts_with(b"\xff\xd8\xff")
            {
                jpeg(ctx, j);
            }
        }
    }
}

fn jpeg(ctx: &mut Ctx<'_>, j: &[u8]) {
    let img = EmbeddedImage {
        offset: None,
        len: j.len() as u64,
        data: (j.len() as u64 <= MAX_KEPT_IMAGE_BYTES).then(|| j.to_vec()),
        ..Default::default()
    };
    ctx.image(
        Family::Container,
        "FlashPix",
        "Preview",
        "PreviewImage",
        img,
    );
}

/// An OLE property set stream (MS-OLEPS: a 28-byte header with the byte-order mark `FE FF`
/// and the set count, then per set a 16-byte FMTID and an offset; a set is a size, a property
/// count and (id, offset) pairs, offsets from the set's start). Tags whose ids the generated
/// data lists for `table` with a text category are reported.
fn properties(ctx: &mut Ctx<'_>, s: &[u8], table: &str) {
    if le16(s, 0) != Some(0xfffe) {
        ctx.error(format!("FPXR: {table} is not a property set"));
        return;
    }
    let nsets = le32(s, 24).unwrap_or(0);
    for k in 0..nsets.min(4) as usize {
        let at = 28usize
            .saturating_add(k.saturating_mul(20))
            .saturating_add(16);
        let Some(off) = le32(s, at).map(|o| o as usize) else {
            ctx.error(format!("FPXR: {table} property set header truncated"));
            return;
        };
        let (Some(size), Some(n)) = (le32(s, off), le32(s, off.saturating_add(4))) else {
            ctx.error(format!("FPXR: {table} property set outside its stream"));
            continue;
        };
        let end = off.saturating_add(size as usize).min(s.len());
        let set = s.get(off..end).unwrap_or(&[]);
        if (size as usize) > s.len().saturating_sub(off) {
            ctx.error(format!("FPXR: {table} property set runs past its stream"));
        }
        let mut utf16 = false;
        // The code page (property 1) decides how VT_LPSTR strings read; find it first.
        let pairs: Vec<(u32, usize)> = (0..(n as usize).min(MAX_PROPS))
            .map_while(|i| {
                let p = 8usize.saturating_add(i.saturating_mul(8));
                Some((le32(set, p)?, le32(set, p.saturating_add(4))? as usize))
            })
            .collect();
        if pairs.len() < (n as usize).min(MAX_PROPS) {
            ctx.error(format!("FPXR: {table} property list truncated"));
        }
        for (id, o) in &pairs {
            if *id == 1 && le16(set, *o) == Some(2) {
                utf16 = le16(set, o.saturating_add(4)) == Some(1200);
            }
        }
        for (id, o) in pairs {
            let Some(info) = crate::tagdata::lookup(table, id) else {
                continue;
            };
            if !crate::tagdata::is_plain(info.category) {
                continue;
            }
            match value(set, o, utf16) {
                Some(v) => ctx.text(
                    Family::Container,
                    "FlashPix",
                    &format!("0x{id:08x}"),
                    info.name,
                    None,
                    &v,
                ),
                None => ctx.error(format!("FPXR: {table} {} unreadable", info.name)),
            }
        }
    }
}

/// A string property value at `o` (a 32-bit type, then the value): VT_LPSTR (30), VT_BSTR (8),
/// VT_LPWSTR (31) and vectors of them; other types give `None`.
fn value(set: &[u8], o: usize, utf16: bool) -> Option<String> {
    let typ = le32(set, o)?;
    let body = o.checked_add(4)?;
    let base = typ & 0x0fff;
    if typ & 0x1000 != 0 {
        let n = le32(set, body)? as usize;
        let mut p = body.checked_add(4)?;
        let mut out = Vec::new();
        for _ in 0..n.min(MAX_VECTOR) {
            let (s, next) = one(set, p, base, utf16)?;
            out.push(s);
            p = next;
        }
        return Some(out.join(", "));
    }
    one(set, body, base, utf16).map(|(s, _)| s)
}

/// One string of type `base` at `p`: the text and where the next (4-byte aligned) value starts.
fn one(set: &[u8], p: usize, base: u32, utf16: bool) -> Option<(String, usize)> {
    let n = le32(set, p)? as usize;
    let start = p.checked_add(4)?;
    let (bytes, s) = match base {
        8 | 30 => {
            let b = set.get(start..start.checked_add(n)?)?;
            let s = if utf16 {
                utf16le(b)
            } else {
                let t = b.split(|c| *c == 0).next().unwrap_or(&[]);
                t.iter().map(|&c| char::from(c)).collect()
            };
            (n, s)
        }
        31 => {
            let len = n.checked_mul(2)?;
            (len, utf16le(set.get(start..start.checked_add(len)?)?))
        }
        _ => return None,
    };
    let next = start.checked_add(bytes.checked_add(3)? & !3)?;
    Some((s, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_lose_their_suffixes() {
        assert_eq!(
            kind_of("/\u{5}Screen Nail_bd0100609719a180"),
            Some(Kind::ScreenNail)
        );
        assert_eq!(kind_of("/\u{5}Image Info"), Some(Kind::ImageInfo));
        assert_eq!(kind_of("/Data Object Store 000001"), None);
        assert_eq!(kind_of("/Preview"), Some(Kind::Preview));
        assert_eq!(kind_of("/Audio Stream 000001"), None);
    }
}
