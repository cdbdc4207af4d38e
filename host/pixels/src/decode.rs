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
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
