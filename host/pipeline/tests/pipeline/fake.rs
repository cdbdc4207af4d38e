//! An in-process connector written in Rust: the pipeline's stages run against it and a
//! real redb store (in memory), without a wasm build.
//!
//! It lists the files of a folder in pages, answers downloads with paths below its one
//! mount (read by the host's real [`ContentFetcher`]), and records every write-back call.
//! Faults are scripted per file or per call, so a test can say exactly what the platform
//! did.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use proofpix_model::{
    FileResult, Page, PluginError, RateLimit, RemoteFile, WriteOutcome, WriteResult,
};
use proofpix_pipeline::{Connector, ConnectorInfo, ConnectorSession};
use proofpix_policy::Mount;
use proofpix_runtime::contract::{ContentLocation, DownloadAnswer, DownloadSpec};
use proofpix_runtime::{CallError, ContentFetcher, IntegrationContext, LoadError};

/// The mount's guest path.
pub const GUEST: &str = "/photos";

/// A scripted fault.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The call returns a plugin error of this kind.
    Plugin(PluginError),
    /// The guest "traps": the call fails and the session is poisoned.
    Trap,
}

/// What the fake platform holds and what it has seen.
#[derive(Default)]
pub struct Platform {
    /// Files listed, by id: (name below the folder, version).
    pub files: BTreeMap<String, (String, String)>,
    /// Ids reported removed on the next full listing.
    pub removed: Vec<String>,
    /// Every write-back call, as the list of file ids it carried.
    pub write_calls: Vec<Vec<String>>,
    /// Results written, by file id, in order of arrival (a file written twice appears twice).
    pub written: Vec<FileResult>,
    /// Faults for the next calls of an operation ("discover", "download:<id>", "write").
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// Sessions opened.
    pub sessions: u32,
    /// Files per discovery page.
    pub page_size: usize,
    /// Answer write-back with `skipped` for these ids.
    pub skip: HashMap<String, String>,
}

/// The connector: a folder on disk and a shared [`Platform`].
#[derive(Clone)]
pub struct FakeConnector {
    pub root: PathBuf,
    pub platform: Arc<Mutex<Platform>>,
    pub info: ConnectorInfo,
}

impl FakeConnector {
    /// A connector over `root`, listing every regular file below it at version "1".
    pub fn over(root: &Path) -> Self {
        let mut files = BTreeSet::new();
        list(root, root, &mut files);
        let platform = Platform {
            files: files
                .into_iter()
                .map(|name| (format!("id-{name}"), (name, "1".to_string())))
                .collect(),
            page_size: 50,
            ..Platform::default()
        };
        FakeConnector {
            root: root.to_path_buf(),
            platform: Arc::new(Mutex::new(platform)),
            info: ConnectorInfo {
                version: "1.0.0".into(),
                writes_back: true,
                write_back_batch_size: 25,
                write_back_idempotent: false,
            },
        }
    }

    /// Queues `fault` for the next call of `op`.
    pub fn fail_next(&self, op: &str, fault: Fault) {
        self.platform
            .lock()
            .unwrap()
            .faults
            .entry(op.to_string())
            .or_default()
            .push_back(fault);
    }

    /// How many times each file id was written back.
    pub fn write_counts(&self) -> BTreeMap<String, usize> {
        let mut n = BTreeMap::new();
        for r in &self.platform.lock().unwrap().written {
            *n.entry(r.file.id.clone()).or_default() += 1;
        }
        n
    }
}

fn list(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            list(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.insert(rel.to_string_lossy().into_owned());
        }
    }
}

impl Connector for FakeConnector {
    type Session = FakeSession;

    fn label(&self) -> &str {
        "fake"
    }

    fn info(&self) -> ConnectorInfo {
        self.info.clone()
    }

    async fn session(&self, _ctx: &IntegrationContext) -> Result<FakeSession, LoadError> {
        self.platform.lock().unwrap().sessions += 1;
        let mount = Mount {
            guest_path: GUEST.into(),
            host_path: self.root.clone(),
            writable: false,
        };
        let fetcher = ContentFetcher::local(vec![mount], "fake").expect("HTTP client");
        Ok(FakeSession {
            platform: self.platform.clone(),
            fetcher,
            poisoned: false,
        })
    }
}

/// One session of the fake.
pub struct FakeSession {
    platform: Arc<Mutex<Platform>>,
    fetcher: ContentFetcher,
    poisoned: bool,
}

impl FakeSession {
    /// The scripted fault for `op`, if one is queued; a trap poisons the session.
    fn fault(&mut self, op: &str) -> Result<(), CallError> {
        assert!(!self.poisoned, "the pipeline called a poisoned session");
        let fault = self
            .platform
            .lock()
            .unwrap()
            .faults
            .get_mut(op)
            .and_then(VecDeque::pop_front);
        match fault {
            None => Ok(()),
            Some(Fault::Plugin(error)) => Err(CallError::Plugin {
                plugin: "fake".into(),
                op: "call",
                error,
            }),
            Some(Fault::Trap) => {
                self.poisoned = true;
                Err(CallError::Trap {
                    plugin: "fake".into(),
                    op: "call",
                    message: "unreachable executed".into(),
                })
            }
        }
    }
}

impl ConnectorSession for FakeSession {
    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    async fn discover(&mut self, cursor: Option<&str>) -> Result<Page, CallError> {
        self.fault("discover")?;
        let p = self.platform.lock().unwrap();
        // The cursor is the index of the next file; the final cursor is "end", after which
        // nothing is listed (an incremental run sees no change).
        if cursor == Some("end") {
            return Ok(Page {
                files: Vec::new(),
                removed: Vec::new(),
                cursor: Some("end".into()),
                more: false,
            });
        }
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let files: Vec<RemoteFile> = p
            .files
            .iter()
            .skip(start)
            .take(p.page_size.max(1))
            .map(|(id, (name, version))| remote(id, name, version))
            .collect();
        let next = start + files.len();
        let more = next < p.files.len();
        Ok(Page {
            removed: if start == 0 {
                p.removed.clone()
            } else {
                Vec::new()
            },
            files,
            cursor: Some(if more { next.to_string() } else { "end".into() }),
            more,
        })
    }

    async fn download(&mut self, file: &RemoteFile) -> Result<DownloadAnswer, CallError> {
        self.fault(&format!("download:{}", file.id))?;
        let name = file.path.clone().unwrap_or_else(|| file.name.clone());
        Ok(DownloadAnswer::Ready(DownloadSpec {
            location: ContentLocation::File(format!("{GUEST}/{name}")),
            supports_range: true,
        }))
    }

    async fn write_back(&mut self, results: &[FileResult]) -> Result<Vec<WriteOutcome>, CallError> {
        self.fault("write")?;
        let mut p = self.platform.lock().unwrap();
        p.write_calls
            .push(results.iter().map(|r| r.file.id.clone()).collect());
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            let outcome = match p.skip.get(&r.file.id) {
                Some(why) => Ok(WriteResult::Skipped(why.clone())),
                None => {
                    p.written.push(r.clone());
                    Ok(WriteResult::Written)
                }
            };
            out.push(WriteOutcome {
                file_id: r.file.id.clone(),
                outcome,
            });
        }
        Ok(out)
    }

    fn fetcher(&self) -> &ContentFetcher {
        &self.fetcher
    }
}

/// A listed file.
pub fn remote(id: &str, name: &str, version: &str) -> RemoteFile {
    RemoteFile {
        id: id.into(),
        name: name.rsplit('/').next().unwrap_or(name).into(),
        mime_type: Some("image/jpeg".into()),
        size: None,
        modified: None,
        version: version.into(),
        container: None,
        web_url: None,
        path: Some(name.into()),
        properties: Vec::new(),
    }
}

/// A rate-limit answer with a Retry-After.
pub fn rate_limited(ms: u64) -> Fault {
    Fault::Plugin(PluginError::RateLimited(RateLimit {
        retry_after_ms: Some(ms),
        message: "slow down".into(),
    }))
}
