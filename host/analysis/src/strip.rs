//! Lossless sanitised copies: an allow-list rebuild of the container that keeps the image data
//! byte for byte, keeps the ICC profile and the orientation unless told otherwise, drops every
//! other metadata block, truncates after the real end of the image, and verifies the result by
//! analysing it again before handing it back.
//!
//! Threat model: the input is hostile, and the worst outcome is not a crash but a copy that
//! looks clean and is not (metadata hidden between scans, after EOI, in an unknown chunk). So
//! the writers keep only what they recognise (allow-list, never a deny-list), walk JPEG entropy
//! data to the true EOI (dropping APPn/COM found between scans), refuse what they do not
//! understand (an unknown critical PNG chunk, a JPEG with no EOI, a TIFF whose pixels sit in
//! structures we would not copy), and the output is re-analysed in deep mode: any finding
//! outside the kept set (ICC) is a refusal. A refusal leaves nothing half-written: the caller
//! gets an error and writes nothing.
//!
//! Supported: JPEG, PNG, WebP, baseline TIFF (first image only; later full-size pages make it
//! refuse). Everything else (HEIF, RAW, GIF, PSD, ...) is refused with a reason.
//!
//! Writing the file (and `--in-place` with an atomic rename) is the caller's job; this module
//! only produces bytes. See `examples/strip.rs`.

use crate::bytes::{be16, u16_at, u32_at};
use crate::family::tiff::type_size;
use crate::model::{Family, Format};
use crate::source::{ByteSource, Reader};
use crate::{Analyzer, Options, Policy};

/// Time budget for re-analysing a sanitised copy.
pub const VERIFY_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest file this module will rewrite (it is held in memory twice).
pub const MAX_STRIP_BYTES: u64 = 1 << 30;

/// What to keep besides the image.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StripOptions {
    /// Drop the ICC profile too. Default: keep it (colours depend on it; it names no one).
    pub drop_icc: bool,
    /// Drop the orientation. Default: keep it, as a minimal EXIF block with only that tag.
    pub drop_orientation: bool,
}

impl StripOptions {
    /// Options that drop or keep the ICC profile.
    pub fn with_drop_icc(mut self, drop: bool) -> Self {
        self.drop_icc = drop;
        self
    }
    /// Options that drop or keep the orientation.
    pub fn with_drop_orientation(mut self, drop: bool) -> Self {
        self.drop_orientation = drop;
        self
    }
}

/// A verified sanitised copy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stripped {
    /// The new file.
    pub bytes: Vec<u8>,
    /// What was removed (`"APP1 Exif (12034 bytes)"`, `"trailer (4096 bytes)"`).
    pub removed: Vec<String>,
    /// What was kept besides the image data (`"ICC profile"`, `"orientation 6"`).
    pub kept: Vec<String>,
    /// The format written.
    pub format: Format,
}

/// Why no sanitised copy was produced. The input is untouched in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripError {
    /// The format has no lossless writer here.
    #[error("cannot strip {0} files losslessly; convert the image or use another tool")]
    Unsupported(String),
    /// The file's structure is not understood well enough to be sure of a clean copy.
    #[error("refusing to strip: {0}")]
    Refused(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// The rebuilt file still had findings (or did not parse): nothing is written.
    #[error("refusing to write: the sanitised copy still has findings ({0})")]
    Verification(String),
}

fn refuse(msg: impl Into<String>) -> StripError {
    StripError::Refused(msg.into())
}

/// Write a sanitised copy of `src`.
///
/// # Errors
/// [`StripError`] explains why nothing was produced; the input is never modified.
pub fn strip(src: &dyn ByteSource, opts: &StripOptions) -> Result<Stripped, StripError> {
    // A writer bug must cost this file's copy, never the process.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| strip_inner(src, opts)))
        .unwrap_or_else(|_| {
            Err(refuse(
                "internal error while rebuilding this file (a bug); nothing written",
            ))
        })
}

fn strip_inner(src: &dyn ByteSource, opts: &StripOptions) -> Result<Stripped, StripError> {
    let len = src.len();
    if len > MAX_STRIP_BYTES {
        return Err(refuse(format!(
            "{len} bytes is larger than the {MAX_STRIP_BYTES}-byte limit"
        )));
    }
    let r = Reader::new(src);
    let data = read_all(&r, len)?;
    let format = crate::container::detect(data.get(..32).unwrap_or(&data));
    let mut out = Out::default();
    match format {
        Format::Jpeg => jpeg(&data, opts, &mut out)?,
        Format::Png => png(&data, opts, &mut out)?,
        Format::Webp => webp(&data, opts, &mut out)?,
        Format::Tiff => tiff(&data, opts, &mut out)?,
        other => return Err(StripError::Unsupported(other.as_str().to_owned())),
    }
    verify(&out.bytes, format)?;
    Ok(Stripped {
        bytes: out.bytes,
        removed: out.removed,
        kept: out.kept,
        format,
    })
}

fn read_all(r: &Reader<'_>, len: u64) -> Result<Vec<u8>, StripError> {
    let mut data = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let n = (len.saturating_sub(pos)).min(crate::source::MAX_READ_BYTES);
        let b = r
            .read(pos, n)
            .map_err(|e| StripError::Read(e.to_string()))?;
        data.extend_from_slice(&b);
        pos = pos.saturating_add(n);
    }
    Ok(data)
}

/// IFD0's own JPEG strips in a TIFF are the image a sanitised copy keeps (ExifTool names them
/// PreviewImage when IFD0 is not marked full-resolution); they are not left-over metadata.
pub(crate) fn kept_image(f: &crate::Finding, format: Format) -> bool {
    format == Format::Tiff
        && f.source.family == Family::Exif
        && f.source.group == "IFD0"
        && f.source.tag == "0x0111"
}

/// Re-analyse the output in deep mode with every value shown: nothing but ICC may remain.
fn verify(bytes: &[u8], format: Format) -> Result<(), StripError> {
    // The copy is our own output and already bounded in size; a generous budget keeps a busy
    // machine from turning a slow re-read into a refusal, while still bounding the time.
    let a = Analyzer::new(
        Policy::default(),
        Options::default()
            .with_deep(true)
            .with_time_budget(VERIFY_TIME_BUDGET),
    );
    let v = bytes.to_vec();
    let rep = a.analyze(&v);
    if rep.format != format {
        return Err(StripError::Verification(format!(
            "output reads as {}",
            rep.format
        )));
    }
    let left: Vec<String> = rep
        .findings
        .iter()
        .filter(|f| f.source.family != Family::Icc)
        .filter(|f| !kept_image(f, format))
        .map(|f| f.code.clone())
        .collect();
    if !left.is_empty() {
        return Err(StripError::Verification(left.join(", ")));
    }
    if let Some(e) = rep.error {
        return Err(StripError::Verification(format!(
            "output does not parse cleanly: {e}"
        )));
    }
    Ok(())
}

#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
    removed: Vec<String>,
    kept: Vec<String>,
}

fn slice(d: &[u8], start: usize, len: usize) -> Result<&[u8], StripError> {
    start
        .checked_add(len)
        .and_then(|e| d.get(start..e))
        .ok_or_else(|| {
            refuse(format!(
                "structure at {start} runs past the end of the file"
            ))
        })
}

/// Orientation (1–8) from an EXIF TIFF block, if present and not 1.
fn exif_orientation(tiff_data: &[u8]) -> Option<u16> {
    let le = match tiff_data.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let ifd = u32_at(tiff_data, 4, le)? as usize;
    let n = u16_at(tiff_data, ifd, le)?;
    for i in 0..usize::from(n.min(1024)) {
        let p = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(tiff_data, p, le)? == 0x0112 {
            let v = u16_at(tiff_data, p.checked_add(8)?, le)?;
            return ((2..=8).contains(&v)).then_some(v);
        }
    }
    None
}

/// A minimal big-endian TIFF block holding only IFD0 Orientation.
fn minimal_exif(orientation: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

// ---------------------------------------------------------------------------------------------
// JPEG

fn jpeg(d: &[u8], opts: &StripOptions, out: &mut Out) -> Result<(), StripError> {
    if d.get(..2) != Some(&[0xff, 0xd8]) {
        return Err(refuse(
            "no JPEG SOI marker (EXV and other wrappers are not rewritten)",
        ));
    }
    let mut o: Vec<u8> = vec![0xff, 0xd8];
    let mut orientation = None;
    let mut pos = 2usize;
    let mut wrote_exif = false;
    // Header segments up to the first SOS.
    loop {
        let m = *d
            .get(pos.saturating_add(1))
            .ok_or_else(|| refuse("JPEG ends before its image data"))?;
        if d.get(pos) != Some(&0xff) {
            return Err(refuse(format!("JPEG marker expected at {pos}")));
        }
        if m == 0xff {
            pos = pos.saturating_add(1);
            continue;
        }
        if m == 0xd9 {
            return Err(refuse("JPEG ends before its image data"));
        }
        let len =
            usize::from(be16(d, pos.saturating_add(2)).ok_or_else(|| refuse("truncated segment"))?);
        if len < 2 {
            return Err(refuse(format!("bad segment length at {pos}")));
        }
        let seg = slice(d, pos, len.saturating_add(2))?;
        let payload = seg.get(4..).unwrap_or(&[]);
        let keep = match m {
            0xe0 => payload.starts_with(b"JFIF\0"),
            0xe2 => payload.starts_with(b"ICC_PROFILE\0") && !opts.drop_icc,
            0xee => payload.starts_with(b"Adobe"),
            0xe1..=0xef | 0xfe => false,
            // Tables, frame headers, restart interval: image structure.
            _ => true,
        };
        if m == 0xe1 && payload.starts_with(b"Exif\0") && orientation.is_none() {
            orientation = exif_orientation(payload.get(6..).unwrap_or(&[]));
        }
        if keep {
            // The minimal orientation EXIF goes before the first kept non-APP0 segment.
            if !wrote_exif && m != 0xe0 {
                write_orientation_app1(&mut o, orientation, opts, out);
                wrote_exif = true;
            }
            o.extend_from_slice(seg);
            if m == 0xe2 && out.kept.iter().all(|k| k != "ICC profile") {
                out.kept.push("ICC profile".to_owned());
            }
        } else {
            out.removed.push(format!(
                "{} ({} bytes)",
                segment_name(m, payload),
                seg.len()
            ));
        }
        pos = pos.saturating_add(seg.len());
        if m == 0xda {
            break;
        }
    }
    // Entropy-coded data and any segments between scans, to the true EOI.
    let mut seg_start = pos;
    let mut i = pos;
    let end = loop {
        let Some(&c) = d.get(i) else {
            return Err(refuse(
                "no end-of-image marker after the image data; the file is truncated or not a JPEG",
            ));
        };
        if c != 0xff {
            i = i.saturating_add(1);
            continue;
        }
        let Some(&m) = d.get(i.saturating_add(1)) else {
            return Err(refuse("no end-of-image marker after the image data"));
        };
        match m {
            0x00 | 0xd0..=0xd7 | 0xff => i = i.saturating_add(if m == 0xff { 1 } else { 2 }),
            0xd9 => break i.saturating_add(2),
            _ => {
                // A segment between scans: keep tables and scan headers, drop metadata.
                let len = usize::from(
                    be16(d, i.saturating_add(2)).ok_or_else(|| refuse("truncated segment"))?,
                );
                let seg = slice(d, i, len.saturating_add(2))?;
                if matches!(m, 0xe0..=0xef | 0xfe) {
                    o.extend_from_slice(slice(d, seg_start, i.saturating_sub(seg_start))?);
                    out.removed.push(format!(
                        "{} between scans ({} bytes)",
                        segment_name(m, seg.get(4..).unwrap_or(&[])),
                        seg.len()
                    ));
                    seg_start = i.saturating_add(seg.len());
                }
                i = i.saturating_add(seg.len());
            }
        }
    };
    o.extend_from_slice(slice(d, seg_start, end.saturating_sub(seg_start))?);
    if end < d.len() {
        out.removed.push(format!(
            "data after the end of the image ({} bytes)",
            d.len().saturating_sub(end)
        ));
    }
    out.bytes = o;
    Ok(())
}

fn write_orientation_app1(
    o: &mut Vec<u8>,
    orientation: Option<u16>,
    opts: &StripOptions,
    out: &mut Out,
) {
    let Some(v) = orientation.filter(|_| !opts.drop_orientation) else {
        return;
    };
    let t = minimal_exif(v);
    let len = u16::try_from(t.len().saturating_add(8)).unwrap_or(u16::MAX);
    o.extend_from_slice(&[0xff, 0xe1]);
    o.extend_from_slice(&len.to_be_bytes());
    o.extend_from_slice(b"Exif\0\0");
    o.extend_from_slice(&t);
    out.kept.push(format!("orientation {v}"));
}

fn segment_name(m: u8, payload: &[u8]) -> String {
    let sig: String = payload
        .iter()
        .take_while(|c| c.is_ascii_graphic() || **c == b' ')
        .take(24)
        .map(|c| char::from(*c))
        .collect();
    match m {
        0xfe => "COM".to_owned(),
        0xe0..=0xef if !sig.is_empty() => format!("APP{} {sig}", m & 0x0f),
        0xe0..=0xef => format!("APP{}", m & 0x0f),
        _ => format!("marker 0x{m:02x}"),
    }
}

// ---------------------------------------------------------------------------------------------
// PNG

/// Ancillary chunks that describe pixels and name no one.
const PNG_KEEP: &[&[u8; 4]] = &[
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD",
    b"hIST", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCV", b"cLLI", b"mDCv",
    b"cLLi",
];

fn png_crc(data: &[u8]) -> u32 {
    let mut c: u32 = 0xffff_ffff;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(o: &mut Vec<u8>, typ: &[u8; 4], body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    o.extend_from_slice(&len.to_be_bytes());
    let mut crc_in = Vec::with_capacity(body.len().saturating_add(4));
    crc_in.extend_from_slice(typ);
    crc_in.extend_from_slice(body);
    o.extend_from_slice(&crc_in);
    o.extend_from_slice(&png_crc(&crc_in).to_be_bytes());
}

fn png(d: &[u8], opts: &StripOptions, out: &mut Out) -> Result<(), StripError> {
    let mut o = slice(d, 0, 8)?.to_vec();
    let mut pos = 8usize;
    let mut orientation = None;
    let mut wrote_exif = false;
    loop {
        let len = u32_at(d, pos, false).ok_or_else(|| refuse("PNG ends without IEND"))? as usize;
        let typ: [u8; 4] = slice(d, pos.saturating_add(4), 4)?
            .try_into()
            .map_err(|_| refuse("bad chunk"))?;
        let whole = slice(d, pos, len.saturating_add(12))?;
        let body = whole.get(8..8usize.saturating_add(len)).unwrap_or(&[]);
        let name = String::from_utf8_lossy(&typ).into_owned();
        if pos == 8 && &typ != b"IHDR" {
            return Err(refuse("PNG does not start with an IHDR chunk"));
        }
        if &typ == b"eXIf" {
            orientation = orientation.or_else(|| exif_orientation(body));
        }
        let keep = PNG_KEEP.contains(&&typ) || (&typ == b"iCCP" && !opts.drop_icc);
        if keep {
            if &typ == b"IDAT" && !wrote_exif {
                // eXIf must precede IDAT.
                if let Some(v) = orientation.filter(|_| !opts.drop_orientation) {
                    png_chunk(&mut o, b"eXIf", &minimal_exif(v));
                    out.kept.push(format!("orientation {v}"));
                }
                wrote_exif = true;
            }
            o.extend_from_slice(whole);
            if &typ == b"iCCP" {
                out.kept.push("ICC profile".to_owned());
            }
        } else if typ.first().is_some_and(u8::is_ascii_uppercase) {
            return Err(refuse(format!("unknown critical PNG chunk {name}")));
        } else {
            out.removed.push(format!("{name} ({} bytes)", whole.len()));
        }
        pos = pos.saturating_add(whole.len());
        if &typ == b"IEND" {
            break;
        }
    }
    if pos < d.len() {
        out.removed.push(format!(
            "data after IEND ({} bytes)",
            d.len().saturating_sub(pos)
        ));
    }
    out.bytes = o;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// WebP

fn webp(d: &[u8], opts: &StripOptions, out: &mut Out) -> Result<(), StripError> {
    let riff_len = u32_at(d, 4, true).ok_or_else(|| refuse("short RIFF header"))? as usize;
    let end = riff_len.saturating_add(8);
    if end > d.len() {
        return Err(refuse("RIFF size runs past the end of the file"));
    }
    let mut chunks: Vec<([u8; 4], &[u8])> = Vec::new();
    let mut pos = 12usize;
    let mut orientation = None;
    while pos.saturating_add(8) <= end {
        let typ: [u8; 4] = slice(d, pos, 4)?
            .try_into()
            .map_err(|_| refuse("bad chunk"))?;
        let size =
            u32_at(d, pos.saturating_add(4), true).ok_or_else(|| refuse("bad chunk"))? as usize;
        let body = slice(d, pos.saturating_add(8), size)?;
        let name = String::from_utf8_lossy(&typ).into_owned();
        match &typ {
            b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH" | b"ANIM" | b"ANMF" => chunks.push((typ, body)),
            b"ICCP" if !opts.drop_icc => {
                chunks.push((typ, body));
                out.kept.push("ICC profile".to_owned());
            }
            b"EXIF" => {
                let t = body.strip_prefix(b"Exif\0\0").unwrap_or(body);
                orientation = exif_orientation(t);
                out.removed.push(format!("{name} ({} bytes)", size));
            }
            _ => out.removed.push(format!("{name} ({} bytes)", size)),
        }
        pos = pos
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    if end < d.len() {
        out.removed.push(format!(
            "data after the RIFF chunk ({} bytes)",
            d.len().saturating_sub(end)
        ));
    }
    let orientation = orientation.filter(|_| !opts.drop_orientation);
    let mut body: Vec<u8> = Vec::new();
    for (typ, b) in &chunks {
        if typ == b"VP8X" {
            let mut x = b.to_vec();
            if let Some(flags) = x.first_mut() {
                // Bits: 0x20 ICC, 0x08 EXIF, 0x04 XMP.
                *flags &= !0x04;
                *flags &= !0x08;
                if orientation.is_some() {
                    *flags |= 0x08;
                }
                if opts.drop_icc {
                    *flags &= !0x20;
                }
            }
            riff_chunk(&mut body, b"VP8X", &x);
        } else {
            riff_chunk(&mut body, typ, b);
        }
    }
    if let Some(v) = orientation
        && chunks.iter().any(|(t, _)| t == b"VP8X")
    {
        riff_chunk(&mut body, b"EXIF", &minimal_exif(v));
        out.kept.push(format!("orientation {v}"));
    }
    let mut o = Vec::with_capacity(body.len().saturating_add(12));
    o.extend_from_slice(b"RIFF");
    o.extend_from_slice(
        &u32::try_from(body.len().saturating_add(4))
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    o.extend_from_slice(b"WEBP");
    o.extend_from_slice(&body);
    out.bytes = o;
    Ok(())
}

fn riff_chunk(o: &mut Vec<u8>, typ: &[u8; 4], body: &[u8]) {
    o.extend_from_slice(typ);
    o.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    o.extend_from_slice(body);
    if body.len() % 2 == 1 {
        o.push(0);
    }
}

// ---------------------------------------------------------------------------------------------
// TIFF

/// IFD0 tags that describe the pixels (kept); every other tag is dropped.
const TIFF_KEEP: &[u16] = &[
    0x00fe, 0x0100, 0x0101, 0x0102, 0x0103, 0x0106, 0x0107, 0x0108, 0x0109, 0x010a, 0x0115, 0x0116,
    0x0118, 0x0119, 0x011a, 0x011b, 0x011c, 0x0122, 0x0123, 0x0128, 0x012d, 0x013c, 0x013d, 0x013e,
    0x013f, 0x0140, 0x0142, 0x0143, 0x0152, 0x0153, 0x0154, 0x0155, 0x015b, 0x0211, 0x0212, 0x0213,
    0x0214,
];
const TAG_STRIP_OFFSETS: u16 = 0x0111;
const TAG_STRIP_COUNTS: u16 = 0x0117;
const TAG_TILE_OFFSETS: u16 = 0x0144;
const TAG_TILE_COUNTS: u16 = 0x0145;
const TAG_ORIENTATION: u16 = 0x0112;
const TAG_ICC: u16 = 0x8773;

struct TEntry {
    tag: u16,
    typ: u16,
    count: u32,
    data: Vec<u8>,
}

fn tiff(d: &[u8], opts: &StripOptions, out: &mut Out) -> Result<(), StripError> {
    let le = match d.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err(StripError::Unsupported("TIFF-based RAW".to_owned())),
    };
    let ifd = u32_at(d, 4, le).ok_or_else(|| refuse("short TIFF header"))? as usize;
    let n = u16_at(d, ifd, le).ok_or_else(|| refuse("IFD0 outside the file"))?;
    let mut entries: Vec<TEntry> = Vec::new();
    let mut dropped = 0usize;
    let mut raw = d.get(8..10) == Some(b"CR");
    for i in 0..usize::from(n.min(4096)) {
        let p = ifd.saturating_add(2).saturating_add(i.saturating_mul(12));
        let (Some(tag), Some(typ), Some(count)) = (
            u16_at(d, p, le),
            u16_at(d, p.saturating_add(2), le),
            u32_at(d, p.saturating_add(4), le),
        ) else {
            return Err(refuse("IFD0 truncated"));
        };
        let size = usize::try_from(type_size(typ).saturating_mul(u64::from(count)))
            .map_err(|_| refuse("value too large"))?;
        let data = if size <= 4 {
            slice(d, p.saturating_add(8), size)?.to_vec()
        } else {
            let off = u32_at(d, p.saturating_add(8), le).ok_or_else(|| refuse("IFD0 truncated"))?
                as usize;
            slice(d, off, size)?.to_vec()
        };
        // DNG version or SubIFDs: a RAW file, whose pixels live where we would not copy them.
        if tag == 0xc612 || tag == 0x014a {
            raw = true;
        }
        let keep = TIFF_KEEP.contains(&tag)
            || matches!(
                tag,
                TAG_STRIP_OFFSETS | TAG_STRIP_COUNTS | TAG_TILE_OFFSETS | TAG_TILE_COUNTS
            )
            || (tag == TAG_ORIENTATION && !opts.drop_orientation)
            || (tag == TAG_ICC && !opts.drop_icc);
        if keep {
            entries.push(TEntry {
                tag,
                typ,
                count,
                data,
            });
        } else {
            dropped = dropped.saturating_add(1);
        }
    }
    if raw {
        return Err(StripError::Unsupported(
            "TIFF-based RAW (DNG, CR2, NEF, ...)".to_owned(),
        ));
    }
    let next = u32_at(
        d,
        ifd.saturating_add(2)
            .saturating_add(usize::from(n).saturating_mul(12)),
        le,
    )
    .unwrap_or(0);
    if next != 0 {
        // A following IFD that is a reduced-resolution image (thumbnail) is dropped; a second
        // full page would be lost, so refuse.
        let nn = u16_at(d, next as usize, le).unwrap_or(0);
        let mut reduced = false;
        for i in 0..usize::from(nn.min(4096)) {
            let p = (next as usize)
                .saturating_add(2)
                .saturating_add(i.saturating_mul(12));
            if u16_at(d, p, le) == Some(0x00fe) {
                reduced = u32_at(d, p.saturating_add(8), le).is_some_and(|v| v & 1 == 1)
                    || u16_at(d, p.saturating_add(8), le).is_some_and(|v| v & 1 == 1);
            }
        }
        if !reduced {
            return Err(refuse("multi-page TIFF: only single images are rewritten"));
        }
        out.removed.push("IFD1 (thumbnail image)".to_owned());
    }
    out.removed.push(format!(
        "{dropped} IFD0 tags (EXIF, GPS, XMP, IPTC, maker and text tags)"
    ));
    let val = |e: &TEntry, i: usize| -> Option<u64> {
        match e.typ {
            3 => u16_at(&e.data, i.checked_mul(2)?, le).map(u64::from),
            4 | 13 => u32_at(&e.data, i.checked_mul(4)?, le).map(u64::from),
            _ => None,
        }
    };
    entries.sort_by_key(|e| e.tag);
    let (off_tag, cnt_tag) = if entries.iter().any(|e| e.tag == TAG_TILE_OFFSETS) {
        (TAG_TILE_OFFSETS, TAG_TILE_COUNTS)
    } else {
        (TAG_STRIP_OFFSETS, TAG_STRIP_COUNTS)
    };
    let offs = entries
        .iter()
        .find(|e| e.tag == off_tag)
        .ok_or_else(|| refuse("no image data offsets"))?;
    let cnts = entries
        .iter()
        .find(|e| e.tag == cnt_tag)
        .ok_or_else(|| refuse("no image data byte counts"))?;
    if offs.count != cnts.count || offs.count == 0 || offs.count > 1_000_000 {
        return Err(refuse("image data offsets and counts disagree"));
    }
    let mut pieces: Vec<&[u8]> = Vec::new();
    for i in 0..offs.count as usize {
        let (Some(o), Some(c)) = (val(offs, i), val(cnts, i)) else {
            return Err(refuse("unreadable image data offsets"));
        };
        pieces.push(slice(
            d,
            usize::try_from(o).map_err(|_| refuse("offset"))?,
            usize::try_from(c).map_err(|_| refuse("count"))?,
        )?);
    }
    // Layout: header, IFD0, out-of-line values, image data.
    let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let ifd_len = 2usize
        .saturating_add(entries.len().saturating_mul(12))
        .saturating_add(4);
    let mut values_len = 0usize;
    for e in &entries {
        if e.tag != off_tag && e.data.len() > 4 {
            values_len = values_len
                .saturating_add(e.data.len())
                .saturating_add(e.data.len() & 1);
        }
    }
    // The offsets entry becomes LONG so it can address any position.
    let offs_values = if offs.count > 1 {
        (offs.count as usize).saturating_mul(4)
    } else {
        0
    };
    let data_start = 8usize
        .saturating_add(ifd_len)
        .saturating_add(values_len)
        .saturating_add(offs_values);
    let mut new_offsets = Vec::with_capacity(pieces.len());
    let mut at = data_start;
    for p in &pieces {
        new_offsets.push(u32::try_from(at).map_err(|_| refuse("output larger than 4 GiB"))?);
        at = at.saturating_add(p.len());
    }
    let mut o = Vec::with_capacity(at);
    o.extend_from_slice(if le { b"II*\0" } else { b"MM\0*" });
    o.extend_from_slice(&w32(8));
    o.extend_from_slice(&w16(u16::try_from(entries.len()).unwrap_or(0)));
    let mut value_area: Vec<u8> = Vec::new();
    let values_base = 8usize.saturating_add(ifd_len);
    for e in &entries {
        o.extend_from_slice(&w16(e.tag));
        if e.tag == off_tag {
            o.extend_from_slice(&w16(4));
            o.extend_from_slice(&w32(offs.count));
            if offs.count == 1 {
                o.extend_from_slice(&w32(new_offsets.first().copied().unwrap_or(0)));
            } else {
                let at = values_base.saturating_add(values_len);
                o.extend_from_slice(&w32(u32::try_from(at).unwrap_or(0)));
            }
            continue;
        }
        o.extend_from_slice(&w16(e.typ));
        o.extend_from_slice(&w32(e.count));
        if e.data.len() <= 4 {
            let mut v = e.data.clone();
            v.resize(4, 0);
            o.extend_from_slice(&v);
        } else {
            let at = values_base.saturating_add(value_area.len());
            o.extend_from_slice(&w32(u32::try_from(at).unwrap_or(0)));
            value_area.extend_from_slice(&e.data);
            if e.data.len() % 2 == 1 {
                value_area.push(0);
            }
        }
        if e.tag == TAG_ICC {
            out.kept.push("ICC profile".to_owned());
        }
        if e.tag == TAG_ORIENTATION {
            out.kept.push("orientation".to_owned());
        }
    }
    o.extend_from_slice(&w32(0));
    o.extend_from_slice(&value_area);
    if offs.count > 1 {
        for v in &new_offsets {
            o.extend_from_slice(&w32(*v));
        }
    }
    for p in pieces {
        o.extend_from_slice(p);
    }
    out.bytes = o;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_crc_matches_the_reference_value() {
        // CRC of "IEND" is the constant every PNG ends with.
        assert_eq!(png_crc(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn a_minimal_orientation_block_reads_back() {
        assert_eq!(exif_orientation(&minimal_exif(6)), Some(6));
        assert_eq!(exif_orientation(&minimal_exif(1)), None);
    }
}
