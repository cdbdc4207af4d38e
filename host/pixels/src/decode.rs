//! Decoding under the budget: header first, then a bounded decode, then one downscale.

use std::io::Cursor;

use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageReader, Limits, imageops::FilterType,
    metadata::Orientation,
};

use crate::finding::BBox;

use crate::budget::Budget;

/// Why an image was not analysed. Every variant says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not a format the pixel stage decodes.
    #[error(
        "not a PNG, JPEG, GIF, WebP, BMP or TIFF image the pixel stage can decode (pixels not analysed; metadata analysis is unaffected)"
    )]
    UnknownFormat,
    /// Header dimensions over the pixel budget (a decompression bomb, or just very large).
    #[error(
        "{width} x {height} pixels is over the pixel budget of {limit} pixels; pixels not analysed (raise the budget's max_pixels if such images are expected)"
    )]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The budget's `max_pixels`.
        limit: u64,
    },
    /// A zero-sized image.
    #[error("the header says the image is {width} x {height} pixels; nothing to analyse")]
    Empty {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The decoder failed (truncated, corrupt, lying header, allocation over budget).
    #[error("the image could not be decoded: {0}")]
    Undecodable(String),
}

/// A decoded image reduced to what the detectors need: luminance at analysis resolution.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Format name as the decoder saw it (`png`, `jpeg`, ...).
    pub format: &'static str,
    /// Original width.
    pub width: u32,
    /// Original height.
    pub height: u32,
    /// Luminance, downscaled so the longer side is at most the budget's `analysis_max_side`.
    pub luma: GrayImage,
    /// Original pixels per analysis pixel (1.0 when not downscaled).
    pub scale: f64,
    /// How a viewer turns the stored pixels upright (EXIF orientation); boxes stay in the
    /// stored pixels' coordinates, detectors that need upright content use [`upright`].
    pub orientation: Orientation,
}

/// Whether the first IFD of a classic TIFF says the image is tiled (`TileWidth`, 0x0142) with
/// separate colour planes (`PlanarConfiguration` 0x011c = 2). The `tiff` crate (0.11) fails an
/// assertion on such images (`expand_chunk`: the tile buffer is sized for one plane), so they
/// are refused before decoding. Reads at most the 8-byte header and one IFD; anything cut or
/// odd reads as "no".
fn tiled_planar_tiff(b: &[u8]) -> bool {
    let le = match b.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return false,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let v: [u8; 2] = b.get(o..o.checked_add(2)?)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    };
    let Some(ifd) = u32_at(4).and_then(|o| usize::try_from(o).ok()) else {
        return false;
    };
    let Some(n) = u16_at(ifd) else {
        return false;
    };
    let (mut tiled, mut planar) = (false, false);
    for i in 0..usize::from(n) {
        let Some(e) = ifd
            .checked_add(2)
            .and_then(|o| o.checked_add(i.checked_mul(12)?))
        else {
            break;
        };
        match u16_at(e) {
            Some(0x0142) => tiled = true,
            // A SHORT value sits in the first two bytes of the value field in either order.
            Some(0x011c) => planar = e.checked_add(8).and_then(u16_at) == Some(2),
            Some(_) => {}
            None => break,
        }
    }
    tiled && planar
}

fn format_name(f: image::ImageFormat) -> &'static str {
    use image::ImageFormat as F;
    match f {
        F::Png => "png",
        F::Jpeg => "jpeg",
        F::Gif => "gif",
        F::WebP => "webp",
        F::Bmp => "bmp",
        F::Tiff => "tiff",
        _ => "other",
    }
}

/// Decode `bytes` within `budget`.
pub fn decode(bytes: &[u8], budget: &Budget) -> Result<Decoded, Skip> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Skip::Undecodable(e.to_string()))?;
    let Some(format) = reader.format() else {
        return Err(Skip::UnknownFormat);
    };
    // Refused before the TIFF decoder reads even its dimensions (see `tiled_planar_tiff`).
    if format == image::ImageFormat::Tiff && tiled_planar_tiff(bytes) {
        return Err(Skip::Undecodable(
            "a tiled TIFF with separate colour planes (PlanarConfiguration 2), which the TIFF \
             decoder cannot read"
                .to_owned(),
        ));
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| Skip::Undecodable(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(Skip::Empty { width, height });
    }
    let pixels = u64::from(width).saturating_mul(u64::from(height));
    if pixels > budget.max_pixels {
        return Err(Skip::TooLarge {
            width,
            height,
            limit: budget.max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(budget.max_alloc);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Skip::Undecodable(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(|e| Skip::Undecodable(e.to_string()))?;
    // The decoder may still disagree with the header it reported (a lying header): trust
    // only what was decoded.
    let (dw, dh) = (img.width(), img.height());
    if dw == 0 || dh == 0 {
        return Err(Skip::Empty {
            width: dw,
            height: dh,
        });
    }
    let luma = to_luma(img);
    let (luma, scale) = downscale(luma, budget.analysis_max_side);
    Ok(Decoded {
        format: format_name(format),
        width: dw,
        height: dh,
        luma,
        scale,
        orientation,
    })
}

/// The image as a viewer shows it (EXIF orientation applied).
pub fn upright(img: &GrayImage, o: Orientation) -> GrayImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate90, rotate180, rotate270};
    match o {
        Orientation::NoTransforms => img.clone(),
        Orientation::Rotate90 => rotate90(img),
        Orientation::Rotate180 => rotate180(img),
        Orientation::Rotate270 => rotate270(img),
        Orientation::FlipHorizontal => flip_horizontal(img),
        Orientation::FlipVertical => flip_vertical(img),
        Orientation::Rotate90FlipH => flip_horizontal(&rotate90(img)),
        Orientation::Rotate270FlipH => flip_horizontal(&rotate270(img)),
    }
}

/// A box found in the [`upright`] view (`uw` x `uh`) mapped back to the stored pixels.
pub fn unorient(b: BBox, o: Orientation, uw: u32, uh: u32) -> BBox {
    // Stored size: the upright size, swapped when the orientation turns by 90 degrees.
    let (sw, sh) = match o {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (uh, uw),
        _ => (uw, uh),
    };
    let BBox { x: u, y: v, w, h } = b;
    let back = |a: u32, len: u32, extent: u32| extent.saturating_sub(a.saturating_add(len));
    let (x, y, w2, h2) = match o {
        Orientation::NoTransforms => (u, v, w, h),
        Orientation::Rotate90 => (v, back(u, w, sh), h, w),
        Orientation::Rotate180 => (back(u, w, sw), back(v, h, sh), w, h),
        Orientation::Rotate270 => (back(v, h, sw), u, h, w),
        Orientation::FlipHorizontal => (back(u, w, sw), v, w, h),
        Orientation::FlipVertical => (u, back(v, h, sh), w, h),
        Orientation::Rotate90FlipH => (v, u, h, w),
        Orientation::Rotate270FlipH => (back(v, h, sw), back(u, w, sh), h, w),
    };
    BBox { x, y, w: w2, h: h2 }
}

fn to_luma(img: DynamicImage) -> GrayImage {
    match img {
        DynamicImage::ImageLuma8(g) => g,
        // Transparent screenshots: flatten on white, as a viewer shows them, so dark text on
        // a transparent background stays readable.
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let p = rgba.get_pixel(x, y).0;
                let [r, g, b, a] = p.map(u32::from);
                let l = (299 * r + 587 * g + 114 * b) / 1000;
                let v = (l * a + 255 * (255 - a)) / 255;
                image::Luma([u8::try_from(v).unwrap_or(255)])
            })
        }
        other => other.to_luma8(),
    }
}

/// Downscale so the longer side is at most `max_side`; returns the image and the scale factor.
pub fn downscale(img: GrayImage, max_side: u32) -> (GrayImage, f64) {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    if long <= max_side || max_side == 0 {
        return (img, 1.0);
    }
    let scale = f64::from(long) / f64::from(max_side);
    let nw = ((f64::from(w) / scale).round() as u32).max(1);
    let nh = ((f64::from(h) / scale).round() as u32).max(1);
    let small = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    (small, scale)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// A tiled TIFF with separate planes (as pillow's `tiff_tiled_planar_*.tiff`) made the
    /// `tiff` crate fail an assertion (found by the fuzz target); it is refused with a reason
    /// before decoding, in both byte orders, while the same image with contiguous planes or in
    /// strips still goes to the decoder.
    #[test]
    fn a_tiled_planar_tiff_is_refused_with_a_reason_not_a_panic() {
        // 16 x 16 RGB 8-bit, one 16 x 16 tile per plane, uncompressed.
        fn tiff(le: bool, tiled: bool, planar: u16) -> Vec<u8> {
            let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let planes: u32 = if planar == 2 { 3 } else { 1 };
            let chunk: u32 = if planar == 2 { 256 } else { 768 };
            let n: u32 = if tiled { 11 } else { 10 };
            let arrays = 8 + 2 + 12 * n + 4;
            let data_at = arrays + 8 * planes;
            let (offs, counts) = if planes == 1 {
                (data_at, chunk)
            } else {
                (arrays, arrays + 4 * planes)
            };
            let mut entries: Vec<(u16, u16, u32, u32)> = vec![
                (0x0100, 3, 1, 16),
                (0x0101, 3, 1, 16),
                (0x0102, 3, 1, 8),
                (0x0103, 3, 1, 1),
                (0x0106, 3, 1, 2),
                (0x0115, 3, 1, 3),
                (0x011c, 3, 1, u32::from(planar)),
            ];
            if tiled {
                entries.push((0x0142, 3, 1, 16));
                entries.push((0x0143, 3, 1, 16));
                entries.push((0x0144, 4, planes, offs));
                entries.push((0x0145, 4, planes, counts));
            } else {
                entries.push((0x0111, 4, planes, offs));
                entries.push((0x0116, 3, 1, 16));
                entries.push((0x0117, 4, planes, counts));
            }
            entries.sort_by_key(|e| e.0);
            let mut v = if le {
                b"II*\0".to_vec()
            } else {
                b"MM\0*".to_vec()
            };
            v.extend_from_slice(&w32(8));
            v.extend_from_slice(&w16(u16::try_from(entries.len()).unwrap()));
            for (tag, typ, count, val) in entries {
                v.extend_from_slice(&w16(tag));
                v.extend_from_slice(&w16(typ));
                v.extend_from_slice(&w32(count));
                if typ == 3 {
                    v.extend_from_slice(&w16(u16::try_from(val).unwrap()));
                    v.extend_from_slice(&[0, 0]);
                } else {
                    v.extend_from_slice(&w32(val));
                }
            }
            v.extend_from_slice(&w32(0));
            for p in 0..planes {
                v.extend_from_slice(&w32(data_at + p * chunk));
            }
            for _ in 0..planes {
                v.extend_from_slice(&w32(chunk));
            }
            v.resize(v.len() + usize::try_from(chunk * planes).unwrap(), 0x80);
            v
        }
        let b = crate::fuzzing::budget();
        for le in [true, false] {
            let bad = tiff(le, true, 2);
            assert!(tiled_planar_tiff(&bad));
            match decode(&bad, &b) {
                Err(Skip::Undecodable(why)) => assert!(why.contains("PlanarConfiguration 2")),
                other => panic!("{other:?}"),
            }
            for (tiled, planar) in [(true, 1), (false, 2), (false, 1)] {
                assert!(!tiled_planar_tiff(&tiff(le, tiled, planar)));
            }
            // Cut anywhere: never a panic, at most a refusal.
            for n in 0..bad.len() {
                let _ = tiled_planar_tiff(&bad[..n]);
                let _ = decode(&bad[..n], &b);
            }
        }
        // Through the stage's entry: skipped with the reason, under the fuzzing oracle.
        let r = crate::fuzzing::check_analyze(&tiff(true, true, 2));
        assert!(r.skipped.unwrap().contains("separate colour planes"));
    }

    /// For every orientation, a one-pixel-wide box around a marked pixel in the upright view
    /// maps back onto the same pixel in the stored image.
    #[test]
    fn boxes_found_upright_map_back_to_stored_pixels() {
        let (w, h) = (7u32, 4u32);
        for o in [
            Orientation::NoTransforms,
            Orientation::Rotate90,
            Orientation::Rotate180,
            Orientation::Rotate270,
            Orientation::FlipHorizontal,
            Orientation::FlipVertical,
            Orientation::Rotate90FlipH,
            Orientation::Rotate270FlipH,
        ] {
            for (sx, sy) in [(0, 0), (5, 1), (6, 3), (2, 2)] {
                let mut img = GrayImage::new(w, h);
                img.put_pixel(sx, sy, image::Luma([255]));
                let up = upright(&img, o);
                let (ux, uy) = up
                    .enumerate_pixels()
                    .find(|p| p.2.0[0] == 255)
                    .map(|p| (p.0, p.1))
                    .unwrap();
                let b = unorient(
                    BBox {
                        x: ux,
                        y: uy,
                        w: 1,
                        h: 1,
                    },
                    o,
                    up.width(),
                    up.height(),
                );
                assert_eq!(
                    b,
                    BBox {
                        x: sx,
                        y: sy,
                        w: 1,
                        h: 1
                    },
                    "{o:?}"
                );
            }
        }
    }
}
