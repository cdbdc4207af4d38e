//! PNG: chunk walk by length (IDAT payloads are skipped, never read), text chunks
//! (tEXt/zTXt/iTXt, including XMP and ImageMagick raw profiles), eXIf, tIME, and data after IEND.
//!
//! Threat model: chunk lengths are checked against the file; text chunks are read only up to
//! [`MAX_TEXT_CHUNK_BYTES`]; compressed text inflates into at most [`MAX_INFLATE_BYTES`]
//! (zip bombs stop there with an error). At most [`MAX_CHUNKS`] chunks are walked.
//!
//! Data after IEND is the aCropalypse signature (CVE-2023-21036): the leftover of a larger,
//! uncropped image. It is reported as a trailer; when it holds IDAT/IEND chunks it is flagged as
//! recoverable image data.

use crate::bytes::be32;
use crate::ctx::Ctx;
use crate::family::tiff::{self, Data, Host};
use crate::family::{iptc, xmp};
use crate::model::{Category, Family};

const MAX_CHUNKS: u32 = 100_000;
const MAX_TEXT_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes a compressed text chunk may inflate to.
pub const MAX_INFLATE_BYTES: usize = 16 * 1024 * 1024;

/// Inflate zlib data with a hard output cap.
pub(crate) fn inflate(ctx: &mut Ctx<'_>, data: &[u8], what: &str) -> Option<Vec<u8>> {
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_INFLATE_BYTES) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.error(format!(
                "{what}: inflate failed or exceeded the cap ({e:?})"
            ));
            None
        }
    }
}

/// PNG keyword → ExifTool tag name ("Creation Time" → "CreationTime").
fn keyword_name(k: &str) -> String {
    k.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Parse a PNG file.
pub(crate) fn parse(ctx: &mut Ctx<'_>) {
    let len = ctx.r.len();
    let mut pos: u64 = 8;
    let mut n = 0u32;
    let mut iend_end = None;
    while pos.saturating_add(12) <= len {
        n = n.saturating_add(1);
        if n > MAX_CHUNKS || !ctx.alive() {
            ctx.error("PNG: too many chunks; walk cut");
            break;
        }
        let h = match ctx.r.read(pos, 8) {
            Ok(h) => h,
            Err(e) => {
                if matches!(e, crate::source::ReadError::Missing(..)) {
                    // The chunk chain cannot be skipped without its headers: ask for the rest.
                    ctx.r.need(crate::source::ByteRange {
                        offset: pos,
                        len: len.saturating_sub(pos),
                    });
                }
                ctx.read_error("PNG chunk header", &e);
                break;
            }
        };
        let clen = u64::from(be32(&h, 0).unwrap_or(0));
        let ctype: [u8; 4] = h
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        let data_off = pos.saturating_add(8);
        let Some(next) = data_off.checked_add(clen).and_then(|x| x.checked_add(4)) else {
            break;
        };
        if next > len {
            ctx.error(format!(
                "PNG: chunk {} runs past the end",
                String::from_utf8_lossy(&ctype)
            ));
        }
        let read = |ctx: &mut Ctx<'_>| -> Option<Vec<u8>> {
            if clen > MAX_TEXT_CHUNK_BYTES {
                ctx.error("PNG: text chunk too large; skipped");
                return None;
            }
            match ctx.r.read_upto(data_off, clen) {
                Ok(b) => Some(b),
                Err(e) => {
                    ctx.read_error("PNG chunk", &e);
                    None
                }
            }
        };
        match &ctype {
            b"IHDR" => {
                if let Some(b) = read(ctx)
                    && let (Some(w), Some(h)) = (be32(&b, 0), be32(&b, 4))
                {
                    ctx.facts.main_dims = Some((w, h));
                }
            }
            b"eXIf" | b"exIf" => {
                if let Some(b) = read(ctx) {
                    let body = if b.starts_with(b"Exif\0\0") {
                        b.get(6..).unwrap_or(&[])
                    } else {
                        &b[..]
                    };
                    tiff::parse(ctx, Data::Mem(body, Some(data_off)), Host::Embedded);
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" => {
                if let Some(b) = read(ctx) {
                    text_chunk(ctx, &ctype, &b, data_off);
                }
            }
            b"tIME" => {
                if let Some(b) = read(ctx)
                    && b.len() >= 7
                {
                    let y = u16::from_be_bytes([
                        b.first().copied().unwrap_or(0),
                        b.get(1).copied().unwrap_or(0),
                    ]);
                    let g = |i: usize| b.get(i).copied().unwrap_or(0);
                    let s = format!(
                        "{y:04}:{:02}:{:02} {:02}:{:02}:{:02}",
                        g(2),
                        g(3),
                        g(4),
                        g(5),
                        g(6)
                    );
                    ctx.text(
                        Family::Container,
                        "PNG",
                        "tIME",
                        "ModifyDate",
                        Some(data_off),
                        &s,
                    );
                }
            }
            b"IEND" => {
                iend_end = Some(next);
                break;
            }
            _ => {}
        }
        pos = next;
    }
    if let Some(end) = iend_end {
        ctx.facts.image_end = Some(end);
        if end < len {
            let extra = len.saturating_sub(end);
            let sample = ctx
                .r
                .read_upto(end, extra.min(64 * 1024))
                .unwrap_or_default();
            if sample.iter().all(|b| *b == 0) {
                return;
            }
            let recoverable = sample.windows(4).any(|w| w == b"IDAT" || w == b"IEND");
            ctx.check(
                Category::Trailer,
                "PNG",
                if recoverable { "HiddenImageAfterIEND" } else { "DataAfterIEND" },
                Some(end),
                if recoverable {
                    format!("{extra} bytes after IEND holding PNG image chunks (aCropalypse-style leftover)")
                } else {
                    format!("{extra} bytes after IEND")
                },
            );
        }
    }
}

fn text_chunk(ctx: &mut Ctx<'_>, ctype: &[u8; 4], b: &[u8], abs: u64) {
    let Some(nul) = b.iter().position(|c| *c == 0) else {
        return;
    };
    let kw = String::from_utf8_lossy(b.get(..nul).unwrap_or(&[])).into_owned();
    let rest = b.get(nul.saturating_add(1)..).unwrap_or(&[]);
    let text: Vec<u8> = match ctype {
        b"tEXt" => rest.to_vec(),
        b"zTXt" => match inflate(ctx, rest.get(1..).unwrap_or(&[]), "PNG zTXt") {
            Some(v) => v,
            None => return,
        },
        _ => {
            // iTXt: compression flag, method, language\0, translated keyword\0, text
            let comp = rest.first().copied().unwrap_or(0);
            let after = rest.get(2..).unwrap_or(&[]);
            let Some(l1) = after.iter().position(|c| *c == 0) else {
                return;
            };
            let after2 = after.get(l1.saturating_add(1)..).unwrap_or(&[]);
            let Some(l2) = after2.iter().position(|c| *c == 0) else {
                return;
            };
            let body = after2.get(l2.saturating_add(1)..).unwrap_or(&[]);
            if comp == 1 {
                match inflate(ctx, body, "PNG iTXt") {
                    Some(v) => v,
                    None => return,
                }
            } else {
                body.to_vec()
            }
        }
    };
    if kw == "XML:com.adobe.xmp" {
        xmp::parse(ctx, &text, Some(abs));
        return;
    }
    if let Some(kind) = kw.strip_prefix("Raw profile type ") {
        if let Some(raw) = imagemagick_profile(&text) {
            match kind {
                "APP1" if raw.starts_with(b"http://ns.adobe.com/xap/1.0/\0") => {
                    xmp::parse(ctx, raw.get(29..).unwrap_or(&[]), None);
                }
                "exif" | "APP1" => {
                    let body = if raw.starts_with(b"Exif\0\0") {
                        raw.get(6..).unwrap_or(&[])
                    } else {
                        &raw[..]
                    };
                    tiff::parse(ctx, Data::Mem(body, None), Host::Embedded);
                }
                "iptc" => {
                    // Usually a Photoshop IRB wrapping IPTC; sometimes bare IIM.
                    if raw.starts_with(b"8BIM") {
                        crate::family::irb::parse(ctx, &raw, None);
                    } else {
                        iptc::parse(ctx, &raw, None, "IPTC");
                    }
                }
                "xmp" => xmp::parse(ctx, &raw, None),
                "8bim" => crate::family::irb::parse(ctx, &raw, None),
                _ => {}
            }
        }
        return;
    }
    let name = keyword_name(&kw);
    let value = String::from_utf8_lossy(&text).into_owned();
    ctx.text(Family::Container, "PNG", &kw, &name, Some(abs), &value);
}

/// ImageMagick's hex-encoded raw profile: "\n<type>\n<len>\n<hex...>".
fn imagemagick_profile(text: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(text).ok()?;
    let mut lines = s.trim_start().splitn(3, '\n');
    let _kind = lines.next()?;
    let n: usize = lines.next()?.trim().parse().ok()?;
    let hex = lines.next()?;
    let cap = n.min(MAX_INFLATE_BYTES);
    let mut out = Vec::with_capacity(cap.min(hex.len() / 2));
    let mut hi: Option<u8> = None;
    for c in hex.bytes() {
        let v = match c {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => match (c as char).to_digit(16) {
                Some(v) => v as u8,
                None => continue,
            },
            _ => continue,
        };
        match hi.take() {
            Some(h) => {
                out.push(h.wrapping_shl(4) | v);
                if out.len() >= cap {
                    break;
                }
            }
            None => hi = Some(v),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_exiftool_names() {
        assert_eq!(keyword_name("Creation Time"), "CreationTime");
        assert_eq!(keyword_name("Author"), "Author");
    }

    #[test]
    fn imagemagick_profiles_decode() {
        assert_eq!(
            imagemagick_profile(b"\nexif\n3\n414243\n"),
            Some(b"ABC".to_vec())
        );
    }
}
