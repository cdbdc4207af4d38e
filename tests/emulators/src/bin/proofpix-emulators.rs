//! Runs every emulated identity provider, the Slack Web API, the Teams webhooks and Microsoft
//! Graph (SharePoint) on loopback until Ctrl-C: a sandbox for plugin authors.
//!
//! `cargo run -p proofpix-emulators --bin proofpix-emulators` prints each provider's base URL,
//! token path and fixture client id, e.g.
//!
//! ```text
//! salesforce  http://127.0.0.1:41235  token /services/oauth2/token  client 3MVG9emuConsumerKey.proofpix0001
//! ```
//!
//! The secrets are in each vendor's `fixtures` module. The clock does not move in this mode.

use proofpix_emulators::{
    Clock, IdentityProviders, box_com, dropbox, google, microsoft, salesforce, slack,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let idps = IdentityProviders::start(Clock::new()).await?;
    let ms_token = microsoft::token_path(microsoft::fixtures::TENANT_ID);
    let rows = [
        (
            &idps.salesforce,
            salesforce::TOKEN_PATH,
            salesforce::fixtures::CLIENT_ID,
        ),
        (
            &idps.microsoft,
            ms_token.as_str(),
            microsoft::fixtures::CLIENT_ID,
        ),
        (
            &idps.google,
            google::TOKEN_PATH,
            google::fixtures::SERVICE_ACCOUNT,
        ),
        (&idps.slack, slack::ACCESS_PATH, slack::fixtures::CLIENT_ID),
        (
            &idps.box_com,
            box_com::TOKEN_PATH,
            box_com::fixtures::CLIENT_ID,
        ),
        (
            &idps.dropbox,
            dropbox::TOKEN_PATH,
            dropbox::fixtures::CLIENT_ID,
        ),
    ];
    for (emulator, token, client) in rows {
        println!(
            "{:<11} {}  token {token}  client {client}",
            emulator.vendor(),
            emulator.base_url().as_str().trim_end_matches('/')
        );
    }
    // The chat platforms' APIs, with seeded channels and webhooks.
    let slack_ws = slack::start_workspace(
        Default::default(),
        Default::default(),
        proofpix_emulators::Harness::with_clock(idps.clock.clone()),
    )
    .await?;
    println!(
        "slack-api   {}  files {}  bot token: slack::fixtures::BOT_TOKEN, channels #compliance #field-photos ...",
        slack_ws.api_base(),
        slack_ws.files_base().as_str().trim_end_matches('/')
    );
    let teams = proofpix_emulators::teams::start(
        Default::default(),
        proofpix_emulators::Harness::with_clock(idps.clock.clone()),
    )
    .await?;
    println!("teams       workflow {}", teams.workflow_url());
    println!("teams       connector {}", teams.legacy_url());
    // Microsoft Graph (SharePoint Online / OneDrive) with its seeded tenant.
    let graph = microsoft::start_with_graph(
        Default::default(),
        Default::default(),
        proofpix_emulators::Harness::with_clock(idps.clock.clone()),
    )
    .await?;
    println!(
        "graph       {}  downloads {}  tenant {}  site {}  client {}",
        graph.graph_url(),
        graph.download_url(),
        microsoft::fixtures::TENANT_ID,
        microsoft::graph::seed::FIELDWORK_SITE,
        microsoft::fixtures::CLIENT_ID
    );
    println!("Ctrl-C stops the emulators.");
    tokio::signal::ctrl_c().await
}
