//! JPEG: segment walk (APPn, COM, SOF) up to the first scan, then the checks for data after
//! the end of the image.
//!
//! Threat model: segment lengths come from the file; each is checked against the data view
//! before it is read, and at most [`MAX_SEGMENTS`] segments are walked (thousands of tiny
//! segments are a known quadratic trap). Multi-segment payloads (ICC chunks, Photoshop APP13,
//! Extended XMP) are reassembled into buffers capped at [`MAX_ASSEMBLED_BYTES`] and by the real
//! file size, never by a declared total.
//!
//! Range mode (default) reads the segments up to SOS and a tail window of
//! [`TAIL_WINDOW_BYTES`]; it finds trailers that do not end in an EOI marker, known trailers
//! (Samsung SEFT, Motion Photo video announced by XMP, MPF images) and data after the last EOI in
//! the tail. It cannot see a trailer that itself ends in `FFD9` (an aCropalypse leftover of a
//! larger JPEG). Deep mode walks the entropy-coded data to the true EOI and finds those too, at
//! the cost of reading the whole file.

use crate::bytes::be16;
use crate::ctx::{Ctx, EmbeddedImage};
use crate::family::tiff::{self, Data, Host, MAX_KEPT_IMAGE_BYTES};
use crate::family::{fpxr, icc, irb, xmp};
use crate::model::{Category, Family};

/// Most segments walked before the scan.
const MAX_SEGMENTS: u32 = 4096;
/// Largest reassembled ICC / APP13 / Extended XMP buffer.
const MAX_ASSEMBLED_BYTES: u64 = 16 * 1024 * 1024;
/// Trailers shorter than this are padding, not hidden data.
const MIN_TRAILER_BYTES: u64 = 32;
/// Tail window read in range mode to find trailers.
pub const TAIL_WINDOW_BYTES: u64 = 64 * 1024;

const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const EXT_XMP_SIG: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";

#[derive(Default)]
struct Walked {
    scan_start: Option<u64>,
    eoi_end: Option<u64>,
    /// MPF images: absolute (offset, len).
    mpf: Vec<(u64, u64)>,
}

/// One Extended XMP packet being reassembled: GUID, declared total, chunks (offset, bytes).
type ExtXmp = (Vec<u8>, u64, Vec<(u64, Vec<u8>)>);

#[derive(Default)]
struct Assembly {
    icc: Vec<u8>,
    app13: Vec<u8>,
    app13_off: Option<u64>,
    ext_xmp: Vec<ExtXmp>,
    flir: Vec<u8>,
    flir_off: Option<u64>,
    /// FlashPix streams from APP2 `FPXR` segments.
    fpxr: fpxr::Fpxr,
    /// A vendor preview JPEG split over APP segments: (APP marker it started in, absolute
    /// offset of its first byte, bytes so far, the markers that continue it).
    vendor_preview: Option<(u8, Option<u64>, u64, &'static [u8])>,
    /// Finished vendor previews, as (APP marker, offset, length).
    vendor_previews: Vec<(u8, Option<u64>, u64)>,
}

/// Parse a whole JPEG file.
pub(crate) fn parse_file(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    let w = walk(ctx, Data::File(0, len), true);
    ctx.facts.scan_start = w.scan_start;
    trailer_checks(ctx, &w);
}

/// Parse a JPEG embedded in another container (RAF, RW2, X3F): metadata only.
pub(crate) fn parse_embedded(ctx: &mut Ctx<'_>, d: Data<'_>) {
    if !ctx.enter() {
        return;
    }
    let _ = walk(ctx, d, false);
    ctx.leave();
}

fn walk(ctx: &mut Ctx<'_>, d: Data<'_>, top: bool) -> Walked {
    let mut w = Walked::default();
    let mut asm = Assembly::default();
    let Ok(soi) = d.get(ctx, 0, 2) else {
        ctx.error("JPEG: too short");
        return w;
    };
    // Exiv2's EXV files start with FF01 "Exiv2" instead of SOI, then JPEG segments.
    let exv = soi.as_ref() == [0xff, 0x01];
    if soi.as_ref() != [0xff, 0xd8] && !exv {
        ctx.error("JPEG: no SOI marker");
        return w;
    }
    let mut pos: u64 = if exv { 7 } else { 2 };
    let mut n = 0u32;
    loop {
        n = n.saturating_add(1);
        if n > MAX_SEGMENTS {
            ctx.error("JPEG: too many segments; walk cut");
            break;
        }
        if !ctx.alive() {
            break;
        }
        let Ok(h) = d.get(ctx, pos, 2) else {
            if top {
                ctx.error(format!("JPEG: truncated before a marker at {pos}"));
            }
            break;
        };
        let (b0, b1) = (
            h.first().copied().unwrap_or(0),
            h.get(1).copied().unwrap_or(0),
        );
        if b0 != 0xff {
            ctx.error(format!("JPEG: marker expected at {pos}"));
            break;
        }
        if b1 == 0xff {
            pos = pos.saturating_add(1);
            continue;
        }
        if matches!(b1, 0xd0..=0xd7 | 0x01 | 0xd8) {
            pos = pos.saturating_add(2);
            continue;
        }
        if b1 == 0xd9 {
            w.eoi_end = Some(pos.saturating_add(2));
            break;
        }
        let Some(seg_len) = d
            .get(ctx, pos.saturating_add(2), 2)
            .ok()
            .and_then(|b| be16(&b, 0))
        else {
            ctx.error("JPEG: truncated segment header");
            break;
        };
        if seg_len < 2 {
            ctx.error(format!("JPEG: bad segment length at {pos}"));
            break;
        }
        let payload_off = pos.saturating_add(4);
        let payload_len = u64::from(seg_len).saturating_sub(2);
        let next = payload_off.saturating_add(payload_len);
        if next > d.len() {
            ctx.error(format!(
                "JPEG: segment 0x{b1:02x} at {pos} runs past the end"
            ));
        }
        match b1 {
            0xe0..=0xef | 0xfe => {
                segment(ctx, d, &mut w, &mut asm, b1, payload_off, payload_len, top);
            }
            0xc0..=0xcf if !matches!(b1, 0xc4 | 0xc8 | 0xcc) => {
                if top
                    && ctx.facts.main_dims.is_none()
                    && let Ok(p) = d.get(ctx, payload_off, 5.min(payload_len))
                    && let (Some(hh), Some(ww)) = (be16(&p, 1), be16(&p, 3))
                {
                    ctx.facts.main_dims = Some((u32::from(ww), u32::from(hh)));
                }
            }
            0xda => {
                w.scan_start = Some(next);
                if top && ctx.opts.deep {
                    w.eoi_end = scan_to_eoi(ctx, d, next);
                }
                break;
            }
            _ => {}
        }
        pos = next;
    }
    finish_assembly(ctx, asm);
    w
}

#[allow(clippy::too_many_arguments)]
fn segment(
    ctx: &mut Ctx<'_>,
    d: Data<'_>,
    w: &mut Walked,
    asm: &mut Assembly,
    marker: u8,
    off: u64,
    len: u64,
    top: bool,
) {
    let Ok(head) = d.get(ctx, off, len.min(64)) else {
        return;
    };
    let abs = d.abs(off);
    let full = |ctx: &mut Ctx<'_>| match d.get(ctx, off, len) {
        Ok(b) => Some(b),
        Err(e) => {
            ctx.read_error(&format!("JPEG APP{}", marker & 0x0f), &e);
            None
        }
    };
    // Vendor previews (ExifTool's JPEG table): Samsung/GoPro/BenQ/Digilife APP2 (optionally
    // after "QVGA\0" or "BGTH"), Samsung/HP APP3 continued in APP4 and APP5, APP6. A segment
    // of a continuing marker that starts no other block extends the open preview.
    if let Some((m, at, n, cont)) = asm.vendor_preview.take() {
        if cont.contains(&marker)
            && vendor_preview_start(marker, &head).is_none()
            && !known_app(&head)
        {
            asm.vendor_preview = Some((m, at, n.saturating_add(len), cont));
            return;
        }
        asm.vendor_previews.push((m, at, n));
    }
    if let Some((skip, cont)) = vendor_preview_start(marker, &head) {
        let at = abs.and_then(|a| a.checked_add(skip));
        asm.vendor_preview = Some((marker, at, len.saturating_sub(skip), cont));
        return;
    }
    match marker {
        0xe0 if head.starts_with(b"JFXX\0")
            // Extension code 0x10 = JPEG thumbnail, 0x11/0x13 = palette/RGB thumbnails.
            && head.get(5).is_some_and(|c| matches!(c, 0x10 | 0x11 | 0x13)) && len > 6 =>
        {
            let data = (len <= MAX_KEPT_IMAGE_BYTES && head.get(5) == Some(&0x10))
                .then(|| full(ctx).and_then(|b| b.get(6..).map(<[u8]>::to_vec)))
                .flatten();
            ctx.image(
                Family::Container,
                "JFXX",
                "APP0",
                "ThumbnailImage",
                EmbeddedImage {
                    offset: abs.and_then(|a| a.checked_add(6)),
                    len: len.saturating_sub(6),
                    data,
                    ..Default::default()
                },
            );
        }
        0xe0 if head.get(6..14) == Some(b"HEAPJPGM") || head.starts_with(b"II\x1a\0\0\0HEAP") => {
            if let Some(b) = full(ctx) {
                crate::container::crw::parse_mem(ctx, &b, abs, "CIFF");
            }
        }
        0xe1 if head.starts_with(b"Exif\0") => {
            if let Some(sub) = d.slice(off.saturating_add(6), len.saturating_sub(6)) {
                // Read the EXIF block once into memory: IFDs are small and random-access.
                match sub.get(ctx, 0, sub.len()) {
                    Ok(b) => {
                        let mem = Data::Mem(&b, sub.abs(0));
                        tiff::parse(ctx, mem, Host::Embedded);
                    }
                    Err(e) => ctx.read_error("EXIF", &e),
                }
            }
        }
        0xe1 if head.starts_with(XMP_SIG) => {
            if let Some(b) = full(ctx) {
                let body = b.get(XMP_SIG.len()..).unwrap_or(&[]);
                xmp::parse(
                    ctx,
                    body,
                    abs.and_then(|a| a.checked_add(XMP_SIG.len() as u64)),
                );
            }
        }
        0xe1 if head.starts_with(EXT_XMP_SIG) => {
            if let Some(b) = full(ctx) {
                let p = EXT_XMP_SIG.len();
                let guid = b.get(p..p.saturating_add(32)).map(<[u8]>::to_vec);
                let total = b
                    .get(p.saturating_add(32)..p.saturating_add(36))
                    .and_then(|x| x.try_into().ok())
                    .map(u32::from_be_bytes);
                let chunk_off = b
                    .get(p.saturating_add(36)..p.saturating_add(40))
                    .and_then(|x| x.try_into().ok())
                    .map(u32::from_be_bytes);
                let data = b.get(p.saturating_add(40)..);
                if let (Some(g), Some(t), Some(o), Some(data)) = (guid, total, chunk_off, data) {
                    if let Some(e) = asm.ext_xmp.iter_mut().find(|e| e.0 == g) {
                        if e.2.len() < 4096 {
                            e.2.push((u64::from(o), data.to_vec()));
                        }
                    } else if asm.ext_xmp.len() < 4 {
                        asm.ext_xmp
                            .push((g, u64::from(t), vec![(u64::from(o), data.to_vec())]));
                    }
                }
            }
        }
        // Only the first ICC chunk is read: the header, the tag table and the short
        // description tags sit at its start. Profiles split over dozens of segments (1.6 MB
        // in the corpus) would otherwise dominate the bytes read for no privacy gain.
        0xe1 if head.starts_with(b"FLIR\0") => {
            // FLIR thermal cameras split an "FFF" record file over APP1 segments, each with an
            // 8-byte header; the camera record holds the serial number.
            if let Some(b) = full(ctx)
                && (asm.flir.len() as u64).saturating_add(len) <= MAX_ASSEMBLED_BYTES
            {
                asm.flir_off
                    .get_or_insert(abs.map_or(0, |a| a.saturating_add(8)));
                asm.flir.extend_from_slice(b.get(8..).unwrap_or(&[]));
            }
        }
        0xe2 if head.starts_with(b"ICC_PROFILE\0") && head.get(12) == Some(&1) => {
            if let Some(b) = full(ctx) {
                asm.icc.extend_from_slice(b.get(14..).unwrap_or(&[]));
            }
        }
        0xe2 if head.starts_with(b"FPXR\0") => {
            if let Some(b) = full(ctx) {
                asm.fpxr.segment(ctx, &b);
            }
        }
        0xe2 if head.starts_with(b"MPF\0") && top => {
            if let Some(b) = full(ctx) {
                mpf(ctx, &b, off.saturating_add(4), w);
            }
        }
        0xe3 if head.starts_with(b"Meta\0\0")
            || head.starts_with(b"META\0\0")
            || head.starts_with(b"Exif\0\0") =>
        {
            if let Some(b) = full(ctx) {
                let body = b.get(6..).unwrap_or(&[]);
                if let Some((mut t, first)) = tiff::Tiff::open(
                    ctx,
                    Data::Mem(body, abs.and_then(|a| a.checked_add(6))),
                    Host::Embedded,
                ) {
                    tiff::walk_ifd(ctx, &mut t, first, tiff::Ifd::Meta);
                }
            }
        }
        0xe5 if head.starts_with(b"RMETA\0") => {
            if let Some(b) = full(ctx) {
                rmeta(
                    ctx,
                    b.get(6..).unwrap_or(&[]),
                    abs.and_then(|a| a.checked_add(6)),
                );
            }
        }
        0xe6 if head.starts_with(b"GoPro\0") => {
            if let Some(b) = full(ctx) {
                let body = b.get(6..).unwrap_or(&[]);
                crate::family::gpmf::Gpmf::new("GoPro", true).read(
                    ctx,
                    body,
                    abs.and_then(|a| a.checked_add(6)),
                );
            }
        }
        0xe6 if head.starts_with(b"TDHD\x01\0\0\0") => {
            if let Some(b) = full(ctx) {
                tdhd(ctx, &b, abs);
            }
        }
        0xec if head.starts_with(b"Ducky") => {
            if let Some(b) = full(ctx) {
                ducky(ctx, &b, abs);
            }
        }
        0xec => {
            if let Some(b) = full(ctx) {
                picture_info(ctx, &b, abs);
            }
        }
        0xed if head.starts_with(b"Photoshop 3.0\0") => {
            if let Some(b) = full(ctx) {
                if asm.app13_off.is_none() {
                    asm.app13_off = abs.and_then(|a| a.checked_add(14));
                }
                if (asm.app13.len() as u64).saturating_add(len) <= MAX_ASSEMBLED_BYTES {
                    asm.app13.extend_from_slice(b.get(14..).unwrap_or(&[]));
                }
            }
        }
        0xfe => {
            if let Some(b) = full(ctx) {
                let s = tiff::ascii(&b);
                ctx.text(Family::Container, "File", "COM", "Comment", abs, &s);
            }
        }
        _ => {}
    }
}

/// FLIR FFF: a 64-byte header (version at 0x14 decides the byte order; directory offset and
/// count at 0x18/0x1c), 32-byte directory entries (type, ..., offset at 0x0c, length at 0x10).
/// Record 0x20 (camera information) holds the camera, lens and filter serial numbers at the
/// byte offsets the generated data lists for `FLIR::CameraInfo`; record 0x2b (GPS, always
/// little-endian) a validity flag and two doubles; records 0x01 (raw thermal image) and 0x0e
/// (embedded visible-light image) are pictures of the scene.
pub(crate) fn flir(ctx: &mut Ctx<'_>, d: &[u8], abs: Option<u64>) {
    if !(d.starts_with(b"FFF\0") || d.starts_with(b"AFF\0")) {
        return;
    }
    let be_ver = tiff::u32_at(d, 0x14, false).unwrap_or(0);
    let le = !(100..200).contains(&be_ver);
    let rd = |p: usize| tiff::u32_at(d, p, le).map(|v| v as usize);
    let (Some(dir), Some(num)) = (rd(0x18), rd(0x1c)) else {
        ctx.error("FLIR: record directory header truncated");
        return;
    };
    let at = |p: usize| abs.and_then(|a| a.checked_add(p as u64));
    for i in 0..num.min(256) {
        let e = dir.saturating_add(i.saturating_mul(0x20));
        let Some(kind) = tiff::u16_at(d, e, le) else {
            ctx.error("FLIR: record directory truncated");
            break;
        };
        if !matches!(kind, 0x01 | 0x0e | 0x20 | 0x2b) {
            continue;
        }
        let (Some(pos), Some(len)) = (rd(e.saturating_add(0x0c)), rd(e.saturating_add(0x10)))
        else {
            continue;
        };
        let Some(rec) = pos.checked_add(len).and_then(|end| d.get(pos..end)) else {
            ctx.error(format!("FLIR: record 0x{kind:02x} outside the data"));
            continue;
        };
        match kind {
            0x20 => {
                for (id, info) in crate::tagdata::rows("FLIR::CameraInfo") {
                    let (s, n) = (id as usize, info.count as usize);
                    if let Some(b) = rec.get(s..s.saturating_add(n)) {
                        let tag = format!("0x{s:03x}");
                        ctx.text(
                            Family::MakerNote,
                            "FLIR",
                            &tag,
                            info.name,
                            at(pos.saturating_add(s)),
                            &tiff::ascii(b),
                        );
                    }
                }
            }
            0x2b => {
                // GPSValid int32u at 0; refs "N"/"S" at 8, "E"/"W" at 10; doubles at 0x10, 0x18.
                let valid = tiff::u32_at(rec, 0, true) == Some(1);
                let f = |p: usize| {
                    rec.get(p..p.saturating_add(8))
                        .and_then(|b| b.try_into().ok())
                        .map(f64::from_le_bytes)
                };
                if let (true, Some(mut lat), Some(mut lon)) = (valid, f(0x10), f(0x18)) {
                    if rec.get(8) == Some(&b'S') && lat > 0.0 {
                        lat = -lat;
                    }
                    if rec.get(10) == Some(&b'W') && lon > 0.0 {
                        lon = -lon;
                    }
                    if lat.abs() <= 90.0 && lon.abs() <= 180.0 {
                        ctx.gps(
                            Family::MakerNote,
                            "FLIR",
                            "0x0010",
                            "GPSLatitude",
                            at(pos.saturating_add(0x10)),
                            lat,
                            lon,
                            1.0,
                        );
                    } else {
                        ctx.error("FLIR: GPS record holds coordinates out of range");
                    }
                }
            }
            // Raw thermal image and embedded visible image: a 32-byte record header, then the
            // picture (PNG, JPEG or raw 16-bit pixels).
            _ => {
                if len > 32 {
                    let name = if kind == 0x01 {
                        "RawThermalImage"
                    } else {
                        "EmbeddedImage"
                    };
                    let img = crate::ctx::EmbeddedImage {
                        offset: at(pos.saturating_add(32)),
                        len: (len as u64).saturating_sub(32),
                        data: None,
                        ..Default::default()
                    };
                    ctx.image(
                        Family::MakerNote,
                        "FLIR",
                        &format!("0x{kind:02x}"),
                        name,
                        img,
                    );
                }
            }
        }
    }
}

/// Where a vendor preview JPEG starts in an APP segment (bytes to skip) and which APP
/// markers continue it, when this segment starts one.
fn vendor_preview_start(marker: u8, head: &[u8]) -> Option<(u64, &'static [u8])> {
    const SOI_DQT: &[u8] = b"\xff\xd8\xff\xdb";
    match marker {
        0xe2 => {
            for p in [&b""[..], b"QVGA\0", b"BGTH"] {
                if head.get(p.len()..).is_some_and(|h| h.starts_with(SOI_DQT))
                    && head.starts_with(p)
                {
                    return Some((p.len() as u64, &[0xe2]));
                }
            }
            None
        }
        0xe3 if head.starts_with(SOI_DQT) => Some((0, &[0xe4, 0xe5])),
        0xe6 if head.starts_with(b"\xff\xd8\xff") => Some((0, &[0xe6])),
        _ => None,
    }
}

/// An APP segment that carries a block of its own (so it does not continue a preview).
fn known_app(head: &[u8]) -> bool {
    const SIGS: &[&[u8]] = &[
        b"Exif\0",
        b"http",
        b"ICC_PROFILE\0",
        b"MPF\0",
        b"FPXR\0",
        b"Meta\0",
        b"META\0",
        b"FLIR\0",
        b"Photoshop",
        b"Ducky",
        b"RMETA\0",
        b"GoPro\0",
        b"EPPIM\0",
        b"NTIF\0",
        b"TDHD\x01\0\0\0",
    ];
    SIGS.iter().any(|s| head.starts_with(s))
}

fn finish_assembly(ctx: &mut Ctx<'_>, mut asm: Assembly) {
    if let Some((m, at, n, _)) = asm.vendor_preview.take() {
        asm.vendor_previews.push((m, at, n));
    }
    for (m, at, n) in std::mem::take(&mut asm.vendor_previews) {
        let app = format!("APP{}", m & 0x0f);
        let img = EmbeddedImage {
            offset: at,
            len: n,
            data: None,
            ..Default::default()
        };
        ctx.image(Family::Container, &app, &app, "PreviewImage", img);
    }
    if !asm.flir.is_empty() {
        flir(ctx, &asm.flir, asm.flir_off);
    }
    std::mem::take(&mut asm.fpxr).finish(ctx);
    if !asm.icc.is_empty() {
        icc::parse(ctx, &asm.icc, None);
    }
    if !asm.app13.is_empty() {
        irb::parse(ctx, &asm.app13, asm.app13_off);
    }
    let cap = MAX_ASSEMBLED_BYTES.min(ctx.r.len());
    for (_, total, chunks) in asm.ext_xmp {
        if total == 0 || total > cap {
            ctx.error("Extended XMP: declared size is implausible");
            continue;
        }
        let Ok(t) = usize::try_from(total) else {
            continue;
        };
        let mut buf = vec![0u8; t];
        for (o, data) in chunks {
            let Ok(o) = usize::try_from(o) else { continue };
            let end = o.saturating_add(data.len()).min(t);
            if let (Some(dst), Some(src)) = (buf.get_mut(o..end), data.get(..end.saturating_sub(o)))
            {
                dst.copy_from_slice(src);
            }
        }
        xmp::parse(ctx, &buf, None);
    }
}

/// MPF (CIPA DC-007): the MP Index IFD lists the images after the first one.
fn mpf(ctx: &mut Ctx<'_>, seg: &[u8], seg_abs: u64, w: &mut Walked) {
    let body = seg.get(4..).unwrap_or(&[]);
    let base = seg_abs.saturating_add(4);
    let Some((mut t, first)) = tiff::Tiff::open(ctx, Data::Mem(body, Some(base)), Host::Embedded)
    else {
        return;
    };
    let Some((entries, _)) = t.entries(ctx, first, "MPF") else {
        return;
    };
    for e in entries.iter().filter(|e| e.tag == 0xb002) {
        let Some(v) = t.value(ctx, e) else { continue };
        for (i, ent) in v.chunks_exact(16).enumerate().take(64) {
            let (Some(attr), Some(size), Some(off)) = (t.u32(ent, 0), t.u32(ent, 4), t.u32(ent, 8))
            else {
                continue;
            };
            if i == 0 || off == 0 || size == 0 {
                continue;
            }
            let abs = base.saturating_add(u64::from(off));
            w.mpf.push((abs, u64::from(size)));
            let kind = attr & 0x00ff_ffff;
            let name = if matches!(kind, 0x01_0001 | 0x01_0002) {
                "PreviewImage"
            } else {
                "MPImage"
            };
            let group = format!("MPImage{}", i.saturating_add(1));
            if name == "PreviewImage" {
                ctx.image(
                    Family::Container,
                    &group,
                    "0xb002",
                    name,
                    EmbeddedImage {
                        offset: Some(abs),
                        len: u64::from(size),
                        data: None,
                        ..Default::default()
                    },
                );
            }
        }
    }
}

/// Photoshop "Ducky" APP12: quality, comment, copyright (UCS-2 big-endian strings).
fn ducky(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>) {
    let mut p = 5usize;
    while let (Some(tag), Some(len)) = (be16(b, p), be16(b, p.saturating_add(2))) {
        if tag == 0 {
            break;
        }
        let start = p.saturating_add(4);
        let end = start.saturating_add(usize::from(len));
        let Some(v) = b.get(start..end) else { break };
        let name = match tag {
            2 => Some("Comment"),
            3 => Some("Copyright"),
            _ => None,
        };
        if let Some(name) = name {
            let units: Vec<u16> = v
                .get(4..)
                .unwrap_or(&[])
                .chunks_exact(2)
                .filter_map(|c| be16(c, 0))
                .collect();
            let s = String::from_utf16_lossy(&units);
            ctx.text(Family::Container, "Ducky", &format!("{tag}"), name, abs, &s);
        }
        p = end;
    }
}

/// HP's APP6 "TDHD" (Photosmart R837; ExifTool's `HP::TDHD`): records of a 4-byte tag, a
/// 32-bit little-endian type (0x10001: a directory of records, as are `TDHD` and `LSLV`
/// whatever their type) and size, then the data.
/// `CMSN` is the serial number. A record past its directory ends it.
fn tdhd(ctx: &mut Ctx<'_>, d: &[u8], abs: Option<u64>) {
    if !ctx.enter() {
        return;
    }
    let mut pos = 0usize;
    while pos.saturating_add(12) < d.len() && ctx.alive() {
        let tag = d.get(pos..pos.saturating_add(4)).unwrap_or(&[]);
        let (Some(typ), Some(size)) = (
            crate::bytes::u32_at(d, pos.saturating_add(4), true),
            crate::bytes::u32_at(d, pos.saturating_add(8), true),
        ) else {
            break;
        };
        let at = pos.saturating_add(12);
        let Some(v) = d.get(at..at.saturating_add(size as usize)) else {
            ctx.error("HP TDHD: record runs past its directory");
            break;
        };
        let vabs = abs.and_then(|a| a.checked_add(at as u64));
        // TDHD and LSLV are directories by name; the others by their type.
        if typ == 0x10001 || tag == b"TDHD" || tag == b"LSLV" {
            tdhd(ctx, v, vabs);
        } else if tag == b"CMSN" {
            ctx.text(
                Family::MakerNote,
                "HP",
                "CMSN",
                "SerialNumber",
                vabs,
                &tiff::ascii(v),
            );
        }
        pos = at.saturating_add(v.len());
    }
    ctx.leave();
}

/// Most fields an RMETA directory may declare (ExifTool refuses more than 100).
const RMETA_MAX_FIELDS: usize = 100;

/// Ricoh's APP5 "RMETA" segment (ExifTool's `Ricoh::RMETA`): fields a Caplio Pro G3 user
/// defines (`Location`, `Sign type`...). After the signature: the byte order (`II`, `MM`, or
/// zeros for the container's, taken as big-endian), the block number at 4 (non-zero blocks
/// carry audio or barcodes, not fields), the directory's offset at 8; there the field count,
/// and from 10 bytes on, sections (type, size counting 2 bytes of its header): 1 the field
/// names, 2 or 18 their text values, 3 their numbers (menu choices), all NUL-separated or
/// 16-bit. A field is named as ExifTool names it (words capitalised, spaces dropped) and its
/// value is the text or, without text, the number. A section that runs past the segment ends
/// the walk with an error; fields read before it are kept.
fn rmeta(ctx: &mut Ctx<'_>, d: &[u8], abs: Option<u64>) {
    if d.len() < 20 {
        ctx.error("Ricoh RMETA: truncated");
        return;
    }
    let le = match d.get(..2) {
        Some(b"II") => true,
        Some(b"MM") | Some([0, 0]) => false,
        _ => {
            ctx.error("Ricoh RMETA: bad byte order");
            return;
        }
    };
    let r16 = |p: usize| crate::bytes::u16_at(d, p, le).map(usize::from);
    if r16(4) != Some(0) {
        return;
    }
    let Some(dir) = r16(8) else { return };
    let Some(n) = r16(dir) else {
        ctx.error("Ricoh RMETA: directory outside the segment");
        return;
    };
    if n > RMETA_MAX_FIELDS {
        ctx.error(format!("Ricoh RMETA: implausible field count {n}"));
        return;
    }
    let mut names: Vec<&[u8]> = Vec::new();
    let mut texts: Vec<&[u8]> = Vec::new();
    let mut nums: Vec<u16> = Vec::new();
    let mut pos = dir.saturating_add(10);
    while pos.saturating_add(4) <= d.len() {
        let (Some(typ), Some(size)) = (r16(pos), r16(pos.saturating_add(2))) else {
            break;
        };
        if size == 0 {
            break;
        }
        pos = pos.saturating_add(4);
        let Some(body) = size
            .checked_sub(2)
            .and_then(|n| d.get(pos..pos.saturating_add(n)))
        else {
            ctx.error("Ricoh RMETA: corrupted section");
            break;
        };
        match typ {
            1 => names = body.splitn(n.saturating_add(1), |c| *c == 0).collect(),
            2 | 18 => texts = body.splitn(n.saturating_add(1), |c| *c == 0).collect(),
            3 if body.len() >= n.saturating_mul(2) => {
                nums = body
                    .chunks_exact(2)
                    .take(n)
                    .filter_map(|c| crate::bytes::u16_at(c, 0, le))
                    .collect();
            }
            3 => ctx.error("Ricoh RMETA: truncated numbers section"),
            _ => {}
        }
        pos = pos.saturating_add(body.len());
    }
    for i in 0..n {
        let tag = names.get(i).map(|b| tiff::ascii(b)).unwrap_or_default();
        let text = texts.get(i).map(|b| tiff::ascii(b)).unwrap_or_default();
        if tag.is_empty() && text.is_empty() {
            continue;
        }
        let name = if tag.is_empty() {
            "RMETA_Unknown".to_owned()
        } else {
            rmeta_name(&tag)
        };
        let value = match nums.get(i) {
            _ if !text.is_empty() => text,
            Some(v) => v.to_string(),
            None => continue,
        };
        ctx.text(Family::Container, "RMETA", &tag, &name, abs, &value);
    }
}

/// ExifTool's name for an RMETA field: every word capitalised, spaces before word characters
/// dropped (`Sign type` is `SignType`).
fn rmeta_name(tag: &str) -> String {
    let mut out = String::new();
    let mut boundary = true;
    let mut space = false;
    for c in tag.chars() {
        let word = c.is_alphanumeric() || c == '_';
        if c == ' ' {
            space = true;
            boundary = true;
            continue;
        }
        if space && !word {
            out.push(' ');
        }
        space = false;
        if boundary && word {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        boundary = !word;
    }
    out
}

/// APP12 "[picture info]" text (Olympus, Agfa, some Fujifilm): `key=value` lines.
fn picture_info(ctx: &mut Ctx<'_>, b: &[u8], abs: Option<u64>) {
    let text: String = b.iter().take(8192).map(|c| char::from(*c)).collect();
    if !(text.contains("[picture info]") || text.contains("Type=")) {
        return;
    }
    for line in text.split(['\r', '\n', '\0']) {
        if let Some((k, v)) = line.split_once('=') {
            let (name, v) = match k.trim() {
                "Serial#" => ("SerialNumber", v.to_owned()),
                "Make" => ("Make", v.to_owned()),
                "Model" => ("Model", v.to_owned()),
                "TimeDate" => match v.trim().parse::<u64>() {
                    Ok(t) => ("DateTimeOriginal", crate::container::crw::unix_time(t)),
                    Err(_) => continue,
                },
                _ => continue,
            };
            ctx.text(Family::MakerNote, "PictureInfo", k.trim(), name, abs, &v);
        }
    }
}

/// Deep mode: walk the entropy-coded data from `from` to the true EOI (skipping stuffed
/// `FF00`, restart markers and the segments between progressive scans).
fn scan_to_eoi(ctx: &mut Ctx<'_>, d: Data<'_>, from: u64) -> Option<u64> {
    const CHUNK: u64 = 256 * 1024;
    let mut pos = from;
    let mut guard = 0u32;
    while pos < d.len() {
        guard = guard.saturating_add(1);
        if guard > 100_000 || !ctx.alive() {
            return None;
        }
        let n = CHUNK.min(d.len().saturating_sub(pos));
        let buf = match d.get(ctx, pos, n) {
            Ok(b) => b,
            Err(e) => {
                ctx.read_error("JPEG scan", &e);
                return None;
            }
        };
        let mut i = 0usize;
        let mut jumped = false;
        while let Some(&c) = buf.get(i) {
            if c == 0xff {
                let Some(&m) = buf.get(i.saturating_add(1)) else {
                    break; // marker split across chunks: re-read from here
                };
                match m {
                    0x00 | 0xd0..=0xd7 | 0xff => {}
                    0xd9 => return Some(pos.saturating_add(i as u64).saturating_add(2)),
                    _ => {
                        // A segment between scans (DHT, SOS, DRI, ...): skip it by its length.
                        let mpos = pos.saturating_add(i as u64);
                        let len = d
                            .get(ctx, mpos.saturating_add(2), 2)
                            .ok()
                            .and_then(|b| be16(&b, 0))?;
                        pos = mpos.saturating_add(2).saturating_add(u64::from(len));
                        jumped = true;
                        break;
                    }
                }
                i = i.saturating_add(2);
                continue;
            }
            i = i.saturating_add(1);
        }
        if !jumped {
            // Advance, keeping one byte of overlap for a split marker.
            let adv = (i as u64).max(1);
            pos = pos.saturating_add(adv);
            if adv < 2 && n < 2 {
                break;
            }
        }
    }
    None
}

/// FotoWare FotoStation trailer: records read backwards from `end`, each `data` followed by a
/// 10-byte footer (tag u16, size u32 of data plus footer, signature 0xA1B2C3D4), all big-endian.
/// Tag 1 is IPTC, 3 a thumbnail, 4 a preview. Returns where the trailer starts.
fn fotostation(ctx: &mut Ctx<'_>, mut end: u64) -> u64 {
    for _ in 0..64 {
        let Some(foot_at) = end.checked_sub(10) else {
            break;
        };
        let Ok(f) = ctx.r.read(foot_at, 10) else {
            break;
        };
        let (Some(tag), Some(size)) = (
            be16(&f, 0),
            f.get(2..6)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes),
        ) else {
            break;
        };
        if f.get(6..10) != Some(&[0xa1, 0xb2, 0xc3, 0xd4]) || size < 10 {
            break;
        }
        let Some(start) = end.checked_sub(u64::from(size)) else {
            break;
        };
        let data_len = u64::from(size).saturating_sub(10);
        match tag {
            1 => {
                if let Ok(b) = ctx.r.read(start, data_len) {
                    crate::family::iptc::parse(ctx, &b, Some(start), "IPTC2");
                }
            }
            3 | 4 => {
                let name = if tag == 3 {
                    "ThumbnailImage"
                } else {
                    "PreviewImage"
                };
                ctx.image(
                    Family::Container,
                    "FotoStation",
                    &format!("{tag}"),
                    name,
                    EmbeddedImage {
                        offset: Some(start),
                        len: data_len,
                        data: None,
                        ..Default::default()
                    },
                );
            }
            _ => {}
        }
        end = start;
    }
    end
}

/// AFCP directory: a 12-byte header ("AXS!", version, entry count, reserved), then 12-byte
/// entries (id, size, absolute offset).
fn afcp(ctx: &mut Ctx<'_>, start: u64, le: bool) {
    let Ok(h) = ctx.r.read(start, 8) else { return };
    if !(h.starts_with(b"AXS!") || h.starts_with(b"AXS*")) {
        ctx.error("AFCP: trailer start does not match its footer");
        return;
    }
    let n = h
        .get(6..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |a: [u8; 2]| {
            if le {
                u16::from_le_bytes(a)
            } else {
                u16::from_be_bytes(a)
            }
        });
    let Ok(dir) = ctx.r.read(
        start.saturating_add(12),
        u64::from(n.min(256)).saturating_mul(12),
    ) else {
        return;
    };
    let rd = |b: &[u8], p: usize| -> Option<u32> {
        let a: [u8; 4] = b.get(p..p.checked_add(4)?)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    for e in dir.chunks_exact(12) {
        let (Some(size), Some(off)) = (rd(e, 4), rd(e, 8)) else {
            continue;
        };
        let (off, size) = (u64::from(off), u64::from(size));
        match e.get(..4) {
            Some(b"IPTC") => {
                if let Ok(b) = ctx.r.read(off, size) {
                    crate::family::iptc::parse(ctx, &b, Some(off), "IPTC2");
                }
            }
            Some(b"Nail") | Some(b"PrVw") => {
                let name = if e.get(..4) == Some(b"Nail") {
                    "ThumbnailImage"
                } else {
                    "PreviewImage"
                };
                ctx.image(
                    Family::Container,
                    "AFCP",
                    "AFCP",
                    name,
                    EmbeddedImage {
                        offset: Some(off),
                        len: size,
                        data: None,
                        ..Default::default()
                    },
                );
            }
            _ => {}
        }
    }
}

/// Known trailers, Motion Photo video, and unexplained data after the end of the image.
fn trailer_checks(ctx: &mut Ctx<'_>, w: &Walked) {
    let len = ctx.r.len();
    if len < 4 || w.scan_start.is_none() {
        return;
    }
    // The tail window, but never before the scan: the headers were read already.
    let tail_start = len
        .saturating_sub(TAIL_WINDOW_BYTES)
        .max(w.scan_start.unwrap_or(0).min(len));
    let tail_len = len.saturating_sub(tail_start);
    let tail = match ctx.r.read(tail_start, tail_len) {
        Ok(t) => t,
        Err(e) => {
            ctx.read_error("JPEG tail", &e);
            return;
        }
    };
    // Regions at the end that are explained: (start, end).
    let mut content_end = len;
    // AFCP (AXS File Concatenation Protocol): "AXS!"/"AXS*" + start offset in the last 12
    // bytes; it carries IPTC and thumbnails after the image.
    content_end = fotostation(ctx, content_end);
    let foot = tail.get(tail.len().saturating_sub(12)..).unwrap_or(&[]);
    if foot.starts_with(b"AXS!") || foot.starts_with(b"AXS*") {
        let le = foot.get(3) == Some(&b'*');
        let start = foot
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map(|a: [u8; 4]| {
                if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                }
            });
        if let Some(start) = start {
            afcp(ctx, u64::from(start), le);
            content_end = content_end.min(u64::from(start));
        }
    }
    // Samsung SEFT: "...SEFH<dir>" + dir length (LE) + "SEFT" at the very end.
    if tail.ends_with(b"SEFT") {
        let tl = tail.len();
        let dlen = tail
            .get(tl.saturating_sub(8)..tl.saturating_sub(4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        let sefh = len.saturating_sub(8).saturating_sub(u64::from(dlen));
        let mut start = sefh;
        if let Some(rel) = sefh
            .checked_sub(tail_start)
            .and_then(|r| usize::try_from(r).ok())
            && tail.get(rel..rel.saturating_add(4)) == Some(b"SEFH")
        {
            let count = tail
                .get(rel.saturating_add(8)..rel.saturating_add(12))
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0);
            for k in 0..count.min(256) as usize {
                let p = rel.saturating_add(12).saturating_add(k.saturating_mul(12));
                if let Some(back) = tail
                    .get(p.saturating_add(4)..p.saturating_add(8))
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
                {
                    start = start.min(sefh.saturating_sub(u64::from(back)));
                }
            }
        }
        ctx.check(
            Category::Trailer,
            "Samsung",
            "SamsungTrailer",
            Some(start),
            format!("Samsung SEFT trailer, {} bytes", len.saturating_sub(start)),
        );
        content_end = content_end.min(start);
    }
    if let Some(n) = ctx.facts.motion_photo_len
        && n < content_end
    {
        let start = content_end.saturating_sub(n);
        ctx.check(
            Category::EmbeddedMedia,
            "XMP-GCamera",
            "MotionPhotoVideo",
            Some(start),
            format!("Motion Photo video, {n} bytes appended after the image"),
        );
        content_end = start;
    }
    let explained = |a: u64, b: u64, mpf: &[(u64, u64)]| -> u64 {
        // Bytes in [a, b) not covered by MPF images.
        let mut covered = 0u64;
        for (o, l) in mpf {
            let s = (*o).max(a);
            let e = o.saturating_add(*l).min(b);
            if e > s {
                covered = covered.saturating_add(e.saturating_sub(s));
            }
        }
        b.saturating_sub(a).saturating_sub(covered)
    };
    let eoi = if let Some(e) = w.eoi_end {
        Some(e)
    } else {
        // Range mode: the end of the image is the last EOI before content_end in the tail.
        let rel_end = content_end
            .checked_sub(tail_start)
            .and_then(|r| usize::try_from(r).ok());
        rel_end.and_then(|re| {
            let t = tail.get(..re)?;
            if t.ends_with(&[0xff, 0xd9]) {
                return Some(content_end);
            }
            t.windows(2)
                .rposition(|p| p == [0xff, 0xd9])
                .map(|p| tail_start.saturating_add(p as u64).saturating_add(2))
        })
    };
    let Some(eoi) = eoi else {
        return;
    };
    ctx.facts.image_end = Some(eoi);
    if eoi >= content_end {
        return;
    }
    let unexplained = explained(eoi, content_end, &w.mpf);
    // A few stray bytes (writers pad to even lengths or add a newline) can hide nothing.
    if unexplained < MIN_TRAILER_BYTES {
        return;
    }
    // Padding (all zero or all 0xFF) is harmless.
    let sample = ctx
        .r
        .read_upto(eoi, content_end.saturating_sub(eoi).min(TAIL_WINDOW_BYTES))
        .unwrap_or_default();
    if sample.iter().all(|b| *b == 0) || sample.iter().all(|b| *b == 0xff) {
        return;
    }
    let hidden_jpeg = sample.windows(3).any(|x| x == [0xff, 0xd8, 0xff]);
    let what = if hidden_jpeg {
        "another JPEG image (possibly the uncropped original)"
    } else if sample.windows(4).any(|x| x == b"IDAT" || x == b"ftyp") {
        "embedded image or video data"
    } else {
        "unidentified data"
    };
    ctx.check(
        Category::Trailer,
        "JPEG",
        if hidden_jpeg {
            "HiddenImageAfterEOI"
        } else {
            "DataAfterEOI"
        },
        Some(eoi),
        format!("{unexplained} bytes after the end of the image: {what}"),
    );
}
