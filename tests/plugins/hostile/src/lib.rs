//! A plugin that misbehaves on purpose, one way per `mode` config value.
//!
//! The runtime's tests load it to prove each limit and policy holds: the
//! misbehaviour is stopped with a clear error and the host goes on serving
//! other plugins. Every mode acts in `discover`.
//!
//! | mode | what it does |
//! |---|---|
//! | `spin` | loops forever |
//! | `memory` | allocates (and touches) memory until it fails |
//! | `ungranted-host` | requests `{config.url}`, a host it was not granted |
//! | `redirect` | requests `{config.url}`, which redirects to a host it was not granted |
//! | `authorization` | sets an `Authorization` header |
//! | `env-and-files` | reads environment variables and files, and reports what it saw as file names |
//! | `huge-page` | returns a page of 50,000 files (over the host's page limit) |
//! | `log-flood` | writes 50 MB of log lines |
//! | `stdout-flood` | prints 50 MB to stdout |
//! | `state-flood` | writes 10 MB of state |
//! | `panic` | panics (a trap) |
//! | `secret-in-query` | splices `{secret.api_key}` and `{secret.hook}` into a query on its granted host |
//! | `secret-overflow` | sends `%{secret.api_key}` and 250 more characters (an invalid URL) |
//! | `reflect` | asks a reflecting server for `{config.url}` (credentials injected) and `{secret.hook}` |
//! | `userinfo` | requests `{config.url}` with `mallory:stolen@` in it |
//! | `log-forge` | logs CR/LF, ANSI and bidi-override text to forge host log lines |
//!
//! The `hook-*` modes act in `handle_event` instead (the plugin declares the
//! `events` capability for them); see [`hooks`].

use proofpix_sdk::prelude::*;

mod egress;
pub mod hooks;

struct Hostile;

impl Connector for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::builder("hostile", "0.0.1", "Hostile test plugin", "Test")
            .capability(Capability::Source)
            .capability(Capability::Events)
            .field(ConfigField::text(
                "mode",
                "Mode",
                "Which misbehaviour to perform.",
            ))
            .field(ConfigField::url("url", "URL", "Target of the HTTP modes.").optional())
            .field(
                ConfigField::url("granted", "Granted base", "The endpoint it declares.").optional(),
            )
            .field(
                ConfigField::secret("api_key", "API key", "A secret it tries to read.").optional(),
            )
            .field(
                ConfigField::secret_url("hook", "Hook URL", "A sealed URL it tries to read.")
                    .optional(),
            )
            .endpoint(Endpoint::new("api", "{config.granted}").with_credentials())
            .build()
    }

    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        hooks::handle(&config::require("mode")?, request)
    }

    fn discover(_cursor: Option<String>) -> Result<Page, PluginError> {
        let mode = config::require("mode")?;
        let url = config::get("url").unwrap_or_default();
        let mut seen: Vec<String> = Vec::new();
        match mode.as_str() {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = 1;
                    chunk[(1 << 20) - 1] = 1;
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "ungranted-host" | "redirect" => {
                let r = http::Request::get(&url).send()?;
                seen.push(format!("status {}", r.status));
            }
            "authorization" => {
                let r = http::Request::get(&url)
                    .header("Authorization", "Bearer stolen")
                    .send()?;
                seen.push(format!("status {}", r.status));
            }
            "env-and-files" => {
                for (k, v) in std::env::vars() {
                    seen.push(format!("env {k}={v}"));
                }
                for a in std::env::args() {
                    seen.push(format!("arg {a}"));
                }
                for p in [
                    "/etc/passwd",
                    "/proc/self/environ",
                    "/input/../etc/passwd",
                    "../../etc/passwd",
                    "/",
                ] {
                    if let Ok(b) = std::fs::read(p) {
                        seen.push(format!("read {p}: {} bytes", b.len()));
                    }
                    if let Ok(rd) = std::fs::read_dir(p) {
                        seen.push(format!("listed {p}: {} entries", rd.count()));
                    }
                }
                if std::net::TcpStream::connect("127.0.0.1:1").is_ok() {
                    seen.push("opened a socket".into());
                }
            }
            "huge-page" => {
                let files = (0..50_000)
                    .map(|i| RemoteFile {
                        id: format!("{i}"),
                        name: "x".into(),
                        version: "1".into(),
                        ..RemoteFile::default()
                    })
                    .collect();
                return Ok(Page {
                    files,
                    removed: vec![],
                    cursor: None,
                    more: false,
                });
            }
            "log-flood" => {
                let line = "x".repeat(1000);
                for _ in 0..50_000 {
                    log::info(&line);
                }
            }
            "stdout-flood" => {
                let line = "y".repeat(1000);
                for _ in 0..50_000 {
                    println!("{line}");
                }
            }
            "state-flood" => {
                let value = vec![7u8; 1 << 20];
                for i in 0..10 {
                    state::set(&format!("k{i}"), &value)?;
                }
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "secret-in-query" => seen.extend(egress::secret_in_query(
                &config::get("granted").unwrap_or_default(),
            )),
            "secret-overflow" => seen.extend(egress::secret_overflow()),
            "reflect" => seen.extend(egress::reflect(&url)),
            "userinfo" => seen.extend(egress::userinfo(&url)),
            "log-forge" => seen.extend(egress::log_forge()),
            other => {
                return Err(PluginError::invalid_config(
                    Some("mode"),
                    format!("unknown mode {other}"),
                ));
            }
        }
        let files = seen
            .into_iter()
            .map(|s| RemoteFile {
                id: s.clone(),
                name: s,
                version: "1".into(),
                ..RemoteFile::default()
            })
            .collect();
        Ok(Page {
            files,
            removed: vec![],
            cursor: None,
            more: false,
        })
    }
}

export_connector!(Hostile);
