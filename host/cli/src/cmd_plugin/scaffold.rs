//! `proofpix plugin new NAME`: a connector crate on the SDK that builds, tests and installs.
//!
//! The crate is a complete source connector for a small JSON HTTP API (list files with a
//! cursor, download by id), with an API-key auth the host performs, a unit test that runs on
//! the host (`cargo test`), and a README with the steps from build to install. It is its own
//! workspace (`[workspace]` in its `Cargo.toml`), so it builds wherever it is created, also
//! inside another workspace's tree.
//!
//! Failures it guards against: an invalid name (the plugin id must be `a-z0-9-`; it is also
//! the crate name) and overwriting anything (the target directory must not exist or be
//! empty). It writes nothing until every check has passed.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where the new crate gets `proofpix-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A path dependency (a checkout of the ProofPix repository).
    Path(PathBuf),
    /// A registry version requirement.
    Version(String),
}

impl SdkSource {
    /// `--sdk`: a version requirement (`0.2`, `=0.1.0`) or else a path to the `sdk` directory.
    /// Without it, the SDK of the repository this binary was built from, when it is still
    /// there, else the registry version matching this binary.
    pub fn resolve(arg: Option<&str>) -> SdkSource {
        match arg {
            Some(a) if a.starts_with(|c: char| c.is_ascii_digit() || c == '=' || c == '^') => {
                SdkSource::Version(a.to_string())
            }
            Some(a) => SdkSource::Path(PathBuf::from(a)),
            None => {
                let repo_sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
                match repo_sdk.canonicalize() {
                    Ok(p) if p.join("Cargo.toml").is_file() => SdkSource::Path(p),
                    _ => SdkSource::Version(env!("CARGO_PKG_VERSION").to_string()),
                }
            }
        }
    }

    fn dependency(&self) -> String {
        match self {
            SdkSource::Path(p) => format!("{{ path = {:?} }}", p.display().to_string()),
            SdkSource::Version(v) => format!("{v:?}"),
        }
    }
}

/// Checks `name` is usable as a plugin id and crate name.
///
/// # Errors
/// A message saying what the name may contain.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    // The host's id rule, and a crate name too: a letter first, no dash last.
    let ok = proofpix_policy::manifest::is_id(name)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{name:?} cannot be a plugin id: use 1-64 characters of a-z, 0-9 and -, starting with a letter (e.g. acme-drive)"
        );
    }
    Ok(())
}

/// The files of a new connector crate, as (relative path, contents).
pub fn files(name: &str, sdk: &SdkSource) -> Vec<(&'static str, String)> {
    let title = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let ident: String = title.split(' ').collect();
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{title}}", &title)
            .replace("{{ident}}", &ident)
            .replace("{{sdk}}", &sdk.dependency())
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("README.md", fill(README_MD)),
        (".gitignore", "/target\n".to_string()),
    ]
}

/// Writes a new connector crate into `dir`.
///
/// # Errors
/// An invalid name, a non-empty directory, I/O errors.
pub fn create(name: &str, dir: &Path, sdk: &SdkSource) -> anyhow::Result<()> {
    check_name(name)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    for (rel, text) in files(name, sdk) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly component; rlib: so `cargo test` runs the unit tests on your machine.
crate-type = ["cdylib", "rlib"]

[dependencies]
proofpix-sdk = {{sdk}}
serde_json = "1"

# Small, self-contained components.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A workspace of its own, so it builds wherever it sits.
[workspace]
"#;

const LIB_RS: &str = r#"//! {{title}}: a ProofPix connector for a JSON HTTP API.
//!
//! The API it expects (change it to your platform's):
//!
//! - `GET {base_url}/files?cursor=C` answers `{"files": [{"id", "name", "etag", "size"?,
//!   "mime_type"?}], "next": "C2" | null}`;
//! - `GET {base_url}/files/{id}/content` answers the file's bytes.
//!
//! The host sends the API key (the secret field `api_key`) as `Authorization: Bearer ...` on
//! every request to `base_url`; this code never sees it. It never sees file bytes either:
//! `download` only says where the host fetches them.

use proofpix_sdk::prelude::*;

struct {{ident}};

impl Connector for {{ident}} {
    fn describe() -> PluginInfo {
        PluginInfo::builder("{{name}}", env!("CARGO_PKG_VERSION"), "{{title}}", "{{title}}")
            .description("Scans the images of {{title}}.")
            .capability(Capability::Source)
            .field(ConfigField::url("base_url", "API URL", "Where the API lives, e.g. https://api.example.com."))
            .field(ConfigField::secret("api_key", "API key", "Created in the platform's settings."))
            .auth(AuthScheme::ApiKey(ApiKeyAuth {
                secret_field: "api_key".into(),
                header: "authorization".into(),
                prefix: "Bearer ".into(),
            }))
            .endpoint(
                Endpoint::new("api", "{config.base_url}")
                    .with_credentials()
                    .purpose("list and download files"),
            )
            .build()
    }

    fn check() -> Result<CheckReport, PluginError> {
        let base = config::require("base_url")?;
        http::Request::get(&format!("{base}/files")).send()?.error_for_status()?;
        Ok(CheckReport {
            account: None,
            details: vec!["the file list is readable".into()],
        })
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        let base = config::require("base_url")?;
        let mut request = http::Request::get(&format!("{base}/files"));
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let body: serde_json::Value = request.send()?.error_for_status()?.json()?;
        parse_page(&body)
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        let base = config::require("base_url")?;
        let url = format!("{base}/files/{}/content", http::percent_encode(&file.id));
        // A platform that is still processing a fresh upload would answer
        // `DownloadAnswer::not_ready(retry_after_ms, reason)` instead.
        Ok(DownloadSpec {
            location: ContentLocation::Http(http::Request::get(&url).into_wit()),
            supports_range: false,
        }
        .into())
    }
}

export_connector!({{ident}});

/// One page of the API's file list as the contract's page. A page without `next` ends the
/// run; its cursor is then `None` and the next run lists from the start (the host skips file
/// versions it has already analysed).
fn parse_page(body: &serde_json::Value) -> Result<Page, PluginError> {
    let items = body["files"]
        .as_array()
        .ok_or_else(|| PluginError::transient("the file list has no `files` array"))?;
    let files = items
        .iter()
        .filter_map(|f| {
            Some(RemoteFile {
                id: f["id"].as_str()?.to_string(),
                name: f["name"].as_str().unwrap_or_default().to_string(),
                version: f["etag"].as_str().unwrap_or_default().to_string(),
                size: f["size"].as_u64(),
                mime_type: f["mime_type"].as_str().map(String::from),
                ..RemoteFile::default()
            })
        })
        .collect();
    let next = body["next"].as_str().map(String::from);
    Ok(Page {
        files,
        removed: Vec::new(),
        more: next.is_some(),
        cursor: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_maps_files_and_the_next_cursor() {
        let body = serde_json::json!({
            "files": [
                {"id": "1", "name": "a.jpg", "etag": "v1", "size": 10, "mime_type": "image/jpeg"},
                {"name": "no id: skipped"}
            ],
            "next": "c2"
        });
        let page = parse_page(&body).unwrap();
        assert_eq!(page.files.len(), 1);
        assert_eq!(page.files[0].id, "1");
        assert_eq!(page.files[0].version, "v1");
        assert_eq!(page.cursor.as_deref(), Some("c2"));
        assert!(page.more);
    }

    #[test]
    fn the_manifest_asks_for_one_credentialed_endpoint() {
        let info = {{ident}}::describe();
        assert_eq!(info.id, "{{name}}");
        assert_eq!(info.endpoints.len(), 1);
        assert!(info.endpoints[0].credentials);
    }
}
"#;

const README_MD: &str = r#"# {{title}}

A ProofPix connector plugin, built on `proofpix-sdk`.

```sh
cargo test                                            # unit tests, on your machine
cargo build --target wasm32-wasip2 --release          # the component
proofpix plugin inspect target/wasm32-wasip2/release/{{crate}}.wasm
```

Sign and install it (once: `proofpix plugin keygen me` and `proofpix plugin trust me.pub`):

```sh
proofpix plugin sign --key me.key target/wasm32-wasip2/release/{{crate}}.wasm -o {{name}}.wasm
proofpix plugin install {{name}}.wasm --grant all
proofpix integration create ...                       # see `proofpix integration --help`
```

`src/lib.rs` says which API it expects; change `discover`, `download` and the manifest in
`describe` to your platform's. The SDK's tutorial is `sdk/README.md` in the ProofPix
repository.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ids_are_checked_before_anything_is_written() {
        for ok in ["acme", "acme-drive", "a1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "1acme", "acme_drive", "acme-", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_crate_names_its_sdk_and_its_struct() {
        let files = files("acme-drive", &SdkSource::Version("0.2".into()));
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("proofpix-sdk = \"0.2\""), "{cargo}");
        let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        assert!(lib.contains("struct AcmeDrive;"));
        assert!(lib.contains("export_connector!(AcmeDrive);"));
        assert!(!lib.contains("{{"), "every placeholder is filled");
    }
}
