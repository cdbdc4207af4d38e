//! The local-folder connector: scans images in a directory on the host.
//!
//! It is the embedded default that lets ProofPix run its whole pipeline with
//! no SaaS account. The operator grants the folder read-only at `/input` and,
//! for reports, an output folder read-write at `/output`; the plugin sees
//! nothing else of the host's filesystem.
//!
//! - **discover** walks `/input` in a stable order (full path, byte order) and
//!   returns pages of image files. A page cursor remembers the last path
//!   returned; the final cursor of a run remembers the newest modification
//!   time seen, so the next run returns only files changed since. The host
//!   additionally skips any (id, version) it has already analysed.
//! - **download** points the host at the file (`/input/...`); the host reads
//!   the byte ranges it needs, so file bytes never enter the plugin.
//! - **write-back** writes one JSON report per image under `/output`, next to
//!   where the image sits relative to `/input`.
//!
//! Limits: a file whose content changes without its size or modification
//! time changing (`touch -d` after an edit) is not seen as changed.

use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};

const INPUT: &str = "/input";
const OUTPUT: &str = "/output";
/// Files per discovery page: large enough that a re-walk per page stays
/// cheap next to the analysis of the page, small enough to bound page size.
const PAGE_SIZE: usize = 500;
/// How deep the walk descends; deeper trees are almost certainly loops or
/// generated junk.
const MAX_DEPTH: usize = 64;
const DEFAULT_EXTENSIONS: &str =
    "jpg,jpeg,jpe,png,webp,tif,tiff,heic,heif,avif,gif,psd,dng,nef,cr2,cr3,arw,orf,rw2,raf,pef,srw";

struct LocalFolder;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// Only files modified after this (ns since the epoch) are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_ns: Option<u128>,
    /// Within a run: the last path returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    /// Within a run: the newest modification time seen so far.
    #[serde(default)]
    newest_ns: u128,
}

struct Entry {
    rel: String,
    size: u64,
    modified_ns: u128,
}

impl Connector for LocalFolder {
    fn describe() -> PluginInfo {
        PluginInfo::builder("local-folder", env!("CARGO_PKG_VERSION"), "Local folder", "Filesystem")
            .description("Scans the images in a folder on the ProofPix host and writes a JSON report per image.")
            .capability(Capability::Source)
            .field(ConfigField::path("folder", "Folder", "The folder to scan. ProofPix reads it and never changes it."))
            .field(
                ConfigField::path("output", "Report folder", "Where a JSON report per image is written. Leave empty to keep results in ProofPix only.")
                    .optional(),
            )
            .field(ConfigField::list("extensions", "File extensions", "Which files count as images.").default(DEFAULT_EXTENSIONS))
            .field(ConfigField::boolean("recursive", "Include subfolders", "Scan subfolders too.", true))
            .filesystem(FilesystemAccess::read_only(INPUT, "folder", "read the images to scan"))
            .filesystem(FilesystemAccess::read_write(OUTPUT, "output", "write one JSON report per image"))
            .write_back_batch_size(100)
            // A report file is replaced (write and rename), so writing it again is harmless.
            .idempotent_write_back()
            .build()
    }

    fn validate_config() -> Result<(), PluginError> {
        config::require("folder")?;
        Ok(())
    }

    fn check() -> Result<CheckReport, PluginError> {
        let entries = fs::read_dir(INPUT)
            .map_err(|e| {
                PluginError::invalid_config(
                    Some("folder"),
                    format!("the folder cannot be read: {e}"),
                )
            })?
            .count();
        let mut details = vec![format!(
            "folder readable ({entries} entries at the top level)"
        )];
        if output_enabled() {
            let probe = Path::new(OUTPUT).join(".proofpix-write-check");
            fs::write(&probe, b"ok")
                .and_then(|()| fs::remove_file(&probe))
                .map_err(|e| {
                    PluginError::invalid_config(
                        Some("output"),
                        format!("the report folder is not writable: {e}"),
                    )
                })?;
            details.push("report folder writable".into());
        }
        Ok(CheckReport {
            account: None,
            details,
        })
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        let mut cursor: Cursor = pagination::decode(cursor.as_deref())?.unwrap_or_default();
        let extensions =
            proofpix_sdk::settings::extensions(config::list("extensions"), DEFAULT_EXTENSIONS);
        let recursive = config::flag("recursive", true);

        let mut walker = Walker {
            after: cursor.after.clone(),
            extensions,
            recursive,
            found: Vec::new(),
            newest_ns: cursor.newest_ns,
            // One more than a page tells whether another page follows.
            limit: PAGE_SIZE + 1,
        };
        walker.walk(Path::new(INPUT), "", 0).map_err(|e| {
            PluginError::invalid_config(Some("folder"), format!("the folder cannot be read: {e}"))
        })?;

        let more = walker.found.len() > PAGE_SIZE;
        walker.found.truncate(PAGE_SIZE);
        let files: Vec<RemoteFile> = walker
            .found
            .iter()
            .filter(|e| cursor.since_ns.is_none_or(|since| e.modified_ns > since))
            .map(remote_file)
            .collect();
        // Track the newest time over every file walked, changed or not, so the
        // next run's threshold covers the whole tree.
        cursor.newest_ns = walker.newest_ns;
        cursor.after = walker.found.last().map(|e| e.rel.clone());

        let next = if more {
            cursor
        } else {
            Cursor {
                since_ns: Some(cursor.newest_ns.max(cursor.since_ns.unwrap_or(0))),
                after: None,
                newest_ns: 0,
            }
        };
        Ok(Page {
            files,
            removed: Vec::new(),
            cursor: Some(pagination::encode(&next)?),
            more,
        })
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        if file.id.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(PluginError::fatal(format!(
                "not a path inside the folder: {}",
                file.id
            )));
        }
        Ok(DownloadSpec {
            location: ContentLocation::File(format!("{INPUT}/{}", file.id)),
            supports_range: true,
        }
        .into())
    }

    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        if !output_enabled() {
            return Ok(results
                .into_iter()
                .map(|r| {
                    WriteOutcome::skipped(r.file.id, "no output folder is configured (`output`)")
                })
                .collect());
        }
        Ok(results
            .into_iter()
            .map(|r| {
                let file_id = r.file.id.clone();
                let outcome = write_report(&r)
                    .map(|()| WriteResult::Written)
                    .map_err(|e| {
                        PluginError::transient(format!(
                            "cannot write the report for {file_id}: {e}"
                        ))
                    });
                WriteOutcome { file_id, outcome }
            })
            .collect())
    }
}

export_connector!(LocalFolder);

fn output_enabled() -> bool {
    config::get("output").is_some()
}

fn remote_file(e: &Entry) -> RemoteFile {
    let name = e.rel.rsplit('/').next().unwrap_or(&e.rel).to_string();
    let dir = e.rel.rsplit_once('/').map(|(d, _)| d.to_string());
    RemoteFile {
        id: e.rel.clone(),
        mime_type: mime_of(&name).map(String::from),
        name,
        size: Some(e.size),
        modified: Some(rfc3339_from_ns(e.modified_ns)),
        version: format!("{}-{}", e.size, e.modified_ns),
        container: None,
        web_url: None,
        path: dir,
        properties: Vec::new(),
    }
}

struct Walker {
    after: Option<String>,
    extensions: Vec<String>,
    recursive: bool,
    found: Vec<Entry>,
    newest_ns: u128,
    limit: usize,
}

impl Walker {
    /// Visits `dir` in full-path byte order, collecting image files whose
    /// path sorts after `self.after`, until `limit` are found.
    fn walk(&mut self, dir: &Path, rel: &str, depth: usize) -> std::io::Result<()> {
        let mut entries: Vec<(String, bool, fs::Metadata)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            entries.push((name, meta.is_dir(), meta));
        }
        // Directories sort as "name/" so that sibling order equals full-path
        // order ("a.jpg" < "a/b.jpg" because '.' < '/').
        entries.sort_by_key(|e| sort_key(&e.0, e.1));
        for (name, is_dir, meta) in entries {
            if self.found.len() >= self.limit {
                return Ok(());
            }
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if is_dir {
                if !self.recursive || depth >= MAX_DEPTH || self.subtree_is_before_cursor(&path) {
                    continue;
                }
                // An unreadable subfolder costs its own files, not the scan.
                let _ = self.walk(&dir.join(&name), &path, depth + 1);
                continue;
            }
            if !meta.is_file() || !self.is_image(&name) {
                continue;
            }
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            self.newest_ns = self.newest_ns.max(modified_ns);
            if self
                .after
                .as_deref()
                .is_some_and(|after| path.as_str() <= after)
            {
                continue;
            }
            self.found.push(Entry {
                rel: path,
                size: meta.len(),
                modified_ns,
            });
        }
        Ok(())
    }

    /// Whether every path below directory `dir` sorts at or before the cursor,
    /// so the subtree can be skipped without listing it.
    fn subtree_is_before_cursor(&self, dir: &str) -> bool {
        let Some(after) = self.after.as_deref() else {
            return false;
        };
        let prefix = format!("{dir}/");
        !after.starts_with(&prefix) && after > prefix.as_str()
    }

    fn is_image(&self, name: &str) -> bool {
        name.rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .is_some_and(|ext| self.extensions.contains(&ext))
    }
}

fn sort_key(name: &str, is_dir: bool) -> String {
    if is_dir {
        format!("{name}/")
    } else {
        name.to_string()
    }
}

fn write_report(r: &FileResult) -> std::io::Result<()> {
    let path = Path::new(OUTPUT).join(format!("{}.proofpix.json", r.file.id));
    let report = serde_json::json!({
        "file": r.file.id,
        "version": r.file.version,
        "format": r.format,
        "risk": r.risk.keyword(),
        "score": r.score,
        "summary": r.summary,
        "error": r.error,
        "analysed_at": r.analysed_at,
        "policy_version": r.policy_version,
        "findings": r.findings.iter().map(|f| serde_json::json!({
            "category": f.category,
            "code": f.code,
            "severity": f.severity.keyword(),
            "source": f.source,
            "value": f.value,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    // Write to a temporary name and rename, so a crash never leaves half a report.
    let tmp = path.with_extension("json.tmp");
    // Each folder is created once per session, not before every report (every file
    // operation is a host call); one removed meanwhile is created again.
    let parent = path.parent().unwrap_or(Path::new(OUTPUT)).to_path_buf();
    let known = CREATED_DIRS.with(|d| d.borrow().contains(&parent));
    if !known {
        fs::create_dir_all(&parent)?;
    }
    match fs::write(&tmp, &bytes) {
        Err(e) if known && e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(&parent)?;
            fs::write(&tmp, &bytes)?;
        }
        other => other?,
    }
    CREATED_DIRS.with(|d| d.borrow_mut().insert(parent));
    fs::rename(&tmp, &path)
}

thread_local! {
    /// Report folders this instance has created (or found) under `/output`.
    static CREATED_DIRS: std::cell::RefCell<std::collections::HashSet<std::path::PathBuf>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

fn mime_of(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "psd" => "image/vnd.adobe.photoshop",
        "dng" => "image/x-adobe-dng",
        _ => return None,
    })
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC (civil-from-days).
fn rfc3339_from_ns(ns: u128) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339_from_ns(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_from_ns(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn directories_sort_after_same_prefix_files() {
        let mut v = [
            ("a".to_string(), true),
            ("a.jpg".to_string(), false),
            ("b.jpg".to_string(), false),
        ];
        v.sort_by_key(|e| sort_key(&e.0, e.1));
        assert_eq!(v[0].0, "a.jpg");
        assert_eq!(v[1].0, "a");
    }

    #[test]
    fn a_subtree_before_the_cursor_is_skipped() {
        let w = Walker {
            after: Some("b/c.jpg".into()),
            extensions: vec![],
            recursive: true,
            found: vec![],
            newest_ns: 0,
            limit: 1,
        };
        assert!(w.subtree_is_before_cursor("a"));
        assert!(!w.subtree_is_before_cursor("b"));
        assert!(!w.subtree_is_before_cursor("c"));
    }
}
