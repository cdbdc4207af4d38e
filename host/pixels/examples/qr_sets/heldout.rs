//! The held-out QR set: generated images the QR search was never tuned on.
//!
//! Seeded and reproducible: the same seed gives the same images, byte for byte. Each image
//! draws every condition independently from the seed: payload (eight kinds with random
//! names, tokens and numbers, none of them the tuned grid's), module size (2.5, 4 or 7 px,
//! the 2.5 px one not on the pixel grid), rotation (0/10/30/60/90°), perspective (none or a
//! keystone tilt), contrast (full or low), inverted colours, blur, noise, background (plain
//! grey, a gradient with stripes, or a photo from the corpus), one or three codes per image,
//! and the encoding (PNG, JPEG q70, JPEG q30). Codes are drawn through a homography with 4×4
//! supersampling, so rotation and perspective are rendered, not resampled from a bitmap.
//! Every code counts on its own; a decoded code that is none of the image's truths is wrong.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use image::{GrayImage, Luma};
use proofpix_pixels::codes::{self, QrSearch};
use proofpix_pixels::{Budget, decode};

use crate::support::{self, Rng};

/// One code in an image.
pub struct Truth {
    pub payload: String,
    pub code: &'static str,
}

pub struct Case {
    pub bytes: Vec<u8>,
    pub truths: Vec<Truth>,
    /// Conditions it counts under.
    pub keys: Vec<String>,
    pub name: String,
}

const FIRST: &[&str] = &[
    "Amelia", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
];
const LAST: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Petrov",
    "Quintana",
    "Rossi",
    "Sato",
    "Tanaka",
];
const AIRPORTS: &[&str] = &[
    "CDG", "AMS", "FRA", "MAD", "ORD", "NRT", "SYD", "GRU", "YYZ",
];

fn alnum(rng: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789abcdefghijkmnopqrstuvwxyz";
    (0..n)
        .map(|_| char::from(A[rng.below(A.len() as u64) as usize]))
        .collect()
}

/// A payload of one of eight kinds, with random content.
fn payload(rng: &mut Rng) -> Truth {
    let first = *rng.pick(FIRST);
    let last = *rng.pick(LAST);
    let (payload, code) = match rng.below(8) {
        0 => (
            format!(
                "WIFI:S:{}-{};T:WEP;P:{};H:false;;",
                last,
                rng.digits(3),
                alnum(rng, 10)
            ),
            "barcode.wifi",
        ),
        1 => (
            format!(
                "BEGIN:VCARD\nVERSION:3.0\nFN:{first} {last}\nTEL;TYPE=CELL:+44 7{}\nEMAIL:{}.{}@example.org\nEND:VCARD",
                rng.digits(9),
                first.to_lowercase(),
                last.to_lowercase()
            ),
            "barcode.contact",
        ),
        2 => (
            format!(
                "http://shop{}.example.net/r/{}",
                rng.digits(2),
                alnum(rng, 12)
            ),
            "barcode.url",
        ),
        3 => (
            format!(
                "mailto:{}@example.com?subject=Invoice%20{}",
                first.to_lowercase(),
                rng.digits(6)
            ),
            "barcode.contact",
        ),
        4 => (
            format!(
                "upi://pay?pa={}.{}@okbank&pn={first}%20{last}&am={}.00&cu=INR",
                first.to_lowercase(),
                rng.digits(4),
                rng.digits(3)
            ),
            "barcode.payment",
        ),
        5 => {
            let name = format!("{}/{}", last.to_uppercase(), first.to_uppercase());
            let from = *rng.pick(AIRPORTS);
            let to = *rng.pick(AIRPORTS);
            (
                format!(
                    "M1{name:<20}E{} {from}{to}AF {} 2{}Y0{}A00{} 100",
                    alnum(rng, 6).to_uppercase(),
                    rng.digits(4),
                    rng.digits(2),
                    rng.digits(2),
                    rng.digits(2)
                ),
                "barcode.boarding_pass",
            )
        }
        6 => (
            format!(
                "BCD\n001\n1\nSCT\nINGDDEFFXXX\n{first} {last}\n{}\nEUR{}.{}\n\n\nRechnung {}",
                support::iban("DE", &rng.digits(18)),
                1 + rng.below(900),
                rng.digits(2),
                rng.digits(5)
            ),
            "barcode.payment",
        ),
        _ => (
            format!(
                "Parcel {} for {first} {last}, locker {}",
                alnum(rng, 8).to_uppercase(),
                rng.digits(3)
            ),
            "barcode.text",
        ),
    };
    debug_assert_eq!(codes::classify(&payload, true).code, code);
    Truth { payload, code }
}

/// The code's modules with a 4-module quiet zone: `true` is dark.
fn modules(payload: &str) -> (Vec<bool>, usize) {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("payload fits a QR code");
    let n = code.width();
    let colors = code.to_colors();
    let side = n + 8;
    let mut m = vec![false; side * side];
    for y in 0..n {
        for x in 0..n {
            m[(y + 4) * side + x + 4] = colors[y * n + x] == qrcode::Color::Dark;
        }
    }
    (m, side)
}

type Mat = [[f64; 3]; 3];

/// The homography taking the unit square (0,0) (1,0) (1,1) (0,1) to `q` (Heckbert).
fn square_to_quad(q: [(f64, f64); 4]) -> Mat {
    let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = q;
    let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
    let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
    let den = dx1 * dy2 - dx2 * dy1;
    let g = (sx * dy2 - dx2 * sy) / den;
    let h = (dx1 * sy - sx * dy1) / den;
    [
        [x1 - x0 + g * x1, x3 - x0 + h * x3, x0],
        [y1 - y0 + g * y1, y3 - y0 + h * y3, y0],
        [g, h, 1.0],
    ]
}

fn invert(m: &Mat) -> Mat {
    let [[a, b, c], [d, e, f], [g, h, i]] = *m;
    let det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    [
        [
            (e * i - f * h) / det,
            (c * h - b * i) / det,
            (b * f - c * e) / det,
        ],
        [
            (f * g - d * i) / det,
            (a * i - c * g) / det,
            (c * d - a * f) / det,
        ],
        [
            (d * h - e * g) / det,
            (b * g - a * h) / det,
            (a * e - b * d) / det,
        ],
    ]
}

/// Draw the code onto `canvas` so that its square (quiet zone included) lands on quad `q`,
/// 4×4 supersampled; `dark`/`light` are its two grey levels.
fn draw(canvas: &mut GrayImage, m: &[bool], side: usize, q: [(f64, f64); 4], dark: u8, light: u8) {
    let inv = invert(&square_to_quad(q));
    let (w, h) = canvas.dimensions();
    let x_min = q
        .iter()
        .map(|p| p.0)
        .fold(f64::MAX, f64::min)
        .floor()
        .max(0.0) as u32;
    let y_min = q
        .iter()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .floor()
        .max(0.0) as u32;
    let x_max = (q.iter().map(|p| p.0).fold(f64::MIN, f64::max).ceil() as u32).min(w);
    let y_max = (q.iter().map(|p| p.1).fold(f64::MIN, f64::max).ceil() as u32).min(h);
    for y in y_min..y_max {
        for x in x_min..x_max {
            let (mut inside, mut dark_n) = (0u32, 0u32);
            for sy in 0..4 {
                for sx in 0..4 {
                    let (px, py) = (
                        f64::from(x) + (f64::from(sx) + 0.5) / 4.0,
                        f64::from(y) + (f64::from(sy) + 0.5) / 4.0,
                    );
                    let z = inv[2][0] * px + inv[2][1] * py + inv[2][2];
                    let u = (inv[0][0] * px + inv[0][1] * py + inv[0][2]) / z;
                    let v = (inv[1][0] * px + inv[1][1] * py + inv[1][2]) / z;
                    if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) {
                        inside += 1;
                        let (mx, my) = ((u * side as f64) as usize, (v * side as f64) as usize);
                        dark_n += u32::from(m[my * side + mx]);
                    }
                }
            }
            if inside > 0 {
                let p = canvas.get_pixel_mut(x, y);
                let code = (f64::from(dark_n) * f64::from(dark)
                    + f64::from(inside - dark_n) * f64::from(light))
                    / f64::from(inside);
                let cover = f64::from(inside) / 16.0;
                p.0[0] = (code * cover + f64::from(p.0[0]) * (1.0 - cover)).round() as u8;
            }
        }
    }
}

/// A gaussian sample (Box-Muller).
fn gauss(rng: &mut Rng) -> f64 {
    let u1 = (rng.below(1 << 30) as f64 + 1.0) / f64::from(1u32 << 30);
    let u2 = rng.below(1 << 30) as f64 / f64::from(1u32 << 30);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Photos to put codes on: up to `max` decodable corpus images, longest side 1200 px.
pub fn backgrounds(files: &[std::path::PathBuf], max: usize) -> Vec<GrayImage> {
    let mut out = Vec::new();
    for p in files {
        if out.len() >= max {
            break;
        }
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        let Ok(d) = decode::decode(&bytes, &Budget::default()) else {
            continue;
        };
        if d.luma.width().min(d.luma.height()) < 400 {
            continue;
        }
        out.push(decode::downscale(d.luma, 1200).0);
    }
    out
}

/// `n` images drawn from `seed`. Photo backgrounds need `photos`; without any, that
/// condition is drawn as the gradient instead (and named so).
pub fn cases(seed: u64, n: usize, photos: &[GrayImage]) -> Vec<Case> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    for _ in 0..8 {
        rng.next();
    }
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let count = if rng.below(4) == 0 { 3 } else { 1 };
        let module = *rng.pick(&[2.5f64, 4.0, 7.0]);
        let rot = *rng.pick(&[0.0f64, 10.0, 30.0, 60.0, 90.0]);
        let tilt = if rng.below(3) == 0 {
            0.1 + rng.below(16) as f64 / 100.0
        } else {
            0.0
        };
        let low = rng.below(4) == 0;
        let inverted = rng.below(6) == 0;
        let sigma = *rng.pick(&[0.0f32, 0.0, 0.8]);
        let noise = *rng.pick(&[0.0f64, 0.0, 8.0]);
        let bg = if photos.is_empty() {
            rng.below(2)
        } else {
            rng.below(3)
        };
        let enc = rng.below(3);
        let (dark, light) = match (low, inverted) {
            (false, false) => (15u8, 240u8),
            (true, false) => (100, 170),
            (false, true) => (240, 15),
            (true, true) => (170, 100),
        };

        let truths: Vec<Truth> = (0..count).map(|_| payload(&mut rng)).collect();
        let grids: Vec<(Vec<bool>, usize)> = truths.iter().map(|t| modules(&t.payload)).collect();
        // Each code gets a square cell large enough for any rotation of its square.
        let cells: Vec<f64> = grids
            .iter()
            .map(|(_, s)| (*s as f64 * module) * std::f64::consts::SQRT_2 * (1.0 + tilt) + 16.0)
            .collect();
        let w = (cells.iter().sum::<f64>().ceil() as u32 + 40).max(480);
        let h = (cells.iter().fold(0.0f64, |a, b| a.max(*b)).ceil() as u32 + 40).max(360);
        let mut canvas = match bg {
            0 => GrayImage::from_pixel(w, h, Luma([200])),
            1 => GrayImage::from_fn(w, h, |x, y| {
                let g = 60.0 + 160.0 * f64::from(x + y) / f64::from(w + h);
                let stripe = if (x / 23 + y / 37) % 2 == 0 {
                    18.0
                } else {
                    0.0
                };
                Luma([(g + stripe).min(255.0) as u8])
            }),
            _ => {
                let p = &photos[rng.below(photos.len() as u64) as usize];
                let scale =
                    (f64::from(w) / f64::from(p.width())).max(f64::from(h) / f64::from(p.height()));
                let r = image::imageops::resize(
                    p,
                    (f64::from(p.width()) * scale).ceil() as u32,
                    (f64::from(p.height()) * scale).ceil() as u32,
                    image::imageops::FilterType::Triangle,
                );
                image::imageops::crop_imm(&r, 0, 0, w, h).to_image()
            }
        };
        let mut x0 = 20.0 + (f64::from(w) - 40.0 - cells.iter().sum::<f64>()) / 2.0;
        for ((m, side), cell) in grids.iter().zip(&cells) {
            let s = *side as f64 * module;
            let (cx, cy) = (x0 + cell / 2.0, f64::from(h) / 2.0);
            x0 += cell;
            // Keystone: the top edge narrower than the bottom, then rotated.
            let corners = [
                (-s / 2.0 * (1.0 - tilt), -s / 2.0),
                (s / 2.0 * (1.0 - tilt), -s / 2.0),
                (s / 2.0 * (1.0 + tilt / 2.0), s / 2.0),
                (-s / 2.0 * (1.0 + tilt / 2.0), s / 2.0),
            ];
            let (sn, cs) = rot.to_radians().sin_cos();
            let q = corners.map(|(x, y)| (cx + cs * x - sn * y, cy + sn * x + cs * y));
            draw(&mut canvas, m, *side, q, dark, light);
        }
        let mut img = support::blur(&canvas, sigma);
        if noise > 0.0 {
            for p in img.pixels_mut() {
                p.0[0] = (f64::from(p.0[0]) + noise * gauss(&mut rng))
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
        let (bytes, enc_name) = match enc {
            0 => (support::png(&img), "PNG"),
            1 => (support::jpeg(&img, 70), "JPEG q70"),
            _ => (support::jpeg(&img, 30), "JPEG q30"),
        };
        let bg_name = match bg {
            0 => "background grey",
            1 => "background gradient",
            _ => "background photo",
        };
        out.push(Case {
            bytes,
            name: format!(
                "{k:03}-m{module}-r{rot}-t{tilt}-{}{}-s{sigma}-n{noise}-b{bg}-c{count}.{}",
                if low { "low" } else { "full" },
                if inverted { "-inv" } else { "" },
                if enc == 0 { "png" } else { "jpg" }
            ),
            keys: vec![
                format!("module {module} px"),
                format!("rotation {rot}°"),
                if tilt > 0.0 {
                    "perspective tilt".to_owned()
                } else {
                    "no perspective".to_owned()
                },
                (if low { "low contrast" } else { "full contrast" }).to_owned(),
                (if inverted {
                    "inverted"
                } else {
                    "dark on light"
                })
                .to_owned(),
                format!("blur σ {sigma}"),
                format!("noise σ {noise}"),
                bg_name.to_owned(),
                format!("{count} code(s) per image"),
                enc_name.to_owned(),
                format!("payload {}", truths[0].code),
            ],
            truths,
        });
    }
    out
}

/// Score `search` on the cases; writes missed images to `out`. Returns the report.
pub fn score(cases: &[Case], search: &QrSearch, out: &Path, title: &str) -> String {
    let mut by: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let (mut ok_all, mut all, mut wrong, mut images_ok) = (0u32, 0u32, 0u32, 0u32);
    let mut time = Duration::ZERO;
    let mut slowest = (Duration::ZERO, String::new());
    let mut misses = Vec::new();
    for c in cases {
        let t0 = Instant::now();
        let d = decode::decode(&c.bytes, &Budget::default()).expect("decodes");
        let found = codes::search(&d.luma, search);
        let dt = t0.elapsed();
        time += dt;
        if dt > slowest.0 {
            slowest = (dt, c.name.clone());
        }
        let mut read = 0u32;
        for t in &c.truths {
            let ok = found.codes.iter().any(|f| {
                f.payload == t.payload && codes::classify(&f.payload, true).code == t.code
            });
            read += u32::from(ok);
            for key in &c.keys {
                let e = by.entry(key.clone()).or_default();
                e.0 += u32::from(ok);
                e.1 += 1;
            }
        }
        wrong += found
            .codes
            .iter()
            .filter(|f| !c.truths.iter().any(|t| t.payload == f.payload))
            .count() as u32;
        ok_all += read;
        all += c.truths.len() as u32;
        if read as usize == c.truths.len() {
            images_ok += 1;
        } else {
            misses.push(format!("{} ({read}/{})", c.name, c.truths.len()));
            std::fs::write(out.join(format!("qr-heldout-miss-{}", c.name)), &c.bytes)
                .expect("write");
        }
    }
    let ratio = |a: u32, b: u32| f64::from(a) / f64::from(b.max(1));
    let mut r = String::new();
    let _ = writeln!(
        r,
        "## QR decode, {title}\n\ncodes read: {ok_all}/{all} = {:.3}; images fully read: {images_ok}/{} = {:.3}; wrong payloads: {wrong}\nsearch time (decode included): {:.1} ms/image, slowest {:.0} ms ({})\n",
        ratio(ok_all, all),
        cases.len(),
        ratio(images_ok, cases.len() as u32),
        1e3 * time.as_secs_f64() / cases.len().max(1) as f64,
        1e3 * slowest.0.as_secs_f64(),
        slowest.1
    );
    let _ = writeln!(r, "| condition (codes) | read |\n| --- | --- |");
    for (k, (a, b)) in &by {
        let _ = writeln!(r, "| {k} | {a}/{b} = {:.3} |", ratio(*a, *b));
    }
    let _ = writeln!(r, "\nimages not fully read ({}):", misses.len());
    for m in &misses {
        let _ = writeln!(r, "- {m}");
    }
    r
}
