//! The host's side of downloads: executing a plugin's [`DownloadSpec`].
//!
//! File bytes never pass through the plugin. The plugin says where a file
//! lives (an HTTP request, or a path below one of its granted mounts); the
//! host reads only the byte ranges the analysis needs.
//!
//! Threats: a plugin that points a download at a host it was not granted
//! (HTTP downloads use the same egress checks, per hop, as the plugin's own
//! requests, and credentials only on endpoints that take them), or at a file
//! outside its mounts (`..`, absolute paths, symbolic links). A local file is
//! opened relative to the mount's root in one step that follows no symbolic
//! link on any component (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`, or a walk with `O_NOFOLLOW` where the kernel lacks
//! it), so a link swapped in after a check cannot lead out; it is opened
//! non-blocking on a blocking-pool thread and must be a regular file, so a FIFO
//! or a device can neither hang a runtime thread nor be read.
//!
//! A platform that answers a content request with `202 Accepted`, `204` or any
//! 2xx other than 200/206 has not given the bytes ([`FetchError::NotReady`],
//! retried after its `Retry-After`), and a body shorter than its
//! `Content-Length` is an error, never content: a file is only analysed from
//! bytes that fully arrived.
//!
//! Memory: a whole-file download keeps at most [`MEMORY_BODY_BYTES`] (or the
//! caller's limit) in memory and spools the rest to an anonymous temporary
//! file ([`Body::Spooled`]); a server that ignores a range request is read as
//! a stream of which only the asked window is kept.

use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use proofpix_policy::Mount;
use reqwest::Method;

use crate::bindings::latest::exports::proofpix::plugin::source::{
    ContentLocation, DownloadAnswer, DownloadSpec,
};
use crate::bindings::latest::proofpix::plugin::http as wit_http;
use crate::egress_http::{EgressHttp, HttpFailure, OutboundRequest};

/// Why content could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The location is outside what the plugin may reach.
    #[error("plugin {plugin}: transfer refused: {reason}")]
    Refused {
        /// Plugin label.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The platform or the disk failed.
    #[error("transfer failed: {0}")]
    Failed(String),
    /// The platform answered with an error status.
    #[error("HTTP {status} from {url}")]
    Status {
        /// Status code.
        status: u16,
        /// Final URL (without query).
        url: String,
        /// Retry-After in milliseconds, when given.
        retry_after_ms: Option<u64>,
    },
    /// Over the size allowed.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The platform answered a content request with a success status that carries no
    /// content (`202 Accepted` while an upload is processed, `204`, any 2xx but 200/206):
    /// the bytes are not there yet, so retry after the platform's `Retry-After`.
    #[error("HTTP {status} from {url}: the content is not ready yet{}; will retry", retry_after_ms.map(|ms| format!(" (retry after {} s)", ms.div_ceil(1000))).unwrap_or_default())]
    NotReady {
        /// Status code.
        status: u16,
        /// Final URL (without query).
        url: String,
        /// Retry-After in milliseconds, when given.
        retry_after_ms: Option<u64>,
    },
    /// The plugin said the platform does not have the bytes yet (contract 0.3's
    /// `download-answer.not-ready`): the same case as a `202 Accepted`, retried after
    /// `retry_after_ms`, never recorded with a risk.
    #[error("plugin {plugin}: the content is not ready yet: {reason}{}; will retry", retry_after_ms.map(|ms| format!(" (retry after {} s)", ms.div_ceil(1000))).unwrap_or_default())]
    PluginNotReady {
        /// Plugin label.
        plugin: String,
        /// The plugin's reason, escaped and bounded.
        reason: String,
        /// When to retry, in milliseconds, when the plugin said.
        retry_after_ms: Option<u64>,
    },
    /// The platform answered a content request with a web page (`text/html`) and a success
    /// status: a sign-in page (Slack's file host does this for a token without `files:read`),
    /// never the file's bytes. Analysing it would record a page as an image with no findings.
    #[error(
        "{url} answered with a web page ({content_type}) instead of the file's bytes, usually a sign-in page: the integration's credentials may not read this file (check that the app's token has the platform's file-read permission and can see the file); will retry, and park the file with this reason if it persists"
    )]
    SignInPage {
        /// Final URL (without query).
        url: String,
        /// The `Content-Type` answered.
        content_type: String,
    },
    /// The platform refused because a request limit was reached, with a status other than
    /// 429 (Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`, Google's 403 `rateLimitExceeded`):
    /// back off and retry rather than give the file up.
    #[error("refused by a request limit (HTTP {status}, {code}) from {url}; backing off")]
    Limited {
        /// Status code.
        status: u16,
        /// The limit code found in the body.
        code: String,
        /// Final URL (without query).
        url: String,
        /// Retry-After in milliseconds, when given.
        retry_after_ms: Option<u64>,
    },
}

/// Error codes that, in the body of a 403, mean "a request limit was reached" rather than
/// "forbidden". Only the first [`LIMIT_BODY_PEEK_BYTES`] of the body are searched.
const LIMIT_CODES: &[&str] = &[
    "REQUEST_LIMIT_EXCEEDED",
    "userRateLimitExceeded",
    "rateLimitExceeded",
];
/// How much of a 403 body is read to look for a limit code.
const LIMIT_BODY_PEEK_BYTES: u64 = 4096;

impl FetchError {
    /// The platform's Retry-After, when it sent one with an error status.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            FetchError::Status {
                retry_after_ms: Some(ms),
                ..
            }
            | FetchError::Limited {
                retry_after_ms: Some(ms),
                ..
            }
            | FetchError::NotReady {
                retry_after_ms: Some(ms),
                ..
            }
            | FetchError::PluginNotReady {
                retry_after_ms: Some(ms),
                ..
            } => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }

    /// Whether retrying later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A web page may be a transient error page as well as a sign-in page: retried
            // with back-off, then parked with its reason by the attempt limit.
            FetchError::Failed(_)
            | FetchError::Limited { .. }
            | FetchError::NotReady { .. }
            | FetchError::PluginNotReady { .. }
            | FetchError::SignInPage { .. } => true,
            FetchError::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }
}

/// Executes download specs for one session.
#[derive(Debug, Clone)]
pub struct ContentFetcher {
    http: EgressHttp,
    mounts: Arc<Vec<Mount>>,
    plugin: Arc<str>,
}

/// An opened file: local, or remote with optional range support.
#[derive(Debug)]
pub enum Content {
    /// A file below a granted mount.
    Local {
        /// Opened read-only.
        file: File,
        /// Its size.
        len: u64,
        /// The host path it was opened at, for messages only: never open it again by
        /// path (a link may have been swapped in since); read `file`.
        path: PathBuf,
    },
    /// An HTTP resource.
    Remote(RemoteContent),
}

/// An HTTP resource the host reads, by range when it can.
#[derive(Debug, Clone)]
pub struct RemoteContent {
    http: EgressHttp,
    plugin: Arc<str>,
    request: OutboundRequest,
    /// Whether the plugin says ranges work.
    pub supports_range: bool,
}

impl ContentFetcher {
    pub(crate) fn new(http: EgressHttp, mounts: Vec<Mount>, plugin: Arc<str>) -> Self {
        ContentFetcher {
            http,
            mounts: Arc::new(mounts),
            plugin,
        }
    }

    /// A fetcher that reads below `mounts` and reaches no network (an empty egress
    /// allow-list denies every host): for a connector written in Rust, such as the
    /// pipeline's test connector, under the same path rules as a plugin's mounts.
    ///
    /// # Errors
    /// When the HTTP client cannot initialise (its TLS backend).
    pub fn local(mounts: Vec<Mount>, label: &str) -> Result<Self, String> {
        use crate::egress_http::{IntegrationHttp, PluginSecrets};
        use proofpix_policy::egress::{AllowedHosts, BlockedNetworks, EgressPolicy};
        let client = IntegrationHttp::new(
            BlockedNetworks::default(),
            std::time::Duration::from_secs(5),
        )?;
        let http = EgressHttp::new(
            client,
            EgressPolicy::default(),
            AllowedHosts::default(),
            None,
            None,
            0,
            PluginSecrets::default(),
        );
        Ok(ContentFetcher::new(http, mounts, Arc::from(label)))
    }

    /// Opens the content a plugin's download answer points at; an answer that
    /// the bytes are not ready yet is [`FetchError::PluginNotReady`], retried
    /// like a platform's `202 Accepted`.
    ///
    /// # Errors
    /// As [`ContentFetcher::open`], and not-ready answers.
    pub async fn open_answer(&self, answer: &DownloadAnswer) -> Result<Content, FetchError> {
        match answer {
            DownloadAnswer::Ready(spec) => self.open(spec).await,
            DownloadAnswer::NotReady(n) => Err(FetchError::PluginNotReady {
                plugin: self.plugin.to_string(),
                reason: not_ready_reason(&n.reason),
                retry_after_ms: n.retry_after_ms,
            }),
        }
    }

    /// Opens the content a spec points at. Local files are opened here, on a
    /// blocking-pool thread; remote content is read with
    /// [`RemoteContent::read_range`], [`RemoteContent::download`] or
    /// [`RemoteContent::read_all`].
    ///
    /// # Errors
    /// Paths outside the mounts, symbolic links, anything but a regular file,
    /// missing files, invalid requests.
    pub async fn open(&self, spec: &DownloadSpec) -> Result<Content, FetchError> {
        match &spec.location {
            ContentLocation::File(guest_path) => {
                let (root, rel) = self.mount_for(guest_path)?;
                let (guest, plugin) = (guest_path.clone(), self.plugin.clone());
                tokio::task::spawn_blocking(move || open_local(&root, &rel, &guest, &plugin))
                    .await
                    .map_err(|e| FetchError::Failed(format!("opening {guest_path}: {e}")))?
            }
            ContentLocation::Http(req) => {
                let method = match req.method {
                    wit_http::Method::Get => Method::GET,
                    wit_http::Method::Post => Method::POST,
                    other => {
                        return Err(
                            self.refused(format!("downloads use GET or POST, not {other:?}"))
                        );
                    }
                };
                Ok(Content::Remote(RemoteContent {
                    http: self.http.clone(),
                    plugin: self.plugin.clone(),
                    request: OutboundRequest {
                        method,
                        url: req.url.clone(),
                        headers: req.headers.clone(),
                        body: req.body.clone(),
                    },
                    supports_range: spec.supports_range,
                }))
            }
        }
    }

    /// Sends `body` (the host's sanitised copy of a file) with the request a
    /// plugin's `remediation.upload` returned, under the same egress checks
    /// and credential rules as the plugin's own requests. Only `PUT`, `POST`
    /// and `PATCH` upload; the plugin's body, if any, is replaced. Returns
    /// the status of a successful (2xx) answer.
    ///
    /// # Errors
    /// Other methods, egress refusals, connection failures and error statuses.
    pub async fn upload(
        &self,
        request: &wit_http::Request,
        body: Vec<u8>,
    ) -> Result<u16, FetchError> {
        let method = match request.method {
            wit_http::Method::Put => Method::PUT,
            wit_http::Method::Post => Method::POST,
            wit_http::Method::Patch => Method::PATCH,
            other => {
                return Err(self.refused(format!("uploads use PUT, POST or PATCH, not {other:?}")));
            }
        };
        let req = OutboundRequest {
            method,
            url: request.url.clone(),
            headers: request.headers.clone(),
            body,
        };
        let resp = self
            .http
            .send_streaming(req.clone())
            .await
            .map_err(|f| map_failure(f, &self.plugin))?;
        // An access token that expired mid-run: refresh once and resend, as
        // downloads do.
        let resp = if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && self.http.refresh_after_unauthorized(resp.url()).await
        {
            self.http
                .send_streaming(req)
                .await
                .map_err(|f| map_failure(f, &self.plugin))?
        } else {
            resp
        };
        let resp = check_status(resp, &self.plugin).await?;
        Ok(resp.status().as_u16())
    }

    fn refused(&self, reason: String) -> FetchError {
        FetchError::Refused {
            plugin: self.plugin.to_string(),
            reason,
        }
    }

    /// The mount a guest path is below and the path relative to its root,
    /// made only of normal components (no `..`, `.` or root).
    fn mount_for(&self, guest_path: &str) -> Result<(PathBuf, PathBuf), FetchError> {
        let mount = self
            .mounts
            .iter()
            .filter(|m| {
                guest_path == m.guest_path
                    || guest_path.starts_with(&format!("{}/", m.guest_path.trim_end_matches('/')))
            })
            .max_by_key(|m| m.guest_path.len())
            .ok_or_else(|| self.refused(format!("{guest_path} is not below any granted mount")))?;
        let rel = guest_path
            .get(mount.guest_path.len()..)
            .unwrap_or_default()
            .trim_start_matches('/');
        let rel = Path::new(rel);
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(self.refused(format!("{guest_path} leaves its mount")));
        }
        Ok((mount.host_path.clone(), rel.to_path_buf()))
    }
}

/// Opens `rel` below `root` as [`open_beneath`] does and describes failures
/// in the plugin's terms.
fn open_local(
    root: &Path,
    rel: &Path,
    guest_path: &str,
    plugin: &str,
) -> Result<Content, FetchError> {
    let refused = |reason: String| FetchError::Refused {
        plugin: plugin.to_string(),
        reason,
    };
    match open_beneath(root, rel) {
        Ok((file, len)) => Ok(Content::Local {
            file,
            len,
            path: root.join(rel),
        }),
        Err(Beneath::Link) => Err(refused(format!(
            "{guest_path} has a symbolic link on its path; links are not followed below a mount"
        ))),
        Err(Beneath::Escapes) => Err(refused(format!("{guest_path} leaves its mount"))),
        Err(Beneath::NotRegular(kind)) => Err(refused(format!(
            "{guest_path} is {kind}, not a regular file"
        ))),
        Err(Beneath::Root(e)) => Err(FetchError::Failed(format!(
            "the mount for {guest_path} is unavailable: {e}"
        ))),
        Err(Beneath::Io(e)) => Err(FetchError::Failed(format!("cannot open {guest_path}: {e}"))),
    }
}

/// Why [`open_beneath`] did not open a file.
#[derive(Debug)]
enum Beneath {
    /// A component is a symbolic link.
    Link,
    /// The path resolves outside the root.
    Escapes,
    /// Not a regular file (what it is instead).
    NotRegular(&'static str),
    /// The root itself cannot be opened.
    Root(std::io::Error),
    /// Any other failure (missing, permissions).
    Io(std::io::Error),
}

/// Opens `rel` (normal components only) below the directory `root`, read-only
/// and non-blocking, following no symbolic link on any component of `rel`,
/// and checks on the opened descriptor that it is a regular file. Returns the
/// file and its size. Blocking: call it on a blocking-pool thread.
#[cfg(unix)]
fn open_beneath(root: &Path, rel: &Path) -> Result<(File, u64), Beneath> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;

    let map = |e: Errno| match e {
        Errno::LOOP => Beneath::Link,
        Errno::XDEV => Beneath::Escapes,
        e => Beneath::Io(e.into()),
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    // Non-blocking: opening a FIFO for reading returns at once instead of
    // waiting for a writer (it is then refused as not a regular file).
    let leaf_flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    // The root is the operator's choice of directory; it is opened as given.
    let root_fd =
        rustix::fs::open(root, dir_flags, Mode::empty()).map_err(|e| Beneath::Root(e.into()))?;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::ResolveFlags;
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&root_fd, rel, leaf_flags, Mode::empty(), resolve) {
            Ok(fd) => return regular(File::from(fd)),
            // A kernel before 5.6, or a seccomp filter that refuses the call:
            // walk the components instead.
            Err(Errno::NOSYS | Errno::PERM) => {}
            Err(e) => return Err(map(e)),
        }
    }

    walk_beneath(root_fd, rel)
}

/// [`open_beneath`] without `openat2`: one `openat` per component, each with
/// `O_NOFOLLOW`, every directory opened relative to the one before.
#[cfg(unix)]
fn walk_beneath(root_fd: rustix::fd::OwnedFd, rel: &Path) -> Result<(File, u64), Beneath> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;

    let map = |e: Errno| match e {
        Errno::LOOP => Beneath::Link,
        e => Beneath::Io(e.into()),
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let leaf_flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let mut components: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => components.push(name),
            _ => return Err(Beneath::Escapes),
        }
    }
    let Some((leaf, dirs)) = components.split_last() else {
        return Err(Beneath::Escapes);
    };
    let mut dir = root_fd;
    for name in dirs {
        dir = rustix::fs::openat(&dir, *name, dir_flags | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| match e {
                // `O_DIRECTORY | O_NOFOLLOW` on a link: some systems say ENOTDIR.
                Errno::NOTDIR if is_link_at(&dir, name) => Beneath::Link,
                e => map(e),
            })?;
    }
    let fd = rustix::fs::openat(&dir, *leaf, leaf_flags, Mode::empty()).map_err(map)?;
    regular(File::from(fd))
}

#[cfg(unix)]
fn is_link_at(dir: &rustix::fd::OwnedFd, name: &std::ffi::OsStr) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
    })
}

/// Local mounts need `openat`-style opening; elsewhere they are refused.
#[cfg(not(unix))]
fn open_beneath(_root: &Path, _rel: &Path) -> Result<(File, u64), Beneath> {
    Err(Beneath::Io(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "local mounts are supported on Unix hosts only",
    )))
}

/// Checks, on the opened descriptor, that `file` is a regular file.
fn regular(file: File) -> Result<(File, u64), Beneath> {
    let meta = file.metadata().map_err(Beneath::Io)?;
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok((file, meta.len()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Err(Beneath::NotRegular("a FIFO"));
        }
        if ft.is_socket() {
            return Err(Beneath::NotRegular("a socket"));
        }
        if ft.is_block_device() || ft.is_char_device() {
            return Err(Beneath::NotRegular("a device"));
        }
    }
    if ft.is_dir() {
        return Err(Beneath::NotRegular("a directory"));
    }
    Err(Beneath::NotRegular("an unknown kind of file"))
}

/// How much of a plugin's not-ready reason a message keeps.
const MAX_NOT_READY_REASON_CHARS: usize = 300;

/// A plugin's not-ready reason as host text: escaped, bounded.
fn not_ready_reason(reason: &str) -> String {
    crate::error::bounded_plugin_text(reason, MAX_NOT_READY_REASON_CHARS)
}

/// Whole-file downloads keep up to this many bytes in memory; the rest of a
/// larger body is spooled to an anonymous temporary file.
pub const MEMORY_BODY_BYTES: u64 = 8 << 20;

/// A whole downloaded body.
#[derive(Debug)]
pub enum Body {
    /// A small body, in memory.
    Memory(Vec<u8>),
    /// A large body in an anonymous temporary file (gone when dropped),
    /// positioned at its start.
    Spooled {
        /// The file.
        file: File,
        /// Its size.
        len: u64,
    },
}

impl Body {
    /// The body's size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(b) => b.len() as u64,
            Body::Spooled { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RemoteContent {
    /// Reads `len` bytes at `offset` with a Range request. Returns the bytes
    /// and the total size when the server reports it. A server that ignores
    /// the range returns the whole body, which is read as a stream of which
    /// only the asked window is kept (at most `max_body` bytes are read).
    ///
    /// # Errors
    /// Egress refusals, HTTP errors, a status with no content
    /// ([`FetchError::NotReady`]), a body shorter than it said, and bodies over
    /// `max_body`.
    pub async fn read_range(
        &self,
        offset: u64,
        len: u64,
        max_body: u64,
    ) -> Result<(Vec<u8>, Option<u64>), FetchError> {
        let mut req = self.request.clone();
        let end = offset.saturating_add(len).saturating_sub(1);
        req.headers
            .push(("range".into(), format!("bytes={offset}-{end}")));
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        if status == 416 {
            // Range past the end: nothing there.
            let total = content_range_total(&resp);
            return Ok((Vec::new(), total));
        }
        let resp = check_content_status(resp, &self.plugin).await?;
        if status == 206 {
            let total = content_range_total(&resp);
            let body = read_window(resp, 0, len, Overflow::Stop, &self.plugin).await?;
            return Ok((body, total));
        }
        // The whole file came back: keep the window, stop after it.
        let total = resp.content_length();
        if offset >= max_body {
            return Err(FetchError::TooLarge(format!(
                "{} ignores ranges and the asked range starts past {max_body} bytes",
                proofpix_policy::egress::redact_url(resp.url())
            )));
        }
        let keep = len.min(max_body - offset);
        let body = read_window(resp, offset, keep, Overflow::Stop, &self.plugin).await?;
        Ok((body, total))
    }

    /// Reads the whole body into memory, up to `max_body` bytes. For bodies
    /// that may be large, use [`RemoteContent::download`].
    ///
    /// # Errors
    /// Egress refusals, HTTP errors, a status with no content, a body shorter
    /// than it said, and bodies over `max_body`.
    pub async fn read_all(&self, max_body: u64) -> Result<Vec<u8>, FetchError> {
        let resp = self.send(self.request.clone()).await?;
        let resp = check_content_status(resp, &self.plugin).await?;
        read_window(resp, 0, max_body, Overflow::Refuse, &self.plugin).await
    }

    /// Downloads the whole body, up to `max_body` bytes, keeping at most
    /// `memory_limit` bytes in memory: a larger body is spooled to an
    /// anonymous temporary file created in `spool_dir` (created if missing).
    ///
    /// # Errors
    /// As [`RemoteContent::read_all`], and a spool directory that cannot be
    /// written.
    pub async fn download(
        &self,
        max_body: u64,
        memory_limit: u64,
        spool_dir: &Path,
    ) -> Result<Body, FetchError> {
        let resp = self.send(self.request.clone()).await?;
        let mut resp = check_content_status(resp, &self.plugin).await?;
        let url = resp.url().clone();
        let expected = resp.content_length();
        if expected.is_some_and(|n| n > max_body) {
            return Err(too_large(&url, max_body));
        }
        let spool_failed = |e: std::io::Error| {
            FetchError::Failed(format!(
                "cannot spool a download to {}: {e}",
                spool_dir.display()
            ))
        };
        let mut memory = Vec::new();
        let mut spool: Option<tokio::fs::File> = None;
        let mut seen = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| map_failure(crate::egress_http::classify(&url, &e), &self.plugin))?
        {
            seen = seen.saturating_add(chunk.len() as u64);
            if seen > max_body {
                return Err(too_large(&url, max_body));
            }
            match spool.as_mut() {
                Some(file) => file.write_all(&chunk).await.map_err(spool_failed)?,
                None if seen > memory_limit => {
                    let dir = spool_dir.to_path_buf();
                    let file = tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(&dir)?;
                        tempfile::tempfile_in(&dir)
                    })
                    .await
                    .map_err(|e| FetchError::Failed(format!("spooling a download: {e}")))?
                    .map_err(spool_failed)?;
                    let mut file = tokio::fs::File::from_std(file);
                    file.write_all(&memory).await.map_err(spool_failed)?;
                    file.write_all(&chunk).await.map_err(spool_failed)?;
                    memory = Vec::new();
                    spool = Some(file);
                }
                None => memory.extend_from_slice(&chunk),
            }
        }
        check_complete(&url, seen, expected)?;
        match spool {
            None => Ok(Body::Memory(memory)),
            Some(mut file) => {
                file.flush().await.map_err(spool_failed)?;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(spool_failed)?;
                Ok(Body::Spooled {
                    file: file.into_std().await,
                    len: seen,
                })
            }
        }
    }
}

impl RemoteContent {
    /// Sends once; a 401 from an endpoint that takes credentials (an access token that expired
    /// mid-run) refreshes them, as a plugin call's `unauthorized` does, and sends once more.
    async fn send(&self, req: OutboundRequest) -> Result<reqwest::Response, FetchError> {
        let resp = self
            .http
            .send_streaming(req.clone())
            .await
            .map_err(|f| map_failure(f, &self.plugin))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && self.http.refresh_after_unauthorized(resp.url()).await
        {
            return self
                .http
                .send_streaming(req)
                .await
                .map_err(|f| map_failure(f, &self.plugin));
        }
        Ok(resp)
    }
}

/// For a content request: 200 and 206 carry the bytes; any other success
/// status (`202 Accepted` while the platform prepares the file, `204`) does
/// not, and is [`FetchError::NotReady`]; a success that is a web page is
/// [`FetchError::SignInPage`]. Errors as [`check_status`].
async fn check_content_status(
    resp: reqwest::Response,
    plugin: &str,
) -> Result<reqwest::Response, FetchError> {
    let status = resp.status();
    if status.is_success()
        && status != reqwest::StatusCode::OK
        && status != reqwest::StatusCode::PARTIAL_CONTENT
    {
        return Err(FetchError::NotReady {
            status: status.as_u16(),
            url: proofpix_policy::egress::redact_url(resp.url()),
            retry_after_ms: retry_after_ms(&resp),
        });
    }
    if status.is_success()
        && let Some(content_type) = web_page_type(&resp)
    {
        return Err(FetchError::SignInPage {
            url: proofpix_policy::egress::redact_url(resp.url()),
            content_type,
        });
    }
    check_status(resp, plugin).await
}

/// The media type of a response that is a web page (`text/html`, `application/xhtml+xml`).
/// No image, document or archive ProofPix reads is served as one; a platform that answers a
/// file request with a page is showing a sign-in or error page.
fn web_page_type(resp: &reqwest::Response) -> Option<String> {
    let value = resp.headers().get(reqwest::header::CONTENT_TYPE)?;
    let media = value
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    matches!(media.as_str(), "text/html" | "application/xhtml+xml").then_some(media)
}

/// A `Retry-After` in seconds, as milliseconds.
fn retry_after_ms(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}

async fn check_status(
    resp: reqwest::Response,
    plugin: &str,
) -> Result<reqwest::Response, FetchError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after_ms = retry_after_ms(&resp);
    let url = proofpix_policy::egress::redact_url(resp.url());
    if status == reqwest::StatusCode::FORBIDDEN {
        let body = read_window(resp, 0, LIMIT_BODY_PEEK_BYTES, Overflow::Stop, plugin)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        if let Some(code) = LIMIT_CODES.iter().find(|c| text.contains(**c)) {
            return Err(FetchError::Limited {
                status: status.as_u16(),
                code: (*code).to_string(),
                url,
                retry_after_ms,
            });
        }
    }
    Err(FetchError::Status {
        status: status.as_u16(),
        url,
        retry_after_ms,
    })
}

fn content_range_total(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, total)| total.trim().parse().ok())
}

/// What [`read_window`] does with a body longer than the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Stop reading after the window (a server that ignored a range).
    Stop,
    /// Refuse the body as too large.
    Refuse,
}

/// Reads a body as a stream, skipping its first `skip` bytes and keeping the
/// `keep` after them; only the kept bytes are held in memory. A body that
/// ends before its `Content-Length` is an error (it was cut off), never a
/// shorter file.
async fn read_window(
    mut resp: reqwest::Response,
    skip: u64,
    keep: u64,
    overflow: Overflow,
    plugin: &str,
) -> Result<Vec<u8>, FetchError> {
    let url = resp.url().clone();
    let expected = resp.content_length();
    let stop = skip.saturating_add(keep);
    if overflow == Overflow::Refuse && expected.is_some_and(|n| n > stop) {
        return Err(too_large(&url, keep));
    }
    let mut body = Vec::new();
    let mut seen = 0u64;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| map_failure(crate::egress_http::classify(&url, &e), plugin))?
    {
        let start = seen;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > stop && overflow == Overflow::Refuse {
            return Err(too_large(&url, keep));
        }
        // The part of this chunk inside [skip, stop).
        let from = usize::try_from(skip.saturating_sub(start)).unwrap_or(usize::MAX);
        let to = usize::try_from(stop.saturating_sub(start)).unwrap_or(usize::MAX);
        if let Some(part) = chunk.get(from.min(chunk.len())..to.min(chunk.len())) {
            body.extend_from_slice(part);
        }
        if seen >= stop {
            return Ok(body);
        }
    }
    check_complete(&url, seen, expected)?;
    Ok(body)
}

fn too_large(url: &reqwest::Url, max: u64) -> FetchError {
    FetchError::TooLarge(format!(
        "{} is larger than {max} bytes",
        proofpix_policy::egress::redact_url(url)
    ))
}

/// A body that ended before the length its headers announced was cut off:
/// retry, never analyse what arrived as if it were the file.
fn check_complete(url: &reqwest::Url, seen: u64, expected: Option<u64>) -> Result<(), FetchError> {
    match expected {
        Some(n) if seen < n => Err(FetchError::Failed(format!(
            "{}: the body ended after {seen} of its {n} bytes (cut off); will retry",
            proofpix_policy::egress::redact_url(url)
        ))),
        _ => Ok(()),
    }
}

fn map_failure(f: HttpFailure, plugin: &str) -> FetchError {
    match f {
        HttpFailure::Denied(m) | HttpFailure::Invalid(m) => FetchError::Refused {
            plugin: plugin.to_string(),
            reason: m,
        },
        HttpFailure::TooLarge(m) => FetchError::TooLarge(m),
        HttpFailure::Timeout(m) | HttpFailure::Connection(m) => FetchError::Failed(m),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// A fetcher with `/input` mounted at `<tmp>/mount`, next to `<tmp>/outside/secret.jpg`.
    fn fixture() -> (tempfile::TempDir, ContentFetcher) {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("mount");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(mount.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(mount.join("a.jpg"), b"inside").unwrap();
        std::fs::write(mount.join("sub/b.jpg"), b"deeper").unwrap();
        std::fs::write(outside.join("secret.jpg"), b"outside").unwrap();
        let http = EgressHttp::new(
            crate::egress_http::IntegrationHttp::new(
                Default::default(),
                std::time::Duration::from_secs(5),
            )
            .unwrap(),
            Default::default(),
            Default::default(),
            None,
            None,
            0,
            Default::default(),
        );
        let fetcher = ContentFetcher::new(
            http,
            vec![Mount {
                guest_path: "/input".into(),
                host_path: mount,
                writable: false,
            }],
            Arc::from("test"),
        );
        (tmp, fetcher)
    }

    fn spec(path: &str) -> DownloadSpec {
        DownloadSpec {
            location: ContentLocation::File(path.into()),
            supports_range: true,
        }
    }

    async fn read(fetcher: &ContentFetcher, path: &str) -> Result<Vec<u8>, FetchError> {
        match fetcher.open(&spec(path)).await? {
            Content::Local { mut file, len, .. } => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).unwrap();
                assert_eq!(len, bytes.len() as u64);
                Ok(bytes)
            }
            Content::Remote(_) => panic!("a local path opened as remote"),
        }
    }

    fn refused(r: Result<Vec<u8>, FetchError>, says: &str) {
        match r {
            Err(e @ FetchError::Refused { .. }) => {
                assert!(e.to_string().contains(says), "{e}");
                assert!(!e.is_retryable(), "{e}");
            }
            other => panic!("expected a refusal saying {says:?}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn files_below_the_mount_open_and_symbolic_links_on_any_component_are_refused() {
        let (tmp, fetcher) = fixture();
        let mount = tmp.path().join("mount");
        assert_eq!(read(&fetcher, "/input/a.jpg").await.unwrap(), b"inside");
        assert_eq!(read(&fetcher, "/input/sub/b.jpg").await.unwrap(), b"deeper");

        // A link at the leaf, and a directory link on the way, both pointing outside.
        symlink(
            tmp.path().join("outside/secret.jpg"),
            mount.join("link.jpg"),
        )
        .unwrap();
        symlink(tmp.path().join("outside"), mount.join("dirlink")).unwrap();
        refused(read(&fetcher, "/input/link.jpg").await, "symbolic link");
        refused(
            read(&fetcher, "/input/dirlink/secret.jpg").await,
            "symbolic link",
        );
        // Relative links and links that stay inside are not followed either: what the
        // plugin names is what is opened.
        symlink("../outside/secret.jpg", mount.join("rel.jpg")).unwrap();
        symlink("a.jpg", mount.join("alias.jpg")).unwrap();
        refused(read(&fetcher, "/input/rel.jpg").await, "symbolic link");
        refused(read(&fetcher, "/input/alias.jpg").await, "symbolic link");

        // A directory swapped for a link after the plugin listed it (the race the old
        // resolve-then-open had) is refused when opened.
        std::fs::rename(mount.join("sub"), tmp.path().join("moved")).unwrap();
        symlink(tmp.path().join("outside"), mount.join("sub")).unwrap();
        std::fs::write(tmp.path().join("outside/b.jpg"), b"escaped").unwrap();
        refused(read(&fetcher, "/input/sub/b.jpg").await, "symbolic link");

        refused(
            read(&fetcher, "/input/../outside/secret.jpg").await,
            "leaves its mount",
        );
        refused(read(&fetcher, "/input").await, "leaves its mount");
        refused(
            read(&fetcher, "/elsewhere/a.jpg").await,
            "not below any granted mount",
        );
        std::fs::create_dir(mount.join("adir")).unwrap();
        refused(
            read(&fetcher, "/input/adir").await,
            "a directory, not a regular file",
        );
        let missing = read(&fetcher, "/input/missing.jpg").await.unwrap_err();
        assert!(matches!(missing, FetchError::Failed(_)), "{missing:?}");
    }

    /// The walk used where `openat2` is missing follows no link either.
    #[test]
    fn the_component_walk_refuses_links_and_fifos_too() {
        let (tmp, _) = fixture();
        let mount = tmp.path().join("mount");
        symlink(tmp.path().join("outside"), mount.join("dirlink")).unwrap();
        symlink(
            tmp.path().join("outside/secret.jpg"),
            mount.join("link.jpg"),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            mount.join("pipe.jpg"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let walk = |rel: &str| {
            let root = rustix::fs::open(
                &mount,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            walk_beneath(root, Path::new(rel))
        };
        let (mut file, len) = walk("sub/b.jpg").unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        assert_eq!((bytes.as_slice(), len), (&b"deeper"[..], 6));
        assert!(matches!(walk("link.jpg"), Err(Beneath::Link)));
        assert!(matches!(walk("dirlink/secret.jpg"), Err(Beneath::Link)));
        assert!(matches!(
            walk("pipe.jpg"),
            Err(Beneath::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            walk("../outside/secret.jpg"),
            Err(Beneath::Escapes)
        ));
    }

    #[tokio::test]
    async fn a_fifo_below_the_mount_is_refused_without_waiting_for_a_writer() {
        let (tmp, fetcher) = fixture();
        let fifo = tmp.path().join("mount/pipe.jpg");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // No writer ever opens the FIFO: a blocking open would never return. The timeout
        // only turns such a hang into a failure; the refusal comes at once.
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            read(&fetcher, "/input/pipe.jpg"),
        )
        .await
        .expect("opening a FIFO must not block");
        refused(r, "a FIFO, not a regular file");
    }
}
