//! Evaluation of the face search on real photos with hand-made labels.
//!
//! ```text
//! cargo run --release -p proofpix-pixels --example face-eval -- \
//!     --corpus ../shared/corpus [--labels host/pixels/eval/faces.tsv] \
//!     [--scale 1.1] [--neighbors 4] [--max-side 1280] [--upscale-below 800]
//!     [--cascade FILE] [--verbose]
//! cargo run --release -p proofpix-pixels --example face-eval -- \
//!     --corpus ../shared/corpus --engine net|haar [--model FILE] [--threshold 0.75] [--sizes 256,512,1024]
//! ```
//!
//! `--engine` picks the detector: `net` (BlazeFace, `facenet.rs`) or `haar` (the cascade);
//! by default the one the pixel stage uses (the network when its model is installed).
//!
//! ```text
//! cargo run --release -p proofpix-pixels --example face-eval -- \
//!     --corpus ../shared/corpus --sheets OUT_DIR FILE...    # contact sheets for labelling
//! cargo run --release -p proofpix-pixels --example face-eval -- \
//!     --corpus ../shared/corpus --draw OUT_DIR              # detections drawn on each image
//! ```
//!
//! The labels file (`host/pixels/eval/faces.tsv`) holds facts, not images: a path relative to
//! the corpus and the number of faces a person sees in the picture (frontal or three-quarter
//! faces at least ~20 px wide in the picture as stored, upright after EXIF orientation).
//! Scoring is by count, since the labels hold no boxes: per image, true positives are
//! `min(found, labelled)`, false positives the excess found, false negatives the excess
//! labelled. Image-level precision and recall (any face vs none) are printed too, with the
//! time per image (decode excluded) and the throughput per core.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, Rgb, RgbImage};
use proofpix_pixels::decode;
use proofpix_pixels::facenet::{FaceNet, NetParams};
use proofpix_pixels::faces::{FaceDetector, FaceParams, FaceSearch};
use proofpix_pixels::{BBox, Budget};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let corpus = PathBuf::from(arg("--corpus").unwrap_or_else(|| "../shared/corpus".into()));
    let verbose = args.iter().any(|a| a == "--verbose");
    let budget = Budget::default();

    if let Some(out) = arg("--sheets") {
        let start = args.iter().position(|a| a == "--sheets").unwrap_or(0) + 2;
        let files: Vec<&String> = args.iter().skip(start).collect();
        let cell = arg("--cell").and_then(|c| c.parse().ok()).unwrap_or(320);
        let files: Vec<&String> = files.into_iter().filter(|f| !f.starts_with("--")).collect();
        sheets(&corpus, Path::new(&out), &files, &budget, cell);
        return;
    }

    let defaults = FaceParams::default();
    let params = FaceParams {
        scale_factor: arg("--scale")
            .and_then(|s| s.parse().ok())
            .unwrap_or(defaults.scale_factor),
        min_neighbors: arg("--neighbors")
            .and_then(|s| s.parse().ok())
            .unwrap_or(defaults.min_neighbors),
        max_side: arg("--max-side")
            .and_then(|s| s.parse().ok())
            .unwrap_or(defaults.max_side),
        upscale_below: arg("--upscale-below")
            .and_then(|s| s.parse().ok())
            .unwrap_or(defaults.upscale_below),
    };
    let exit = |e: proofpix_pixels::CascadeError| -> ! {
        eprintln!("{e}");
        std::process::exit(2)
    };
    // `--engine net`: the BlazeFace network (facenet.rs) instead of the Haar cascade.
    let net_defaults = NetParams::default();
    let net_params = NetParams {
        threshold: arg("--threshold")
            .and_then(|s| s.parse().ok())
            .unwrap_or(net_defaults.threshold),
        sizes: arg("--sizes")
            .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
            .unwrap_or(net_defaults.sizes.clone()),
        ..net_defaults
    };
    // The stage's choice by default: the network when its model is installed.
    let engine = arg("--engine").unwrap_or_else(|| {
        if FaceNet::locate().is_ok() {
            "net".to_owned()
        } else {
            "haar".to_owned()
        }
    });
    let (detector, net) = if engine == "net" {
        let net = match arg("--model") {
            Some(p) => FaceNet::from_file(Path::new(&p)),
            None => FaceNet::locate(),
        }
        .unwrap_or_else(|e| exit(e))
        .with_params(net_params.clone());
        (None, Some(net))
    } else {
        let d = match arg("--cascade") {
            Some(p) => FaceDetector::from_file(Path::new(&p)),
            None => FaceDetector::locate_cascade(),
        }
        .unwrap_or_else(|e| exit(e))
        .with_params(params.clone());
        (Some(d), None)
    };
    let detect = |img: &GrayImage| -> FaceSearch {
        match (&detector, &net) {
            (Some(d), _) => d.detect(img, None),
            (_, Some(n)) => n.detect(img, None),
            _ => FaceSearch::default(),
        }
    };
    let labels_path = arg("--labels").unwrap_or_else(|| "host/pixels/eval/faces.tsv".into());
    let labels = std::fs::read_to_string(&labels_path).unwrap_or_else(|e| {
        eprintln!("{labels_path}: {e}");
        std::process::exit(2)
    });
    let draw = arg("--draw").map(PathBuf::from);
    if let Some(d) = &draw {
        let _ = std::fs::create_dir_all(d);
    }

    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    let (mut itp, mut ifp, mut ifn, mut itn) = (0u32, 0u32, 0u32, 0u32);
    let mut total_ms = 0.0f64;
    let mut total_mp = 0.0f64;
    let mut n = 0u32;
    let mut worst = (0.0f64, String::new());
    for line in labels.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split('\t');
        let (Some(rel), Some(count)) = (parts.next(), parts.next()) else {
            eprintln!("bad label line: {line:?}");
            continue;
        };
        let Ok(truth) = count.trim().parse::<u32>() else {
            eprintln!("bad count: {line:?}");
            continue;
        };
        let bytes = match std::fs::read(corpus.join(rel)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{rel}: {e}");
                continue;
            }
        };
        let d = match decode::decode(&bytes, &budget) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{rel}: {e}");
                continue;
            }
        };
        let t = Instant::now();
        let up = decode::upright(&d.luma, d.orientation);
        let found = detect(&up);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (uw, uh) = up.dimensions();
        let long = uw.max(uh);
        let searched = if let Some(n) = &net {
            // Pixels given to the network: every search size's tiles.
            f64::from(
                n.params()
                    .sizes
                    .iter()
                    .filter(|&&s| s <= 256.max(2 * long))
                    .max()
                    .copied()
                    .unwrap_or(256),
            )
        } else if long < params.upscale_below {
            2.0 * f64::from(long)
        } else {
            f64::from(long.min(params.max_side))
        };
        let aspect = f64::from(uw.min(uh)) / f64::from(uw.max(uh));
        total_mp += searched * searched * aspect / 1e6;
        total_ms += ms;
        n += 1;
        if ms > worst.0 {
            worst = (ms, rel.to_owned());
        }
        let got = found.faces.len() as u32;
        tp += got.min(truth);
        fp += got.saturating_sub(truth);
        fn_ += truth.saturating_sub(got);
        match (got > 0, truth > 0) {
            (true, true) => itp += 1,
            (true, false) => ifp += 1,
            (false, true) => ifn += 1,
            (false, false) => itn += 1,
        }
        if verbose || got != truth {
            println!(
                "{rel}\tlabelled {truth}\tfound {got}\t{ms:.0} ms{}",
                found
                    .faces
                    .iter()
                    .map(|f| format!(
                        " [{},{} {}x{} n={} c={:.2}]",
                        f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h, f.neighbors, f.confidence
                    ))
                    .collect::<String>()
            );
        }
        if let Some(dir) = &draw {
            let boxes: Vec<BBox> = found.faces.iter().map(|f| f.bbox).collect();
            let img = outline(&up, &boxes);
            let name = rel.replace('/', "__");
            let _ = img.save(dir.join(format!("{name}.png")));
        }
    }
    let ratio = |a: u32, b: u32| {
        if a + b == 0 {
            1.0
        } else {
            f64::from(a) / f64::from(a + b)
        }
    };
    println!();
    match (&detector, &net) {
        (Some(d), _) => println!(
            "params: scale {} neighbours {} max side {} upscale below {} cascade {}",
            params.scale_factor,
            params.min_neighbors,
            params.max_side,
            params.upscale_below,
            d.source().display()
        ),
        (_, Some(n)) => println!(
            "params: BlazeFace threshold {} sizes {:?} model {}",
            n.params().threshold,
            n.params().sizes,
            n.source().display()
        ),
        _ => {}
    }
    println!(
        "images: {n} ({} with faces, {} without)",
        itp + ifn,
        ifp + itn
    );
    println!(
        "faces (by count): precision {:.3} ({tp}/{}), recall {:.3} ({tp}/{})",
        ratio(tp, fp),
        tp + fp,
        ratio(tp, fn_),
        tp + fn_
    );
    println!(
        "images (any face): precision {:.3} ({itp}/{}), recall {:.3} ({itp}/{}), false-positive images {ifp}/{}",
        ratio(itp, ifp),
        itp + ifp,
        ratio(itp, ifn),
        itp + ifn,
        ifp + itn
    );
    if n > 0 {
        println!(
            "time (one core, decode excluded): {:.1} ms/image mean, {:.2} images/s, {:.2} MP/s searched; slowest {:.0} ms ({})",
            total_ms / f64::from(n),
            f64::from(n) / (total_ms / 1000.0),
            total_mp / (total_ms / 1000.0),
            worst.0,
            worst.1
        );
    }
}

/// The image in colour with red boxes.
fn outline(img: &GrayImage, boxes: &[BBox]) -> RgbImage {
    let mut out = RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let v = img.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    });
    let (w, h) = out.dimensions();
    for b in boxes {
        for t in 0..3u32 {
            for x in b.x..(b.x + b.w).min(w) {
                for y in [b.y + t, (b.y + b.h).saturating_sub(1 + t)] {
                    if y < h {
                        out.put_pixel(x, y, Rgb([255, 0, 0]));
                    }
                }
            }
            for y in b.y..(b.y + b.h).min(h) {
                for x in [b.x + t, (b.x + b.w).saturating_sub(1 + t)] {
                    if x < w {
                        out.put_pixel(x, y, Rgb([255, 0, 0]));
                    }
                }
            }
        }
    }
    out
}

/// Contact sheets (1280 x 960, `--cell` px cells, default 320: 12 images), upright, for
/// labelling by eye. Prints
/// which file is in which cell.
fn sheets(corpus: &Path, out: &Path, files: &[&String], budget: &Budget, cell: u32) {
    let _ = std::fs::create_dir_all(out);
    let cell = cell.clamp(64, 1280);
    let cols = (1280 / cell).max(1);
    let rows = (960 / cell).max(1);
    let mut decoded: Vec<(String, GrayImage)> = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&format!("{}/", corpus.display()))
            .unwrap_or(f);
        let Ok(bytes) = std::fs::read(corpus.join(rel)) else {
            eprintln!("{rel}: unreadable");
            continue;
        };
        match decode::decode(&bytes, budget) {
            Ok(d) => {
                let up = decode::upright(&d.luma, d.orientation);
                let (small, _) = decode::downscale(up, cell);
                decoded.push((rel.to_owned(), small));
            }
            Err(e) => eprintln!("{rel}: {e}"),
        }
    }
    for (k, chunk) in decoded.chunks((cols * rows) as usize).enumerate() {
        let mut sheet = GrayImage::from_pixel(cell * cols, cell * rows, image::Luma([40]));
        for (i, (rel, img)) in chunk.iter().enumerate() {
            let i = i as u32;
            let (cx, cy) = ((i % cols) * cell, (i / cols) * cell);
            image::imageops::overlay(&mut sheet, img, i64::from(cx), i64::from(cy));
            println!(
                "sheet {k} cell {i} (row {}, col {}): {rel}",
                i / cols,
                i % cols
            );
        }
        let _ = sheet.save(out.join(format!("sheet-{k:02}.png")));
    }
}
