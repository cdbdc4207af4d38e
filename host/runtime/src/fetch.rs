//! The host's side of downloads: executing a plugin's [`DownloadSpec`].
//!
//! File bytes never pass through the plugin. The plugin says where a file
//! lives (an HTTP request, or a path below one of its granted mounts); the
//! host reads only the byte ranges the analysis needs.
//!
//! Threats: a plugin that points a download at a host it was not granted
//! (HTTP downloads use the same egress checks, per hop, as the plugin's own
//! requests, and credentials only on endpoints that take them), or at a file
//! outside its mounts (`..`, absolute paths, symlinks that leave the mount:
//! the path is resolved and must stay under the mount's resolved root).

use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use proofpix_policy::Mount;
use reqwest::Method;

use crate::bindings::latest::exports::proofpix::plugin::source::{ContentLocation, DownloadSpec};
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
            } => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }

    /// Whether retrying later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Failed(_) | FetchError::Limited { .. } => true,
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
        /// Resolved host path.
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

    /// Opens the content a spec points at. Local files are opened here;
    /// remote content is read with [`RemoteContent::read_range`] or
    /// [`RemoteContent::read_all`].
    ///
    /// # Errors
    /// Paths outside the mounts, missing files, invalid requests.
    pub fn open(&self, spec: &DownloadSpec) -> Result<Content, FetchError> {
        match &spec.location {
            ContentLocation::File(guest_path) => {
                let path = self.resolve_guest_path(guest_path)?;
                let file = File::open(&path)
                    .map_err(|e| FetchError::Failed(format!("cannot open {guest_path}: {e}")))?;
                let meta = file
                    .metadata()
                    .map_err(|e| FetchError::Failed(format!("cannot stat {guest_path}: {e}")))?;
                if !meta.is_file() {
                    return Err(self.refused(format!("{guest_path} is not a regular file")));
                }
                Ok(Content::Local {
                    file,
                    len: meta.len(),
                    path,
                })
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

    /// Maps a guest path below a mount to a host path that stays inside it.
    fn resolve_guest_path(&self, guest_path: &str) -> Result<PathBuf, FetchError> {
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
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(self.refused(format!("{guest_path} leaves its mount")));
        }
        let root = mount.host_path.canonicalize().map_err(|e| {
            FetchError::Failed(format!("mount {} is unavailable: {e}", mount.guest_path))
        })?;
        let full = root
            .join(rel)
            .canonicalize()
            .map_err(|e| FetchError::Failed(format!("cannot open {guest_path}: {e}")))?;
        if !full.starts_with(&root) {
            return Err(self.refused(format!(
                "{guest_path} resolves outside its mount (a symbolic link?)"
            )));
        }
        Ok(full)
    }
}

impl RemoteContent {
    /// Reads `len` bytes at `offset` with a Range request. Returns the bytes
    /// and the total size when the server reports it. A server that ignores
    /// the range returns the whole body, of which the asked window is kept
    /// (up to `max_body` bytes are read).
    ///
    /// # Errors
    /// Egress refusals, HTTP errors, and bodies over `max_body`.
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
        let resp = check_status(resp, &self.plugin).await?;
        let total = if status == 206 {
            content_range_total(&resp)
        } else {
            resp.content_length()
        };
        let keep = if status == 206 {
            len
        } else {
            end.saturating_add(1).min(max_body)
        };
        let mut body = read_body(resp, keep, true, &self.plugin).await?;
        if status != 206 {
            // The whole file came back: keep the window.
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(body.len());
            let stop = usize::try_from(end.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(body.len());
            body = body
                .get(start..stop)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
        }
        Ok((body, total))
    }

    /// Reads the whole body, up to `max_body` bytes.
    ///
    /// # Errors
    /// Egress refusals, HTTP errors, and bodies over `max_body`.
    pub async fn read_all(&self, max_body: u64) -> Result<Vec<u8>, FetchError> {
        let resp = self.send(self.request.clone()).await?;
        let resp = check_status(resp, &self.plugin).await?;
        read_body(resp, max_body, false, &self.plugin).await
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

async fn check_status(
    resp: reqwest::Response,
    plugin: &str,
) -> Result<reqwest::Response, FetchError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after_ms = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    let url = proofpix_policy::egress::redact_url(resp.url());
    if status == reqwest::StatusCode::FORBIDDEN {
        let body = read_body(resp, LIMIT_BODY_PEEK_BYTES, true, plugin)
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

/// Reads at most `max` bytes. With `truncate`, stops there (a server that
/// ignored a range sends more than was asked); otherwise more is an error.
async fn read_body(
    mut resp: reqwest::Response,
    max: u64,
    truncate: bool,
    plugin: &str,
) -> Result<Vec<u8>, FetchError> {
    let url = resp.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| map_failure(crate::egress_http::classify(&url, &e), plugin))?
    {
        if (body.len() + chunk.len()) as u64 > max {
            if !truncate {
                return Err(FetchError::TooLarge(format!(
                    "{} is larger than {max} bytes",
                    proofpix_policy::egress::redact_url(&url)
                )));
            }
            let room = usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Ok(body);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
