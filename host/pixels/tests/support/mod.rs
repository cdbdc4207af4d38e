//! Image generators shared by the tests and the evaluation tool: rendered text (DejaVu Sans from
//! Debian's fonts-dejavu-core, read at run time), QR codes, rotation, blur and JPEG.
#![allow(dead_code)]

use std::io::Cursor;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{GrayImage, Luma};

pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn font() -> FontVec {
    let bytes = std::fs::read(FONT).unwrap_or_else(|e| {
        panic!("{FONT}: {e}; install Debian's fonts-dejavu-core (./test does)")
    });
    FontVec::try_from_vec(bytes).expect("DejaVu Sans parses")
}

/// Black text on white, one line per entry, `px` pixels high, with a margin.
pub fn render_lines(font: &FontVec, lines: &[String], px: f32) -> GrayImage {
    let scaled = font.as_scaled(PxScale::from(px));
    let line_h = (scaled.height() + scaled.line_gap()).ceil() * 1.3;
    let margin = px.ceil() as u32;
    let width = lines
        .iter()
        .map(|l| {
            l.chars()
                .map(|c| scaled.h_advance(font.glyph_id(c)))
                .sum::<f32>()
        })
        .fold(0.0f32, f32::max)
        .ceil() as u32
        + 2 * margin;
    let height = (line_h * lines.len() as f32).ceil() as u32 + 2 * margin;
    let mut img = GrayImage::from_pixel(width, height, Luma([255]));
    for (k, line) in lines.iter().enumerate() {
        let mut x = margin as f32;
        let base = margin as f32 + scaled.ascent() + line_h * k as f32;
        let mut prev = None;
        for c in line.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let g = id.with_scale_and_position(PxScale::from(px), point(x, base));
            if let Some(og) = font.outline_glyph(g) {
                let b = og.px_bounds();
                og.draw(|gx, gy, cov| {
                    let px_x = b.min.x as i64 + i64::from(gx);
                    let px_y = b.min.y as i64 + i64::from(gy);
                    if px_x >= 0 && px_y >= 0 && (px_x as u32) < width && (px_y as u32) < height {
                        let p = img.get_pixel_mut(px_x as u32, px_y as u32);
                        let v = f32::from(p.0[0]) * (1.0 - cov.clamp(0.0, 1.0));
                        p.0[0] = v.round() as u8;
                    }
                });
            }
            x += scaled.h_advance(id);
            prev = Some(id);
        }
    }
    img
}

/// A QR code with a 4-module quiet zone, `module` pixels per module.
pub fn qr(payload: &str, module: u32) -> GrayImage {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("payload fits a QR code");
    let n = code.width() as u32;
    let colors = code.to_colors();
    let side = (n + 8) * module;
    GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = ((x / module) as i64 - 4, (y / module) as i64 - 4);
        let dark = mx >= 0
            && my >= 0
            && (mx as u32) < n
            && (my as u32) < n
            && colors[(my as u32 * n + mx as u32) as usize] == qrcode::Color::Dark;
        Luma([if dark { 0 } else { 255 }])
    })
}

/// Rotate by `deg` degrees about the centre onto a white canvas large enough for the result
/// (bilinear sampling).
pub fn rotate(img: &GrayImage, deg: f32) -> GrayImage {
    if deg == 0.0 {
        return img.clone();
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil() as u32;
    let nh = (w * s.abs() + h * c.abs()).ceil() as u32;
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ncx, ncy) = (nw as f32 / 2.0, nh as f32 / 2.0);
    GrayImage::from_fn(nw, nh, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let at = |xx: f32, yy: f32| -> f32 {
            if xx < 0.0 || yy < 0.0 || xx >= w || yy >= h {
                255.0
            } else {
                f32::from(img.get_pixel(xx as u32, yy as u32).0[0])
            }
        };
        let v = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1.0, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1.0) * (1.0 - fx) * fy
            + at(x0 + 1.0, y0 + 1.0) * fx * fy;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

/// `img` seen in keystone perspective: its top edge `tilt` (a fraction) narrower than its
/// bottom edge, drawn through the homography onto a white canvas of the same size (4 x 4
/// samples per pixel).
pub fn keystone(img: &GrayImage, tilt: f64) -> GrayImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    // The image's corners go to a trapezoid; the inverse map (trapezoid -> image) is the
    // square-to-quad map of the image's corners composed with the inverse of the trapezoid's.
    let inset = w * tilt / 2.0;
    let quad = [(inset, 0.0), (w - inset, 0.0), (w, h), (0.0, h)];
    let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = quad;
    let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
    let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
    let den = dx1 * dy2 - dx2 * dy1;
    let g = (sx * dy2 - dx2 * sy) / den;
    let hh = (dx1 * sy - sx * dy1) / den;
    let m = [
        x1 - x0 + g * x1,
        x3 - x0 + hh * x3,
        x0,
        y1 - y0 + g * y1,
        y3 - y0 + hh * y3,
        y0,
        g,
        hh,
        1.0,
    ];
    // Inverse by the adjugate.
    let [a, b, c, d, e, f, g, hh, i] = m;
    let inv = [
        e * i - f * hh,
        c * hh - b * i,
        b * f - c * e,
        f * g - d * i,
        a * i - c * g,
        c * d - a * f,
        d * hh - e * g,
        b * g - a * hh,
        a * e - b * d,
    ];
    GrayImage::from_fn(img.width(), img.height(), |px, py| {
        let mut acc = 0.0;
        for k in 0..16 {
            let x = f64::from(px) + (f64::from(k % 4) + 0.5) / 4.0;
            let y = f64::from(py) + (f64::from(k / 4) + 0.5) / 4.0;
            let z = inv[6] * x + inv[7] * y + inv[8];
            let (u, v) = (
                (inv[0] * x + inv[1] * y + inv[2]) / z,
                (inv[3] * x + inv[4] * y + inv[5]) / z,
            );
            acc += if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) {
                f64::from(img.get_pixel((u * w) as u32, (v * h) as u32).0[0])
            } else {
                255.0
            };
        }
        Luma([(acc / 16.0).round() as u8])
    })
}

pub fn blur(img: &GrayImage, sigma: f32) -> GrayImage {
    if sigma <= 0.0 {
        img.clone()
    } else {
        image::imageops::blur(img, sigma)
    }
}

pub fn png(img: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encodes");
    out.into_inner()
}

pub fn jpeg(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).expect("JPEG encodes");
    out
}

/// Luhn check digit for `body`.
pub fn luhn_digit(body: &str) -> char {
    let mut sum = 0u32;
    for (k, c) in body.chars().rev().enumerate() {
        let mut v = c.to_digit(10).unwrap();
        if k % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    char::from_digit((10 - sum % 10) % 10, 10).unwrap()
}

/// IBAN check digits for a country and BBAN.
pub fn iban(cc: &str, bban: &str) -> String {
    let s: String = format!("{bban}{cc}00");
    let mut rem = 0u64;
    for c in s.chars() {
        let v = c.to_digit(36).unwrap() as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("{cc}{:02}{bban}", 98 - rem)
}

/// Group into fours with spaces ("DE89 3704 ...").
pub fn fours(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A tiny deterministic generator (no `rand` dependency; reproducible sets).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}
