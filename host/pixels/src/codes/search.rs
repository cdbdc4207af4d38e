//! The QR search: `rqrr` on the image as decoded, then, only when that decoded nothing and the
//! image shows finder-pattern-like structures, harder passes.
//!
//! Why passes of our own around `rqrr`: it binarises with a row-wise moving average and reads
//! each module from the one binarised pixel nearest its centre, so it needs about 4 px per
//! module and a sharp image. Codes at 2-3 px per module, blurred or JPEG-compressed (a QR
//! code across a tenth of a downscaled photo, a screenshot scaled for chat) are found but not
//! read, or not found at all. The passes, cheapest first, each ending the search when it
//! reads a code:
//!
//! 1. **Grey re-read** of every grid `rqrr` locates but cannot decode: the module centres are
//!    sampled again from the grey image (bilinear, five points per module) through the
//!    grid's corners and thresholded against the modules around them, as sampled and after an
//!    unsharp mask on the module grid (blur makes a light module between dark ones read
//!    dark), with small shifts of the sampling grid. This runs in every pass.
//! 2. **Finders**: three finder candidates that sit like a code's corners define an affine
//!    map; the version comes from their distance, the map is refined against the patterns
//!    every code has (finders, separators, timing), and the modules are read as in 1. This
//!    reads blurred 2 px codes whose timing pattern `rqrr` cannot follow. When no triple
//!    reads through the affine map, triples that sit like a code's finders in perspective get
//!    a homography: its fourth point is the bottom-right alignment pattern (versions 2-10),
//!    searched for near where the finders put it and refined with them against every
//!    function pattern. When the finders pass still reads nothing, it runs again on
//!    candidates from a threshold window three times as wide (codes of 5 px per module or
//!    more at low contrast with noise, which `rqrr` misses).
//! 3. **Upscale** a region 3x (Catmull-Rom) so `rqrr`'s threshold and sampling see 6-9 px
//!    modules; then **sharpen and upscale**; then **binarise** the upscaled region against
//!    its local mean before `rqrr`'s detector sees it.
//!
//! The gate: the harder passes run only when the first pass decoded nothing, and only
//! around finder-pattern candidates (runs of dark, light, dark, light, dark in proportions
//! 1:1:3:1:1 across a row with a clearly lighter ring, confirmed down the column; at least
//! [`MIN_FINDERS`]) or grids the first pass located but could not read. A photo without such
//! structures costs one `rqrr` pass and one threshold scan. Every decoded code has passed
//! the QR format check (BCH) and Reed-Solomon correction, so the extra attempts do not make
//! up payloads from noise; BENCHMARKS.md counts what the search decodes on the corpus's
//! photos (nothing) and its cost there.

use std::time::Instant;

use image::{GrayImage, imageops};
use rqrr::BitGrid;

use super::{Code, MAX_CODES};
use crate::finding::BBox;

/// One of the harder passes, run on each region around finder candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pass {
    /// Codes read from three finder candidates that sit like a code's corners, sampled from
    /// the grey image at its own size (no upscale; runs once per image, not per region).
    Finders,
    /// The region upscaled by this factor (Catmull-Rom), `rqrr`'s own threshold.
    Upscale(u32),
    /// Unsharp mask (sigma 1 px, amount 1.5), then upscaled by this factor.
    SharpenUpscale(u32),
    /// Upscaled by this factor, then thresholded against the local mean.
    Binarise(u32),
}

/// How hard the QR search tries. [`QrSearch::default`] is what the pixel stage uses;
/// [`QrSearch::rqrr_2x`] is the search before the harder passes existed (kept so the
/// evaluation tool can show both on the same images).
#[derive(Debug, Clone, PartialEq)]
pub struct QrSearch {
    /// Re-read located but undecodable grids from the grey image (default on).
    pub grey_reread: bool,
    /// The old second pass: the whole image at 2x (Triangle) when the first found nothing and
    /// its longest side is at most [`UPSCALE_MAX_SIDE`](super::UPSCALE_MAX_SIDE) (default off).
    pub whole_image_2x: bool,
    /// Passes run on the regions around finder candidates, in order, until one decodes.
    pub passes: Vec<Pass>,
    /// Run `passes` only around finder candidates (default on). Off: on the whole image
    /// (evaluation only; costly on large images).
    pub gate: bool,
    /// When nothing was read: search again with the grey levels stretched (a low-contrast
    /// image), then inverted (light modules on dark) (default on).
    pub variants: bool,
    /// When the first pass read some codes: look for more around finder candidates outside
    /// them and grids located but not read (several codes per image; default on).
    pub more_codes: bool,
    /// In the finders pass, when the affine map reads nothing: a homography through the
    /// alignment pattern (codes in perspective; default on).
    pub perspective: bool,
    /// In the finders pass, when it reads nothing: finder candidates again with a threshold
    /// window three times as wide (codes of 5 px per module or more at low contrast, which
    /// `rqrr` misses; default on).
    pub wide_finders: bool,
}

impl Default for QrSearch {
    fn default() -> Self {
        Self {
            grey_reread: true,
            whole_image_2x: false,
            // Finders alone reads 214 of the grid's 216; the 2x upscale keeps what the old
            // whole-image 2x pass read (codes in perspective, which the finders pass's affine
            // map does not fit), on the regions only. The other passes added nothing on the
            // grid (BENCHMARKS.md, ablation) and stay for the evaluation tool.
            passes: vec![Pass::Finders, Pass::Upscale(2)],
            gate: true,
            // Added after the held-out set (BENCHMARKS.md): it read no inverted code, few
            // low-contrast ones, and one code of two or three when `rqrr` read the others.
            variants: true,
            more_codes: true,
            // Added after the held-out set: codes in keystone perspective.
            perspective: true,
            // Added after the held-out set: low-contrast, noisy codes at 7 px per module.
            wide_finders: true,
        }
    }
}

impl QrSearch {
    /// `rqrr` alone, then the whole image at 2x: the search as it was before the passes
    /// above (BENCHMARKS.md's "before" column).
    pub fn rqrr_2x() -> Self {
        Self {
            grey_reread: false,
            whole_image_2x: true,
            passes: Vec::new(),
            gate: false,
            variants: false,
            more_codes: false,
            perspective: false,
            wide_finders: false,
        }
    }
}

/// What one search found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QrOutcome {
    /// Decoded codes, in the searched image's coordinates.
    pub codes: Vec<Code>,
    /// Grids located but not decoded (in the pass that located the most).
    pub undecoded: usize,
    /// Finder-pattern candidates seen by the gate (0 when the gate did not run).
    pub finder_candidates: usize,
    /// Harder passes run (region x pass); 0 when the first pass decoded or the gate said no.
    pub extra_passes: usize,
    /// The harder passes stopped at [`MAX_EXTRA_TIME`].
    pub timed_out: bool,
}

/// Most upscaled pixels one region's pass may make (12 MP: a 1150 px region at 3x). Larger
/// regions get a smaller factor, down to 1 (no upscale).
pub const MAX_UPSCALED_PIXELS: u64 = 12_000_000;

/// Most regions given the harder passes per image (the ones with the most finder hits).
pub const MAX_REGIONS: usize = 6;

/// Finder candidates needed before the harder passes run around them: two of a code's three
/// finder patterns (one alone is too common in photos of grids, tiles and text). A grid the
/// first pass located but could not read gets the harder passes whatever the count.
pub const MIN_FINDERS: usize = 2;

/// Search `img` for QR codes as `opts` says.
pub fn search(img: &GrayImage, opts: &QrSearch) -> QrOutcome {
    // One deadline for the harder passes of every variant.
    let deadline = Instant::now() + MAX_EXTRA_TIME;
    let mut out = search_as_is(img, opts, deadline);
    if !opts.variants || !out.codes.is_empty() {
        return out;
    }
    // The variants only where the gate saw finder-like structures (a photo without any
    // costs one more gate scan): for the stretched image those of the image as it is, for the
    // inverted one those or its own (an inverted code's finders can show in either).
    let structures = out.finder_candidates >= MIN_FINDERS || out.undecoded > 0;
    if let Some(s) = stretched(img, false).filter(|_| structures) {
        if Instant::now() >= deadline {
            out.timed_out = true;
            return out;
        }
        out.absorb(search_as_is(&s, opts, deadline));
        if !out.codes.is_empty() {
            return out;
        }
    }
    if Instant::now() >= deadline {
        out.timed_out = true;
        return out;
    }
    let inv = stretched(img, true).unwrap_or_else(|| {
        let mut i = img.clone();
        imageops::invert(&mut i);
        i
    });
    let (w, h) = inv.dimensions();
    let dark = local_threshold(&inv, gate_radius(w, h), 0);
    if structures || finder_candidates(&inv, &dark).len() >= MIN_FINDERS {
        out.absorb(search_as_is(&inv, opts, deadline));
    }
    out
}

impl QrOutcome {
    /// Add what another search of the same image found.
    fn absorb(&mut self, o: QrOutcome) {
        for c in o.codes {
            add_code(&mut self.codes, c);
        }
        self.undecoded = self.undecoded.max(o.undecoded);
        self.finder_candidates = self.finder_candidates.max(o.finder_candidates);
        self.extra_passes = self.extra_passes.saturating_add(o.extra_passes);
        self.timed_out |= o.timed_out;
    }
}

/// Add `c` unless a code with the same payload is there already.
fn add_code(codes: &mut Vec<Code>, c: Code) {
    if codes.len() < MAX_CODES && !codes.iter().any(|k| k.payload == c.payload) {
        codes.push(c);
    }
}

/// Grey levels below the 1st and above the 99th percentile clipped and the rest stretched
/// to 0..=255 (`invert`: 255..=0), when that range is narrower than 160 levels; `None` when
/// the image already spans most of the range (and `invert` is false).
fn stretched(img: &GrayImage, invert: bool) -> Option<GrayImage> {
    let mut hist = [0u64; 256];
    for p in img.pixels() {
        if let Some(h) = hist.get_mut(usize::from(p.0[0])) {
            *h += 1;
        }
    }
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let pct = |q: u64| -> u8 {
        let mut acc = 0u64;
        for (v, c) in hist.iter().enumerate() {
            acc += c;
            if acc * 100 >= n * q {
                return u8::try_from(v).unwrap_or(255);
            }
        }
        255
    };
    let (lo, hi) = (pct(1), pct(99));
    let narrow = hi.saturating_sub(lo) < 160;
    if !narrow && !invert {
        return None;
    }
    let (lo, hi) = if narrow && hi > lo {
        (f32::from(lo), f32::from(hi))
    } else {
        (0.0, 255.0)
    };
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let v = ((f32::from(p.0[0]) - lo) * 255.0 / (hi - lo))
            .round()
            .clamp(0.0, 255.0);
        // Clamped to 0..=255, so the cast cannot truncate.
        let v = v as u8;
        p.0[0] = if invert { 255 - v } else { v };
    }
    Some(out)
}

/// One search of `img` as it is: `rqrr`, then the gated passes.
fn search_as_is(img: &GrayImage, opts: &QrSearch, deadline: Instant) -> QrOutcome {
    let (codes, located) = rqrr_pass(img, None, opts.grey_reread);
    let mut out = QrOutcome {
        codes,
        undecoded: located.len(),
        ..QrOutcome::default()
    };
    let read: Vec<BBox> = out.codes.iter().map(|c| c.bbox).collect();
    let look_for_more = opts.more_codes && opts.gate && !opts.passes.is_empty();
    if !read.is_empty() && !look_for_more {
        return out;
    }
    let (w, h) = img.dimensions();
    if opts.whole_image_2x && w.max(h) <= super::UPSCALE_MAX_SIDE {
        let big = imageops::resize(
            img,
            w.saturating_mul(2),
            h.saturating_mul(2),
            imageops::FilterType::Triangle,
        );
        let (codes, undecoded) = rqrr_pass(&big, None, opts.grey_reread);
        out.extra_passes = out.extra_passes.saturating_add(1);
        out.undecoded = out.undecoded.max(undecoded.len());
        if !codes.is_empty() {
            out.codes = codes.into_iter().map(|c| c.scaled_down(0, 0, 2)).collect();
            return out;
        }
    }
    if opts.passes.is_empty() {
        return out;
    }
    let finders = if opts.gate || opts.passes.contains(&Pass::Finders) {
        let dark = local_threshold(img, gate_radius(w, h), 0);
        finder_candidates(img, &dark)
    } else {
        Vec::new()
    };
    // Finder candidates of codes already read are not new codes.
    let finders: Vec<Finder> = finders
        .into_iter()
        .filter(|f| !read.iter().any(|b| within(b, f.x, f.y)))
        .collect();
    out.finder_candidates = finders.len();
    let enough = finders.len() >= MIN_FINDERS;
    if opts.gate && !enough && located.is_empty() {
        return out;
    }
    if opts.passes.contains(&Pass::Finders) && enough {
        out.extra_passes = out.extra_passes.saturating_add(1);
        let before = out.codes.len();
        for c in read_from_finders(img, &finders, opts.perspective, deadline) {
            add_code(&mut out.codes, c);
        }
        if out.codes.len() > before {
            return out;
        }
        // Codes of 5 px per module or more: the gate's window fits inside a finder's 3 x 3
        // centre, so noise splits its runs and the candidates are misplaced or missing. These
        // codes are `rqrr`'s, but it misses them at low contrast with noise (its threshold,
        // 5% under the moving average, speckles a grey quiet zone on lighter paper). Again
        // with a window three times as wide.
        if opts.wide_finders && Instant::now() < deadline {
            let wide = local_threshold(img, 3 * gate_radius(w, h), 0);
            let big: Vec<Finder> = finder_candidates(img, &wide)
                .into_iter()
                .filter(|f| !read.iter().any(|b| within(b, f.x, f.y)))
                .collect();
            if big.len() >= MIN_FINDERS {
                for c in read_from_finders(img, &big, opts.perspective, deadline) {
                    add_code(&mut out.codes, c);
                }
                if out.codes.len() > before {
                    return out;
                }
            }
        }
    }
    let regions = if opts.gate {
        let finders = if enough { finders } else { Vec::new() };
        regions_around(&finders, &located, w, h)
    } else {
        vec![BBox { x: 0, y: 0, w, h }]
    };
    for region in regions {
        let crop = imageops::crop_imm(img, region.x, region.y, region.w, region.h).to_image();
        for pass in opts.passes.iter().filter(|p| **p != Pass::Finders) {
            if Instant::now() >= deadline {
                out.timed_out = true;
                return out;
            }
            out.extra_passes = out.extra_passes.saturating_add(1);
            let (codes, undecoded, factor) = run_pass(&crop, *pass, opts.grey_reread);
            out.undecoded = out.undecoded.max(undecoded.len());
            if !codes.is_empty() {
                for c in codes {
                    add_code(&mut out.codes, c.scaled_down(region.x, region.y, factor));
                }
                break;
            }
        }
        if out.codes.len() >= MAX_CODES {
            break;
        }
    }
    out.codes.truncate(MAX_CODES);
    out
}

impl Code {
    /// From a crop at `(x0, y0)` upscaled by `factor` back to the searched image.
    fn scaled_down(self, x0: u32, y0: u32, factor: u32) -> Code {
        let f = factor.max(1);
        Code {
            bbox: BBox {
                x: x0.saturating_add(self.bbox.x / f),
                y: y0.saturating_add(self.bbox.y / f),
                w: self.bbox.w / f,
                h: self.bbox.h / f,
            },
            ..self
        }
    }
}

/// The factor a pass may use on a `w` x `h` region: as asked, lowered to stay within
/// [`MAX_UPSCALED_PIXELS`].
fn factor_for(w: u32, h: u32, asked: u32) -> u32 {
    let px = u64::from(w).saturating_mul(u64::from(h)).max(1);
    let mut f = asked.max(1);
    while f > 1 && px.saturating_mul(u64::from(f) * u64::from(f)) > MAX_UPSCALED_PIXELS {
        f -= 1;
    }
    f
}

fn upscale(img: &GrayImage, f: u32) -> GrayImage {
    if f <= 1 {
        return img.clone();
    }
    let (w, h) = img.dimensions();
    imageops::resize(
        img,
        w.saturating_mul(f),
        h.saturating_mul(f),
        imageops::FilterType::CatmullRom,
    )
}

/// `p + amount * (p - blur(p))`, clamped: undoes part of a Gaussian blur of about `sigma`.
fn sharpen(img: &GrayImage, sigma: f32, amount: f32) -> GrayImage {
    let soft = imageops::blur(img, sigma);
    let mut out = img.clone();
    for (o, s) in out.pixels_mut().zip(soft.pixels()) {
        let p = f32::from(o.0[0]);
        let v = p + amount * (p - f32::from(s.0[0]));
        // Clamped to 0..=255 first, so the cast cannot truncate.
        o.0[0] = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

fn run_pass(crop: &GrayImage, pass: Pass, reread: bool) -> (Vec<Code>, Vec<BBox>, u32) {
    let (w, h) = crop.dimensions();
    match pass {
        // Run once per image by `search`, not per region.
        Pass::Finders => (Vec::new(), Vec::new(), 1),
        Pass::Upscale(f) => {
            let f = factor_for(w, h, f);
            let up = upscale(crop, f);
            let (c, u) = rqrr_pass(&up, None, reread);
            (c, u, f)
        }
        Pass::SharpenUpscale(f) => {
            let f = factor_for(w, h, f);
            let up = upscale(&sharpen(crop, 1.0, 1.5), f);
            let (c, u) = rqrr_pass(&up, None, reread);
            (c, u, f)
        }
        Pass::Binarise(f) => {
            let f = factor_for(w, h, f);
            let up = upscale(crop, f);
            // A window of about three modules at 2-3 px per module before upscaling.
            let dark = local_threshold(&up, 4 * f.max(1), 2);
            let (c, u) = rqrr_pass(&up, Some(&dark), reread);
            (c, u, f)
        }
    }
}

/// One `rqrr` detection on `img` (or on `bitmap`, dark = true, when given) and a decode of
/// each grid; with `reread`, grids that do not decode are read again from the grey image.
/// Returns the codes and the boxes of the grids located but not decoded.
fn rqrr_pass(img: &GrayImage, bitmap: Option<&[bool]>, reread: bool) -> (Vec<Code>, Vec<BBox>) {
    let (w, h) = img.dimensions();
    let (Ok(wu), Ok(hu)) = (usize::try_from(w), usize::try_from(h)) else {
        return (Vec::new(), Vec::new());
    };
    // rqrr indexes past the end of an empty image.
    if wu == 0 || hu == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut prepared = match bitmap {
        Some(bits) => rqrr::PreparedImage::prepare_from_bitmap(wu, hu, |x, y| {
            y.checked_mul(wu)
                .and_then(|i| i.checked_add(x))
                .and_then(|i| bits.get(i))
                .copied()
                .unwrap_or(false)
        }),
        None => rqrr::PreparedImage::prepare_from_greyscale(wu, hu, |x, y| {
            let (x, y) = (u32::try_from(x).unwrap_or(0), u32::try_from(y).unwrap_or(0));
            img.get_pixel_checked(x, y).map_or(255, |p| p.0[0])
        }),
    };
    let grids = prepared.detect_grids();
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for g in grids.iter().take(MAX_CODES) {
        let bbox = bounds_box(&g.bounds, w, h);
        let mut bytes = Vec::new();
        if g.decode_to(&mut bytes).is_ok() {
            out.push(Code {
                payload: String::from_utf8_lossy(&bytes).into_owned(),
                bbox,
            });
            continue;
        }
        match reread
            .then(|| reread_grey(img, &g.bounds, g.grid.size()))
            .flatten()
        {
            Some(bytes) => out.push(Code {
                payload: String::from_utf8_lossy(&bytes).into_owned(),
                bbox,
            }),
            None => failed.push(bbox),
        }
    }
    (out, failed)
}

fn bounds_box(bounds: &[rqrr::Point; 4], w: u32, h: u32) -> BBox {
    let wi = i32::try_from(w).unwrap_or(i32::MAX);
    let hi = i32::try_from(h).unwrap_or(i32::MAX);
    let xs = bounds.iter().map(|p| p.x.clamp(0, wi));
    let ys = bounds.iter().map(|p| p.y.clamp(0, hi));
    let (x0, x1) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
    let (y0, y1) = (ys.clone().min().unwrap_or(0), ys.max().unwrap_or(0));
    BBox {
        x: u32::try_from(x0).unwrap_or(0),
        y: u32::try_from(y0).unwrap_or(0),
        w: u32::try_from(x1.saturating_sub(x0)).unwrap_or(0),
        h: u32::try_from(y1.saturating_sub(y0)).unwrap_or(0),
    }
}

// --- grey re-read ------------------------------------------------------------------------

/// The projective map from the unit square onto a quadrilateral (Heckbert's square-to-quad):
/// `(0,0), (1,0), (1,1), (0,1)` go to the four corners in that order.
#[derive(Debug, Clone, Copy)]
struct Homography([f64; 8]);

impl Homography {
    fn square_to_quad(q: [(f64, f64); 4]) -> Option<Self> {
        let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = q;
        let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
        let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
        let den = dx1 * dy2 - dx2 * dy1;
        if den.abs() < 1e-9 {
            return None;
        }
        let g = (sx * dy2 - dx2 * sy) / den;
        let h = (dx1 * sy - sx * dy1) / den;
        Some(Self([
            x1 - x0 + g * x1,
            x3 - x0 + h * x3,
            x0,
            y1 - y0 + g * y1,
            y3 - y0 + h * y3,
            y0,
            g,
            h,
        ]))
    }

    fn map(&self, u: f64, v: f64) -> (f64, f64) {
        let [a, b, c, d, e, f, g, h] = self.0;
        let den = g * u + h * v + 1.0;
        ((a * u + b * v + c) / den, (d * u + e * v + f) / den)
    }
}

/// Bilinear sample at `(x, y)`, where pixel `(i, j)` sits at `(i, j)` as in `rqrr`'s
/// coordinates; outside the image reads as white (a quiet zone).
fn sample(img: &GrayImage, x: f64, y: f64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |dx: f64, dy: f64| -> f64 {
        let (xx, yy) = (x0 + dx, y0 + dy);
        if xx < 0.0 || yy < 0.0 || xx >= f64::from(u32::MAX) || yy >= f64::from(u32::MAX) {
            return 255.0;
        }
        // In range of u32 (checked above); the fraction was floored away.
        img.get_pixel_checked(xx as u32, yy as u32)
            .map_or(255.0, |p| f64::from(p.0[0]))
    };
    at(0.0, 0.0) * (1.0 - fx) * (1.0 - fy)
        + at(1.0, 0.0) * fx * (1.0 - fy)
        + at(0.0, 1.0) * (1.0 - fx) * fy
        + at(1.0, 1.0) * fx * fy
}

/// Shifts of the sampling grid tried, in modules: the corners `rqrr` reports are rounded to
/// whole pixels, and its perspective is fitted to its own binarised image.
const SHIFTS: [(f64, f64); 5] = [(0.0, 0.0), (0.2, 0.0), (-0.2, 0.0), (0.0, 0.2), (0.0, -0.2)];

/// Read a located grid again from the grey image. `bounds` are `rqrr`'s corners of the grid,
/// which it places at grid coordinates (0,0), (n+1,0), (n+1,n+1), (0,n+1) for a grid of `n`
/// modules whose module (x, y) is centred at (x + 0.5, y + 0.5).
fn reread_grey(img: &GrayImage, bounds: &[rqrr::Point; 4], n: usize) -> Option<Vec<u8>> {
    let q = bounds.map(|p| (f64::from(p.x), f64::from(p.y)));
    let hom = Homography::square_to_quad(q)?;
    // n <= 177 (checked in read_modules), exact in f64.
    let side = n as f64 + 1.0;
    read_modules(img, n, &|u, v| hom.map(u / side, v / side))
}

/// Sample an `n` x `n` grid from the grey image through `to_image` (grid coordinates, module
/// (x, y) centred at (x + 0.5, y + 0.5), to pixels); threshold it as sampled and after
/// [`sharpen_modules`] by 1 and 2, each against the modules around it and against one
/// global split; shift it by a fifth of a module four ways; decode: the first that decodes
/// wins. At most 5 x 6 decode attempts, each failing fast on the format check or RS.
fn read_modules(
    img: &GrayImage,
    n: usize,
    to_image: &dyn Fn(f64, f64) -> (f64, f64),
) -> Option<Vec<u8>> {
    if !(21..=177).contains(&n) {
        return None;
    }
    let mut values = vec![0.0f64; n.saturating_mul(n)];
    for (dx, dy) in SHIFTS {
        for (i, v) in values.iter_mut().enumerate() {
            // n <= 177: exact in f64.
            let (mx, my) = ((i % n) as f64, (i / n) as f64);
            let mut acc = 0.0;
            for (ox, oy) in [
                (0.0, 0.0),
                (0.2, 0.2),
                (-0.2, 0.2),
                (0.2, -0.2),
                (-0.2, -0.2),
            ] {
                let (x, y) = to_image(mx + 0.5 + dx + ox, my + 0.5 + dy + oy);
                acc += sample(img, x, y);
            }
            *v = acc / 5.0;
        }
        let sharp = sharpen_modules(&values, n, 1.0);
        let sharper = sharpen_modules(&values, n, 2.0);
        for dark in [
            local_module_threshold(&values, n),
            global_threshold(&values),
            local_module_threshold(&sharp, n),
            global_threshold(&sharp),
            local_module_threshold(&sharper, n),
            global_threshold(&sharper),
        ] {
            let grid = rqrr::SimpleGrid::from_func(n, |x, y| {
                y.checked_mul(n)
                    .and_then(|i| i.checked_add(x))
                    .and_then(|i| dark.get(i))
                    .copied()
                    .unwrap_or(false)
            });
            let mut bytes = Vec::new();
            if rqrr::Grid::new(grid).decode_to(&mut bytes).is_ok() {
                return Some(bytes);
            }
        }
    }
    None
}

// --- codes read from three finder candidates ---------------------------------------------

/// Most finder candidates (by hits) combined into triples: 12 make 220 triples, most of which
/// fail the shape test at once.
const MAX_TRIPLE_FINDERS: usize = 12;

/// Read codes straight from finder candidates: three that sit like a code's corners (two
/// sides about equal, at about a right angle, similar module sizes) define an affine map
/// from the grid to the image; the version is estimated from their distance (tried one and
/// two versions either side), and the modules are sampled from the grey image. This reads
/// codes `rqrr` cannot locate because blur closed its timing or alignment patterns. With
/// `perspective`, triples that sit like a tilted code's finders are then read through a
/// homography ([`read_perspective`]).
fn read_from_finders(
    img: &GrayImage,
    finders: &[Finder],
    perspective: bool,
    deadline: Instant,
) -> Vec<Code> {
    let top: Vec<Finder> = finders.iter().take(MAX_TRIPLE_FINDERS).copied().collect();
    let k = top.len();
    let mut used = vec![false; k];
    let mut out = Vec::new();
    // The affine map on the triples that sit like a flat code's finders first, then, with
    // what time is left, the homography on those that sit like a code's in perspective
    // (fewer: each costs a search for the alignment pattern).
    for (loose, cap) in [(false, MAX_TRIPLES), (true, MAX_PERSPECTIVE_TRIPLES)] {
        if loose && !perspective {
            break;
        }
        let mut tried = 0usize;
        for i in 0..k {
            for j in (i + 1)..k {
                for l in (j + 1)..k {
                    if tried >= cap || Instant::now() >= deadline {
                        return out;
                    }
                    if [i, j, l]
                        .iter()
                        .any(|x| used.get(*x).copied().unwrap_or(true))
                    {
                        continue;
                    }
                    let (Some(a), Some(b), Some(c)) = (top.get(i), top.get(j), top.get(l)) else {
                        continue;
                    };
                    let triple = [*a, *b, *c];
                    if corner_of(triple, loose).is_none() {
                        continue;
                    }
                    tried += 1;
                    let Some(code) = read_triple(img, triple, loose) else {
                        continue;
                    };
                    for x in [i, j, l] {
                        if let Some(u) = used.get_mut(x) {
                            *u = true;
                        }
                    }
                    out.push(code);
                }
            }
        }
    }
    out
}

/// The corner finder of three, with the other two in clockwise order (top-right, then
/// bottom-left, as the code is read), when they sit like a code's finders.
fn corner_of(t: [Finder; 3], loose: bool) -> Option<(Finder, Finder, Finder)> {
    // Loose: a keystone tilt of a quarter makes one side about 1.4 times the other, the
    // angle about 100 degrees and the far finders' modules half as large again.
    let (max_ratio, max_cos, max_modules) = if loose {
        (LOOSE_RATIO, LOOSE_COS, 1.7)
    } else {
        (1.2, 0.26, 1.6)
    };
    let mods = t.map(|f| f.module);
    let (lo, hi) = (
        mods.iter().copied().fold(f32::MAX, f32::min),
        mods.iter().copied().fold(0.0, f32::max),
    );
    if hi > max_modules * lo {
        return None;
    }
    let [p, q, r] = t;
    let mut best: Option<(f32, (Finder, Finder, Finder))> = None;
    for (a, b, c) in [(p, q, r), (q, r, p), (r, p, q)] {
        let (abx, aby) = (b.x - a.x, b.y - a.y);
        let (acx, acy) = (c.x - a.x, c.y - a.y);
        let (lab, lac) = (abx.hypot(aby), acx.hypot(acy));
        if lab < 1.0 || lac < 1.0 {
            continue;
        }
        let cos = (abx * acx + aby * acy) / (lab * lac);
        let ratio = lab.max(lac) / lab.min(lac);
        // Strict: sides within 20% and 90 degrees within about 15 (rounding, a little
        // perspective).
        if ratio > max_ratio || cos.abs() > max_cos {
            continue;
        }
        // Side at least 14 modules (version 1 is 14 between finder centres).
        if lab.min(lac) < 12.0 * lo {
            continue;
        }
        if best.as_ref().is_none_or(|(bc, _)| cos.abs() < *bc) {
            // Clockwise in image coordinates (y down): top-right, then bottom-left.
            let order = if abx * acy - aby * acx > 0.0 {
                (a, b, c)
            } else {
                (a, c, b)
            };
            best = Some((cos.abs(), order));
        }
    }
    best.map(|(_, o)| o)
}

/// The grid-to-image map of an `n`-module code whose finder centres (grid (3.5, 3.5),
/// (n - 3.5, 3.5), (3.5, n - 3.5)) are at `pts`.
fn affine(n: usize, pts: [(f64, f64); 3]) -> impl Fn(f64, f64) -> (f64, f64) {
    let [(ax, ay), (bx, by), (cx, cy)] = pts;
    // n >= 21 here: span >= 14.
    let span = n as f64 - 7.0;
    let (ux, uy) = ((bx - ax) / span, (by - ay) / span);
    let (vx, vy) = ((cx - ax) / span, (cy - ay) / span);
    move |gx: f64, gy: f64| {
        let (du, dv) = (gx - 3.5, gy - 3.5);
        (ax + du * ux + dv * vx, ay + du * uy + dv * vy)
    }
}

/// The timing patterns' modules (row and column 6 between the finders) and whether each is
/// dark.
fn timing_modules(n: usize) -> Vec<(usize, usize, bool)> {
    (8..n.saturating_sub(8))
        .flat_map(|i| [(i, 6, i % 2 == 0), (6, i, i % 2 == 0)])
        .collect()
}

/// Largest version the finders pass reads (57 modules; at 2-3 px per module, 115-170 px).
/// Larger small-module codes are rare, and each version tried costs sampling and decoding.
const MAX_FINDER_VERSION: u8 = 10;

/// Least mean difference between the light and dark timing modules (grey levels) before a
/// grid is sampled: a 2 px code blurred by sigma 1 keeps about 60.
const MIN_TIMING_CONTRAST: f64 = 15.0;

/// Most triples given the refinement and a read per image (each costs about a millisecond).
const MAX_TRIPLES: usize = 24;

/// Time the harder passes may take on one image, all variants (stretched, inverted)
/// together, after which the search returns what it has (the stage's own budget is checked
/// only between steps).
pub const MAX_EXTRA_TIME: std::time::Duration = std::time::Duration::from_millis(1500);

/// The modules every code of `n` modules has, and whether each is dark: the three finder
/// patterns, their light separators and the two timing patterns.
fn function_modules(n: usize) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    for (ox, oy) in [(0, 0), (n - 7, 0), (0, n - 7)] {
        for dy in 0..7usize {
            for dx in 0..7usize {
                let ring = dx.min(dy).min(6 - dx).min(6 - dy);
                out.push((ox + dx, oy + dy, ring != 1));
            }
        }
    }
    for i in 0..8 {
        out.extend([
            (7, i, false),
            (i, 7, false),
            (n - 8, i, false),
            (n - 8 + i, 7, false),
            (i, n - 8, false),
            (7, n - 8 + i, false),
        ]);
    }
    for i in 8..(n - 8) {
        out.push((i, 6, i % 2 == 0));
        out.push((6, i, i % 2 == 0));
    }
    out
}

/// How well the function modules sampled through `map` match: mean light minus mean dark.
fn fitness(
    img: &GrayImage,
    cells: &[(usize, usize, bool)],
    map: &dyn Fn(f64, f64) -> (f64, f64),
) -> f64 {
    let (mut light, mut nl, mut dark, mut nd) = (0.0, 0.0, 0.0, 0.0);
    for &(x, y, is_dark) in cells {
        // Grid coordinates <= 177: exact in f64.
        let (px, py) = map(x as f64 + 0.5, y as f64 + 0.5);
        let v = sample(img, px, py);
        if is_dark {
            dark += v;
            nd += 1.0;
        } else {
            light += v;
            nl += 1.0;
        }
    }
    light / f64::max(nl, 1.0) - dark / f64::max(nd, 1.0)
}

/// Move the three finder centres, one coordinate at a time, in steps from half a module
/// down to a sixteenth, keeping each move that improves [`fitness`]: the centres the
/// threshold scan found are a pixel or so off, which at 2 px per module misplaces the far
/// modules by half a module.
fn refine(
    img: &GrayImage,
    n: usize,
    mut pts: [(f64, f64); 3],
    module: f64,
) -> (f64, [(f64, f64); 3]) {
    let cells = function_modules(n);
    let mut best = fitness(img, &cells, &affine(n, pts));
    let mut step = module / 2.0;
    for _ in 0..5 {
        for k in 0..6 {
            for dir in [1.0, -1.0] {
                let mut trial = pts;
                if let Some(p) = trial.get_mut(k / 2) {
                    if k % 2 == 0 {
                        p.0 += dir * step;
                    } else {
                        p.1 += dir * step;
                    }
                }
                let f = fitness(img, &cells, &affine(n, trial));
                if f > best {
                    best = f;
                    pts = trial;
                }
            }
        }
        step /= 2.0;
    }
    (best, pts)
}

/// Read a code from three finders: through the affine map (`perspective` false), or through
/// a homography (true).
fn read_triple(img: &GrayImage, t: [Finder; 3], perspective: bool) -> Option<Code> {
    let (a, b, c) = corner_of(t, perspective)?;
    let side = (a.x - b.x).hypot(a.y - b.y) / 2.0 + (a.x - c.x).hypot(a.y - c.y) / 2.0;
    let module = (a.module + b.module + c.module) / 3.0;
    // Finder centres are 3.5 modules in from the code's sides: n - 7 modules apart.
    let estimate = ((side / module + 7.0 - 17.0) / 4.0).round();
    // Versions 1..=40; clamped, so the cast is exact.
    if estimate > f32::from(MAX_FINDER_VERSION) + 2.0 {
        return None;
    }
    let v0 = estimate.clamp(1.0, f32::from(MAX_FINDER_VERSION)) as i32;
    let mut versions: Vec<i32> = vec![v0, v0 - 1, v0 + 1, v0 - 2, v0 + 2];
    versions.retain(|v| (1..=i32::from(MAX_FINDER_VERSION)).contains(v));
    let start = [a, b, c].map(|f| (f64::from(f.x), f64::from(f.y)));
    let module = f64::from(module);
    if perspective {
        read_perspective(img, &versions, start, module)
    } else {
        read_affine(img, &versions, start, module)
    }
}

/// A refined geometry: its fitness, the grid size and the three finder centres.
type Fit = (f64, usize, [(f64, f64); 3]);

fn read_affine(
    img: &GrayImage,
    versions: &[i32],
    start: [(f64, f64); 3],
    module: f64,
) -> Option<Code> {
    // Each version's geometry refined against the patterns every code has; best fit first.
    let mut fits: Vec<Fit> = Vec::new();
    for v in versions {
        // 1..=40: the conversion cannot fail.
        let n = usize::try_from(17 + 4 * v).ok()?;
        let (fit, pts) = refine(img, n, start, module);
        fits.push((fit, n, pts));
    }
    fits.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, n, pts) in fits.into_iter().take(3) {
        // The timing patterns must alternate: finder-like blobs in a photo fit the finder
        // modules, rarely the timing between them.
        if fitness(img, &timing_modules(n), &affine(n, pts)) < MIN_TIMING_CONTRAST {
            continue;
        }
        if let Some(code) = read_code(img, n, &affine(n, pts)) {
            return Some(code);
        }
    }
    None
}

/// Sample and decode the `n`-module grid mapped by `map`; the code with its box.
fn read_code(img: &GrayImage, n: usize, map: &dyn Fn(f64, f64) -> (f64, f64)) -> Option<Code> {
    let bytes = read_modules(img, n, map)?;
    let (w, h) = img.dimensions();
    // n <= 177: exact.
    let nf = n as f64;
    let corners = [map(0.0, 0.0), map(nf, 0.0), map(nf, nf), map(0.0, nf)];
    let pts = corners.map(|(x, y)| rqrr::Point {
        // Clamped to the image, so the casts are exact.
        x: x.round().clamp(0.0, f64::from(w)) as i32,
        y: y.round().clamp(0.0, f64::from(h)) as i32,
    });
    Some(Code {
        payload: String::from_utf8_lossy(&bytes).into_owned(),
        bbox: bounds_box(&pts, w, h),
    })
}

// --- codes in perspective: a homography through the alignment pattern ---------------------

/// Loosest side ratio and angle (cosine) of three finders still tried as a code in
/// perspective.
const LOOSE_RATIO: f32 = 1.5;
const LOOSE_COS: f32 = 0.45;

/// Most triples given the homography per image (each costs a few milliseconds).
const MAX_PERSPECTIVE_TRIPLES: usize = 6;

/// Alignment-pattern candidates per triple given a homography each.
const MAX_ALIGNMENT_CANDIDATES: usize = 4;

/// Geometries (version x alignment candidate) refined per triple, best initial fit first.
const MAX_PERSPECTIVE_REFINES: usize = 3;

/// A projective map as a 3 x 3 matrix, row-major.
#[derive(Debug, Clone, Copy)]
struct Projective([f64; 9]);

impl Projective {
    fn from_square(h: &Homography) -> Self {
        let [a, b, c, d, e, f, g, hh] = h.0;
        Self([a, b, c, d, e, f, g, hh, 1.0])
    }

    fn inverse(&self) -> Option<Self> {
        let [a, b, c, d, e, f, g, h, i] = self.0;
        let (ca, cb, cc) = (e * i - f * h, f * g - d * i, d * h - e * g);
        let det = a * ca + b * cb + c * cc;
        if det.abs() < 1e-12 {
            return None;
        }
        let m = [
            ca,
            c * h - b * i,
            b * f - c * e,
            cb,
            a * i - c * g,
            c * d - a * f,
            cc,
            b * g - a * h,
            a * e - b * d,
        ];
        Some(Self(m.map(|x| x / det)))
    }

    /// `self` after `first`.
    fn after(&self, first: &Self) -> Self {
        let (l, r) = (self.0, first.0);
        let at = |m: &[f64; 9], i: usize| m.get(i).copied().unwrap_or(0.0);
        let mut out = [0.0; 9];
        for (k, o) in out.iter_mut().enumerate() {
            let (row, col) = (k / 3, k % 3);
            *o = (0..3)
                .map(|j| at(&l, row * 3 + j) * at(&r, j * 3 + col))
                .sum();
        }
        Self(out)
    }

    /// The map taking each of `src` to the same-numbered point of `dst`.
    fn between(src: [(f64, f64); 4], dst: [(f64, f64); 4]) -> Option<Self> {
        let s = Self::from_square(&Homography::square_to_quad(src)?).inverse()?;
        let d = Self::from_square(&Homography::square_to_quad(dst)?);
        Some(d.after(&s))
    }

    fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d, e, f, g, h, i] = self.0;
        let den = g * x + h * y + i;
        if den.abs() < 1e-12 {
            // Off the image: sampled as white.
            return (-1e9, -1e9);
        }
        ((a * x + b * y + c) / den, (d * x + e * y + f) / den)
    }
}

/// The alignment patterns' centre rows and columns (ISO/IEC 18004 table E.1), versions
/// 2 to [`MAX_FINDER_VERSION`].
const ALIGNMENT: [&[usize]; 9] = [
    &[6, 18],
    &[6, 22],
    &[6, 26],
    &[6, 30],
    &[6, 34],
    &[6, 22, 38],
    &[6, 24, 42],
    &[6, 26, 46],
    &[6, 28, 50],
];

/// The alignment patterns' modules of an `n`-module code and whether each is dark.
fn alignment_modules(n: usize) -> Vec<(usize, usize, bool)> {
    let Some(pos) = n
        .checked_sub(25)
        .filter(|d| d % 4 == 0)
        .and_then(|d| ALIGNMENT.get(d / 4))
    else {
        return Vec::new();
    };
    let (first, last) = (
        pos.first().copied().unwrap_or(0),
        pos.last().copied().unwrap_or(0),
    );
    let mut out = Vec::new();
    for &cy in *pos {
        for &cx in *pos {
            // The three corners under the finder patterns have none.
            let corner = (cx == first || cx == last) && (cy == first || cy == last);
            if corner && !(cx == last && cy == last) {
                continue;
            }
            for dy in 0..5usize {
                for dx in 0..5usize {
                    let ring = dx.abs_diff(2).max(dy.abs_diff(2));
                    out.push((cx + dx - 2, cy + dy - 2, ring != 1));
                }
            }
        }
    }
    out
}

/// Where the bottom-right alignment pattern may be: the points that look most like one
/// (a dark centre, a light ring, a dark ring) in a window around where the three finders
/// put it with no perspective, each sampled along the directions from the bottom-left and
/// the top-right finder (the code's bottom and right edges in perspective), at the finders'
/// module size and a quarter larger (the near side of a tilted code). Best first, at least two modules apart.
fn alignment_candidates(
    img: &GrayImage,
    [a, b, c]: [(f64, f64); 3],
    module: f64,
) -> Vec<(f64, f64)> {
    let (ux, uy) = (b.0 - a.0, b.1 - a.1);
    let (vx, vy) = (c.0 - a.0, c.1 - a.1);
    let (lu, lv) = (ux.hypot(uy), vx.hypot(vy));
    if lu < 1.0 || lv < 1.0 || module <= 0.0 {
        return Vec::new();
    }
    // The alignment centre is 3 modules in from the fourth "finder" along both axes.
    let cx = b.0 + vx - 3.0 * module * (ux / lu + vx / lv);
    let cy = b.1 + vy - 3.0 * module * (uy / lu + vy / lv);
    let step = 0.8 * module;
    let reach_u = 0.45 * lu;
    let reach_v = 0.45 * lv;
    // Step counts: at most a few thousand positions (the reach is under 60 modules).
    let ku = (reach_u / step).ceil().min(60.0) as i32;
    let kv = (reach_v / step).ceil().min(60.0) as i32;
    let mut scored: Vec<(f64, (f64, f64))> = Vec::new();
    for i in -ku..=ku {
        for j in -kv..=kv {
            let (si, sj) = (f64::from(i) * step / lu, f64::from(j) * step / lv);
            let (px, py) = (cx + si * ux + sj * vx, cy + si * uy + sj * vy);
            let (ex, ey) = (px - c.0, py - c.1);
            let (fx, fy) = (px - b.0, py - b.1);
            let (le, lf) = (ex.hypot(ey), fx.hypot(fy));
            if le < 1.0 || lf < 1.0 {
                continue;
            }
            let (ex, ey, fx, fy) = (ex / le, ey / le, fx / lf, fy / lf);
            let mut best = f64::MIN;
            for k in [1.0, 1.25] {
                let m = k * module;
                let (mut light, mut dark) = (0.0, 0.0);
                for dy in -2i32..=2 {
                    for dx in -2i32..=2 {
                        let (ddx, ddy) = (f64::from(dx) * m, f64::from(dy) * m);
                        let v = sample(img, px + ddx * ex + ddy * fx, py + ddx * ey + ddy * fy);
                        if dx.abs().max(dy.abs()) == 1 {
                            light += v;
                        } else {
                            dark += v;
                        }
                    }
                }
                best = best.max(light / 8.0 - dark / 17.0);
            }
            if best >= MIN_TIMING_CONTRAST {
                scored.push((best, (px, py)));
            }
        }
    }
    scored.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (_, p) in scored {
        if out.len() >= MAX_ALIGNMENT_CANDIDATES {
            break;
        }
        if out
            .iter()
            .all(|q| (q.0 - p.0).hypot(q.1 - p.1) >= 2.0 * module)
        {
            out.push(p);
        }
    }
    out
}

/// The grid-to-image homography of an `n`-module code whose finder centres and
/// bottom-right alignment centre (grid (n - 6.5, n - 6.5)) are at `pts`.
fn homography(n: usize, pts: [(f64, f64); 4]) -> Option<Projective> {
    // n >= 25 here.
    let nf = n as f64;
    let [a, b, c, d] = pts;
    Projective::between(
        [
            (3.5, 3.5),
            (nf - 3.5, 3.5),
            (nf - 6.5, nf - 6.5),
            (3.5, nf - 3.5),
        ],
        [a, b, d, c],
    )
}

/// [`refine`] for the homography's four points.
fn refine_perspective(
    img: &GrayImage,
    n: usize,
    cells: &[(usize, usize, bool)],
    mut pts: [(f64, f64); 4],
    module: f64,
) -> (f64, [(f64, f64); 4]) {
    let score = |p: [(f64, f64); 4]| {
        homography(n, p).map_or(f64::MIN, |h| fitness(img, cells, &|x, y| h.map(x, y)))
    };
    let mut best = score(pts);
    let mut step = module / 2.0;
    for _ in 0..5 {
        for k in 0..8 {
            for dir in [1.0, -1.0] {
                let mut trial = pts;
                if let Some(p) = trial.get_mut(k / 2) {
                    if k % 2 == 0 {
                        p.0 += dir * step;
                    } else {
                        p.1 += dir * step;
                    }
                }
                let f = score(trial);
                if f > best {
                    best = f;
                    pts = trial;
                }
            }
        }
        step /= 2.0;
    }
    (best, pts)
}

/// A refined homography: its fitness, the grid size, the finder and alignment centres.
type FitPerspective = (f64, usize, [(f64, f64); 4]);

/// Read a code in perspective from its three finder centres (`start`): the fourth point of
/// a homography is the bottom-right alignment pattern (versions 2 and up), found near where
/// the finders put it and refined with the finders against every function pattern.
fn read_perspective(
    img: &GrayImage,
    versions: &[i32],
    start: [(f64, f64); 3],
    module: f64,
) -> Option<Code> {
    let found = alignment_candidates(img, start, module);
    if found.is_empty() {
        return None;
    }
    let [a, b, c] = start;
    let mut tries: Vec<FitPerspective> = Vec::new();
    for v in versions.iter().filter(|v| **v >= 2) {
        let n = usize::try_from(17 + 4 * v).ok()?;
        let mut cells = function_modules(n);
        cells.extend(alignment_modules(n));
        for d in &found {
            let pts = [a, b, c, *d];
            if let Some(h) = homography(n, pts) {
                tries.push((fitness(img, &cells, &|x, y| h.map(x, y)), n, pts));
            }
        }
    }
    tries.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut fits: Vec<FitPerspective> = tries
        .into_iter()
        .take(MAX_PERSPECTIVE_REFINES)
        .map(|(_, n, pts)| {
            let mut cells = function_modules(n);
            cells.extend(alignment_modules(n));
            let (f, p) = refine_perspective(img, n, &cells, pts, module);
            (f, n, p)
        })
        .collect();
    fits.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, n, pts) in fits.into_iter().take(2) {
        let Some(h) = homography(n, pts) else {
            continue;
        };
        let map = |x: f64, y: f64| h.map(x, y);
        // Both the timing patterns and the alignment patterns must show: a sample and a
        // decode cost several milliseconds, and blobs in a photo fit the finders.
        if fitness(img, &timing_modules(n), &map) < MIN_TIMING_CONTRAST
            || fitness(img, &alignment_modules(n), &map) < MIN_TIMING_CONTRAST
        {
            continue;
        }
        if let Some(code) = read_code(img, n, &map) {
            return Some(code);
        }
    }
    None
}

/// Each module pushed away from the mean of its four neighbours by `amount` times the
/// difference: blur spreads a module into its neighbours, so a light module between dark ones
/// reads too dark; this undoes part of that (an unsharp mask on the module grid).
fn sharpen_modules(values: &[f64], n: usize, amount: f64) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let v = values.get(i).copied().unwrap_or(255.0);
            let (x, y) = (i % n, i / n);
            let mut sum = 0.0;
            let mut count = 0.0;
            for (nx, ny) in [
                (x.checked_sub(1), Some(y)),
                (Some(x + 1).filter(|a| *a < n), Some(y)),
                (Some(x), y.checked_sub(1)),
                (Some(x), Some(y + 1).filter(|b| *b < n)),
            ] {
                if let (Some(nx), Some(ny)) = (nx, ny)
                    && let Some(w) = values.get(ny * n + nx)
                {
                    sum += w;
                    count += 1.0;
                }
            }
            if count == 0.0 {
                v
            } else {
                v + amount * (v - sum / count)
            }
        })
        .collect()
}

/// Dark where a module is darker than the mean of the 7 x 7 modules around it (the data
/// area is masked to about half dark, so that mean sits between the two levels).
fn local_module_threshold(values: &[f64], n: usize) -> Vec<bool> {
    const R: usize = 3;
    (0..values.len())
        .map(|i| {
            let (x, y) = (i % n, i / n);
            let (mut sum, mut count) = (0.0, 0.0);
            for yy in y.saturating_sub(R)..=(y.saturating_add(R)).min(n.saturating_sub(1)) {
                for xx in x.saturating_sub(R)..=(x.saturating_add(R)).min(n.saturating_sub(1)) {
                    if let Some(v) = values.get(yy.saturating_mul(n).saturating_add(xx)) {
                        sum += v;
                        count += 1.0;
                    }
                }
            }
            values.get(i).copied().unwrap_or(255.0) < sum / f64::max(count, 1.0)
        })
        .collect()
}

/// Dark below the midpoint of the two means that best split the values (Otsu's threshold,
/// found by trying every value as the split).
fn global_threshold(values: &[f64]) -> Vec<bool> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = sorted.iter().sum();
    let count = sorted.len() as f64;
    let (mut best, mut split) = (f64::MIN, 128.0);
    let mut below = 0.0;
    for (k, v) in sorted.iter().enumerate() {
        below += v;
        let nb = (k + 1) as f64;
        let na = count - nb;
        if na <= 0.0 {
            break;
        }
        let (mb, ma) = (below / nb, (total - below) / na);
        let between = nb * na * (mb - ma) * (mb - ma);
        if between > best {
            best = between;
            split = *v;
        }
    }
    values.iter().map(|v| *v <= split).collect()
}

// --- local threshold and the finder gate ---------------------------------------------------

/// The gate's threshold window radius: 1/40 of the shorter side, 7 to 10 px. The window must
/// stay near a finder pattern at 2-3 px per module (14-21 px wide) for its light ring to
/// stay light against the mean; larger codes are read by the first pass.
fn gate_radius(w: u32, h: u32) -> u32 {
    (w.min(h) / 40).clamp(7, 10)
}

/// Dark (true) where a pixel is more than `delta` below the mean of the `(2r+1)^2` box
/// around it (clipped at the borders). Row-major. Running column sums keep the memory at one
/// row of sums, whatever the image size.
pub(crate) fn local_threshold(img: &GrayImage, r: u32, delta: u8) -> Vec<bool> {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let r = r as usize;
    let raw = img.as_raw();
    let row = |y: usize| raw.get(y.saturating_mul(wu)..y.saturating_mul(wu).saturating_add(wu));
    let mut cols = vec![0u32; wu];
    // Rows [0, r] are in the sums before row 0 is thresholded.
    for y in 0..=r.min(hu.saturating_sub(1)) {
        if let Some(px) = row(y) {
            for (c, p) in cols.iter_mut().zip(px) {
                *c = c.saturating_add(u32::from(*p));
            }
        }
    }
    let mut out = Vec::with_capacity(wu.saturating_mul(hu));
    let mut prefix = vec![0u64; wu.saturating_add(1)];
    for y in 0..hu {
        let top = y.saturating_sub(r);
        let bottom = y.saturating_add(r).min(hu.saturating_sub(1));
        let rows_in = (bottom - top + 1) as u64;
        let mut acc = 0u64;
        for (p, c) in prefix.iter_mut().skip(1).zip(&cols) {
            acc = acc.saturating_add(u64::from(*c));
            *p = acc;
        }
        if let Some(px) = row(y) {
            for (x, p) in px.iter().enumerate() {
                let x0 = x.saturating_sub(r);
                let x1 = x.saturating_add(r).min(wu.saturating_sub(1));
                let sum = prefix
                    .get(x1.saturating_add(1))
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(prefix.get(x0).copied().unwrap_or(0));
                let n = (x1 - x0 + 1) as u64 * rows_in;
                // p + delta < mean, in integers: (p + delta) * n < sum.
                out.push((u64::from(*p) + u64::from(delta)).saturating_mul(n) < sum);
            }
        }
        // Slide the column window down one row.
        if let Some(px) = row(y.saturating_add(r).saturating_add(1)) {
            for (c, p) in cols.iter_mut().zip(px) {
                *c = c.saturating_add(u32::from(*p));
            }
        }
        if y >= r
            && let Some(px) = row(y - r)
        {
            for (c, p) in cols.iter_mut().zip(px) {
                *c = c.saturating_sub(u32::from(*p));
            }
        }
    }
    out
}

/// A finder-pattern candidate: its centre and module size, in pixels, and how many rows
/// confirmed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finder {
    pub x: f32,
    pub y: f32,
    pub module: f32,
    pub hits: u32,
}

/// Most candidate hits collected per image before clustering stops growing (a photo of a
/// chequerboard has thousands; the gate only needs to know there are some).
const MAX_HITS: usize = 20_000;

/// Least difference in grey level between a candidate's dark centre and its light ring: a
/// blurred finder at 2 px per module keeps about 60 of 235; thresholded noise on a flat wall
/// has a few.
const MIN_CONTRAST: f32 = 24.0;

/// Runs 1:1:3:1:1 (dark first) along rows of `dark` (the threshold of `img`) with a light
/// ring clearly lighter than the centre, confirmed by the same proportions down the centre
/// column, clustered; clusters confirmed by at least two rows are returned, most hits first.
pub(crate) fn finder_candidates(img: &GrayImage, dark: &[bool]) -> Vec<Finder> {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let grey = img.as_raw();
    let at = |x: usize, y: usize| {
        y.checked_mul(wu)
            .and_then(|i| i.checked_add(x))
            .and_then(|i| dark.get(i))
            .copied()
            .unwrap_or(false)
    };
    let mut hits: Vec<(f32, f32, f32)> = Vec::new();
    let mut runs: Vec<(usize, usize)> = Vec::with_capacity(64); // (start, length)
    for y in 0..hu {
        runs.clear();
        let Some(row) = dark.get(y.saturating_mul(wu)..y.saturating_add(1).saturating_mul(wu))
        else {
            break;
        };
        let (mut start, mut colour) = (0usize, row.first().copied().unwrap_or(false));
        for (x, px) in row.iter().enumerate() {
            if *px != colour {
                runs.push((start, x - start));
                (start, colour) = (x, *px);
            }
        }
        runs.push((start, wu.saturating_sub(start)));
        for win in runs.windows(5) {
            let Ok(&[(first, l0), (_, l1), (cs, cl), (_, l3), (_, l4)]) =
                <&[(usize, usize); 5]>::try_from(win)
            else {
                continue;
            };
            if !at(first, y) {
                continue;
            }
            let Some(m) = proportions([l0, l1, cl, l3, l4]) else {
                continue;
            };
            let mean = |from: usize, len: usize| -> f32 {
                let at = y.saturating_mul(wu).saturating_add(from);
                let sum: u32 = grey
                    .get(at..at.saturating_add(len))
                    .unwrap_or(&[])
                    .iter()
                    .map(|p| u32::from(*p))
                    .sum();
                sum as f32 / len.max(1) as f32
            };
            let (light1, light2) = (mean(first + l0, l1), mean(cs + cl, l3));
            if light1.min(light2) - mean(cs, cl) < MIN_CONTRAST {
                continue;
            }
            let cx = cs + cl / 2;
            let Some((cy, mv)) = vertical(&at, cx, y, hu, m) else {
                continue;
            };
            if hits.len() < MAX_HITS {
                hits.push((cx as f32 + 0.5, cy, (m + mv) / 2.0));
            }
        }
    }
    cluster(&hits)
}

/// The module size when five run lengths are in proportion 1:1:3:1:1 (loosely: blur and
/// thresholding move edges by a pixel at 2 px per module).
fn proportions([a, b, c, d, e]: [usize; 5]) -> Option<f32> {
    let total = (a + b + c + d + e) as f32;
    // Below 1.4 px per module no reader reads the code anyway.
    if total < 10.0 {
        return None;
    }
    let m = total / 7.0;
    let one = |r: usize| {
        let r = r as f32;
        r >= 0.4 * m && r <= 1.8 * m
    };
    let three = c as f32 >= 2.0 * m && c as f32 <= 4.5 * m;
    (one(a) && one(b) && one(d) && one(e) && three).then_some(m)
}

/// Down the column `x` from the dark pixel at `(x, y)`: the same five runs, centred; their
/// centre row and module size.
fn vertical(
    at: &impl Fn(usize, usize) -> bool,
    x: usize,
    y: usize,
    h: usize,
    m: f32,
) -> Option<(f32, f32)> {
    if !at(x, y) {
        return None;
    }
    // Longest run looked at in either direction: a generous 4 modules.
    let cap = (4.0 * m).ceil() as usize + 2;
    let run = |mut yy: usize, up: bool, dark: bool| -> (usize, usize) {
        let mut n = 0;
        loop {
            let next = if up {
                yy.checked_sub(1)
            } else {
                Some(yy + 1).filter(|v| *v < h)
            };
            match next {
                Some(v) if at(x, v) == dark && n < cap => {
                    n += 1;
                    yy = v;
                }
                _ => return (n, yy),
            }
        }
    };
    let (up_c, top) = run(y, true, true);
    let (down_c, bottom) = run(y, false, true);
    let c = up_c + down_c + 1;
    let (b, t2) = run(top, true, false);
    let (a, _) = run(t2, true, true);
    let (d, b2) = run(bottom, false, false);
    let (e, _) = run(b2, false, true);
    let mv = proportions([a, b, c, d, e])?;
    if mv < 0.5 * m || mv > 2.0 * m {
        return None;
    }
    Some((top as f32 + c as f32 / 2.0, mv))
}

/// Group hits closer than two modules (and 3 px); keep groups of two hits or more.
fn cluster(hits: &[(f32, f32, f32)]) -> Vec<Finder> {
    let mut found: Vec<Finder> = Vec::new();
    for &(x, y, m) in hits {
        let near = found.iter().position(|f| {
            let d = (2.0 * f.module.max(m)).max(3.0);
            (f.x - x).abs() <= d && (f.y - y).abs() <= d
        });
        let full = found.len() >= 4096;
        match near.and_then(|i| found.get_mut(i)) {
            Some(f) => {
                let k = f.hits as f32;
                f.x = (f.x * k + x) / (k + 1.0);
                f.y = (f.y * k + y) / (k + 1.0);
                f.module = (f.module * k + m) / (k + 1.0);
                f.hits = f.hits.saturating_add(1);
            }
            None if !full => found.push(Finder {
                x,
                y,
                module: m,
                hits: 1,
            }),
            None => {}
        }
    }
    found.retain(|f| f.hits >= 2);
    found.sort_by_key(|f| std::cmp::Reverse(f.hits));
    found
}

/// Regions to search harder: a square around each finder reaching 60 modules (a version 10
/// code seen from one finder) and at least 48 px, and each grid located but not decoded with
/// a margin of a quarter of its size, merged where they overlap, clipped, the
/// [`MAX_REGIONS`] with the most finder hits (located grids first).
fn regions_around(finders: &[Finder], located: &[BBox], w: u32, h: u32) -> Vec<BBox> {
    let mut boxes: Vec<(BBox, u32)> = Vec::new();
    for b in located {
        let (mx, my) = (b.w / 4 + 8, b.h / 4 + 8);
        let x0 = b.x.saturating_sub(mx);
        let y0 = b.y.saturating_sub(my);
        let x1 = b.x.saturating_add(b.w).saturating_add(mx).min(w);
        let y1 = b.y.saturating_add(b.h).saturating_add(my).min(h);
        if x1 > x0 && y1 > y0 {
            let region = BBox {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
            };
            boxes.push((region, u32::MAX / 2));
        }
    }
    for f in finders {
        let reach = (60.0 * f.module).max(48.0);
        let x0 = (f.x - reach).max(0.0);
        let y0 = (f.y - reach).max(0.0);
        let x1 = (f.x + reach).min(w as f32);
        let y1 = (f.y + reach).min(h as f32);
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        // Within 0..=w and 0..=h after the clamps above.
        let b = BBox {
            x: x0 as u32,
            y: y0 as u32,
            w: (x1 - x0) as u32,
            h: (y1 - y0) as u32,
        };
        boxes.push((b, f.hits));
    }
    // Merge until no two overlap.
    let mut merged = true;
    while merged {
        merged = false;
        'outer: for i in 0..boxes.len() {
            for j in (i + 1)..boxes.len() {
                let (Some(a), Some(b)) = (boxes.get(i).copied(), boxes.get(j).copied()) else {
                    continue;
                };
                if overlaps(a.0, b.0) {
                    if let Some(slot) = boxes.get_mut(i) {
                        *slot = (a.0.union(b.0), a.1.saturating_add(b.1));
                    }
                    boxes.swap_remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
    }
    boxes.sort_by_key(|b| std::cmp::Reverse(b.1));
    boxes
        .into_iter()
        .take(MAX_REGIONS)
        .map(|(b, _)| b)
        .filter(|b| b.w > 0 && b.h > 0)
        .collect()
}

/// Whether `(x, y)` lies in `b` widened by an eighth of its size on each side.
fn within(b: &BBox, x: f32, y: f32) -> bool {
    let (mx, my) = (b.w as f32 / 8.0, b.h as f32 / 8.0);
    x >= b.x as f32 - mx
        && y >= b.y as f32 - my
        && x <= b.x.saturating_add(b.w) as f32 + mx
        && y <= b.y.saturating_add(b.h) as f32 + my
}

fn overlaps(a: BBox, b: BBox) -> bool {
    a.x < b.x.saturating_add(b.w)
        && b.x < a.x.saturating_add(a.w)
        && a.y < b.y.saturating_add(b.h)
        && b.y < a.y.saturating_add(a.h)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_square_maps_onto_its_corners() {
        let q = [(10.0, 5.0), (50.0, 8.0), (55.0, 60.0), (7.0, 52.0)];
        let hom = Homography::square_to_quad(q).unwrap();
        for ((u, v), (x, y)) in [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
            .into_iter()
            .zip(q)
        {
            let (mx, my) = hom.map(u, v);
            assert!((mx - x).abs() < 1e-9 && (my - y).abs() < 1e-9, "({u}, {v})");
        }
    }

    #[test]
    fn a_drawn_finder_pattern_is_a_candidate_and_flat_grey_is_not() {
        // A finder pattern at 3 px per module on white, twice (two finders pass the gate).
        let mut img = GrayImage::from_pixel(120, 60, image::Luma([230]));
        for cx in [20u32, 80] {
            for y in 0..21u32 {
                for x in 0..21u32 {
                    let (mx, my) = (x / 3, y / 3);
                    let ring = mx.min(my).min(6 - mx).min(6 - my);
                    let dark = ring != 1;
                    if dark {
                        img.put_pixel(cx + x, 20 + y, image::Luma([20]));
                    }
                }
            }
        }
        let dark = local_threshold(&img, gate_radius(120, 60), 0);
        let found = finder_candidates(&img, &dark);
        assert_eq!(found.len(), 2, "{found:?}");
        for f in &found {
            assert!((f.module - 3.0).abs() < 0.8, "{f:?}");
            assert!((f.y - 30.5).abs() < 2.0, "{f:?}");
        }
        let flat = GrayImage::from_pixel(120, 60, image::Luma([128]));
        let dark = local_threshold(&flat, 7, 0);
        assert!(finder_candidates(&flat, &dark).is_empty());
    }

    /// The harder passes never make more than [`MAX_UPSCALED_PIXELS`] from one region.
    #[test]
    fn the_upscale_factor_stays_within_the_pixel_cap() {
        assert_eq!(factor_for(300, 300, 3), 3);
        assert_eq!(factor_for(1500, 1000, 3), 2);
        assert_eq!(factor_for(4000, 3000, 3), 1);
        assert_eq!(factor_for(0, 0, 3), 3);
    }

    /// Degenerate sizes reach every pass (gate off) without a panic.
    #[test]
    fn tiny_images_are_searched_without_a_panic() {
        for (w, h) in [(0, 0), (1, 1), (0, 5), (3, 200), (200, 3), (9, 9)] {
            let img =
                GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8]));
            for search in [
                QrSearch::default(),
                QrSearch {
                    gate: false,
                    ..QrSearch::default()
                },
                QrSearch::rqrr_2x(),
            ] {
                let out = super::search(&img, &search);
                assert!(out.codes.is_empty(), "{w}x{h}");
            }
        }
    }

    #[test]
    fn the_local_threshold_marks_dark_on_light_only() {
        let mut img = GrayImage::from_pixel(30, 30, image::Luma([200]));
        img.put_pixel(15, 15, image::Luma([40]));
        let dark = local_threshold(&img, 3, 2);
        assert_eq!(dark.iter().filter(|d| **d).count(), 1);
        assert!(dark[15 * 30 + 15]);
    }
}
