//! EXIF/TIFF IFD parsing: IFD0/IFD1 chain, ExifIFD, GPS, SubIFDs, and the hand-off to maker
//! notes, XMP, IPTC, Photoshop and ICC blocks stored in TIFF tags.
//!
//! Threat model: every offset and count comes from the file. Entry counts are capped
//! ([`MAX_ENTRIES`]); `count × size` is computed with checked arithmetic and bounded by the data
//! actually present; every IFD offset goes into a visited set, so a next-IFD pointer that loops
//! costs one error, not a hang (Exiv2 CVE-2017-11338 style). Maker-note and SubIFD recursion goes
//! through [`Ctx::enter`], capped at [`crate::ctx::MAX_DEPTH`]. Only tags in the privacy table
//! are decoded; everything else is skipped by header alone.
//!
//! Two data views: [`Data::Mem`] for EXIF blocks already in memory (a JPEG APP1 segment, PNG
//! eXIf) and [`Data::File`] for TIFF-based files, read through the counting reader so a RAW file's
//! pixel data is never touched.
//!
//! Errors are per structure: a broken IFD records an error and the walk continues with the next
//! pointer, so a broken maker note never hides the GPS IFD.

use std::borrow::Cow;
use std::collections::HashSet;

pub(crate) use crate::bytes::{u16_at, u32_at};
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::{icc, iptc, irb, makernote, xmp};
use crate::model::Family;
use crate::source::ReadError;

/// Most entries one IFD may declare before we treat the count as corrupt.
pub const MAX_ENTRIES: u16 = 1024;

/// Most IFDs one TIFF structure may contain (chain plus sub-directories).
const MAX_IFDS: usize = 256;

/// Largest tag value decoded as text or numbers; longer values are skipped.
const MAX_VALUE_BYTES: u64 = 1 << 20;

/// Largest embedded image kept in memory for the deep thumbnail compare.
pub const MAX_KEPT_IMAGE_BYTES: u64 = 512 * 1024;

/// Where TIFF data lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Data<'b> {
    /// In memory; `file_off` is the absolute offset of `data[0]` when known.
    Mem(&'b [u8], Option<u64>),
    /// In the file at `base` for `len` bytes.
    File(u64, u64),
}

impl<'b> Data<'b> {
    pub fn len(&self) -> u64 {
        match self {
            Data::Mem(d, _) => d.len() as u64,
            Data::File(_, l) => *l,
        }
    }
    /// Absolute file offset of a relative offset, when known.
    pub fn abs(&self, off: u64) -> Option<u64> {
        match self {
            Data::Mem(_, Some(b)) | Data::File(b, _) => b.checked_add(off),
            Data::Mem(_, None) => None,
        }
    }
    /// Bytes at a relative offset.
    pub fn get(&self, ctx: &Ctx<'_>, off: u64, len: u64) -> Result<Cow<'b, [u8]>, ReadError> {
        let end = off
            .checked_add(len)
            .ok_or(ReadError::OutOfBounds(off, len))?;
        if end > self.len() {
            return Err(ReadError::OutOfBounds(off, len));
        }
        match self {
            Data::Mem(d, _) => {
                let s = usize::try_from(off).map_err(|_| ReadError::OutOfBounds(off, len))?;
                let e = usize::try_from(end).map_err(|_| ReadError::OutOfBounds(off, len))?;
                d.get(s..e)
                    .map(Cow::Borrowed)
                    .ok_or(ReadError::OutOfBounds(off, len))
            }
            Data::File(base, _) => {
                let a = base
                    .checked_add(off)
                    .ok_or(ReadError::OutOfBounds(off, len))?;
                ctx.r.read(a, len).map(Cow::Owned)
            }
        }
    }
    /// A sub-view starting at `off` (to the end of this view).
    pub fn sub(&self, off: u64) -> Option<Data<'b>> {
        if off > self.len() {
            return None;
        }
        Some(match self {
            Data::Mem(d, fo) => {
                let s = usize::try_from(off).ok()?;
                Data::Mem(d.get(s..)?, fo.and_then(|b| b.checked_add(off)))
            }
            Data::File(b, l) => Data::File(b.checked_add(off)?, l.checked_sub(off)?),
        })
    }
    /// A sub-view of `len` bytes at `off`.
    pub fn slice(&self, off: u64, len: u64) -> Option<Data<'b>> {
        let end = off.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        Some(match self {
            Data::Mem(d, fo) => {
                let s = usize::try_from(off).ok()?;
                let e = usize::try_from(end).ok()?;
                Data::Mem(d.get(s..e)?, fo.and_then(|b| b.checked_add(off)))
            }
            Data::File(b, _) => Data::File(b.checked_add(off)?, len),
        })
    }
}

/// One IFD entry, located.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u32,
    /// Offset of the value (relative to the data view), inline or pointed to.
    pub value_off: u64,
    /// Size of the value in bytes (`count × type size`), checked.
    pub size: u64,
    /// The raw 4-byte value/offset field.
    pub raw: u32,
}

/// Size in bytes of one value of a TIFF type; 0 for unknown types.
pub(crate) fn type_size(typ: u16) -> u64 {
    match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => 0,
    }
}

/// Which directory an IFD is; decides the group name and which tags mean what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ifd {
    /// Position in the main chain: 0 = IFD0, 1 = IFD1, ...
    Main(u32),
    Exif,
    Gps,
    Interop,
    /// SubIFD number (1-based as ExifTool counts them; 0 = unnumbered).
    Sub(u32),
    /// Kodak APP3 "Meta" IFD.
    Meta,
}

/// The container the TIFF structure sits in; changes how IFD0 image data is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// EXIF embedded in JPEG/PNG/WebP/HEIF: IFD0 is metadata, IFD1 the thumbnail.
    Embedded,
    /// A TIFF or TIFF-based RAW file: IFD0 may be the main image.
    File,
}

/// A TIFF structure being walked.
pub(crate) struct Tiff<'b> {
    pub data: Data<'b>,
    pub le: bool,
    pub host: Host,
    /// Subtracted from out-of-line value offsets and pointers (maker notes copied out of their
    /// original file, as in DNG private data).
    pub shift: u64,
    /// An IFD may start at offset 0 of this view (a maker note whose offsets are relative to
    /// its own IFD, as Leica's M8 writes them); otherwise offset 0 is a null pointer.
    pub ifd_at_zero: bool,
    visited: HashSet<u64>,
    /// The last IFD read by [`Tiff::entries`]: where its entries end (after the count and the
    /// 12-byte entries, before the next-IFD pointer), and whether its first entry had a format
    /// code outside TIFF's 1-13 (ExifTool then takes the whole IFD as corrupt).
    last_dir_end: u64,
    last_dir_first_bad: bool,
    /// Absolute file offsets of IFDs' image data handed out as embedded images (deduplication).
    seen_images: HashSet<(u64, u64)>,
}

impl<'b> Tiff<'b> {
    /// A view with explicit byte order (maker notes).
    pub fn with_order(data: Data<'b>, le: bool, host: Host) -> Self {
        Self {
            data,
            le,
            host,
            shift: 0,
            ifd_at_zero: false,
            visited: HashSet::new(),
            last_dir_end: 0,
            last_dir_first_bad: false,
            seen_images: HashSet::new(),
        }
    }

    /// Parse a TIFF header at the start of `data`; returns the walker and the first IFD offset.
    pub fn open(ctx: &Ctx<'_>, data: Data<'b>, host: Host) -> Option<(Self, u64)> {
        let h = data.get(ctx, 0, 8).ok()?;
        let le = match h.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let magic = u16_at(&h, 2, le)?;
        // 42 = TIFF; 0x4f52/0x5352 = Olympus ORF; 0x55 = Panasonic RW2.
        if !matches!(magic, 42 | 0x4f52 | 0x5352 | 0x55) {
            return None;
        }
        let first = u64::from(u32_at(&h, 4, le)?);
        Some((Self::with_order(data, le, host), first))
    }

    /// A pointer value from the file as an offset into this view.
    pub fn ptr(&self, raw: u64) -> u64 {
        raw.checked_sub(self.shift).unwrap_or(u64::MAX)
    }

    pub fn u16(&self, b: &[u8], pos: usize) -> Option<u16> {
        u16_at(b, pos, self.le)
    }
    pub fn u32(&self, b: &[u8], pos: usize) -> Option<u32> {
        u32_at(b, pos, self.le)
    }

    /// Read the entries of the IFD at `off`. `None` (and an error) for a revisited or broken IFD.
    pub fn entries(
        &mut self,
        ctx: &mut Ctx<'_>,
        off: u64,
        what: &str,
    ) -> Option<(Vec<Entry>, u64)> {
        if off == 0 && !self.ifd_at_zero {
            return None;
        }
        let key = self.data.abs(off).unwrap_or(off);
        if !self.visited.insert(key) || self.visited.len() > MAX_IFDS {
            ctx.error(format!(
                "{what}: IFD at {off} revisited or too many IFDs; loop cut"
            ));
            return None;
        }
        let head = match self.data.get(ctx, off, 2) {
            Ok(h) => h,
            Err(e) => {
                ctx.read_error(what, &e);
                return None;
            }
        };
        let n = self.u16(&head, 0)?;
        if n == 0 || n > MAX_ENTRIES {
            ctx.error(format!("{what}: implausible entry count {n}"));
            return None;
        }
        let body_len = u64::from(n).checked_mul(12)?;
        // Accept a truncated final IFD: take as many whole entries as are present.
        let avail = self.data.len().saturating_sub(off.saturating_add(2));
        let take = body_len.min(avail.saturating_sub(avail % 12));
        if take < body_len {
            ctx.error(format!("{what}: IFD truncated"));
        }
        let body = match self.data.get(ctx, off.saturating_add(2), take) {
            Ok(b) => b,
            Err(e) => {
                ctx.read_error(what, &e);
                return None;
            }
        };
        self.last_dir_end = off.saturating_add(2).saturating_add(body_len);
        self.last_dir_first_bad = self.u16(&body, 2).is_some_and(|typ| type_size(typ) == 0);
        let mut out = Vec::with_capacity(usize::from(n));
        let mut pos = 0usize;
        while let (Some(tag), Some(typ), Some(count), Some(raw)) = (
            self.u16(&body, pos),
            self.u16(&body, pos.saturating_add(2)),
            self.u32(&body, pos.saturating_add(4)),
            self.u32(&body, pos.saturating_add(8)),
        ) {
            let ts = type_size(typ);
            if let Some(size) = ts.checked_mul(u64::from(count)) {
                let value_off = if size <= 4 {
                    off.saturating_add(2)
                        .saturating_add(pos as u64)
                        .saturating_add(8)
                } else {
                    u64::from(raw).checked_sub(self.shift).unwrap_or(u64::MAX)
                };
                if ts != 0 {
                    out.push(Entry {
                        tag,
                        typ,
                        count,
                        value_off,
                        size,
                        raw,
                    });
                }
            }
            pos = pos.saturating_add(12);
        }
        let next_pos = off.saturating_add(2).saturating_add(body_len);
        let next = self
            .data
            .get(ctx, next_pos, 4)
            .ok()
            .and_then(|b| self.u32(&b, 0))
            .map_or(0, u64::from);
        Some((out, next))
    }

    /// The raw bytes of an entry's value (bounded by [`MAX_VALUE_BYTES`]).
    pub fn value(&self, ctx: &mut Ctx<'_>, e: &Entry) -> Option<Cow<'b, [u8]>> {
        if e.size > MAX_VALUE_BYTES {
            return None;
        }
        match self.data.get(ctx, e.value_off, e.size) {
            Ok(v) => Some(v),
            Err(err) => {
                ctx.read_error(&format!("tag 0x{:04x}", e.tag), &err);
                None
            }
        }
    }

    /// Numbers of an integer or rational entry (rationals as f64).
    pub fn numbers(&self, ctx: &mut Ctx<'_>, e: &Entry) -> Vec<f64> {
        let Some(v) = self.value(ctx, e) else {
            return Vec::new();
        };
        numbers(&v, e.typ, self.le)
    }

    /// First integer of an entry.
    pub fn uint(&self, ctx: &mut Ctx<'_>, e: &Entry) -> Option<u64> {
        let n = self.numbers(ctx, e);
        let f = *n.first()?;
        if f.is_finite() && f >= 0.0 && f <= u32::MAX as f64 {
            Some(f as u64)
        } else {
            None
        }
    }

    /// Text of an entry, as ExifTool shows it: ASCII up to the first NUL, numbers joined by
    /// spaces, UNDEFINED as text when it is text.
    pub fn text(&self, ctx: &mut Ctx<'_>, e: &Entry) -> Option<String> {
        let v = self.value(ctx, e)?;
        Some(match e.typ {
            2 | 7 | 1 if e.typ != 1 || looks_text(&v) => ascii(&v),
            _ => numbers(&v, e.typ, self.le)
                .iter()
                .map(|n| fmt_num(*n))
                .collect::<Vec<_>>()
                .join(" "),
        })
    }

    /// Hand out an embedded image at (relative) `off`, `len` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn embedded_image(
        &mut self,
        ctx: &mut Ctx<'_>,
        family: Family,
        group: &str,
        tag: &str,
        name: &str,
        off: u64,
        len: u64,
    ) {
        if len == 0 || off == 0 {
            return;
        }
        let in_bounds = off.checked_add(len).is_some_and(|e| e <= self.data.len());
        // In a TIFF file a preview that starts inside the file but runs past its end is a
        // truncated file: the image is still there (and still a leak) up to the end.
        let truncated = self.host == Host::File && !in_bounds;
        if truncated && !in_bounds {
            ctx.error(format!(
                "{group}:{name} runs past the end of the file (truncated)"
            ));
        }
        if !in_bounds && !truncated {
            ctx.error(format!("{group}:{name} points outside the data"));
            return;
        }
        let abs = self.data.abs(off);
        let key = (abs.unwrap_or(off), len);
        if !self.seen_images.insert(key) {
            return;
        }
        let data = match self.data {
            Data::Mem(..) if len <= MAX_KEPT_IMAGE_BYTES => {
                self.data.get(ctx, off, len).ok().map(Cow::into_owned)
            }
            _ => None,
        };
        ctx.image(
            family,
            group,
            tag,
            name,
            EmbeddedImage {
                offset: abs,
                len,
                data,
                ..Default::default()
            },
        );
    }
}

/// Decode numbers of any numeric TIFF type.
pub(crate) fn numbers(v: &[u8], typ: u16, le: bool) -> Vec<f64> {
    let ts = usize::try_from(type_size(typ)).unwrap_or(0);
    if ts == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for ch in v.chunks_exact(ts).take(256) {
        let n = match typ {
            1 | 7 => ch.first().map(|b| f64::from(*b)),
            6 => ch.first().map(|b| f64::from(*b as i8)),
            2 => None,
            3 => u16_at(ch, 0, le).map(f64::from),
            8 => u16_at(ch, 0, le).map(|x| f64::from(x as i16)),
            4 | 13 => u32_at(ch, 0, le).map(f64::from),
            9 => u32_at(ch, 0, le).map(|x| f64::from(x as i32)),
            5 => match (u32_at(ch, 0, le), u32_at(ch, 4, le)) {
                (Some(a), Some(b)) => Some(f64::from(a) / f64::from(b)),
                _ => None,
            },
            10 => match (u32_at(ch, 0, le), u32_at(ch, 4, le)) {
                (Some(a), Some(b)) => Some(f64::from(a as i32) / f64::from(b as i32)),
                _ => None,
            },
            11 => u32_at(ch, 0, le).map(|x| f64::from(f32::from_bits(x))),
            12 => ch.try_into().ok().map(|a: [u8; 8]| {
                if le {
                    f64::from_le_bytes(a)
                } else {
                    f64::from_be_bytes(a)
                }
            }),
            _ => None,
        };
        if let Some(n) = n {
            out.push(n);
        }
    }
    out
}

/// Format a number the way ExifTool's `-n` output does (integers without a fraction).
pub(crate) fn fmt_num(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Text up to the first NUL, decoded as UTF-8 or, failing that, Latin-1.
pub(crate) fn ascii(v: &[u8]) -> String {
    let cut = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    let b = v.get(..cut).unwrap_or(v);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => b.iter().map(|c| char::from(*c)).collect(),
    }
}

/// Whether bytes look like printable text (for UNDEFINED values).
pub(crate) fn looks_text(v: &[u8]) -> bool {
    let cut = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    let b = v.get(..cut).unwrap_or(v);
    !b.is_empty()
        && b.iter()
            .all(|c| *c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r'))
}

/// UCS-2 little-endian text (XP* tags).
pub(crate) fn ucs2le(v: &[u8]) -> String {
    let units: Vec<u16> = v
        .chunks_exact(2)
        .filter_map(|c| u16_at(c, 0, true))
        .take_while(|u| *u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// EXIF UserComment-style text with its 8-byte character-code header.
pub(crate) fn exif_text(v: &[u8], le: bool) -> String {
    let (head, body) = v.split_at(v.len().min(8));
    match head {
        b"UNICODE\0" => {
            let units: Vec<u16> = body
                .chunks_exact(2)
                .filter_map(|c| u16_at(c, 0, le))
                .take_while(|u| *u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        }
        b"ASCII\0\0\0" | b"JIS\0\0\0\0\0" => ascii(body),
        h if h.iter().all(|b| *b == 0) => ascii(body),
        _ => ascii(v),
    }
}

/// The privacy-relevant standard tags of IFD0/IFD1/ExifIFD/SubIFDs: id → ExifTool name.
const STD_TAGS: &[(u16, &str)] = &[
    (0x010e, "ImageDescription"),
    (0x010f, "Make"),
    (0x0110, "Model"),
    (0x0131, "Software"),
    (0x0132, "ModifyDate"),
    (0x013b, "Artist"),
    (0x8298, "Copyright"),
    (0x9003, "DateTimeOriginal"),
    (0x9004, "CreateDate"),
    (0x9286, "UserComment"),
    (0x9c9b, "XPTitle"),
    (0x9c9c, "XPComment"),
    (0x9c9d, "XPAuthor"),
    (0x9c9e, "XPKeywords"),
    (0x9c9f, "XPSubject"),
    (0xa420, "ImageUniqueID"),
    (0xa430, "OwnerName"),
    (0xa431, "SerialNumber"),
    (0xa433, "LensMake"),
    (0xa434, "LensModel"),
    (0xa435, "LensSerialNumber"),
    (0xc62f, "CameraSerialNumber"),
    (0xc68b, "OriginalRawFileName"),
    (0xfde8, "OwnerName"),
    (0xfde9, "SerialNumber"),
    // Kodak APP3 "Meta" IFD
    (0xc353, "CameraOwner"),
    (0xc354, "SerialNumber"),
];

fn std_name(tag: u16) -> Option<&'static str> {
    STD_TAGS.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n)
}

fn group_name(ifd: Ifd) -> String {
    match ifd {
        Ifd::Main(n) => format!("IFD{n}"),
        Ifd::Exif => "ExifIFD".to_owned(),
        Ifd::Gps => "GPS".to_owned(),
        Ifd::Interop => "InteropIFD".to_owned(),
        Ifd::Sub(0) => "SubIFD".to_owned(),
        Ifd::Sub(n) => format!("SubIFD{n}"),
        Ifd::Meta => "MetaIFD".to_owned(),
    }
}

/// Walk a whole TIFF structure: the IFD chain from `first` and everything it points to.
pub(crate) fn walk(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, first: u64) {
    let mut off = first;
    let mut idx = 0u32;
    while off != 0 && ctx.alive() {
        let next = walk_ifd(ctx, t, off, Ifd::Main(idx));
        off = next.unwrap_or(0);
        idx = idx.saturating_add(1);
        if idx > 64 {
            ctx.error("IFD chain too long; cut");
            break;
        }
    }
}

/// Parse a TIFF structure held in `data` (header included).
pub(crate) fn parse(ctx: &mut Ctx<'_>, data: Data<'_>, host: Host) -> bool {
    let Some((mut t, first)) = Tiff::open(ctx, data, host) else {
        ctx.error("EXIF: no valid TIFF header");
        return false;
    };
    if !ctx.enter() {
        return false;
    }
    walk(ctx, &mut t, first);
    ctx.leave();
    true
}

#[derive(Default)]
struct ImageTags {
    jpeg_off: Option<u64>,
    jpeg_len: Option<u64>,
    strip_off: Option<u64>,
    strip_len: Option<u64>,
    /// Byte count of the first strip alone.
    strip_len_first: Option<u64>,
    strips: u32,
    subfile: Option<u64>,
    compression: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    dng: bool,
    /// Canon's CR2Slice (0xc640): the IFD is the raw sensor data, not an image to show.
    cr2_slice: bool,
}

#[derive(Default)]
struct GpsTags {
    lat: Vec<f64>,
    lat_den: Vec<u32>,
    lat_ref: Option<String>,
    lon: Vec<f64>,
    lon_den: Vec<u32>,
    lon_ref: Option<String>,
    dlat: Vec<f64>,
    dlat_den: Vec<u32>,
    dlon: Vec<f64>,
    dlon_den: Vec<u32>,
    hpe: Option<f64>,
    off: Option<u64>,
}

/// Walk one IFD; returns the next-IFD offset of a main-chain IFD.
pub(crate) fn walk_ifd(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, off: u64, ifd: Ifd) -> Option<u64> {
    let group = group_name(ifd);
    let (mut entries, next) = t.entries(ctx, off, &group)?;
    // ExifTool's reading of a damaged IFD (Exif.pm, ProcessExif): a first entry with a format
    // code outside 1-13 means the whole IFD is corrupt; an out-of-line value that points into
    // the 8-byte TIFF header or overlaps the IFD's own entries is "suspicious" and skipped.
    if t.last_dir_first_bad {
        ctx.error(format!(
            "{group}: bad format code in the first entry; IFD taken as corrupt"
        ));
        return None;
    }
    let dir_end = t.last_dir_end;
    entries.retain(|e| {
        let suspicious = e.size > 4
            && (e.value_off < 8
                || (e.value_off < dir_end && e.value_off.saturating_add(e.size) > off));
        if suspicious {
            ctx.error(format!(
                "{group}: suspicious offset for tag 0x{:04x}; value skipped",
                e.tag
            ));
        }
        !suspicious
    });
    if !ctx.enter() {
        return None;
    }
    let mut img = ImageTags::default();
    let mut gps = GpsTags::default();
    let mut maker: Option<Entry> = None;
    let mut sub_ifds: Vec<u64> = Vec::new();
    let mut pointers: Vec<(u64, Ifd)> = Vec::new();
    let mut vendor_ifds: Vec<(u64, (&'static str, &'static str))> = Vec::new();
    for e in &entries {
        if !ctx.alive() {
            break;
        }
        let tag_s = format!("0x{:04x}", e.tag);
        let abs = t.data.abs(e.value_off);
        if ifd == Ifd::Gps {
            gps_entry(ctx, t, e, &mut gps, &tag_s);
            continue;
        }
        match e.tag {
            0x8769 => pointers.push((t.ptr(u64::from(e.raw)), Ifd::Exif)),
            0x8825 => pointers.push((t.ptr(u64::from(e.raw)), Ifd::Gps)),
            0xa005 => pointers.push((t.ptr(u64::from(e.raw)), Ifd::Interop)),
            0x014a => {
                let n = t.numbers(ctx, e);
                sub_ifds.extend(n.iter().take(16).map(|x| t.ptr(*x as u64)));
            }
            0x927c => maker = Some(*e),
            // Kodak DCR/KDC private IFDs (ExifTool's Kodak::IFD and Kodak::KDC_IFD tables).
            0x8290 | 0xfe00 => {
                let table = if e.tag == 0x8290 {
                    ("Kodak::IFD", "KodakIFD")
                } else {
                    ("Kodak::KDC_IFD", "KDC_IFD")
                };
                vendor_ifds.push((t.ptr(u64::from(e.raw)), table));
            }
            0x02bc => {
                if let Some(v) = t.value(ctx, e) {
                    xmp::parse(ctx, &v, abs);
                }
            }
            0x83bb => {
                if let Some(v) = t.value(ctx, e) {
                    iptc::parse(ctx, &v, abs, "IPTC");
                }
            }
            0x8649 => {
                if let Some(v) = t.value(ctx, e) {
                    irb::parse(ctx, &v, abs);
                }
            }
            0x8773 => {
                if let Some(v) = t.value(ctx, e) {
                    icc::parse(ctx, &v, abs);
                }
            }
            0xc634 => dng_private(ctx, t, e),
            // Leaf MOS records (ExifTool's LeafData, found in IFD0).
            0x8606 => crate::family::leaf::parse(ctx, t, e),
            0x0201 => img.jpeg_off = t.uint(ctx, e).map(|x| t.ptr(x)),
            0x0202 => img.jpeg_len = t.uint(ctx, e),
            0x0111 => {
                img.strips = e.count;
                img.strip_off = t.uint(ctx, e).map(|x| t.ptr(x));
            }
            0x0117 => {
                let n = t.numbers(ctx, e);
                img.strip_len = Some(n.iter().map(|x| *x as u64).fold(0u64, u64::saturating_add));
                img.strip_len_first = n.first().map(|x| *x as u64);
            }
            0x00fe => img.subfile = t.uint(ctx, e),
            0x0103 => img.compression = t.uint(ctx, e),
            0x0100 | 0xa002 => img.width = t.uint(ctx, e),
            0x0101 | 0xa003 => img.height = t.uint(ctx, e),
            0xc612 => img.dng = true,
            0xc640 => img.cr2_slice = true,
            // Panasonic RW2 embedded JPEG (with its own EXIF).
            0x002e if t.host == Host::File && ifd == Ifd::Main(0) => {
                if e.size > 0 && e.size <= crate::source::MAX_READ_BYTES {
                    t.embedded_image(
                        ctx,
                        Family::Exif,
                        &group,
                        &tag_s,
                        "JpgFromRaw",
                        e.value_off,
                        e.size,
                    );
                    if let Some(sub) = t.data.slice(e.value_off, e.size) {
                        crate::container::jpeg::parse_embedded(ctx, sub);
                    }
                }
            }
            tag => {
                if let Some(name) = std_name(tag) {
                    let v = match tag {
                        0x9c9b..=0x9c9f => t.value(ctx, e).map(|v| ucs2le(&v)),
                        0x9286 | 0xc353 | 0xc354 => t.value(ctx, e).map(|v| exif_text(&v, t.le)),
                        _ => t.text(ctx, e),
                    };
                    if let Some(v) = v {
                        if tag == 0x010f && ctx.facts.make.is_none() {
                            ctx.facts.make = Some(v.trim().to_owned());
                        }
                        if tag == 0x0110 && ctx.facts.model.is_none() {
                            ctx.facts.model = Some(v.trim().to_owned());
                        }
                        ctx.text(Family::Exif, &group, &tag_s, name, abs, &v);
                    }
                }
            }
        }
    }
    if ifd == Ifd::Gps {
        finish_gps(ctx, &gps);
    }
    image_tags(ctx, t, ifd, &group, &img, !sub_ifds.is_empty());
    for (p, kind) in pointers {
        walk_ifd(ctx, t, p, kind);
    }
    for (i, p) in sub_ifds.into_iter().enumerate() {
        let n = u32::try_from(i).unwrap_or(0).saturating_add(1);
        let kind = if ifd == Ifd::Main(0) {
            Ifd::Sub(n)
        } else {
            Ifd::Sub(0)
        };
        // A SubIFD may itself chain (rare); walk only the first.
        walk_ifd(ctx, t, p, kind);
    }
    for (p, (table, g)) in vendor_ifds {
        makernote::walk_table(ctx, t, p, table, g);
    }
    if let Some(e) = maker {
        makernote::parse(ctx, t, &e);
    }
    ctx.leave();
    match ifd {
        Ifd::Main(_) => Some(next),
        _ => None,
    }
}

fn image_tags(
    ctx: &mut Ctx<'_>,
    t: &mut Tiff<'_>,
    ifd: Ifd,
    group: &str,
    img: &ImageTags,
    has_subs: bool,
) {
    let reduced = img.subfile.is_some_and(|s| s & 1 == 1);
    let jpeg_comp = matches!(img.compression, Some(6 | 7 | 99));
    // Main image size for the thumbnail-aspect check.
    if let (Some(w), Some(h)) = (img.width, img.height) {
        let main = match (ifd, t.host) {
            (Ifd::Exif, _) => true,
            (Ifd::Main(0), Host::File) => !reduced,
            (Ifd::Sub(_), Host::File) => img.subfile == Some(0),
            _ => false,
        };
        if main
            && ctx.facts.main_dims.is_none()
            && let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h))
        {
            ctx.facts.main_dims = Some((w, h));
        }
    }
    if let (Some(o), Some(l)) = (img.jpeg_off, img.jpeg_len) {
        let name = match ifd {
            Ifd::Main(0) if t.host == Host::File && !reduced => "PreviewImage",
            Ifd::Sub(_) if img.subfile == Some(0) => "JpgFromRaw",
            Ifd::Sub(_) => "PreviewImage",
            _ => "ThumbnailImage",
        };
        t.embedded_image(ctx, Family::Exif, group, "0x0201", name, o, l);
        return;
    }
    let (Some(o), Some(l)) = (img.strip_off, img.strip_len) else {
        return;
    };
    if img.strips == 0 || img.cr2_slice {
        return;
    }
    // Lossy DNG (compression 34892: Apple ProRAW's semantic mattes, lossy DNG proxies): ExifTool
    // reads the strips of any such IFD as OtherImage.
    if img.compression == Some(34892) {
        let first = img.strip_len_first.unwrap_or(l);
        t.embedded_image(ctx, Family::Exif, group, "0x0111", "OtherImage", o, first);
        return;
    }
    // JPEG (compression 7) strips in a TIFF file that are not marked as the
    // full-resolution image (SubfileType absent or non-zero): ExifTool reads them as a preview
    // (as JpgFromRaw in SubIFD2), in IFD0, any later IFD and every SubIFD. Only the first
    // strip is the image ExifTool extracts.
    if t.host == Host::File
        && img.compression == Some(7)
        && img.subfile != Some(0)
        && matches!(ifd, Ifd::Main(_) | Ifd::Sub(_))
    {
        let name = if ifd == Ifd::Sub(2) {
            "JpgFromRaw"
        } else {
            "PreviewImage"
        };
        let first = img.strip_len_first.unwrap_or(l);
        t.embedded_image(ctx, Family::Exif, group, "0x0111", name, o, first);
        return;
    }
    let name = match (ifd, t.host) {
        (Ifd::Main(0), Host::File) => {
            if reduced {
                if jpeg_comp {
                    "PreviewImage"
                } else {
                    "ThumbnailTIFF"
                }
            } else if jpeg_comp
                && img.compression == Some(6)
                && img.subfile != Some(0)
                && has_subs_or_raw(img, has_subs)
            {
                "PreviewImage"
            } else {
                return;
            }
        }
        (Ifd::Main(_), Host::File) | (Ifd::Main(_), Host::Embedded) => {
            if ifd == Ifd::Main(0) {
                return;
            }
            // A later page of a multi-page TIFF (SubfileType 2) or another full-resolution
            // image (0) is a page, not a thumbnail; only unmarked or reduced images are.
            if t.host == Host::File && img.subfile.is_some_and(|s| s & 1 == 0) {
                return;
            }
            // Unmarked, and at least as large as the main image: a page too.
            if t.host == Host::File
                && img.subfile.is_none()
                && let (Some(w), Some(h), Some((mw, mh))) =
                    (img.width, img.height, ctx.facts.main_dims)
                && w >= u64::from(mw)
                && h >= u64::from(mh)
            {
                return;
            }
            if jpeg_comp {
                "ThumbnailImage"
            } else {
                "ThumbnailTIFF"
            }
        }
        (Ifd::Sub(_), _) if reduced => {
            if jpeg_comp {
                "PreviewImage"
            } else {
                "ThumbnailTIFF"
            }
        }
        _ => return,
    };
    if img.strips == 1 || !jpeg_comp {
        t.embedded_image(ctx, Family::Exif, group, "0x0111", name, o, l);
    }
}

fn has_subs_or_raw(img: &ImageTags, has_subs: bool) -> bool {
    has_subs || img.dng || img.strips == 1
}

fn gps_entry(ctx: &mut Ctx<'_>, t: &Tiff<'_>, e: &Entry, g: &mut GpsTags, tag_s: &str) {
    let dens = |ctx: &mut Ctx<'_>, e: &Entry| -> (Vec<f64>, Vec<u32>) {
        let Some(v) = t.value(ctx, e) else {
            return (Vec::new(), Vec::new());
        };
        let n = numbers(&v, e.typ, t.le);
        let d = if matches!(e.typ, 5 | 10) {
            v.chunks_exact(8)
                .filter_map(|c| u32_at(c, 4, t.le))
                .collect()
        } else {
            vec![1; n.len()]
        };
        (n, d)
    };
    if g.off.is_none() {
        g.off = t.data.abs(e.value_off);
    }
    match e.tag {
        0x0001 => g.lat_ref = t.text(ctx, e),
        0x0002 => (g.lat, g.lat_den) = dens(ctx, e),
        0x0003 => g.lon_ref = t.text(ctx, e),
        0x0004 => (g.lon, g.lon_den) = dens(ctx, e),
        0x0013 | 0x0015 => {}
        0x0014 => (g.dlat, g.dlat_den) = dens(ctx, e),
        0x0016 => (g.dlon, g.dlon_den) = dens(ctx, e),
        0x001f => g.hpe = t.numbers(ctx, e).first().copied(),
        0x001d => {
            if let Some(v) = t.text(ctx, e) {
                ctx.text(
                    Family::Exif,
                    "GPS",
                    tag_s,
                    "GPSDateStamp",
                    t.data.abs(e.value_off),
                    &v,
                );
            }
        }
        _ => {}
    }
}

/// Degrees from a 1-, 2- or 3-part DMS value, and the resolution in metres of the recording.
pub(crate) fn dms(parts: &[f64], dens: &[u32]) -> Option<(f64, f64)> {
    let d = *parts.first()?;
    let m = parts.get(1).copied().unwrap_or(0.0);
    let s = parts.get(2).copied().unwrap_or(0.0);
    let deg = d + m / 60.0 + s / 3600.0;
    if !deg.is_finite() {
        return None;
    }
    // Resolution: the finest unit actually used.
    let den = |i: usize| f64::from(dens.get(i).copied().unwrap_or(1).max(1));
    let step_deg = if parts.len() >= 3 && (s != 0.0 || den(2) > 1.0) {
        1.0 / (3600.0 * den(2))
    } else if parts.len() >= 2 && (m != 0.0 || den(1) > 1.0) {
        1.0 / (60.0 * den(1))
    } else {
        1.0 / den(0)
    };
    Some((deg, step_deg * 111_320.0))
}

fn finish_gps(ctx: &mut Ctx<'_>, g: &GpsTags) {
    let sign = |r: &Option<String>, neg: char| {
        if r.as_deref().is_some_and(|s| s.trim().starts_with(neg)) {
            -1.0
        } else {
            1.0
        }
    };
    if let (Some((la, rla)), lo) = (dms(&g.lat, &g.lat_den), dms(&g.lon, &g.lon_den)) {
        let (lo, rlo) = lo.unwrap_or((0.0, rla));
        let mut res = rla.max(rlo);
        if let Some(h) = g.hpe
            && h.is_finite()
            && h > 0.0
        {
            res = res.max(h);
        }
        ctx.gps(
            Family::Exif,
            "GPS",
            "0x0002",
            "GPSLatitude",
            g.off,
            la * sign(&g.lat_ref, 'S'),
            lo * sign(&g.lon_ref, 'W'),
            res,
        );
    } else if let Some((lo, rlo)) = dms(&g.lon, &g.lon_den) {
        ctx.gps(
            Family::Exif,
            "GPS",
            "0x0004",
            "GPSLongitude",
            g.off,
            0.0,
            lo,
            rlo,
        );
    }
    if let Some((la, r)) = dms(&g.dlat, &g.dlat_den) {
        let lo = dms(&g.dlon, &g.dlon_den).map_or(0.0, |x| x.0);
        ctx.gps(
            Family::Exif,
            "GPS",
            "0x0014",
            "GPSDestLatitude",
            g.off,
            la,
            lo,
            r,
        );
    }
}

/// DNG private data: Adobe's "MakN" block holds the original maker note and its byte order.
fn dng_private(ctx: &mut Ctx<'_>, t: &mut Tiff<'_>, e: &Entry) {
    let Some(v) = t.value(ctx, e) else { return };
    if !v.starts_with(b"Adobe\0MakN") {
        return;
    }
    // "Adobe\0" "MakN" len(4, BE) byteorder(2) origoffset(4) makernote...
    let Some(len) = u32_at(&v, 10, false) else {
        return;
    };
    let le = v.get(14..16) == Some(b"II");
    let start = e.value_off.saturating_add(20);
    let mlen = u64::from(len).saturating_sub(6);
    let Some(orig) = u32_at(&v, 16, false) else {
        return;
    };
    let Some(mn) = t
        .data
        .slice(start, mlen.min(t.data.len().saturating_sub(start)))
    else {
        return;
    };
    // Offsets inside the note are relative to where it used to be in the original file:
    // rebase so that `orig` maps to the start of our copy.
    makernote::parse_detached(ctx, mn, u64::from(orig), le);
}
