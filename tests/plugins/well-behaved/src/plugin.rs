use proofpix_sdk::prelude::*;

struct WellBehaved;

impl Connector for WellBehaved {
    fn describe() -> PluginInfo {
        let info = PluginInfo::builder("well-behaved", VERSION, "Well-behaved test plugin", "Test")
            .capability(Capability::Source)
            .capability(Capability::Notifier)
            .capability(Capability::Events)
            .field(ConfigField::url("base_url", "Base URL", "Where the test API lives.").optional())
            .field(
                ConfigField::text(
                    "upgrade_check",
                    "Upgrade check",
                    "`fail` makes versions after 1.0.0 fail their check.",
                )
                .optional(),
            )
            .field(ConfigField::secret("token", "Token", "Static bearer token.").optional())
            .field(
                ConfigField::secret("signing_secret", "Signing secret", "Webhook HMAC key.")
                    .optional(),
            )
            .auth(AuthScheme::ApiKey(ApiKeyAuth {
                secret_field: "token".into(),
                header: "authorization".into(),
                prefix: "Bearer ".into(),
            }))
            .endpoint(
                Endpoint::new("api", "{config.base_url}")
                    .with_credentials()
                    .purpose("the test API"),
            )
            .field(
                ConfigField::url(
                    "download_url",
                    "Download URL",
                    "Where downloads redirect to.",
                )
                .optional(),
            )
            .field(
                ConfigField::secret_url(
                    "webhook_url",
                    "Webhook URL",
                    "A URL that is itself a credential.",
                )
                .optional(),
            )
            .endpoint(
                Endpoint::new("download", "{config.download_url}").purpose("pre-signed downloads"),
            );
        // Versions after 1.0.0 offer remediation, so tests can tell a plugin that declares it
        // from one that does not.
        if VERSION == "1.0.0" {
            info.build()
        } else {
            info.remediation(RemediationKind::ReplaceWithSanitised)
                .remediation(RemediationKind::Quarantine)
                .build()
        }
    }

    fn check() -> Result<CheckReport, PluginError> {
        if VERSION != "1.0.0" && config::get("upgrade_check").as_deref() == Some("fail") {
            return Err(PluginError::fatal(format!(
                "version {VERSION} cannot work with this configuration"
            )));
        }
        Ok(CheckReport {
            account: Some("tester".into()),
            details: vec!["ok".into()],
        })
    }

    fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
        let calls = state::get_json::<u64>("calls").unwrap_or(0) + 1;
        state::set_json("calls", &calls)?;
        log::log(
            log::Level::Info,
            "discover",
            &[("calls", &calls.to_string())],
        );
        let Some(base) = config::get("base_url") else {
            let files = (1..=2)
                .map(|i| RemoteFile {
                    id: format!("f{i}"),
                    name: format!("f{i}.jpg"),
                    version: "1".into(),
                    ..RemoteFile::default()
                })
                .collect();
            return Ok(Page {
                files,
                removed: vec![],
                cursor: cursor.or(Some("done".into())),
                more: false,
            });
        };
        let items: Vec<serde_json::Value> = http::Request::get(&format!("{base}/files"))
            .send()?
            .error_for_status()?
            .json()?;
        let files = items
            .iter()
            .map(|v| RemoteFile {
                id: v["id"].as_str().unwrap_or_default().into(),
                name: v["name"].as_str().unwrap_or_default().into(),
                version: v["etag"].as_str().unwrap_or_default().into(),
                ..RemoteFile::default()
            })
            .collect();
        Ok(Page {
            files,
            removed: vec![],
            cursor: Some("done".into()),
            more: false,
        })
    }

    fn download(file: RemoteFile) -> Result<DownloadAnswer, PluginError> {
        let base = config::require("base_url")?;
        let req = http::Request::get(&format!("{base}/files/{}/content", file.id));
        Ok(DownloadSpec {
            location: ContentLocation::Http(req.into_wit()),
            supports_range: true,
        }
        .into())
    }

    /// Posts the ids to `{base_url}/writeback` when a base URL is set, so a
    /// test can count write-backs at the "platform".
    fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
        if let Some(base) = config::get("base_url") {
            let ids: Vec<&str> = results.iter().map(|r| r.file.id.as_str()).collect();
            http::Request::post(&format!("{base}/writeback"))
                .json(&serde_json::json!({ "ids": ids }))
                .send()?
                .error_for_status()?;
        }
        Ok(results
            .into_iter()
            .map(|r| WriteOutcome::written(r.file.id))
            .collect())
    }

    /// Where the host PUTs the sanitised copy: `{base_url}/files/{id}/content`.
    fn upload(
        file: RemoteFile,
        _size: u64,
        content_type: String,
    ) -> Result<http::WitRequest, PluginError> {
        let base = config::require("base_url")?;
        Ok(
            http::Request::put(&format!("{base}/files/{}/content", file.id))
                .header("content-type", &content_type)
                .into_wit(),
        )
    }

    /// Quarantine: `POST {base_url}/files/{id}/quarantine`, which answers
    /// `{"tombstone": "..."}`. A simulation calls nothing.
    fn remediate(action: RemediationAction) -> Result<RemediationOutcome, PluginError> {
        if action.kind != RemediationKind::Quarantine {
            return Err(PluginError::not_supported("this remediation"));
        }
        if action.simulate {
            return Ok(RemediationOutcome {
                applied: false,
                description: format!("would move {} to quarantine", action.file.id),
                tombstone: None,
            });
        }
        let base = config::require("base_url")?;
        let v: serde_json::Value =
            http::Request::post(&format!("{base}/files/{}/quarantine", action.file.id))
                .send()?
                .error_for_status()?
                .json()?;
        Ok(RemediationOutcome {
            applied: true,
            description: format!("moved {} to quarantine", action.file.id),
            tombstone: v["tombstone"].as_str().map(String::from),
        })
    }

    /// Posts to the secret webhook URL; the plugin only knows the placeholder.
    fn notify(_event: Notification) -> Result<(), PluginError> {
        let r = http::Request::post("{secret.webhook_url}")
            .json(&serde_json::json!({"text": "hi"}))
            .send()?;
        if r.url != "{secret.webhook_url}" {
            return Err(PluginError::fatal(format!(
                "the host revealed the webhook URL: {}",
                r.url
            )));
        }
        r.error_for_status().map(|_| ())
    }

    fn handle_event(request: InboundRequest) -> Result<EventOutcome, PluginError> {
        let signature = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-signature"))
            .and_then(|(_, v)| verify::decode_hex(v))
            .unwrap_or_default();
        if !verify::hmac_matches(
            "signing_secret",
            verify::HmacAlgorithm::Sha256,
            &request.body,
            &signature,
        ) {
            return Err(PluginError::unauthorized("bad signature"));
        }
        Ok(EventOutcome {
            response: InboundResponse {
                status: 200,
                headers: vec![],
                body: b"ok".to_vec(),
            },
            changed: vec![RemoteFile {
                id: String::from_utf8_lossy(&request.body).into_owned(),
                ..RemoteFile::default()
            }],
            removed: vec![],
            resync: false,
        })
    }
}

export_connector!(WellBehaved);
