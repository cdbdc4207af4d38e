//! Checks no single tag shows: an embedded thumbnail or preview that does not show the main
//! image (a crop that the thumbnail still reveals).
//!
//! Default (range) mode compares aspect ratios only: the thumbnail's JPEG frame size against the
//! main image's size, either orientation. A 4:3 thumbnail of a wider image is taken to be
//! letterboxed (the EXIF/DCF 160×120 convention) and not flagged, which also means a crop from
//! 4:3 to 3:2 is only caught in deep mode.
//!
//! Deep mode (`Options::deep`) decodes the thumbnail and the main JPEG at 1/8 scale, trims
//! letterbox bars, and compares 64-bit difference hashes; more than [`HASH_DISTANCE_LIMIT`]
//! differing bits means the thumbnail shows something else. Decoding is bounded (pixel cap,
//! buffer cap) and runs under `catch_unwind`, since the decoder is third-party code fed hostile
//! bytes.

use crate::ctx::{Ctx, EmbeddedImage};
use crate::model::{Category, Format};

/// Differing bits (of 64) above which two images are considered different.
pub const HASH_DISTANCE_LIMIT: u32 = 16;
/// Relative aspect difference above which a thumbnail is flagged.
const ASPECT_TOLERANCE: f64 = 0.12;
/// Standard deviation (grey levels) below which an image is too flat to compare.
const MIN_CONTRAST: f64 = 3.0;
/// Largest image (pixels) the deep compare decodes.
const MAX_DECODE_PIXELS: u64 = 80_000_000;

/// Width and height from a JPEG's first SOF marker.
pub(crate) fn jpeg_dims(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(..2) != Some(&[0xff, 0xd8]) {
        return None;
    }
    let mut p = 2usize;
    for _ in 0..512 {
        let m = *b.get(p.checked_add(1)?)?;
        if *b.get(p)? != 0xff {
            return None;
        }
        if m == 0xff {
            p = p.checked_add(1)?;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([
            *b.get(p.checked_add(2)?)?,
            *b.get(p.checked_add(3)?)?,
        ]));
        if matches!(m, 0xc0..=0xcf) && !matches!(m, 0xc4 | 0xc8 | 0xcc) {
            let h = u16::from_be_bytes([*b.get(p.checked_add(5)?)?, *b.get(p.checked_add(6)?)?]);
            let w = u16::from_be_bytes([*b.get(p.checked_add(7)?)?, *b.get(p.checked_add(8)?)?]);
            return Some((u32::from(w), u32::from(h)));
        }
        if m == 0xda || m == 0xd9 {
            return None;
        }
        p = p.checked_add(2)?.checked_add(len)?;
    }
    None
}

fn image_head(ctx: &mut Ctx<'_>, img: &EmbeddedImage, full: bool) -> Option<Vec<u8>> {
    if let Some(d) = &img.data {
        return Some(d.clone());
    }
    let off = img.offset?;
    let n = if full {
        img.len.min(64 * 1024 * 1024)
    } else {
        img.len.min(64 * 1024)
    };
    if !full && !ctx.opts.deep {
        return None;
    }
    ctx.r.read(off, n).ok()
}

fn aspect_mismatch(t: (u32, u32), m: (u32, u32)) -> bool {
    let (tw, th, mw, mh) = (
        f64::from(t.0),
        f64::from(t.1),
        f64::from(m.0),
        f64::from(m.1),
    );
    if tw < 16.0 || th < 16.0 || mw < 16.0 || mh < 16.0 {
        return false;
    }
    let ta = tw / th;
    let ma = mw / mh;
    let rel = |a: f64, b: f64| ((a - b) / b).abs();
    let best = rel(ta, ma).min(rel(ta, 1.0 / ma));
    if best <= ASPECT_TOLERANCE {
        return false;
    }
    // A 4:3 thumbnail of a wider or taller image: letterboxed, per the DCF convention.
    let four_three = rel(ta, 4.0 / 3.0) < 0.02 || rel(ta, 3.0 / 4.0) < 0.02;
    let wider = !(3.0 / 4.0..=4.0 / 3.0).contains(&ma);
    !(four_three && wider)
}

/// Run the thumbnail checks; `format` is the main container.
pub(crate) fn thumbnails(ctx: &mut Ctx<'_>, format: Format) {
    let Some(main) = ctx.facts.main_dims else {
        return;
    };
    let images = std::mem::take(&mut ctx.facts.images);
    let mut main_hash: Option<Option<[u64; 4]>> = None;
    for img in &images {
        if !ctx.alive() {
            break;
        }
        let Some(head) = image_head(ctx, img, false) else {
            continue;
        };
        let Some(tdims) = jpeg_dims(&head) else {
            continue;
        };
        if aspect_mismatch(tdims, main) {
            ctx.check(
                Category::ThumbnailMismatch,
                &img.group,
                "ThumbnailAspectMismatch",
                img.offset,
                format!(
                    "{} is {}x{} but the image is {}x{}: it may show what a crop removed",
                    img.name, tdims.0, tdims.1, main.0, main.1
                ),
            );
            continue;
        }
        if !ctx.opts.deep || format != Format::Jpeg {
            continue;
        }
        let Some(bytes) = image_head(ctx, img, true) else {
            continue;
        };
        let Some(th) = dhash(&bytes, true) else {
            continue;
        };
        let mh = *main_hash.get_or_insert_with(|| {
            let len = ctx.r.len().min(64 * 1024 * 1024);
            ctx.r.read(0, len).ok().and_then(|b| dhashes_rotated(&b))
        });
        let Some(mh) = mh else { continue };
        // The thumbnail may be stored unrotated while the main image's pixels were rotated
        // (or the reverse): compare against all four rotations and keep the closest.
        let dist = mh.iter().map(|h| (th ^ h).count_ones()).min().unwrap_or(64);
        if dist > HASH_DISTANCE_LIMIT {
            ctx.check(
                Category::ThumbnailMismatch,
                &img.group,
                "ThumbnailContentMismatch",
                img.offset,
                format!("{} differs from the image ({dist}/64 hash bits): it may show what an edit removed", img.name),
            );
        }
    }
    ctx.facts.images = images;
}

/// 64-bit difference hash of a JPEG, decoded small; `trim` removes letterbox bars first.
pub(crate) fn dhash(bytes: &[u8], trim: bool) -> Option<u64> {
    let bytes = bytes.to_vec();
    std::panic::catch_unwind(move || decode_gray(&bytes).and_then(|g| hash_grid(&g, trim)))
        .ok()
        .flatten()
}

/// Hashes of the image rotated by 0, 90, 180 and 270 degrees.
fn dhashes_rotated(bytes: &[u8]) -> Option<[u64; 4]> {
    let bytes = bytes.to_vec();
    std::panic::catch_unwind(move || {
        let g0 = decode_gray(&bytes)?;
        let g1 = g0.rotate();
        let g2 = g1.rotate();
        let g3 = g2.rotate();
        Some([
            hash_grid(&g0, false)?,
            hash_grid(&g1, false)?,
            hash_grid(&g2, false)?,
            hash_grid(&g3, false)?,
        ])
    })
    .ok()
    .flatten()
}

/// A small greyscale image.
struct Gray {
    w: usize,
    h: usize,
    px: Vec<f64>,
}

impl Gray {
    fn at(&self, x: usize, y: usize) -> f64 {
        self.px
            .get(y.saturating_mul(self.w).saturating_add(x))
            .copied()
            .unwrap_or(0.0)
    }
    /// Rotated 90 degrees clockwise.
    fn rotate(&self) -> Gray {
        let mut px = Vec::with_capacity(self.px.len());
        for y in 0..self.w {
            for x in 0..self.h {
                px.push(self.at(y, self.h.saturating_sub(1).saturating_sub(x)));
            }
        }
        Gray {
            w: self.h,
            h: self.w,
            px,
        }
    }
}

fn decode_gray(bytes: &[u8]) -> Option<Gray> {
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    d.set_max_decoding_buffer_size(64 * 1024 * 1024);
    d.read_info().ok()?;
    let info = d.info()?;
    if u64::from(info.width).saturating_mul(u64::from(info.height)) > MAX_DECODE_PIXELS {
        return None;
    }
    let _ = d.scale(64, 64).ok()?;
    let raw = d.decode().ok()?;
    let info = d.info()?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let bpp = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1usize,
        jpeg_decoder::PixelFormat::L16 => 2,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::CMYK32 => 4,
    };
    let mut px = Vec::with_capacity(w.saturating_mul(h));
    for p in raw.chunks_exact(bpp).take(w.saturating_mul(h)) {
        let v = match p {
            [r, g, b] => 0.299 * f64::from(*r) + 0.587 * f64::from(*g) + 0.114 * f64::from(*b),
            [l, ..] => f64::from(*l),
            [] => 0.0,
        };
        px.push(v);
    }
    (px.len() == w.saturating_mul(h)).then_some(Gray { w, h, px })
}

// Pixel arithmetic on a decoded image of at most 64x64 scaled pixels: no overflow possible.
#[allow(clippy::arithmetic_side_effects)]
fn hash_grid(g: &Gray, trim: bool) -> Option<u64> {
    let (w, h) = (g.w, g.h);
    if w < 9 || h < 8 {
        return None;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (0usize, w, 0usize, h);
    if trim {
        let dark_row = |y: usize| (0..w).all(|x| g.at(x, y) < 24.0);
        let dark_col = |x: usize, y0: usize, y1: usize| (y0..y1).all(|y| g.at(x, y) < 24.0);
        while y0 < h / 3 && dark_row(y0) {
            y0 += 1;
        }
        while y1 > h - h / 3 && dark_row(y1 - 1) {
            y1 -= 1;
        }
        while x0 < w / 3 && dark_col(x0, y0, y1) {
            x0 += 1;
        }
        while x1 > w - w / 3 && dark_col(x1 - 1, y0, y1) {
            x1 -= 1;
        }
    }
    let (cw, ch) = (x1 - x0, y1 - y0);
    if cw < 9 || ch < 8 {
        return None;
    }
    // Area-average to 9x8, then one bit per horizontal neighbour pair.
    let mut cells = [[0f64; 9]; 8];
    for (gy, row) in cells.iter_mut().enumerate() {
        for (gx, cell) in row.iter_mut().enumerate() {
            let sx = x0 + gx * cw / 9;
            let ex = (x0 + (gx + 1) * cw / 9).max(sx + 1);
            let sy = y0 + gy * ch / 8;
            let ey = (y0 + (gy + 1) * ch / 8).max(sy + 1);
            let mut sum = 0.0;
            let mut n = 0.0;
            for y in sy..ey {
                for x in sx..ex {
                    sum += g.at(x, y);
                    n += 1.0;
                }
            }
            *cell = if n > 0.0 { sum / n } else { 0.0 };
        }
    }
    // A flat image (blank, or pixels the decoder could not recover) says nothing: no hash.
    let mean = cells.iter().flatten().sum::<f64>() / 72.0;
    let var = cells
        .iter()
        .flatten()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        / 72.0;
    if var.sqrt() < MIN_CONTRAST {
        return None;
    }
    let mut hash = 0u64;
    for row in &cells {
        for pair in row.windows(2) {
            hash <<= 1;
            if let [a, b] = pair
                && a > b
            {
                hash |= 1;
            }
        }
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letterboxed_dcf_thumbnail_is_not_a_mismatch() {
        assert!(!aspect_mismatch((160, 120), (3000, 2000)));
        assert!(!aspect_mismatch((160, 107), (3000, 2000)));
        assert!(!aspect_mismatch((107, 160), (3000, 2000)));
    }

    #[test]
    fn a_thumbnail_of_a_different_shape_is_a_mismatch() {
        assert!(aspect_mismatch((160, 107), (1000, 1000)));
        assert!(aspect_mismatch((160, 90), (1000, 1000)));
    }
}
