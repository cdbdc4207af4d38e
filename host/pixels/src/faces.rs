//! Faces: MediaPipe's BlazeFace network when its model is installed ([`crate::facenet`],
//! the default since it measured precision 1.00 against the cascade's 0.67 at the same recall,
//! in a third of the time; BENCHMARKS.md, "Faces"), else OpenCV's boosted Haar cascades,
//! evaluated in pure Rust ([`FaceDetector`] holds either).
//!
//! Why this and not a binding or a neural model: Debian's `opencv-data` package ships the
//! trained cascades as XML (frontal faces among them) under Intel's BSD-style licence, so
//! the model comes from a package the project installs, nothing is fetched at run time, and
//! no `libopencv-dev`/clang build is needed. The evaluator is the classic Viola-Jones one, as
//! OpenCV's `CascadeClassifier::detectMultiScale` runs it: an image pyramid (each level a
//! bilinear resized copy), integral and squared-integral images, a 20 x 20 window (alt2)
//! slid at a step of 2 pixels (1 once the level is less than half the size), each window's
//! variance normalised
//! over its inner rectangle, stages of boosted trees rejecting early, and the raw hits
//! grouped as `groupRectangles` groups them (similar boxes merged; groups with fewer than
//! `min_neighbors` members dropped; small groups inside stronger ones dropped).
//!
//! What it is not: a modern detector. Haar cascades find upright, roughly frontal faces of
//! at least ~20 px in the searched image (10 px in images under 800 px, searched at twice
//! their size); profiles, strongly tilted heads, tiny faces in a crowd and faces in the dark
//! are missed, and textured backgrounds produce some false hits. The measured precision and recall are in BENCHMARKS.md ("Faces").
//!
//! Hostile cascade files (a replaced or truncated XML) give a [`CascadeError`], never a panic:
//! every count is bounded and every index checked when the file is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{GrayImage, imageops::FilterType};

use crate::facenet::FaceNet;
use crate::finding::BBox;

/// Where Debian's `opencv-data` puts the frontal face cascade used (and older layouts).
/// `haarcascade_frontalface_alt2.xml` (20 x 20 window, 20 stages of 2-node trees) and not
/// `_default` (24 x 24, stumps): on the labelled photos it had about twice the precision at
/// a similar recall (BENCHMARKS.md, "Faces").
pub const CASCADE_CANDIDATES: [&str; 3] = [
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml",
    "/usr/share/opencv/haarcascades/haarcascade_frontalface_alt2.xml",
    "/usr/local/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml",
];

/// Environment variable naming another cascade file (tests and evaluations).
pub const CASCADE_ENV: &str = "PROOFPIX_FACE_CASCADE";

/// Largest cascade file read (the biggest OpenCV ships is 2.7 MB).
pub const MAX_CASCADE_BYTES: u64 = 16 * 1024 * 1024;
const MAX_WINDOW: u32 = 64;
const MAX_STAGES: usize = 1000;
const MAX_WEAK_TOTAL: usize = 100_000;
const MAX_NODES_PER_TREE: usize = 64;
const MAX_FEATURES: usize = 100_000;
const MAX_DEPTH: usize = 32;
/// Raw window hits kept per image before grouping (a pathological image cannot grow memory).
pub const MAX_RAW_HITS: usize = 200_000;
/// Most faces reported per image.
pub const MAX_FACES: usize = 256;

/// Why a cascade file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CascadeError {
    /// No cascade file on this machine.
    #[error(
        "skipped: cascade not installed (apt install opencv-data); looked for {0}; faces not searched"
    )]
    NotInstalled(String),
    /// The file could not be read.
    #[error("face cascade {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The file is not a cascade this evaluator runs.
    #[error("face cascade: {0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> CascadeError {
    CascadeError::Invalid(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    left: i32,
    right: i32,
    feature: u32,
    threshold: f32,
}

#[derive(Debug, Clone, PartialEq)]
struct Weak {
    nodes: Vec<Node>,
    leaves: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
struct Stage {
    threshold: f32,
    weak: Vec<Weak>,
}

/// One rectangle of a Haar feature, in window coordinates, and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    weight: f32,
}

/// A boosted Haar cascade (OpenCV's new-style XML, `stageType` BOOST, `featureType` HAAR,
/// upright features only).
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    width: u32,
    height: u32,
    stages: Vec<Stage>,
    features: Vec<Vec<Rect>>,
}

#[derive(Default)]
struct Partial {
    stage_type: Option<String>,
    feature_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    stages: Vec<Stage>,
    features: Vec<Vec<Rect>>,
    tilted: bool,
    weak_total: usize,
}

fn numbers<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>, CascadeError> {
    s.split_ascii_whitespace()
        .map(|t| {
            t.parse::<T>()
                .map_err(|_| invalid(format!("{what}: {t:?} is not a number")))
        })
        .collect()
}

fn finite(v: f32, what: &str) -> Result<f32, CascadeError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(invalid(format!("{what} is not finite")))
    }
}

impl Cascade {
    /// Read a cascade from OpenCV's XML.
    pub fn from_xml(xml: &str) -> Result<Self, CascadeError> {
        use quick_xml::Reader;
        use quick_xml::events::Event;

        if xml.contains("opencv-haar-classifier") {
            return Err(invalid(
                "old-style cascade format (opencv-haar-classifier) is not supported; use a file from opencv-data 4.x",
            ));
        }
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut path: Vec<String> = Vec::new();
        let mut p = Partial::default();
        loop {
            let ev = reader.read_event().map_err(|e| {
                invalid(format!(
                    "XML error at byte {}: {e}",
                    reader.buffer_position()
                ))
            })?;
            match ev {
                Event::Start(e) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    path.push(name);
                    if path.len() > MAX_DEPTH {
                        return Err(invalid("XML nested too deeply"));
                    }
                    p.open(&path)?;
                }
                Event::Empty(e) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    path.push(name);
                    p.open(&path)?;
                    path.pop();
                }
                Event::End(_) => {
                    path.pop();
                }
                Event::Text(t) => {
                    let s = t
                        .decode()
                        .map_err(|e| invalid(format!("text is not UTF-8: {e}")))?;
                    p.text(&path, &s)?;
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !path.is_empty() {
            return Err(invalid("truncated: the XML ends inside an element"));
        }
        p.finish()
    }

    /// Read a cascade file (at most [`MAX_CASCADE_BYTES`]).
    pub fn from_file(path: &Path) -> Result<Self, CascadeError> {
        let bytes = crate::read_bounded(path, MAX_CASCADE_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|e| CascadeError::Io {
            path: path.display().to_string(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        Self::from_xml(&text)
    }

    /// The detection window (20 x 20 for alt2, 24 x 24 for default).
    pub fn window(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.stages.len()
    }
}

impl Partial {
    fn open(&mut self, path: &[String]) -> Result<(), CascadeError> {
        let tail: Vec<&str> = path.iter().rev().take(2).map(String::as_str).collect();
        match tail.as_slice() {
            ["_", "stages"] => {
                if self.stages.len() >= MAX_STAGES {
                    return Err(invalid(format!("more than {MAX_STAGES} stages")));
                }
                self.stages.push(Stage {
                    threshold: f32::NAN,
                    weak: Vec::new(),
                });
            }
            ["_", "weakClassifiers"] => {
                self.weak_total += 1;
                if self.weak_total > MAX_WEAK_TOTAL {
                    return Err(invalid(format!(
                        "more than {MAX_WEAK_TOTAL} weak classifiers"
                    )));
                }
                let stage = self
                    .stages
                    .last_mut()
                    .ok_or_else(|| invalid("weak classifier outside a stage"))?;
                stage.weak.push(Weak {
                    nodes: Vec::new(),
                    leaves: Vec::new(),
                });
            }
            ["_", "features"] => {
                if self.features.len() >= MAX_FEATURES {
                    return Err(invalid(format!("more than {MAX_FEATURES} features")));
                }
                self.features.push(Vec::new());
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, path: &[String], s: &str) -> Result<(), CascadeError> {
        let tail: Vec<&str> = path.iter().rev().take(3).map(String::as_str).collect();
        let dim = |s: &str, what: &str| -> Result<u32, CascadeError> {
            let v: u32 = s
                .trim()
                .parse()
                .map_err(|_| invalid(format!("{what} {s:?} is not a number")))?;
            if v == 0 || v > MAX_WINDOW {
                return Err(invalid(format!(
                    "window {what} {v} is outside 1..={MAX_WINDOW}"
                )));
            }
            Ok(v)
        };
        match tail.as_slice() {
            ["stageType", "cascade", ..] => self.stage_type = Some(s.trim().to_owned()),
            ["featureType", "cascade", ..] => self.feature_type = Some(s.trim().to_owned()),
            ["width", "cascade", ..] => self.width = Some(dim(s, "width")?),
            ["height", "cascade", ..] => self.height = Some(dim(s, "height")?),
            ["stageThreshold", "_", "stages"] => {
                let v: Vec<f32> = numbers(s, "stageThreshold")?;
                let [t] = v.as_slice() else {
                    return Err(invalid("stageThreshold must be one number"));
                };
                if let Some(stage) = self.stages.last_mut() {
                    stage.threshold = finite(*t, "stageThreshold")?;
                }
            }
            ["internalNodes", "_", "weakClassifiers"] => {
                if self.feature_type.as_deref() == Some("LBP") {
                    return Err(invalid(
                        "LBP cascades are not supported; use a HAAR cascade",
                    ));
                }
                let weak = self.last_weak()?;
                let v: Vec<f64> = numbers(s, "internalNodes")?;
                if v.is_empty() || !v.len().is_multiple_of(4) || v.len() / 4 > MAX_NODES_PER_TREE {
                    return Err(invalid(format!(
                        "internalNodes has {} numbers; expected 4 per node, at most {MAX_NODES_PER_TREE} nodes",
                        v.len()
                    )));
                }
                let int = |x: f64| -> Result<i32, CascadeError> {
                    if x.fract() == 0.0 && x.abs() <= 1e7 {
                        Ok(x as i32)
                    } else {
                        Err(invalid(format!("internalNodes: {x} is not an index")))
                    }
                };
                for n in v.chunks_exact(4) {
                    let &[l, r, f, t] = n else { continue };
                    let feature = int(f)?;
                    weak.nodes.push(Node {
                        left: int(l)?,
                        right: int(r)?,
                        feature: u32::try_from(feature)
                            .map_err(|_| invalid("negative feature index"))?,
                        threshold: finite(t as f32, "node threshold")?,
                    });
                }
            }
            ["leafValues", "_", "weakClassifiers"] => {
                let weak = self.last_weak()?;
                let v: Vec<f32> = numbers(s, "leafValues")?;
                for x in &v {
                    finite(*x, "leaf value")?;
                }
                weak.leaves = v;
            }
            ["_", "rects", "_"] => {
                let v: Vec<f64> = numbers(s, "rect")?;
                let [x, y, w, h, weight] = v.as_slice() else {
                    return Err(invalid(format!(
                        "a feature rect has {} numbers, expected 5",
                        v.len()
                    )));
                };
                let coord = |c: f64| -> Result<u32, CascadeError> {
                    if c.fract() == 0.0 && (0.0..=f64::from(MAX_WINDOW)).contains(&c) {
                        Ok(c as u32)
                    } else {
                        Err(invalid(format!("rect coordinate {c} outside the window")))
                    }
                };
                let feature = self
                    .features
                    .last_mut()
                    .ok_or_else(|| invalid("rect outside a feature"))?;
                if feature.len() >= 3 {
                    return Err(invalid("a feature has more than 3 rects"));
                }
                feature.push(Rect {
                    x: coord(*x)?,
                    y: coord(*y)?,
                    w: coord(*w)?,
                    h: coord(*h)?,
                    weight: finite(*weight as f32, "rect weight")?,
                });
            }
            ["tilted", "_", "features"] if s.trim() != "0" => self.tilted = true,
            _ => {}
        }
        Ok(())
    }

    fn last_weak(&mut self) -> Result<&mut Weak, CascadeError> {
        self.stages
            .last_mut()
            .and_then(|s| s.weak.last_mut())
            .ok_or_else(|| invalid("tree data outside a weak classifier"))
    }

    fn finish(self) -> Result<Cascade, CascadeError> {
        match self.stage_type.as_deref() {
            Some("BOOST") => {}
            other => return Err(invalid(format!("stageType {other:?}, expected BOOST"))),
        }
        match self.feature_type.as_deref() {
            Some("HAAR") => {}
            Some("LBP") => {
                return Err(invalid(
                    "LBP cascades are not supported; use a HAAR cascade",
                ));
            }
            other => return Err(invalid(format!("featureType {other:?}, expected HAAR"))),
        }
        if self.tilted {
            return Err(invalid(
                "tilted (45-degree) Haar features are not supported; use an upright cascade such as haarcascade_frontalface_default.xml",
            ));
        }
        let (Some(width), Some(height)) = (self.width, self.height) else {
            return Err(invalid("no window width/height"));
        };
        if self.stages.is_empty() {
            return Err(invalid("no stages"));
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.len() < 2 {
                return Err(invalid(format!(
                    "feature {i} has {} rects, expected 2 or 3",
                    f.len()
                )));
            }
            for r in f {
                if r.w == 0
                    || r.h == 0
                    || r.x.saturating_add(r.w) > width
                    || r.y.saturating_add(r.h) > height
                {
                    return Err(invalid(format!(
                        "feature {i} has a rect outside the window"
                    )));
                }
            }
        }
        let nfeat = self.features.len();
        for (si, s) in self.stages.iter().enumerate() {
            if !s.threshold.is_finite() {
                return Err(invalid(format!("stage {si} has no threshold")));
            }
            if s.weak.is_empty() {
                return Err(invalid(format!("stage {si} has no weak classifiers")));
            }
            for w in &s.weak {
                let n = w.nodes.len();
                if n == 0 || w.leaves.len() != n + 1 {
                    return Err(invalid(format!(
                        "stage {si}: a tree with {n} nodes has {} leaves, expected {}",
                        w.leaves.len(),
                        n + 1
                    )));
                }
                for node in &w.nodes {
                    if node.feature as usize >= nfeat {
                        return Err(invalid(format!(
                            "stage {si}: feature index {} but only {nfeat} features",
                            node.feature
                        )));
                    }
                    for child in [node.left, node.right] {
                        // > 0: another node of this tree; <= 0: leaf number -child.
                        let ok = if child > 0 {
                            (child as usize) < n
                        } else {
                            (child.unsigned_abs() as usize) <= n
                        };
                        if !ok {
                            return Err(invalid(format!(
                                "stage {si}: tree child {child} outside the tree"
                            )));
                        }
                    }
                }
                // Every path must end: a child that points back (or to itself) would loop.
                for (k, node) in w.nodes.iter().enumerate() {
                    for child in [node.left, node.right] {
                        if child > 0 && (child as usize) <= k {
                            return Err(invalid(format!(
                                "stage {si}: tree node {k} points back to node {child}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(Cascade {
            width,
            height,
            stages: self.stages,
            features: self.features,
        })
    }
}

/// Summed-area tables of one image: `sum[y][x]` is the sum of pixels above and left of
/// (x, y), one row and column larger than the image; `sq` the same for squared values.
#[derive(Debug, Clone, PartialEq)]
pub struct Integral {
    /// Image width + 1.
    pub stride: usize,
    /// Image height + 1.
    pub rows: usize,
    /// Sums (wrapping u32: a rectangle's sum is exact while it fits, which a 24 x 24 window's
    /// always does).
    pub sum: Vec<u32>,
    /// Sums of squares.
    pub sq: Vec<u64>,
}

impl Integral {
    /// The tables of `img`.
    pub fn new(img: &GrayImage) -> Self {
        let (w, h) = img.dimensions();
        let stride = w as usize + 1;
        let rows = h as usize + 1;
        let mut sum = vec![0u32; stride * rows];
        let mut sq = vec![0u64; stride * rows];
        for (y, row) in img.rows().enumerate() {
            let mut rs = 0u32;
            let mut rq = 0u64;
            let base = (y + 1) * stride;
            for (x, px) in row.enumerate() {
                let v = u32::from(px.0[0]);
                rs = rs.wrapping_add(v);
                rq += u64::from(v * v);
                let i = base + x + 1;
                let above_s = sum.get(i - stride).copied().unwrap_or(0);
                let above_q = sq.get(i - stride).copied().unwrap_or(0);
                if let Some(s) = sum.get_mut(i) {
                    *s = above_s.wrapping_add(rs);
                }
                if let Some(q) = sq.get_mut(i) {
                    *q = above_q + rq;
                }
            }
        }
        Self {
            stride,
            rows,
            sum,
            sq,
        }
    }

    /// Sum of the pixels in the rectangle (x, y, w, h); 0 outside the image.
    pub fn rect_sum(&self, x: usize, y: usize, w: usize, h: usize) -> u32 {
        let at = |xx: usize, yy: usize| self.sum.get(yy * self.stride + xx).copied().unwrap_or(0);
        at(x + w, y + h)
            .wrapping_sub(at(x, y + h))
            .wrapping_sub(at(x + w, y))
            .wrapping_add(at(x, y))
    }

    /// Sum of the squared pixels in the rectangle.
    pub fn rect_sq(&self, x: usize, y: usize, w: usize, h: usize) -> u64 {
        let at = |xx: usize, yy: usize| self.sq.get(yy * self.stride + xx).copied().unwrap_or(0);
        (at(x + w, y + h) + at(x, y))
            .wrapping_sub(at(x, y + h))
            .wrapping_sub(at(x + w, y))
    }
}

/// A feature rect as four corner offsets into an [`Integral`] of a given stride.
#[derive(Debug, Clone, Copy)]
struct OptRect {
    p: [usize; 4],
    weight: f32,
}

/// A feature's rects (2 or 3; unused ones have weight 0 and read offset 0 four times).
type OptFeature = [OptRect; 3];

fn opt_features(c: &Cascade, stride: usize) -> Vec<OptFeature> {
    c.features
        .iter()
        .map(|f| {
            let mut out = [OptRect {
                p: [0; 4],
                weight: 0.0,
            }; 3];
            for (slot, r) in out.iter_mut().zip(f) {
                let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                *slot = OptRect {
                    p: [
                        y * stride + x,
                        y * stride + x + w,
                        (y + h) * stride + x,
                        (y + h) * stride + x + w,
                    ],
                    weight: r.weight,
                };
            }
            out
        })
        .collect()
}

/// Bilinear resize without antialiasing, as OpenCV's `INTER_LINEAR` (which its cascade
/// detector uses for the pyramid): each output pixel reads four input pixels, so a level
/// costs its own size whatever the factor.
pub fn resize_bilinear(src: &GrayImage, nw: u32, nh: u32) -> GrayImage {
    let (w, h) = src.dimensions();
    let (nw, nh) = (nw.max(1), nh.max(1));
    if w == 0 || h == 0 {
        return GrayImage::new(nw, nh);
    }
    let sx = f64::from(w) / f64::from(nw);
    let sy = f64::from(h) / f64::from(nh);
    let raw = src.as_raw();
    let stride = w as usize;
    let px = |x: usize, y: usize| f32::from(raw.get(y * stride + x).copied().unwrap_or(0));
    // Column taps, computed once.
    let cols: Vec<(usize, usize, f32)> = (0..nw)
        .map(|dx| {
            let fx = ((f64::from(dx) + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx.floor() as usize).min(w as usize - 1);
            let x1 = (x0 + 1).min(w as usize - 1);
            (x0, x1, (fx - x0 as f64).clamp(0.0, 1.0) as f32)
        })
        .collect();
    let mut out = Vec::with_capacity(nw as usize * nh as usize);
    for dy in 0..nh {
        let fy = ((f64::from(dy) + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy.floor() as usize).min(h as usize - 1);
        let y1 = (y0 + 1).min(h as usize - 1);
        let ty = (fy - y0 as f64).clamp(0.0, 1.0) as f32;
        for &(x0, x1, tx) in &cols {
            let top = px(x0, y0) + (px(x1, y0) - px(x0, y0)) * tx;
            let bottom = px(x0, y1) + (px(x1, y1) - px(x0, y1)) * tx;
            out.push((top + (bottom - top) * ty).round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage::from_raw(nw, nh, out).unwrap_or_else(|| GrayImage::new(nw, nh))
}

/// One tree node with its feature's rects baked in as offsets into one level's integral.
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    rects: OptFeature,
    threshold: f32,
    left: i32,
    right: i32,
}

/// The cascade laid out flat for one integral stride: stages index trees, trees index nodes
/// and leaves, nodes carry their rects (no lookups through the feature table per window).
#[derive(Debug, Clone)]
struct Flat {
    /// (first tree, end of trees, threshold - 1e-5).
    stages: Vec<(usize, usize, f32)>,
    /// (first node, number of nodes, first leaf).
    trees: Vec<(usize, usize, usize)>,
    nodes: Vec<FlatNode>,
    leaves: Vec<f32>,
    /// Inner rectangle of the window (variance normalisation), and its area.
    norm: (usize, usize, f64),
}

impl Flat {
    fn new(c: &Cascade, stride: usize) -> Self {
        let feats = opt_features(c, stride);
        let empty = [OptRect {
            p: [0; 4],
            weight: 0.0,
        }; 3];
        let mut f = Flat {
            stages: Vec::with_capacity(c.stages.len()),
            trees: Vec::new(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            norm: (
                c.width as usize - 2,
                c.height as usize - 2,
                f64::from(c.width - 2) * f64::from(c.height - 2),
            ),
        };
        for stage in &c.stages {
            let first = f.trees.len();
            for w in &stage.weak {
                f.trees.push((f.nodes.len(), w.nodes.len(), f.leaves.len()));
                for n in &w.nodes {
                    f.nodes.push(FlatNode {
                        rects: feats.get(n.feature as usize).copied().unwrap_or(empty),
                        threshold: n.threshold,
                        left: n.left,
                        right: n.right,
                    });
                }
                f.leaves.extend_from_slice(&w.leaves);
            }
            // OpenCV subtracts 1e-5 from each stage threshold when it reads the file.
            f.stages
                .push((first, f.trees.len(), stage.threshold - 1e-5));
        }
        f
    }
}

/// Evaluate the cascade on the window whose top-left corner is (x, y) of the integral.
/// `Ok(())` when every stage accepts, `Err(stage)` at the first rejecting stage.
fn run_window(flat: &Flat, ii: &Integral, x: usize, y: usize) -> Result<(), usize> {
    let base = y * ii.stride + x;
    // Variance normalisation over the window's inner rectangle, as OpenCV does: a feature
    // value v passes a node when v / sd < threshold, tested here as v < threshold * sd.
    let (nw, nh, area) = flat.norm;
    let s = f64::from(ii.rect_sum(x + 1, y + 1, nw, nh));
    let q = ii.rect_sq(x + 1, y + 1, nw, nh) as f64;
    let nf = area * q - s * s;
    let sd = if nf > 0.0 { nf.sqrt() as f32 } else { 1.0 };
    let window = ii.sum.get(base..).unwrap_or(&[]);
    let at = |o: usize| window.get(o).copied().unwrap_or(0);
    for (si, &(t0, t1, threshold)) in flat.stages.iter().enumerate() {
        let mut total = 0.0f32;
        for &(first, len, leaf) in flat.trees.get(t0..t1).unwrap_or(&[]) {
            let mut idx: i32 = 0;
            // The parse checked that children point forward, so this ends within `len`
            // steps; the bound is belt and braces.
            for _ in 0..=len {
                let Some(node) = flat.nodes.get(first + idx as usize) else {
                    return Err(si);
                };
                let mut v = 0.0f32;
                for r in &node.rects {
                    let rs = at(r.p[3])
                        .wrapping_sub(at(r.p[1]))
                        .wrapping_sub(at(r.p[2]))
                        .wrapping_add(at(r.p[0]));
                    v += r.weight * rs as f32;
                }
                idx = if v < node.threshold * sd {
                    node.left
                } else {
                    node.right
                };
                if idx <= 0 {
                    break;
                }
            }
            total += flat
                .leaves
                .get(leaf + idx.unsigned_abs() as usize)
                .copied()
                .unwrap_or(0.0);
        }
        if total < threshold {
            return Err(si);
        }
    }
    Ok(())
}

/// A detected face, in the coordinates of the image given to [`FaceDetector::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// Where.
    pub bbox: BBox,
    /// How many raw window hits were merged into this face (OpenCV's "neighbours"; for the
    /// network, the overlapping detections merged).
    pub neighbors: u32,
    /// 0..=1. Cascade: rising with `neighbors`, `n / (n + 4)`, so the weakest face reported
    /// by default (6 hits) is 0.6 and 20 hits 0.83. Network: its best score among the merged
    /// detections (at least the threshold, 0.75 by default). A ranking, not a calibrated
    /// probability.
    pub confidence: f32,
}

/// Detection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceParams {
    /// Size ratio between pyramid levels (OpenCV's `scaleFactor`; default 1.1).
    pub scale_factor: f64,
    /// A face needs more than this many raw hits (OpenCV's `minNeighbors`; default 5).
    pub min_neighbors: u32,
    /// Longest side the detector searches (default 1280 px; larger images are downscaled,
    /// so faces smaller than about 20 / 1280 of the longer side are not found).
    pub max_side: u32,
    /// Images whose longer side is below this (default 800 px) are searched at twice their
    /// size, so faces of 10-20 px (a group in a small web image) can be found. 0: never.
    pub upscale_below: u32,
}

impl Default for FaceParams {
    fn default() -> Self {
        Self {
            scale_factor: 1.1,
            min_neighbors: 5,
            max_side: 1280,
            upscale_below: 800,
        }
    }
}

/// What the face search found, and what it did not search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaceSearch {
    /// Faces, largest first.
    pub faces: Vec<Face>,
    /// Why part of the search did not run (deadline, hit limit), if so.
    pub note: Option<String>,
}

/// A loaded face detector and the settings it runs with: the BlazeFace network when its model
/// is installed ([`crate::facenet`]), else the Haar cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceDetector {
    engine: Engine,
    params: FaceParams,
    source: PathBuf,
    /// Why the network is not used although one was configured (then the cascade runs).
    fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Engine {
    Haar(Cascade),
    Net(Arc<FaceNet>),
}

impl FaceDetector {
    /// The face network ([`FaceNet::locate`]: `PROOFPIX_FACE_MODEL` or the provisioned model)
    /// when it loads; else the Haar cascade ([`locate_cascade`](Self::locate_cascade)). A
    /// network that is configured (`PROOFPIX_FACE_MODEL` set) but does not load falls back to
    /// the cascade and says why in [`fallback`](Self::fallback).
    pub fn locate() -> Result<Self, CascadeError> {
        let configured = std::env::var_os(crate::facenet::MODEL_ENV).is_some();
        Self::net_or_cascade(FaceNet::locate(), configured)
    }

    /// The network when `net` loaded, else the cascade, with the reason when the network was
    /// `configured`.
    fn net_or_cascade(
        net: Result<FaceNet, CascadeError>,
        configured: bool,
    ) -> Result<Self, CascadeError> {
        match net {
            Ok(net) => Ok(Self::from_net(net)),
            Err(e) => {
                let mut d = Self::locate_cascade()?;
                if configured {
                    d.fallback = Some(format!(
                        "face network not used ({e}); the Haar cascade searched instead"
                    ));
                }
                Ok(d)
            }
        }
    }

    /// A detector running the face network.
    pub fn from_net(net: FaceNet) -> Self {
        let source = net.source().to_owned();
        Self {
            engine: Engine::Net(Arc::new(net)),
            params: FaceParams::default(),
            source,
            fallback: None,
        }
    }

    /// Whether this detector runs the network (else the Haar cascade).
    pub fn is_net(&self) -> bool {
        matches!(self.engine, Engine::Net(_))
    }

    /// Why a configured network is not used, if so.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The cascade named by `PROOFPIX_FACE_CASCADE`, else the first of
    /// [`CASCADE_CANDIDATES`] that exists. `Err(CascadeError::NotInstalled)` when none does.
    pub fn locate_cascade() -> Result<Self, CascadeError> {
        if let Some(p) = std::env::var_os(CASCADE_ENV) {
            return Self::from_file(Path::new(&p));
        }
        match CASCADE_CANDIDATES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
        {
            Some(p) => Self::from_file(p),
            None => Err(CascadeError::NotInstalled(CASCADE_CANDIDATES.join(", "))),
        }
    }

    /// A detector for the cascade in `path`, with default settings.
    pub fn from_file(path: &Path) -> Result<Self, CascadeError> {
        Ok(Self {
            engine: Engine::Haar(Cascade::from_file(path)?),
            params: FaceParams::default(),
            source: path.to_owned(),
            fallback: None,
        })
    }

    /// A detector for a cascade already read.
    pub fn new(cascade: Cascade, params: FaceParams) -> Self {
        Self {
            engine: Engine::Haar(cascade),
            params,
            source: PathBuf::new(),
            fallback: None,
        }
    }

    /// Run with these settings.
    pub fn with_params(mut self, params: FaceParams) -> Self {
        self.params = params;
        self
    }

    /// The settings.
    pub fn params(&self) -> &FaceParams {
        &self.params
    }

    /// The cascade file, if read from one.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Find faces in `img`. The search stops at `deadline` (between pyramid levels, largest
    /// faces first) and says which face sizes it did not search.
    pub fn detect(&self, img: &GrayImage, deadline: Option<Instant>) -> FaceSearch {
        match &self.engine {
            Engine::Haar(cascade) => self.detect_haar(cascade, img, deadline),
            Engine::Net(net) => net.detect_capped(img, deadline, self.params.max_side),
        }
    }

    fn detect_haar(
        &self,
        cascade: &Cascade,
        img: &GrayImage,
        deadline: Option<Instant>,
    ) -> FaceSearch {
        let (w0, h0) = img.dimensions();
        let long = w0.max(h0);
        let max_side = self.params.max_side.max(cascade.width);
        let (work, pre) = if long > max_side {
            let s = f64::from(long) / f64::from(max_side);
            let nw = ((f64::from(w0) / s).round() as u32).max(1);
            let nh = ((f64::from(h0) / s).round() as u32).max(1);
            (
                std::borrow::Cow::Owned(image::imageops::resize(img, nw, nh, FilterType::Triangle)),
                s,
            )
        } else if long < self.params.upscale_below {
            (
                std::borrow::Cow::Owned(resize_bilinear(
                    img,
                    w0.saturating_mul(2),
                    h0.saturating_mul(2),
                )),
                0.5,
            )
        } else {
            (std::borrow::Cow::Borrowed(img), 1.0)
        };
        let (w, h) = work.dimensions();
        let (ww, wh) = cascade.window();
        let sf = self.params.scale_factor.clamp(1.01, 4.0);
        // Pyramid levels, largest factor (biggest faces, smallest image) first, so a deadline
        // leaves out the small faces and not the big ones.
        let mut factors = Vec::new();
        let mut f = 1.0f64;
        loop {
            let sw = (f64::from(w) / f).round() as u32;
            let sh = (f64::from(h) / f).round() as u32;
            if sw < ww || sh < wh || factors.len() >= 200 {
                break;
            }
            factors.push(f);
            f *= sf;
        }
        factors.reverse();
        let mut raw: Vec<BBox> = Vec::new();
        let mut note = None;
        for (k, &f) in factors.iter().enumerate() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let smallest = (f64::from(ww) * f * pre).round();
                note = Some(format!(
                    "face search stopped by the time budget after {k} of {} scales; faces smaller than about {smallest} px not searched",
                    factors.len()
                ));
                break;
            }
            let sw = ((f64::from(w) / f).round() as u32).max(1);
            let sh = ((f64::from(h) / f).round() as u32).max(1);
            let level = if f == 1.0 {
                work.clone().into_owned()
            } else {
                resize_bilinear(work.as_ref(), sw, sh)
            };
            let ii = Integral::new(&level);
            let flat = Flat::new(cascade, ii.stride);
            let step = if f > 2.0 { 1 } else { 2 };
            let win_w = (f64::from(ww) * f).round() as u32;
            let win_h = (f64::from(wh) * f).round() as u32;
            let mut y = 0u32;
            while y + wh <= sh {
                let mut x = 0u32;
                while x + ww <= sw {
                    match run_window(&flat, &ii, x as usize, y as usize) {
                        Ok(()) => {
                            raw.push(BBox {
                                x: (f64::from(x) * f).round() as u32,
                                y: (f64::from(y) * f).round() as u32,
                                w: win_w,
                                h: win_h,
                            });
                        }
                        // Rejected by the first stage: OpenCV skips the next position too.
                        Err(0) => x += step,
                        Err(_) => {}
                    }
                    x += step;
                }
                y += step;
            }
            if raw.len() > MAX_RAW_HITS {
                raw.truncate(MAX_RAW_HITS);
                note = Some(format!(
                    "face search stopped after {MAX_RAW_HITS} raw hits (a pathological image); smaller scales not searched"
                ));
                break;
            }
        }
        let mut faces: Vec<Face> = group_rectangles(&raw, self.params.min_neighbors, 0.2)
            .into_iter()
            .map(|(b, n)| Face {
                bbox: if pre == 1.0 { b } else { b.scaled(pre, w0, h0) },
                neighbors: n,
                confidence: n as f32 / (n as f32 + 4.0),
            })
            .collect();
        faces.sort_by(|a, b| {
            (u64::from(b.bbox.w) * u64::from(b.bbox.h))
                .cmp(&(u64::from(a.bbox.w) * u64::from(a.bbox.h)))
        });
        faces.truncate(MAX_FACES);
        FaceSearch { faces, note }
    }

    /// [`detect`](Self::detect) with a time limit from now.
    pub fn detect_within(&self, img: &GrayImage, limit: Duration) -> FaceSearch {
        self.detect(img, Instant::now().checked_add(limit))
    }
}

fn similar(a: &BBox, b: &BBox, eps: f64) -> bool {
    let d = eps * (f64::from(a.w.min(b.w)) + f64::from(a.h.min(b.h))) * 0.5;
    let (ax, ay, bx, by) = (
        f64::from(a.x),
        f64::from(a.y),
        f64::from(b.x),
        f64::from(b.y),
    );
    (ax - bx).abs() <= d
        && (ay - by).abs() <= d
        && (ax + f64::from(a.w) - bx - f64::from(b.w)).abs() <= d
        && (ay + f64::from(a.h) - by - f64::from(b.h)).abs() <= d
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while let Some(&p) = parent.get(i) {
        if p == i {
            break;
        }
        let gp = parent.get(p).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(i) {
            *slot = gp;
        }
        i = gp;
    }
    i
}

/// OpenCV's `groupRectangles`: boxes within `eps` of each other (relative to their size) are
/// one group; groups of `min_neighbors` boxes or fewer are dropped; the rest are averaged, and
/// a group lying inside a stronger one is dropped. Returns each face and its group size.
pub fn group_rectangles(rects: &[BBox], min_neighbors: u32, eps: f64) -> Vec<(BBox, u32)> {
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for i in 0..n {
        for j in (i + 1)..n {
            let (Some(a), Some(b)) = (rects.get(i), rects.get(j)) else {
                continue;
            };
            if similar(a, b, eps) {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri != rj
                    && let Some(p) = parent.get_mut(ri)
                {
                    *p = rj;
                }
            }
        }
    }
    // Sum boxes per class.
    let mut classes: std::collections::BTreeMap<usize, (u64, u64, u64, u64, u32)> =
        std::collections::BTreeMap::new();
    for (i, r) in rects.iter().enumerate() {
        let root = find(&mut parent, i);
        let e = classes.entry(root).or_default();
        e.0 += u64::from(r.x);
        e.1 += u64::from(r.y);
        e.2 += u64::from(r.w);
        e.3 += u64::from(r.h);
        e.4 += 1;
    }
    let avg: Vec<(BBox, u32)> = classes
        .values()
        .map(|&(x, y, w, h, c)| {
            let k = f64::from(c);
            let q = |v: u64| (v as f64 / k).round() as u32;
            (
                BBox {
                    x: q(x),
                    y: q(y),
                    w: q(w),
                    h: q(h),
                },
                c,
            )
        })
        .collect();
    let mut out = Vec::new();
    for (i, &(r1, n1)) in avg.iter().enumerate() {
        if n1 <= min_neighbors {
            continue;
        }
        let inside_stronger = avg.iter().enumerate().any(|(j, &(r2, n2))| {
            if i == j || n2 <= min_neighbors {
                return false;
            }
            let dx = (f64::from(r2.w) * eps).round() as i64;
            let dy = (f64::from(r2.h) * eps).round() as i64;
            let (x1, y1, w1, h1) = (
                i64::from(r1.x),
                i64::from(r1.y),
                i64::from(r1.w),
                i64::from(r1.h),
            );
            let (x2, y2, w2, h2) = (
                i64::from(r2.x),
                i64::from(r2.y),
                i64::from(r2.w),
                i64::from(r2.h),
            );
            x1 >= x2 - dx
                && y1 >= y2 - dy
                && x1 + w1 <= x2 + w2 + dx
                && y1 + h1 <= y2 + h2 + dy
                && (n2 > n1.max(3) || n1 < 3)
        });
        if !inside_stronger {
            out.push((r1, n1));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A 4 x 4 window, one stage of one stump on a two-rect feature: left half minus right
    /// half. Windows brighter on the left pass.
    const TINY: &str = r#"<?xml version="1.0"?>
<!-- test cascade -->
<opencv_storage>
<cascade type_id="opencv-cascade-classifier"><stageType>BOOST</stageType>
  <featureType>HAAR</featureType>
  <height>4</height>
  <width>4</width>
  <stageParams><maxWeakCount>1</maxWeakCount></stageParams>
  <featureParams><maxCatCount>0</maxCatCount></featureParams>
  <stageNum>1</stageNum>
  <stages>
    <_>
      <maxWeakCount>1</maxWeakCount>
      <stageThreshold>0.</stageThreshold>
      <weakClassifiers>
        <_>
          <internalNodes>0 -1 0 1.0e-01</internalNodes>
          <leafValues>-1. 1.</leafValues></_></weakClassifiers></_></stages>
  <features>
    <_>
      <rects>
        <_>0 0 4 4 -1.</_>
        <_>0 0 2 4 2.</_></rects>
      <tilted>0</tilted></_></features></cascade>
</opencv_storage>
"#;

    #[test]
    fn parses_a_tiny_cascade() {
        let c = Cascade::from_xml(TINY).unwrap();
        assert_eq!(c.window(), (4, 4));
        assert_eq!(c.stages(), 1);
        assert_eq!(c.features.len(), 1);
        assert_eq!(c.features[0][1].w, 2);
        assert_eq!(c.stages[0].weak[0].nodes[0].left, 0);
        assert_eq!(c.stages[0].weak[0].leaves, vec![-1.0, 1.0]);
    }

    #[test]
    fn the_tiny_cascade_accepts_left_bright_windows_only() {
        let c = Cascade::from_xml(TINY).unwrap();
        // left-bright: feature = -all + 2*left = left - right > 0 after normalisation.
        let img = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 200 } else { 20 }]));
        let ii = Integral::new(&img);
        let flat = Flat::new(&c, ii.stride);
        assert_eq!(run_window(&flat, &ii, 0, 0), Ok(()));
        let img = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 20 } else { 200 }]));
        let ii = Integral::new(&img);
        assert_eq!(run_window(&flat, &ii, 0, 0), Err(0));
    }

    #[test]
    fn integral_sums_match_brute_force() {
        let img = GrayImage::from_fn(13, 7, |x, y| {
            image::Luma([((x * 37 + y * 101) % 256) as u8])
        });
        let ii = Integral::new(&img);
        for (x, y, w, h) in [
            (0, 0, 13, 7),
            (3, 2, 5, 4),
            (12, 6, 1, 1),
            (0, 3, 13, 1),
            (5, 0, 0, 3),
        ] {
            let mut s = 0u32;
            let mut q = 0u64;
            for yy in y..y + h {
                for xx in x..x + w {
                    let v = u32::from(img.get_pixel(xx as u32, yy as u32).0[0]);
                    s += v;
                    q += u64::from(v * v);
                }
            }
            assert_eq!(ii.rect_sum(x, y, w, h), s, "sum {x},{y},{w},{h}");
            assert_eq!(ii.rect_sq(x, y, w, h), q, "sq {x},{y},{w},{h}");
        }
    }

    #[test]
    fn grouping_merges_neighbours_and_drops_lonely_and_nested_boxes() {
        let b = |x, y, w| BBox { x, y, w, h: w };
        let mut rects = vec![];
        // Five hits around (100, 100, 50).
        for d in 0..5 {
            rects.push(b(100 + d, 100 + d % 2, 50));
        }
        // A lonely hit far away.
        rects.push(b(400, 400, 30));
        // Two hits of a small box inside the big face (weaker).
        rects.push(b(110, 110, 20));
        rects.push(b(111, 110, 20));
        let g = group_rectangles(&rects, 1, 0.2);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].1, 5);
        assert_eq!(g[0].0, b(102, 100, 50));
        // With a higher floor, nothing survives.
        assert!(group_rectangles(&rects, 5, 0.2).is_empty());
        assert!(group_rectangles(&[], 0, 0.2).is_empty());
    }

    #[test]
    fn hostile_cascades_are_errors_not_panics() {
        let cut = TINY.find("</stages>").unwrap();
        let cases: Vec<(String, &str)> = vec![
            (TINY[..cut].to_owned(), "truncated"),
            (TINY[..cut - 3].to_owned(), "XML error"),
            (
                TINY.replace("<width>4</width>", "<width>100000</width>"),
                "outside",
            ),
            (
                TINY.replace("<width>4</width>", "<width>-4</width>"),
                "not a number",
            ),
            (
                TINY.replace("0 -1 0 1.0e-01", "0 -1 7 1.0e-01"),
                "feature index",
            ),
            (
                TINY.replace("0 -1 0 1.0e-01", "0 -9 0 1.0e-01"),
                "outside the tree",
            ),
            (
                TINY.replace("0 -1 0 1.0e-01", "1 -1 0 1.0e-01 -1 -2 0 1"),
                "leaves",
            ),
            (TINY.replace("0 -1 0 1.0e-01", "0 -1 0"), "4 per node"),
            (TINY.replace("0 -1 0 1.0e-01", "0 -1 0 nan"), "not finite"),
            (
                TINY.replace("0 0 2 4 2.", "0 0 20 4 2."),
                "outside the window",
            ),
            (TINY.replace("0 0 2 4 2.", "0 0 2 4"), "expected 5"),
            (TINY.replace("<tilted>0", "<tilted>1"), "tilted"),
            (TINY.replace("HAAR", "LBP"), "LBP"),
            (TINY.replace("BOOST", "BLAH"), "BOOST"),
            (
                TINY.replace("opencv-cascade-classifier", "opencv-haar-classifier"),
                "old-style",
            ),
            ("<a><b></a>".to_owned(), "XML"),
            (String::new(), "BOOST"),
            ("<".repeat(10_000), "XML"),
            (
                format!("{}{}", "<x>".repeat(100), "</x>".repeat(100)),
                "nested",
            ),
        ];
        for (xml, want) in cases {
            let err = Cascade::from_xml(&xml).expect_err(want).to_string();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
        // A back-pointing tree (a loop) is refused too.
        let looped = TINY
            .replace("0 -1 0 1.0e-01", "1 -1 0 1.0e-01 1 -2 0 1")
            .replace("-1. 1.", "-1. 1. 2.");
        let err = Cascade::from_xml(&looped).expect_err("loop").to_string();
        assert!(err.contains("points back"), "{err}");
    }

    #[test]
    fn a_missing_cascade_says_how_to_install_it() {
        let e = CascadeError::NotInstalled("/nowhere".into()).to_string();
        assert!(
            e.starts_with("skipped: cascade not installed (apt install opencv-data)"),
            "{e}"
        );
        let e = Cascade::from_file(Path::new("/nonexistent/cascade.xml")).expect_err("missing");
        assert!(matches!(e, CascadeError::Io { .. }));
    }

    #[test]
    fn the_search_respects_its_deadline_and_flat_images_have_no_faces() {
        let c = Cascade::from_xml(TINY).unwrap();
        let d = FaceDetector::new(c, FaceParams::default());
        let flat = GrayImage::from_pixel(300, 200, image::Luma([128]));
        let r = d.detect(&flat, None);
        assert!(r.faces.is_empty() && r.note.is_none(), "{r:?}");
        let past = Instant::now();
        let r = d.detect(&flat, Some(past));
        assert!(
            r.note
                .unwrap()
                .contains("stopped by the time budget after 0 of")
        );
    }

    /// The installed frontal-face cascade (opencv-data) reads with its 20 x 20 window and 20
    /// stages, and the other upright frontal cascades read too.
    #[test]
    fn a_configured_network_that_does_not_load_falls_back_to_the_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("model.onnx");
        std::fs::write(&bad, b"not onnx").unwrap();
        let Ok(d) = FaceDetector::net_or_cascade(FaceNet::from_file(&bad), true) else {
            eprintln!("cascade not installed; skipped");
            return;
        };
        assert!(!d.is_net());
        let why = d.fallback().unwrap();
        assert!(why.starts_with("face network not used ("), "{why}");
        assert!(why.ends_with("the Haar cascade searched instead"), "{why}");
        // Not configured (no model provisioned): the cascade, silently.
        let d = FaceDetector::net_or_cascade(FaceNet::from_file(&bad), false).unwrap();
        assert!(d.fallback().is_none());
    }

    #[test]
    fn the_installed_cascade_reads_when_present() {
        let Some(p) = CASCADE_CANDIDATES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
        else {
            eprintln!("opencv-data not installed; skipped");
            return;
        };
        let c = Cascade::from_file(p).unwrap();
        assert_eq!(c.window(), (20, 20));
        assert_eq!(c.stages(), 20);
        let dir = p.parent().unwrap();
        let default = Cascade::from_file(&dir.join("haarcascade_frontalface_default.xml")).unwrap();
        assert_eq!((default.window(), default.stages()), ((24, 24), 25));
        for name in [
            "haarcascade_frontalface_alt.xml",
            "haarcascade_profileface.xml",
        ] {
            Cascade::from_file(&dir.join(name)).unwrap();
        }
        // Tilted-feature cascades are refused by name.
        let e = Cascade::from_file(&dir.join("haarcascade_upperbody.xml")).unwrap_err();
        assert!(e.to_string().contains("tilted"), "{e}");
    }
}
