//! The daemon's configuration file (TOML) and its environment overrides.
//!
//! The adversary here is an operator's typo. The file is parsed strictly
//! (unknown keys are errors) and validated once at start; `proofpix serve
//! --check` prints every problem, each with its line, instead of stopping at
//! the first. Environment variables override single values, for containers.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8737"        # loopback by default
//! public_url = "http://127.0.0.1:8737"
//! drain_timeout_secs = 30
//! session_hours = 12               # a dashboard sign-in lasts this long
//! public_metrics = false           # true serves /metrics without a token
//!
//! [pipeline]
//! concurrency = 4
//!
//! [scheduler]
//! enabled = true
//! max_jitter_secs = 300
//!
//! [retention]
//! results_days = 365
//! batches_days = 365
//! ```
//!
//! | variable | overrides |
//! |---|---|
//! | `PROOFPIX_LISTEN` | `server.listen` |
//! | `PROOFPIX_PUBLIC_URL` | `server.public_url` |
//! | `PROOFPIX_CONCURRENCY` | `pipeline.concurrency` |

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// `[scheduler]`.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// `[retention]`.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[plugins]`.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreConfig,
}

/// `[store]`: where the daemon keeps what it knows. Unset, the embedded redb file in the
/// data directory (one daemon); a PostgreSQL URL makes the database the system of record
/// that several daemons share (cluster mode).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database` (also `PROOFPIX_DATABASE_URL`, which
    /// wins). Default: none, the embedded store.
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL schema the tables live in, created if missing (also
    /// `PROOFPIX_DATABASE_SCHEMA`). Default: the connection's `search_path`.
    #[serde(default)]
    pub schema: Option<String>,
    /// The most connections this daemon opens. Default 8.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

/// `[plugins]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Trust the built-in plugins of a development build (one built without
    /// `PROOFPIX_FIRST_PARTY_KEY`, signed with a key the build made). Default
    /// false; a release build ignores it.
    #[serde(default)]
    pub trust_development_build: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8737`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// URL the dashboard and OAuth callbacks are reached at.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Seconds to let in-flight work finish on SIGTERM. Default 30.
    #[serde(default = "default_drain")]
    pub drain_timeout_secs: u64,
    /// Largest request body, in KiB. Default 1024.
    #[serde(default = "default_body_kib")]
    pub max_body_kib: usize,
    /// Hours a dashboard sign-in lasts, whatever the activity. Default 12.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Serve `/metrics` without a token. Default false: a scraper sends a
    /// viewer token as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub public_metrics: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            drain_timeout_secs: default_drain(),
            max_body_kib: default_body_kib(),
            session_hours: default_session_hours(),
            public_metrics: false,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8737".into()
}
fn default_drain() -> u64 {
    30
}
fn default_body_kib() -> usize {
    1024
}
fn default_session_hours() -> u32 {
    12
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Files fetched and analysed at once per run. Default: 16 (fetches wait on the network;
    /// the analysis itself runs on the blocking pool).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Runs at once across integrations. Default 4.
    #[serde(default = "default_runs")]
    pub max_parallel_runs: usize,
    /// How long a claim on work (a file's queue item, an integration's sync) lasts before
    /// another run may take it over, in seconds (also `PROOFPIX_LEASE_SECS`). A daemon that
    /// dies holding claims delays that work by at most this long; a claim is released as
    /// soon as its work is done. Default 300.
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            concurrency: None,
            max_parallel_runs: default_runs(),
            lease_secs: None,
        }
    }
}

fn default_runs() -> usize {
    4
}

/// `[scheduler]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Run scheduled syncs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Largest random delay added to a scheduled run, so many integrations
    /// on the same schedule do not fire together. Default 300.
    #[serde(default = "default_jitter")]
    pub max_jitter_secs: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            max_jitter_secs: default_jitter(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_jitter() -> u64 {
    300
}

/// `[retention]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days to keep analysis results; unset keeps them forever.
    #[serde(default)]
    pub results_days: Option<u32>,
    /// Days to keep batch records.
    #[serde(default)]
    pub batches_days: Option<u32>,
    /// Days to keep audit entries (older ones are folded into checkpoints).
    #[serde(default)]
    pub audit_days: Option<u32>,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl DaemonConfig {
    /// Parses and validates a file's text, then applies environment
    /// overrides from `env`. Returns every problem found.
    ///
    /// # Errors
    /// The list of problems, each with its line where it has one.
    pub fn parse(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigProblem>> {
        let mut config: DaemonConfig = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(vec![ConfigProblem {
                    line,
                    message: e.message().to_string(),
                }]);
            }
        };
        if let Some(v) = env("PROOFPIX_LISTEN") {
            config.server.listen = v;
        }
        if let Some(v) = env("PROOFPIX_PUBLIC_URL") {
            config.server.public_url = Some(v);
        }
        if let Some(v) = env("PROOFPIX_DATABASE_URL").filter(|v| !v.is_empty()) {
            config.store.url = Some(v);
        }
        if let Some(v) = env("PROOFPIX_DATABASE_SCHEMA").filter(|v| !v.is_empty()) {
            config.store.schema = Some(v);
        }
        let mut problems = Vec::new();
        if let Some(u) = &config.store.url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            // The URL may hold a password: the message names only its scheme.
            let scheme = u
                .split("://")
                .next()
                .filter(|s| s.len() < u.len())
                .unwrap_or("");
            problems.push(ConfigProblem {
                line: find_key_line(text, "url"),
                message: format!(
                    "store.url must be a PostgreSQL URL (postgres://user@host:5432/database), not {}",
                    if scheme.is_empty() { "this value".to_string() } else { format!("a {scheme}:// URL") }
                ),
            });
        }
        if config.store.max_connections == Some(0) {
            problems.push(ConfigProblem {
                line: find_key_line(text, "max_connections"),
                message: "store.max_connections must be at least 1".into(),
            });
        }
        if let Some(v) = env("PROOFPIX_LEASE_SECS") {
            match v.parse() {
                Ok(n) => config.pipeline.lease_secs = Some(n),
                Err(_) => problems.push(ConfigProblem {
                    line: None,
                    message: format!("PROOFPIX_LEASE_SECS={v:?} is not a whole number"),
                }),
            }
        }
        if config
            .pipeline
            .lease_secs
            .is_some_and(|n| !(5..=86_400).contains(&n))
        {
            problems.push(ConfigProblem {
                line: find_key_line(text, "lease_secs"),
                message: "pipeline.lease_secs must be between 5 and 86400".into(),
            });
        }
        if let Some(v) = env("PROOFPIX_CONCURRENCY") {
            match v.parse() {
                Ok(n) => config.pipeline.concurrency = Some(n),
                Err(_) => problems.push(ConfigProblem {
                    line: None,
                    message: format!("PROOFPIX_CONCURRENCY={v:?} is not a whole number"),
                }),
            }
        }
        let at = |key: &str| find_key_line(text, key);
        if config.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(ConfigProblem {
                line: at("listen"),
                message: format!(
                    "server.listen {:?} is not an address like 127.0.0.1:8737",
                    config.server.listen
                ),
            });
        }
        if let Some(u) = &config.server.public_url
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            problems.push(ConfigProblem {
                line: at("public_url"),
                message: format!("server.public_url {u:?} is not an http(s) URL"),
            });
        }
        if config.server.drain_timeout_secs > 3600 {
            problems.push(ConfigProblem {
                line: at("drain_timeout_secs"),
                message: "server.drain_timeout_secs must be at most 3600".into(),
            });
        }
        if !(1..=65_536).contains(&config.server.max_body_kib) {
            problems.push(ConfigProblem {
                line: at("max_body_kib"),
                message: "server.max_body_kib must be between 1 and 65536".into(),
            });
        }
        if !(1..=720).contains(&config.server.session_hours) {
            problems.push(ConfigProblem {
                line: at("session_hours"),
                message: "server.session_hours must be between 1 and 720 (30 days)".into(),
            });
        }
        if config
            .pipeline
            .concurrency
            .is_some_and(|c| c == 0 || c > 256)
        {
            problems.push(ConfigProblem {
                line: at("concurrency"),
                message: "pipeline.concurrency must be between 1 and 256".into(),
            });
        }
        if !(1..=64).contains(&config.pipeline.max_parallel_runs) {
            problems.push(ConfigProblem {
                line: at("max_parallel_runs"),
                message: "pipeline.max_parallel_runs must be between 1 and 64".into(),
            });
        }
        if config.scheduler.max_jitter_secs > 3600 {
            problems.push(ConfigProblem {
                line: at("max_jitter_secs"),
                message: "scheduler.max_jitter_secs must be at most 3600".into(),
            });
        }
        for (key, v) in [
            ("results_days", config.retention.results_days),
            ("batches_days", config.retention.batches_days),
            ("audit_days", config.retention.audit_days),
        ] {
            if v == Some(0) {
                problems.push(ConfigProblem {
                    line: at(key),
                    message: format!(
                        "retention.{key} must be at least 1 (leave it out to keep forever)"
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The listen address (validated by [`DaemonConfig::parse`]).
    pub fn listen(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8737)))
    }

    /// How long a dashboard sign-in lasts.
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.server.session_hours) * 3600)
    }

    /// The drain deadline.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.server.drain_timeout_secs)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_empty_file_gives_the_loopback_defaults() {
        let c = DaemonConfig::parse("", no_env).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.listen().to_string(), "127.0.0.1:8737");
        assert!(c.scheduler.enabled);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "[server]\nlisten = \"everywhere\"\npublic_url = \"ftp://x\"\n\n[pipeline]\nconcurrency = 0\n";
        let problems = DaemonConfig::parse(text, no_env).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "line 2: server.listen \"everywhere\" is not an address like 127.0.0.1:8737",
                "line 3: server.public_url \"ftp://x\" is not an http(s) URL",
                "line 6: pipeline.concurrency must be between 1 and 256",
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_with_its_line() {
        let problems = DaemonConfig::parse("[server]\nlisen = \"x\"\n", no_env).unwrap_err();
        assert_eq!(problems[0].line, Some(2));
        assert!(
            problems[0].message.contains("unknown field `lisen`"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn environment_overrides_win() {
        let env = |k: &str| (k == "PROOFPIX_LISTEN").then(|| "0.0.0.0:9000".to_string());
        let c = DaemonConfig::parse("[server]\nlisten = \"127.0.0.1:1\"\n", env)
            .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.listen().to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn the_store_is_embedded_unless_a_postgresql_url_is_given() {
        let c = DaemonConfig::parse("", no_env).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.store.url, None);
        let text = "[store]\nurl = \"postgres://pp@db:5432/proofpix\"\nschema = \"pp\"\n";
        let c = DaemonConfig::parse(text, no_env).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(
            c.store.url.as_deref(),
            Some("postgres://pp@db:5432/proofpix")
        );
        assert_eq!(c.store.schema.as_deref(), Some("pp"));
        // The environment wins over the file.
        let env = |k: &str| {
            (k == "PROOFPIX_DATABASE_URL").then(|| "postgresql://other@db2/x".to_string())
        };
        let c = DaemonConfig::parse(text, env).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.store.url.as_deref(), Some("postgresql://other@db2/x"));
    }

    #[test]
    fn a_store_url_that_is_not_postgresql_is_refused_without_echoing_it() {
        let text = "[store]\nurl = \"mysql://root:hunter2@db/x\"\n";
        let problems = DaemonConfig::parse(text, no_env).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("mysql://"), "{}", problems[0]);
        assert!(!problems[0].message.contains("hunter2"), "{}", problems[0]);
    }
}
