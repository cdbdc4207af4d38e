//! Runs every emulated identity provider, Salesforce, Microsoft Graph (SharePoint), the Slack Web
//! API and the Teams webhooks on loopback until Ctrl-C: a sandbox for plugin authors.
//!
//! `cargo run -p proofpix-emulators --bin proofpix-emulators` prints each provider's base URL,
//! token path and fixture client id, e.g.
//!
//! ```text
//! salesforce  http://127.0.0.1:41235  token /services/oauth2/token  client 3MVG9emuConsumerKey.proofpix0001
//! ```
//!
//! then one line per seeded platform ([`Sandbox::describe`]). The secrets are in each vendor's
//! `fixtures` module. The clock does not move in this mode.

use proofpix_emulators::sandbox::Sandbox;
use proofpix_emulators::{Clock, Harness, box_com, dropbox, google, microsoft, salesforce, slack};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let clock = Clock::new();
    let sandbox = Sandbox::start(clock.clone()).await?;
    let h = || Harness::with_clock(clock.clone());
    let google = google::start(Default::default(), h()).await?;
    let box_com = box_com::start(Default::default(), h()).await?;
    let dropbox = dropbox::start(Default::default(), h()).await?;
    let ms_token = microsoft::token_path(microsoft::fixtures::TENANT_ID);
    let rows = [
        (
            &sandbox.salesforce.emulator,
            salesforce::TOKEN_PATH,
            salesforce::fixtures::CLIENT_ID,
        ),
        (
            &*sandbox.sharepoint,
            ms_token.as_str(),
            microsoft::fixtures::CLIENT_ID,
        ),
        (
            &google,
            google::TOKEN_PATH,
            google::fixtures::SERVICE_ACCOUNT,
        ),
        (
            &sandbox.slack.emulator,
            slack::ACCESS_PATH,
            slack::fixtures::CLIENT_ID,
        ),
        (&box_com, box_com::TOKEN_PATH, box_com::fixtures::CLIENT_ID),
        (&dropbox, dropbox::TOKEN_PATH, dropbox::fixtures::CLIENT_ID),
    ];
    for (emulator, token, client) in rows {
        println!(
            "{:<11} {}  token {token}  client {client}",
            emulator.vendor(),
            emulator.base_url().as_str().trim_end_matches('/')
        );
    }
    println!(
        "slack-api   {}  files {}  bot token: slack::fixtures::BOT_TOKEN, channels #compliance #field-photos ...",
        sandbox.slack.api_base(),
        sandbox.slack.files_base().as_str().trim_end_matches('/')
    );
    println!("teams       workflow {}", sandbox.teams.workflow_url());
    println!("teams       connector {}", sandbox.teams.legacy_url());
    println!(
        "graph       {}  downloads {}  tenant {}  site {}  client {}",
        sandbox.sharepoint.graph_url(),
        sandbox.sharepoint.download_url(),
        microsoft::fixtures::TENANT_ID,
        microsoft::graph::seed::FIELDWORK_SITE,
        microsoft::fixtures::CLIENT_ID
    );
    println!();
    for line in sandbox.describe() {
        println!("{line}");
    }
    println!("Ctrl-C stops the emulators.");
    tokio::signal::ctrl_c().await
}
