//! Straightening text before OCR: tesseract reads lines well up to about 3 degrees of skew and
//! poorly beyond (a phone photo of a page is rarely straight). The skew is estimated with a
//! projection profile: dark pixels of a small copy are projected onto the vertical axis for
//! each candidate angle, and the angle whose histogram is most peaked (text lines in few rows,
//! gaps in the others) wins.

use image::{GrayImage, Luma, imageops::FilterType};

use crate::finding::BBox;

/// Largest skew searched, in degrees either way.
pub const MAX_SKEW: f64 = 12.0;
/// Skews smaller than this are left alone (tesseract copes, and rotating blurs a little).
pub const MIN_SKEW: f64 = 1.0;

/// Rotate by `deg` degrees about the centre onto a white canvas large enough for the result
/// (bilinear sampling).
pub fn rotate(img: &GrayImage, deg: f64) -> GrayImage {
    let g = Geometry::new(img.width(), img.height(), deg);
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    GrayImage::from_fn(g.nw, g.nh, |x, y| {
        let (sx, sy) = g.to_source(f64::from(x) + 0.5, f64::from(y) + 0.5);
        let (sx, sy) = (sx - 0.5, sy - 0.5);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let at = |xx: f64, yy: f64| -> f64 {
            if xx < 0.0 || yy < 0.0 || xx >= w || yy >= h {
                255.0
            } else {
                img.get_pixel_checked(xx as u32, yy as u32)
                    .map_or(255.0, |p| f64::from(p.0[0]))
            }
        };
        let v = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1.0, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1.0) * (1.0 - fx) * fy
            + at(x0 + 1.0, y0 + 1.0) * fx * fy;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

/// The geometry of one rotation: source size, angle, output size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    w: f64,
    h: f64,
    sin: f64,
    cos: f64,
    nw: u32,
    nh: u32,
}

impl Geometry {
    fn new(w: u32, h: u32, deg: f64) -> Self {
        let (sin, cos) = deg.to_radians().sin_cos();
        let (w, h) = (f64::from(w), f64::from(h));
        let nw = (w * cos.abs() + h * sin.abs()).ceil().max(1.0) as u32;
        let nh = (w * sin.abs() + h * cos.abs()).ceil().max(1.0) as u32;
        Self {
            w,
            h,
            sin,
            cos,
            nw,
            nh,
        }
    }

    /// A point of the rotated image in the source image's coordinates.
    fn to_source(self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - f64::from(self.nw) / 2.0, y - f64::from(self.nh) / 2.0);
        (
            self.cos * dx + self.sin * dy + self.w / 2.0,
            -self.sin * dx + self.cos * dy + self.h / 2.0,
        )
    }

    /// A box of the rotated image as the smallest box around it in the source image.
    pub fn box_to_source(self, b: BBox) -> BBox {
        let (x0, y0) = (f64::from(b.x), f64::from(b.y));
        let (x1, y1) = (x0 + f64::from(b.w), y0 + f64::from(b.h));
        let pts = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|(x, y)| self.to_source(x, y));
        let min_x = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::MAX, f64::min)
            .clamp(0.0, self.w);
        let max_x = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::MIN, f64::max)
            .clamp(0.0, self.w);
        let min_y = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::MAX, f64::min)
            .clamp(0.0, self.h);
        let max_y = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::MIN, f64::max)
            .clamp(0.0, self.h);
        BBox {
            x: min_x as u32,
            y: min_y as u32,
            w: (max_x - min_x).ceil() as u32,
            h: (max_y - min_y).ceil() as u32,
        }
    }
}

/// The rotation, in degrees, that makes the text lines of `img` horizontal (0 when the image
/// has too little ink to tell).
pub fn estimate(img: &GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    let small = if long > 800 {
        let s = f64::from(long) / 800.0;
        image::imageops::resize(
            img,
            ((f64::from(w) / s) as u32).max(1),
            ((f64::from(h) / s) as u32).max(1),
            FilterType::Triangle,
        )
    } else {
        img.clone()
    };
    let mean = small.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
        / f64::from(small.width().saturating_mul(small.height()).max(1));
    let thresh = (mean - 50.0).max(0.0);
    let (cx, cy) = (
        f64::from(small.width()) / 2.0,
        f64::from(small.height()) / 2.0,
    );
    let ink: Vec<(f64, f64)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| f64::from(p.0[0]) < thresh)
        .map(|(x, y, _)| (f64::from(x) - cx, f64::from(y) - cy))
        .take(400_000)
        .collect();
    if ink.len() < 200 {
        return 0.0;
    }
    let diag = (cx * cx + cy * cy).sqrt().ceil() as usize;
    let bins = diag.saturating_mul(2).saturating_add(2);
    let score = |deg: f64| -> f64 {
        let (s, c) = deg.to_radians().sin_cos();
        let mut hist = vec![0u32; bins];
        for (x, y) in &ink {
            let yy = (x * s + y * c + diag as f64).round();
            if let Some(b) = hist.get_mut(yy.max(0.0) as usize) {
                *b = b.saturating_add(1);
            }
        }
        hist.iter().map(|v| f64::from(*v) * f64::from(*v)).sum()
    };
    let mut best = (0.0, score(0.0));
    let steps = (MAX_SKEW * 4.0) as i32;
    for k in -steps..=steps {
        let deg = f64::from(k) / 4.0;
        let sc = score(deg);
        if sc > best.1 * 1.000_001 {
            best = (deg, sc);
        }
    }
    best.0
}

/// The image to OCR and the geometry to map its boxes back, when it needed straightening.
pub fn straighten(img: &GrayImage) -> Option<(GrayImage, Geometry, f64)> {
    let deg = estimate(img);
    if deg.abs() < MIN_SKEW {
        return None;
    }
    Some((
        rotate(img, deg),
        Geometry::new(img.width(), img.height(), deg),
        deg,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripes(deg: f64) -> GrayImage {
        // Five dark "text lines" with gaps, then skewed.
        let img = GrayImage::from_fn(600, 300, |x, y| {
            let line = (y / 30) % 2 == 1 && (40..560).contains(&x) && (x / 7) % 3 != 0;
            Luma([if line { 0 } else { 255 }])
        });
        rotate(&img, deg)
    }

    #[test]
    fn the_skew_of_lines_is_found_and_undone() {
        for deg in [-7.0, -3.0, 5.0, 9.5] {
            let est = estimate(&stripes(deg));
            assert!((est + deg).abs() <= 0.5, "skewed {deg}, estimated {est}");
        }
        assert!(straighten(&stripes(0.0)).is_none());
    }

    #[test]
    fn boxes_map_back_through_the_rotation() {
        let g = Geometry::new(600, 300, 0.0);
        let b = BBox {
            x: 10,
            y: 20,
            w: 30,
            h: 40,
        };
        assert_eq!(g.box_to_source(b), b);
        let g = Geometry::new(600, 300, 10.0);
        let c = g.box_to_source(BBox {
            x: g.nw / 2 - 5,
            y: g.nh / 2 - 5,
            w: 10,
            h: 10,
        });
        assert!(
            c.x.abs_diff(295) <= 2 && c.y.abs_diff(295 / 2) <= 150,
            "{c:?}"
        );
        assert!(c.x.abs_diff(293) <= 3 && c.y.abs_diff(143) <= 3, "{c:?}");
    }
}
