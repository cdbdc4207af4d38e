//! OCR with Debian's `tesseract-ocr` (5.x, LSTM, `tesseract-ocr-eng` trained data), run as a
//! subprocess on the decoded, downscaled luminance image.
//!
//! Why a subprocess and not the `tesseract`/`leptess` bindings: the daemon's core stays free
//! of C libraries that parse untrusted input in-process (a leptonica or tesseract crash is a
//! dead child, not a dead daemon), the timeout is a `kill`, no `libtesseract-dev` or clang is
//! needed to build ProofPix, and the only input tesseract sees is a PNG this crate wrote. The
//! cost is one process start per image (~60 ms, see BENCHMARKS.md), small next to OCR itself.
//!
//! Output is tesseract's TSV (one row per word with its box and confidence), grouped into
//! lines so detectors see "4111 1111 1111 1111" as one string and each match gets the union
//! of its words' boxes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::GrayImage;

use crate::finding::BBox;

/// Why OCR did not run or did not finish. The message says what to install or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// No tesseract binary, or no English data.
    #[error("ocr unavailable: {0}")]
    Unavailable(String),
    /// Tesseract ran past the budget and was killed.
    #[error("ocr stopped after {0:?} (the budget's ocr_timeout); text in this image was not read")]
    Timeout(Duration),
    /// Tesseract failed on this image.
    #[error("ocr failed: {0}")]
    Failed(String),
}

/// One recognised word.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word.
    pub text: String,
    /// Box in the image tesseract was given.
    pub bbox: BBox,
    /// Tesseract's confidence, 0..=100.
    pub conf: f32,
}

/// One line of recognised text and where each word sits in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// Words joined by single spaces.
    pub text: String,
    /// `(byte start, byte end, word)` for each word in `text`.
    pub words: Vec<(usize, usize, Word)>,
}

impl Line {
    /// The union of the boxes of the words overlapping `start..end`, and their lowest
    /// confidence (0..=1).
    pub fn span(&self, start: usize, end: usize) -> (BBox, f32) {
        let mut bbox: Option<BBox> = None;
        let mut conf = 1.0f32;
        for (s, e, w) in &self.words {
            if *s < end && start < *e {
                bbox = Some(bbox.map_or(w.bbox, |b| b.union(w.bbox)));
                conf = conf.min((w.conf / 100.0).clamp(0.0, 1.0));
            }
        }
        (bbox.unwrap_or_default(), conf)
    }
}

/// Largest TSV accepted from tesseract (a page of text is tens of KiB).
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// A located tesseract binary with English data.
#[derive(Debug, Clone)]
pub struct Tesseract {
    program: PathBuf,
    lang: String,
}

impl Tesseract {
    /// Find `tesseract` (`PROOFPIX_TESSERACT` if set, else on `PATH`) and check that it lists
    /// the English model.
    pub fn locate() -> Result<Self, OcrError> {
        let program = match std::env::var_os("PROOFPIX_TESSERACT") {
            Some(p) => PathBuf::from(p),
            None => find_on_path("tesseract").ok_or_else(|| {
                OcrError::Unavailable(
                    "no `tesseract` on PATH; install Debian's tesseract-ocr and tesseract-ocr-eng (./test does)"
                        .to_owned(),
                )
            })?,
        };
        Self::with_program(&program, "eng")
    }

    /// Use a given binary and language, checking `--list-langs`.
    pub fn with_program(program: &Path, lang: &str) -> Result<Self, OcrError> {
        let out = Command::new(program)
            .arg("--list-langs")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| OcrError::Unavailable(format!("cannot run {}: {e}", program.display())))?;
        let listing = String::from_utf8_lossy(&out.stdout);
        if !listing.lines().any(|l| l.trim() == lang) {
            return Err(OcrError::Unavailable(format!(
                "{} has no `{lang}` model; install tesseract-ocr-{lang}",
                program.display()
            )));
        }
        Ok(Self {
            program: program.to_owned(),
            lang: lang.to_owned(),
        })
    }

    /// Recognise the text in `img`, killing tesseract after `timeout`.
    pub fn recognise(&self, img: &GrayImage, timeout: Duration) -> Result<Vec<Line>, OcrError> {
        let dir = tempfile::tempdir().map_err(|e| OcrError::Failed(format!("temp dir: {e}")))?;
        let input = dir.path().join("in.png");
        img.save(&input)
            .map_err(|e| OcrError::Failed(format!("writing the image for tesseract: {e}")))?;
        let mut child = Command::new(&self.program)
            .arg(&input)
            .arg("stdout")
            .args(["-l", &self.lang, "--psm", "3", "tsv"])
            // One thread per OCR: the daemon runs one image per core.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                OcrError::Unavailable(format!("cannot run {}: {e}", self.program.display()))
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out_t = std::thread::spawn(move || read_capped(stdout));
        let err_t = std::thread::spawn(move || read_capped(stderr));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(OcrError::Timeout(timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(OcrError::Failed(e.to_string())),
            }
        };
        let out = out_t.join().unwrap_or_default();
        let err = err_t.join().unwrap_or_default();
        if !status.success() {
            let msg = String::from_utf8_lossy(&err);
            return Err(OcrError::Failed(format!(
                "tesseract exited with {status}: {}",
                msg.lines()
                    .last()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        Ok(parse_tsv(&String::from_utf8_lossy(&out)))
    }
}

fn read_capped(r: Option<impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
    }
    buf
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Parse tesseract's TSV: level, page, block, par, line, word, left, top, width, height,
/// conf, text. Word rows (level 5) are grouped by (page, block, par, line).
pub fn parse_tsv(tsv: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    let mut key: Option<[u32; 4]> = None;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        let [
            level,
            page,
            block,
            par,
            line,
            _word,
            left,
            top,
            width,
            height,
            conf,
            text,
        ] = cols.as_slice()
        else {
            continue;
        };
        let num = |s: &str| s.trim().parse::<u32>().ok();
        if num(level) != Some(5) {
            continue;
        }
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let k = [num(page), num(block), num(par), num(line)].map(|v| v.unwrap_or(0));
        if key != Some(k) || lines.is_empty() {
            lines.push(Line::default());
            key = Some(k);
        }
        let Some(cur) = lines.last_mut() else {
            continue;
        };
        if !cur.text.is_empty() {
            cur.text.push(' ');
        }
        let start = cur.text.len();
        cur.text.push_str(text);
        let word = Word {
            text: text.to_owned(),
            bbox: BBox {
                x: num(left).unwrap_or(0),
                y: num(top).unwrap_or(0),
                w: num(width).unwrap_or(0),
                h: num(height).unwrap_or(0),
            },
            conf: conf.trim().parse::<f32>().unwrap_or(0.0),
        };
        cur.words.push((start, cur.text.len(), word));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_become_lines_with_boxes() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
1\t1\t0\t0\t0\t0\t0\t0\t640\t480\t-1\t\n\
5\t1\t1\t1\t1\t1\t10\t20\t50\t12\t96.5\tCard:\n\
5\t1\t1\t1\t1\t2\t70\t20\t40\t12\t91\t4111\n\
5\t1\t1\t1\t1\t3\t120\t21\t40\t12\t90\t1111\n\
5\t1\t1\t1\t2\t1\t10\t40\t80\t12\t88\tnext\n\
garbage row\n";
        let lines = parse_tsv(tsv);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "Card: 4111 1111");
        let (b, c) = lines[0].span(6, 15);
        assert_eq!(
            b,
            BBox {
                x: 70,
                y: 20,
                w: 90,
                h: 13
            }
        );
        assert!((c - 0.90).abs() < 1e-6);
    }
}
