//! `proofpix demo`: the whole product on one machine, offline, in a minute.
//!
//! One process runs the daemon (exactly what `proofpix serve` runs) and the emulators of
//! Salesforce, SharePoint (Microsoft Graph), Slack and Teams from `proofpix-emulators`, seeded
//! with images whose metadata is known. The demo then configures one integration per platform
//! through the host library, as an operator would through the API:
//!
//! | integration | plugin | role |
//! |---|---|---|
//! | `salesforce-cases` | salesforce | source: Files and Attachments on open Cases; results as records |
//! | `sharepoint-fieldwork` | sharepoint | source: the fieldwork site's libraries; results in columns |
//! | `slack` | slack | source (`#field-photos`, reactions) and notifier (high-risk digest to `#compliance`) |
//! | `teams` | teams | notifier: a card per finished or failed run |
//!
//! starts a first sync of every source, and prints the dashboard URL and an admin token. While
//! it runs, a member "shares" a new photo in `#field-photos` every minute and the Slack emulator
//! delivers the signed Events API request to `/hooks/slack`, so the webhook path is seen working
//! too.
//!
//! Egress to loopback is denied by default (a plugin must not reach the host's own services);
//! the demo grants it explicitly, per integration, for `http://127.0.0.1:*` only: the emulators
//! listen there. The fixture secrets are the emulators' own test values, not real credentials.
//!
//! The data directory is a temporary folder removed on exit unless `--data-dir` names one to
//! keep (then a later demo reuses its store and its compiled plugins; the integrations are
//! pointed at the new emulators' ports). Ctrl-C or SIGTERM drains in-flight runs like `serve`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proofpix_emulators::sandbox::Sandbox;
use proofpix_emulators::{Clock, microsoft, salesforce, slack};
use proofpix_pipeline::SyncMode;
use proofpix_policy::OperatorGrant;
use proofpix_server::{AppState, DaemonConfig};
use proofpix_service::{Host, HostOptions, IntegrationSpec, Subscriptions};
use proofpix_store::ApiTokenRecord;
use proofpix_vault::Secret;

/// The port the demo asks for first (the daemon's default).
const DEFAULT_PORT: u16 = 8737;
/// How often a member shares a new photo in Slack while the demo runs.
const SHARE_EVERY: Duration = Duration::from_secs(60);
/// How the demo's sources are scheduled after their first sync.
const SOURCE_SCHEDULE: &str = "15m";
/// The actor recorded in the audit log for what the demo sets up.
const ACTOR: &str = "operator:demo";

/// `demo` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port for the dashboard and API on 127.0.0.1. Default: 8737, or a free port when 8737 is
    /// taken; 0 always picks a free port.
    #[arg(long)]
    port: Option<u16>,
    /// Keep the demo's data (store, master key, compiled plugins) in this folder instead of a
    /// temporary one removed on exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (data_dir, temp) = match &args.data_dir {
        Some(dir) => {
            proofpix_store::ensure_data_dir(dir)?;
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("proofpix-demo-")
                .tempdir()
                .context("cannot create a temporary data directory")?;
            // The store holds sealed secrets and the master key file: owner only, as
            // `ensure_data_dir` makes a data directory it creates.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700))
                    .context("cannot restrict the temporary data directory to its owner")?;
            }
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let (store, _) = proofpix_store::open_in_dir(&data_dir)?;
    let store = Arc::new(store);

    let listener = bind(args.port).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let mut config = DaemonConfig::default();
    config.server.listen = addr.to_string();
    config.server.public_url = Some(base.clone());

    let options = HostOptions {
        limits: proofpix_policy::Limits::from_env()?,
        cache_dir: Some(data_dir.join("cache").join("components")),
        data_dir: Some(data_dir.clone()),
        // The demo runs whatever this binary was built as, development builds included.
        trust_development_build: true,
        // Like the daemon, keep no per-file outcomes in memory.
        pipeline: proofpix_pipeline::PipelineOptions {
            collect_outcomes: false,
            ..proofpix_pipeline::PipelineOptions::default()
        },
        ..HostOptions::default()
    };
    let host = Host::new(store.clone(), options).await?;
    let token = admin_token(&host)?;

    let sandbox = Arc::new(
        Sandbox::start(Clock::new())
            .await
            .context("cannot start the emulators on loopback")?,
    );
    // Slack signs events with the emulated time and the plugin checks it against the real
    // one (five-minute replay window), so the emulators follow the wall clock here.
    let ticker = sandbox.follow_wall_clock();

    let state = proofpix_server::state(host, config);
    let sources = configure(&state, &sandbox, &base).await?;
    let server = tokio::spawn(proofpix_server::serve(
        state.clone(),
        listener,
        crate::cmd_serve::shutdown_signal(),
    ));
    while !state.is_ready() {
        if server.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in &sources {
        state.trigger(id, SyncMode::Incremental, "demo");
    }
    let sharer = tokio::spawn(share_photos(sandbox.clone(), format!("{base}/hooks/slack")));

    println!("ProofPix demo: the daemon and four emulated platforms, all on this machine.\n");
    println!("  Dashboard  {base}/");
    println!("  Token      {token}   (admin; paste it into the sign-in form)");
    println!("  API        {base}/api/  (Authorization: Bearer <token>; {base}/api/openapi.json)");
    println!();
    println!("Emulated platforms (loopback only, seeded with sample images):");
    for line in sandbox.describe() {
        println!("  {line}");
    }
    println!();
    println!(
        "Integrations: salesforce-cases, sharepoint-fieldwork and slack scan (first syncs started, then every {SOURCE_SCHEDULE});"
    );
    println!(
        "  high-risk files go to Slack #compliance as a digest, finished runs to Teams; every minute a"
    );
    println!(
        "  new photo is shared in Slack #field-photos and its Events API request reaches {base}/hooks/slack."
    );
    match &temp {
        Some(t) => println!(
            "Data: {} (removed on exit; --data-dir keeps it).",
            t.path().display()
        ),
        None => println!("Data: {} (kept).", data_dir.display()),
    }
    println!("Ctrl-C stops the demo.");

    let served = server.await;
    sharer.abort();
    ticker.abort();
    drop(sandbox);
    match served {
        Ok(result) => result.context("the daemon stopped")?,
        Err(e) => anyhow::bail!("the daemon task failed: {e}"),
    }
    if let Some(temp) = temp {
        let shown = temp.path().display().to_string();
        temp.close()
            .with_context(|| format!("cannot remove the demo data in {shown}"))?;
    }
    Ok(())
}

/// The port asked for, or the default with a free port as fallback.
async fn bind(port: Option<u16>) -> anyhow::Result<tokio::net::TcpListener> {
    use tokio::net::TcpListener;
    match port {
        Some(p) => TcpListener::bind(("127.0.0.1", p))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{p}; try another --port")),
        None => match TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("cannot listen on any loopback port"),
        },
    }
}

/// The bootstrap token of a new store, or a new admin token for a kept one (its bootstrap token
/// was shown at the first start and is not stored in a readable form).
fn admin_token(host: &Host) -> anyhow::Result<String> {
    if let Some(token) = proofpix_server::bootstrap_admin_token(host)? {
        return Ok(token);
    }
    let token = proofpix_server::auth::new_token();
    let record = ApiTokenRecord {
        name: format!("demo-admin-{}", host.store().now().unix_timestamp()),
        role: "admin".into(),
        created_by: "proofpix demo".into(),
        created_at: host.store().now(),
    };
    host.put_api_token(&proofpix_server::auth::token_hash(&token), &record, ACTOR)?;
    Ok(token)
}

/// Egress to the emulators: loopback, any port, plain HTTP.
fn loopback_grant() -> OperatorGrant {
    OperatorGrant {
        hosts: vec!["http://127.0.0.1:*".into()],
        allow_loopback: true,
        ..OperatorGrant::default()
    }
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), Secret::new(*v)))
        .collect()
}

/// Creates (or re-points) the four integrations; returns the sources to sync.
async fn configure(state: &AppState, sandbox: &Sandbox, base: &str) -> anyhow::Result<Vec<String>> {
    let dashboard = Some(format!("{base}/"));
    let sf = sandbox
        .salesforce
        .base_url()
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let sp = &sandbox.sharepoint;
    let slack_ws = &sandbox.slack;
    let specs = vec![
        IntegrationSpec {
            id: "salesforce-cases".into(),
            plugin: "salesforce".into(),
            config: strings(&[
                ("auth_flow", "client-credentials"),
                ("login_url", &sf),
                ("client_id", salesforce::fixtures::CLIENT_ID),
                ("scope_where", "Status != 'Closed'"),
            ]),
            secrets: secrets(&[("client_secret", salesforce::fixtures::CLIENT_SECRET)]),
            grant: loopback_grant(),
            subscriptions: None,
            schedule: Some(SOURCE_SCHEDULE.into()),
        },
        IntegrationSpec {
            id: "sharepoint-fieldwork".into(),
            plugin: "sharepoint".into(),
            config: strings(&[
                ("tenant", microsoft::fixtures::TENANT_ID),
                ("client_id", microsoft::fixtures::CLIENT_ID),
                ("sites", microsoft::graph::seed::FIELDWORK_SITE),
                ("graph_url", &sp.graph_url()),
                ("login_url", &sp.login_url()),
                ("download_host", &sp.download_url()),
            ]),
            secrets: secrets(&[("client_secret", microsoft::fixtures::CLIENT_SECRET)]),
            grant: loopback_grant(),
            subscriptions: None,
            schedule: Some(SOURCE_SCHEDULE.into()),
        },
        IntegrationSpec {
            id: "slack".into(),
            plugin: "slack".into(),
            config: strings(&[
                ("channel", "#compliance"),
                ("channels", "#field-photos"),
                ("api_base_url", &slack_ws.api_base()),
                (
                    "files_base_url",
                    slack_ws.files_base().as_str().trim_end_matches('/'),
                ),
            ]),
            secrets: secrets(&[
                ("bot_token", slack::fixtures::BOT_TOKEN),
                ("signing_secret", slack::fixtures::SIGNING_SECRET),
            ]),
            grant: loopback_grant(),
            subscriptions: Some(Subscriptions {
                events: vec!["high-risk".into()],
                min_risk: proofpix_analysis::RiskLevel::High,
                digest: true,
                dashboard_url: dashboard.clone(),
                ..Subscriptions::default()
            }),
            schedule: Some(SOURCE_SCHEDULE.into()),
        },
        IntegrationSpec {
            id: "teams".into(),
            plugin: "teams".into(),
            config: strings(&[
                ("format", "workflows"),
                (
                    "webhook_host",
                    sandbox.teams.base_url().as_str().trim_end_matches('/'),
                ),
            ]),
            secrets: secrets(&[("webhook_url", sandbox.teams.workflow_url().as_str())]),
            grant: loopback_grant(),
            subscriptions: Some(Subscriptions {
                events: vec![
                    "batch-completed".into(),
                    "batch-failed".into(),
                    "unhealthy".into(),
                ],
                dashboard_url: dashboard,
                ..Subscriptions::default()
            }),
            schedule: None,
        },
    ];
    let sources = vec![
        "salesforce-cases".to_string(),
        "sharepoint-fieldwork".to_string(),
        "slack".to_string(),
    ];
    for spec in specs {
        let id = spec.id.clone();
        // A kept data directory holds the previous demo's OAuth tokens, which name the old
        // emulators' instance URLs; updating an integration's config keeps stored tokens.
        state.host().delete_tokens(&id, ACTOR)?;
        state
            .host()
            .create_integration(spec, ACTOR)
            .await
            .with_context(|| format!("cannot set up the demo integration {id}"))?;
    }
    state.publish(proofpix_server::LiveEvent::IntegrationsChanged);
    Ok(sources)
}

/// Every [`SHARE_EVERY`], a member shares a new photo in `#field-photos` and Slack delivers the
/// `file_shared` event to the daemon's hook, as the real Events API would.
async fn share_photos(sandbox: Arc<Sandbox>, hook: String) {
    let Ok(url) = reqwest::Url::parse(&hook) else {
        return;
    };
    let sender = sandbox.slack.event_sender();
    for n in proofpix_emulators::sandbox::SLACK_IMAGES.. {
        tokio::time::sleep(SHARE_EVERY).await;
        let (_, file) = sandbox.share_slack_photo(n);
        let Some(event) = sandbox.slack.workspace().file_shared_event(&file) else {
            continue;
        };
        let delivery = sender.deliver(&url, &sender.event_callback(event)).await;
        if !delivery.acknowledged() {
            tracing::warn!(
                attempts = delivery.attempts.len(),
                "the daemon did not acknowledge a Slack event"
            );
        }
    }
}
