//! The four platforms ProofPix ships connectors for, started together on loopback and seeded
//! with images whose metadata is known: the sandbox behind `proofpix demo` and the
//! `proofpix-emulators` binary.
//!
//! | platform | what is running | seeded with |
//! |---|---|---|
//! | Salesforce | identity provider and REST API ([`salesforce::start_org`]) | the default org: Cases with Files and Attachments, distractors |
//! | SharePoint | Microsoft identity platform, Graph and its download host ([`microsoft::start_with_graph`]) | the `fieldwork` tenant (14 images in three libraries) |
//! | Slack | identity provider, Web API and the private-file host ([`slack::start_workspace`]) | the seeded channels, plus [`SLACK_IMAGES`] phone photos and one clean image shared in `#field-photos` |
//! | Teams | Workflows and legacy connector webhooks ([`teams::start`]) | nothing: it only receives cards |
//!
//! Every emulator shares one [`Clock`]. It is frozen, as in the tests, unless the caller moves it
//! (the demo makes it follow the wall clock so that Slack's five-minute replay window holds for
//! events sent later).
//!
//! The emulators hold every request they receive in memory and bind only the loopback interface:
//! this is test tooling, not a server to expose.

use proofpix_fixtures::{Gps, JpegSpec, jpeg, phone_photo};

use crate::microsoft::graph::{self, GraphEmulator};
use crate::salesforce::{self, Salesforce};
use crate::slack::{self, Slack};
use crate::teams::{self, Teams};
use crate::{Clock, Harness, microsoft};

/// Phone photos (GPS, owner, serial: high risk) shared in Slack's `#field-photos` at start.
pub const SLACK_IMAGES: u32 = 4;

/// The four platforms on one clock.
#[derive(Debug)]
pub struct Sandbox {
    /// The clock every emulator reads.
    pub clock: Clock,
    /// Salesforce: identity provider and org.
    pub salesforce: Salesforce,
    /// Microsoft identity platform and Graph (SharePoint Online).
    pub sharepoint: GraphEmulator,
    /// Slack: identity provider, Web API, file host and workspace.
    pub slack: Slack,
    /// Teams incoming webhooks.
    pub teams: Teams,
}

impl Sandbox {
    /// Starts and seeds the four emulators with their default configurations.
    ///
    /// # Errors
    ///
    /// If a loopback listener cannot be bound.
    pub async fn start(clock: Clock) -> std::io::Result<Sandbox> {
        let h = || Harness::with_clock(clock.clone());
        let salesforce = salesforce::start_org(Default::default(), h()).await?;
        let sharepoint =
            microsoft::start_with_graph(Default::default(), Default::default(), h()).await?;
        let slack = slack::start_workspace(Default::default(), Default::default(), h()).await?;
        let teams = teams::start(Default::default(), h()).await?;
        let sandbox = Sandbox {
            clock,
            salesforce,
            sharepoint,
            slack,
            teams,
        };
        for i in 0..SLACK_IMAGES {
            sandbox.share_slack_photo(i);
        }
        sandbox.slack.workspace().share_image(
            slack::web::seed::FIELD_PHOTOS,
            "whiteboard.jpg",
            jpeg(&JpegSpec {
                width: 64,
                height: 48,
                seed: 900,
                ..JpegSpec::default()
            }),
        );
        Ok(sandbox)
    }

    /// Makes the shared clock follow the system clock, a second at a time, until the task is
    /// aborted. For long-running sandboxes whose clients check timestamps against real time
    /// (Slack's five-minute replay window on signed events).
    pub fn follow_wall_clock(&self) -> tokio::task::JoinHandle<()> {
        let clock = self.clock.clone();
        tokio::spawn(async move {
            loop {
                clock.set(time::OffsetDateTime::now_utc());
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }

    /// A member shares phone photo number `n` (GPS, owner, serial) in `#field-photos`; returns
    /// the message `ts` and the Slack file ID. Photos of different `n` have different bytes.
    pub fn share_slack_photo(&self, n: u32) -> (String, String) {
        let gps = Gps {
            lat: 48.85 + f64::from(n % 100) / 1000.0,
            lon: 2.35 + f64::from(n % 97) / 1000.0,
            alt: Some(35.0),
        };
        let bytes = jpeg(&JpegSpec {
            width: 64,
            height: 48,
            seed: 500 + n,
            exif: Some(phone_photo(500 + n, gps)),
            ..JpegSpec::default()
        });
        self.slack.workspace().share_image(
            slack::web::seed::FIELD_PHOTOS,
            &format!("site-photo-{n:03}.jpg"),
            bytes,
        )
    }

    /// One line per platform: where it listens and what it holds, for a person to read.
    pub fn describe(&self) -> Vec<String> {
        let sf_files = self.salesforce.org().files();
        let sf_in_scope = sf_files
            .iter()
            .filter(|f| f.image && f.parent_status != "Closed" && f.parent_status != "Account")
            .count();
        let sf_images = sf_files.iter().filter(|f| f.image).count();
        let sp_images = self
            .sharepoint
            .graph()
            .files()
            .iter()
            .filter(|f| f.site == graph::seed::FIELDWORK_SITE)
            .filter(|f| f.is_image || f.path.ends_with(".jpg"))
            .count();
        vec![
            format!(
                "salesforce  {}  {} images on open Cases ({} more out of scope); results become ProofPix_Analysis__c records (client {})",
                self.salesforce.base_url().as_str().trim_end_matches('/'),
                sf_in_scope,
                sf_images - sf_in_scope,
                salesforce::fixtures::CLIENT_ID,
            ),
            format!(
                "sharepoint  {}  site {} with {} images; results go to library columns (tenant {})",
                self.sharepoint.graph_url(),
                graph::seed::FIELDWORK_SITE,
                sp_images,
                microsoft::fixtures::TENANT_ID,
            ),
            format!(
                "slack       {}  #field-photos is scanned (reactions mark results), alerts go to #compliance",
                self.slack.api_base(),
            ),
            format!(
                "teams       {}  run summaries arrive here as Adaptive Cards",
                self.teams.base_url().as_str().trim_end_matches('/'),
            ),
        ]
    }
}
