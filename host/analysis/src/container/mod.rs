//! Container formats: detection by magic bytes and the walkers that find metadata blocks.
//!
//! Detection never guesses from a file name: a file whose first bytes match no supported
//! container is reported as `unsupported`, with no findings.

pub(crate) mod bmff;
pub(crate) mod crw;
pub(crate) mod gif;
pub(crate) mod jpeg;
pub(crate) mod png;
pub(crate) mod psd;
pub(crate) mod qt;
pub(crate) mod raw;
pub(crate) mod riff;
pub(crate) mod timed;

use crate::ctx::Ctx;
use crate::family::tiff;
use crate::model::Format;

/// Identify the container from its first bytes.
pub fn detect(head: &[u8]) -> Format {
    let at = |o: usize, m: &[u8]| head.get(o..o.saturating_add(m.len())) == Some(m);
    if at(0, b"\xff\xd8\xff") || at(0, b"\xff\x01Exiv2") {
        return Format::Jpeg;
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Format::Png;
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Format::Webp;
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Format::Gif;
    }
    if at(0, b"8BPS") {
        return Format::Psd;
    }
    if at(0, b"FUJIFILMCCD-RAW") {
        return Format::Raf;
    }
    if at(0, b"\0MRM") {
        return Format::Mrw;
    }
    if at(0, b"FOVb") {
        return Format::X3f;
    }
    if at(0, b"FPF Public Image Format\0") {
        return Format::Fpf;
    }
    if (at(0, b"II\x1a\0\0\0HEAPCCDR")) || (at(0, b"II") && at(6, b"HEAPCCDR")) {
        return Format::Crw;
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") || at(0, b"IIRO") || at(0, b"IIRS") || at(0, b"IIU\0") {
        return Format::Tiff;
    }
    if at(0, b"\0\0\0\x0cjP  \r\n\x87\n") {
        return Format::Jp2;
    }
    if at(0, b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Format::Jxl;
    }
    if at(4, b"ftyp") {
        let brand = head.get(8..12).unwrap_or(&[]);
        let known: &[&[u8]] = &[
            b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
            b"avis", b"crx ", b"jxl ",
        ];
        if known.contains(&brand) {
            return Format::Heif;
        }
        // Compatible brands list.
        let compat = head.get(16..).unwrap_or(&[]);
        if compat
            .chunks_exact(4)
            .take(16)
            .any(|b| matches!(b, b"mif1" | b"heic" | b"avif" | b"msf1"))
        {
            return Format::Heif;
        }
        // QuickTime, MP4, M4V, 3GP and camera video brands (user-data vendor tables), as
        // major brand or, for MP4 variants, among the compatible brands.
        let video = |b: &[u8]| {
            matches!(
                b,
                b"qt  "
                    | b"mp41"
                    | b"mp42"
                    | b"mp71"
                    | b"avc1"
                    | b"M4V "
                    | b"M4VH"
                    | b"M4VP"
                    | b"M4A "
                    | b"M4B "
                    | b"XAVC"
                    | b"CAEP"
                    | b"caqv"
                    | b"niko"
                    | b"NDAS"
                    | b"MSNV"
                    | b"mqt "
                    | b"F4V "
                    | b"dash"
                    | b"kddi"
                    | b"KDDI"
            ) || (b.starts_with(b"iso")
                && b.get(3).is_some_and(|c| *c == b'm' || c.is_ascii_digit()))
                || b.starts_with(b"3gp")
                || b.starts_with(b"3g2")
        };
        if video(brand)
            || compat
                .chunks_exact(4)
                .take(16)
                .any(|b| matches!(b, b"qt  " | b"isom" | b"mp41" | b"mp42"))
        {
            return Format::QuickTime;
        }
    }
    // QuickTime movies from before `ftyp`: a top-level atom ExifTool also accepts first.
    if [
        &b"moov"[..],
        b"mdat",
        b"wide",
        b"free",
        b"skip",
        b"pnot",
        b"udta",
    ]
    .iter()
    .any(|t| at(4, t))
    {
        return Format::QuickTime;
    }
    if at(0, b"BM") && head.len() >= 26 {
        return Format::Bmp;
    }
    Format::Unsupported
}

/// Walk a file of the detected format.
pub(crate) fn walk(ctx: &mut Ctx<'_>, format: Format) {
    match format {
        Format::Jpeg => jpeg::parse_file(ctx),
        Format::Png => png::parse(ctx),
        Format::Webp => riff::parse(ctx),
        Format::Gif => gif::parse(ctx),
        Format::Psd => psd::parse(ctx),
        Format::Heif | Format::Jp2 | Format::Jxl | Format::QuickTime => bmff::parse(ctx, format),
        Format::Tiff => {
            let len = ctx.r.len();
            tiff::parse(ctx, tiff::Data::File(0, len), tiff::Host::File);
            if ctx
                .r
                .read(8, 4)
                .is_ok_and(|m| matches!(m.as_slice(), b"IIII" | b"MMMM"))
            {
                raw::parse_phaseone(ctx);
            }
        }
        Format::Crw => crw::parse_file(ctx),
        Format::Raf => raw::parse_raf(ctx),
        Format::Mrw => raw::parse_mrw(ctx),
        Format::X3f => raw::parse_x3f(ctx),
        Format::Fpf => raw::parse_fpf(ctx),
        Format::Bmp | Format::Unsupported => {}
    }
}
