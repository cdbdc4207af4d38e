//! Block Kit messages for ProofPix notifications (reference §4.2).
//!
//! One function per notification kind builds `{text, blocks}` for `chat.postMessage`: `text` is
//! the fallback Slack shows in push notifications and screen readers, `blocks` the rich layout.
//!
//! Threat model: file names, paths, summaries and finding values come from the files being
//! scanned, that is from anyone who can upload a file. In `mrkdwn` they could inject `<!channel>`
//! pings or links, so every such string goes through [`escape`] (Slack's three control
//! characters `&`, `<`, `>`), and links are only built from `http(s)` URLs with the characters
//! that end a link percent-encoded. Finding values arrive already masked by the host.
//!
//! Limits (reference §4.2): at most 50 blocks, a `header` at most 150 characters, a section's
//! text at most 3,000, a section field at most 2,000. Every string is cut to fit (on a character
//! boundary, with `…`), and a digest of many files lists the first [`MAX_DIGEST_FILES`] and
//! summarises the rest, so a batch of 500 risky files is one message that Slack accepts.

use proofpix_sdk::notify;
use proofpix_sdk::prelude::*;
use proofpix_sdk::results::{self, category_label};
use proofpix_sdk::text::truncate_chars;
use serde_json::{Value, json};

/// Most blocks Slack accepts in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest `header` text.
pub const MAX_HEADER_CHARS: usize = 150;
/// Longest section text.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Longest section field.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Longest fallback `text`; Slack truncates beyond 40,000, notifications need far less.
pub const MAX_FALLBACK_CHARS: usize = 3000;
/// Files listed one by one in a digest; the rest are counted. 20 file sections plus the
/// header, summary, divider and footer stay well under [`MAX_BLOCKS`].
pub const MAX_DIGEST_FILES: usize = notify::DIGEST_FILES;
const _: () = assert!(MAX_DIGEST_FILES + 4 <= MAX_BLOCKS);
/// Longest finding value quoted.
const MAX_VALUE_CHARS: usize = 120;

/// A message ready for `chat.postMessage` (without the channel).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Fallback text.
    pub text: String,
    /// Block Kit blocks.
    pub blocks: Vec<Value>,
}

impl Message {
    /// The `chat.postMessage` body for `channel`, optionally as a thread reply.
    pub fn body(&self, channel: &str, thread_ts: Option<&str>) -> Value {
        let mut body = json!({
            "channel": channel,
            "text": self.text,
            "blocks": self.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        body
    }
}

/// The message for a notification, showing at most `max_findings` findings per file.
pub fn render(event: &Notification, max_findings: usize) -> Message {
    match event {
        Notification::HighRiskFiles(d) if d.total_files() == 1 => d
            .alerts
            .first()
            .map_or_else(empty, |a| file_alert(a, max_findings)),
        Notification::HighRiskFiles(d) => digest(d),
        Notification::BatchCompleted(b) => batch_completed(b),
        Notification::BatchFailed(p) => {
            problem(":x: Scan failed", p, "The run stopped before it finished.")
        }
        Notification::IntegrationUnhealthy(p) => problem(
            ":warning: Integration needs attention",
            p,
            "ProofPix cannot run this integration until this is fixed.",
        ),
    }
}

/// A minimal message (header and one short section) for when Slack refused the rich one.
pub fn compact(event: &Notification) -> Message {
    let full = render(event, 0);
    let text = truncate_chars(&full.text, MAX_SECTION_CHARS);
    Message {
        blocks: vec![
            header(&truncate_chars(&full.text, MAX_HEADER_CHARS)),
            section(&escape(&text)),
        ],
        text,
    }
}

fn empty() -> Message {
    Message {
        text: "ProofPix: no files to report".into(),
        blocks: vec![],
    }
}

fn file_alert(a: &FileAlert, max_findings: usize) -> Message {
    let level = a.risk.label();
    let title = format!("{} {level}-risk image found", risk_emoji(a.risk));
    let mut intro = format!("*{}*", link(a.file.web_url.as_deref(), &a.file.name));
    if !a.summary.trim().is_empty() {
        intro.push('\n');
        intro.push_str(&escape(a.summary.trim()));
    }
    let mut fields = vec![
        field(&format!(
            "*Risk*\n{} {level} · {}/100",
            risk_emoji(a.risk),
            a.score
        )),
        field(&format!("*Integration*\n{}", escape(&a.integration))),
    ];
    if let Some(place) = a.file.path.as_deref().or(a.file.container.as_deref()) {
        fields.push(field(&format!("*Location*\n{}", escape(place))));
    }
    if let Some(mime) = &a.file.mime_type {
        fields.push(field(&format!("*Type*\n{}", escape(mime))));
    }
    let mut blocks = vec![
        header(&title),
        json!({"type": "section", "text": mrkdwn(&truncate_chars(&intro, MAX_SECTION_CHARS)), "fields": fields}),
    ];
    if max_findings > 0 && !a.findings.is_empty() {
        blocks.push(section(&findings_text(&a.findings, max_findings)));
    }
    blocks.push(context(&[
        "Found by ProofPix · personal values are masked".into(),
        format!("File ID `{}`", escape(&truncate_chars(&a.file.id, 100))),
    ]));
    Message {
        text: truncate_chars(&notify::alert_line(a), MAX_FALLBACK_CHARS),
        blocks,
    }
}

/// A window's alerts: its totals count every file, the lines show the worst the message holds.
fn digest(d: &Digest) -> Message {
    let n = d.total_files();
    let mut blocks = vec![header(&format!(
        ":rotating_light: {n} high-risk images found"
    ))];
    let counts = notify::digest_counts(d)
        .iter()
        .map(|&(r, c)| format!("{} {c} {}", risk_emoji(r), r.keyword()))
        .collect::<Vec<_>>()
        .join(" · ");
    let sources = notify::digest_integrations(d)
        .iter()
        .map(|i| format!("*{}*", escape(i)))
        .collect::<Vec<_>>()
        .join(", ");
    blocks.push(section(&truncate_chars(
        &format!("{counts}\nFrom {sources}"),
        MAX_SECTION_CHARS,
    )));
    blocks.push(json!({"type": "divider"}));
    // Worst first; the order within a level is the run's.
    for a in notify::digest_files(d) {
        let (named, extra) = results::category_labels(&a.findings, notify::DIGEST_CATEGORIES);
        let mut line = format!(
            "*{}* — {} {} · {}/100",
            link(a.file.web_url.as_deref(), &a.file.name),
            risk_emoji(a.risk),
            a.risk.label(),
            a.score
        );
        if !named.is_empty() {
            line.push('\n');
            line.push_str(&escape(&named.join(", ")));
            if extra > 0 {
                line.push_str(&format!(" and {extra} more"));
            }
        }
        blocks.push(section(&truncate_chars(&line, MAX_SECTION_CHARS)));
    }
    let more = notify::more_files(d);
    if more > 0 {
        blocks.push(context(&[format!(
            "…and {more} more high-risk images. See the ProofPix dashboard or `proofpix results` for the full list."
        )]));
    }
    debug_assert!(blocks.len() <= MAX_BLOCKS);
    Message {
        text: truncate_chars(&notify::digest_line(d), MAX_FALLBACK_CHARS),
        blocks,
    }
}

fn batch_completed(b: &BatchSummary) -> Message {
    let risky = notify::batch_high_risk(b);
    let emoji = if b.files_failed > 0 {
        ":warning:"
    } else {
        ":white_check_mark:"
    };
    let title = format!("{emoji} {}", notify::batch_title(b));
    let mut fields = vec![
        field(&format!("*Files*\n{}", b.files_total)),
        field(&format!("*Analysed*\n{}", b.files_ok)),
        field(&format!("*Failed*\n{}", b.files_failed)),
        field(&format!("*High-risk*\n{risky}")),
    ];
    if !b.platform.is_empty() {
        fields.push(field(&format!("*Platform*\n{}", escape(&b.platform))));
    }
    let mut blocks = vec![
        header(&title),
        json!({"type": "section", "text": mrkdwn(&format!("*{}*", escape(&b.integration))), "fields": fields}),
    ];
    let by_risk = RiskLevel::WORST_FIRST
        .iter()
        .map(|&r| {
            let c = notify::batch_count(b, r);
            format!("{} {} *{c}*", risk_emoji(r), r.label())
        })
        .collect::<Vec<_>>()
        .join("   ");
    blocks.push(section(&format!("*By risk*\n{by_risk}")));
    if let Some(url) = b.dashboard_url.as_deref() {
        blocks.push(section(&link(
            Some(url),
            "Open this batch in the ProofPix dashboard",
        )));
    }
    let mut when = format!("Batch `{}`", escape(&truncate_chars(&b.batch_id, 80)));
    if !b.started_at.is_empty() {
        when.push_str(&format!(" · started {}", escape(&b.started_at)));
    }
    if !b.finished_at.is_empty() {
        when.push_str(&format!(" · finished {}", escape(&b.finished_at)));
    }
    blocks.push(context(&[when]));
    Message {
        text: truncate_chars(&notify::batch_line(b), MAX_FALLBACK_CHARS),
        blocks,
    }
}

fn problem(title: &str, p: &Problem, consequence: &str) -> Message {
    let blocks = vec![
        header(&format!("{title}: {}", p.integration)),
        section(&truncate_chars(&escape(&p.message), MAX_SECTION_CHARS)),
        context(&[format!(
            "{consequence} Diagnose with `proofpix integration test {}`.",
            escape(&p.integration)
        )]),
    ];
    let plain_title = title.split_once(' ').map_or(title, |(_, t)| t);
    Message {
        text: truncate_chars(
            &format!("{plain_title}: {}: {}", p.integration, p.message),
            MAX_FALLBACK_CHARS,
        ),
        blocks,
    }
}

fn findings_text(findings: &[Finding], max: usize) -> String {
    let mut out = String::from("*Findings*");
    let mut shown = 0;
    for f in results::worst_first(findings).iter().take(max) {
        let mut line = format!(
            "\n• *{}* ({})",
            category_label(&f.category),
            f.severity.keyword()
        );
        let value = f.value.trim();
        if !value.is_empty() {
            line.push_str(&format!(
                ": {}",
                escape(&truncate_chars(value, MAX_VALUE_CHARS))
            ));
        }
        if !f.source.is_empty() {
            line.push_str(&format!(" — _{}_", escape(&truncate_chars(&f.source, 60))));
        }
        // Leave room for the "and N more" line.
        if out.chars().count() + line.chars().count() > MAX_SECTION_CHARS - 60 {
            break;
        }
        out.push_str(&line);
        shown += 1;
    }
    let rest = findings.len() - shown;
    if rest > 0 {
        out.push_str(&format!("\n_{}_", notify::more_findings(rest)));
    }
    out
}

fn risk_emoji(r: RiskLevel) -> &'static str {
    match r {
        RiskLevel::None => ":white_circle:",
        RiskLevel::Low => ":large_green_circle:",
        RiskLevel::Medium => ":large_yellow_circle:",
        RiskLevel::High => ":large_orange_circle:",
        RiskLevel::Critical => ":red_circle:",
    }
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": truncate_chars(text, MAX_HEADER_CHARS), "emoji": true}})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": mrkdwn(&truncate_chars(text, MAX_SECTION_CHARS))})
}

fn field(text: &str) -> Value {
    mrkdwn(&truncate_chars(text, MAX_FIELD_CHARS))
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn context(elements: &[String]) -> Value {
    let elements: Vec<Value> = elements
        .iter()
        .take(10)
        .map(|e| mrkdwn(&truncate_chars(e, MAX_FIELD_CHARS)))
        .collect();
    json!({"type": "context", "elements": elements})
}

/// Escapes Slack's control characters so untrusted text cannot ping, link or format.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// `<url|text>` for http(s) URLs, the escaped text alone otherwise.
pub fn link(url: Option<&str>, text: &str) -> String {
    let text = escape(&truncate_chars(text, 200)).replace('|', "¦");
    match url.map(str::trim) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            let mut safe = String::with_capacity(u.len());
            for c in u.chars() {
                match c {
                    '|' => safe.push_str("%7C"),
                    '<' => safe.push_str("%3C"),
                    '>' => safe.push_str("%3E"),
                    ' ' => safe.push_str("%20"),
                    c if c.is_control() => {}
                    c => safe.push(c),
                }
            }
            format!("<{safe}|{text}>")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, risk: RiskLevel, score: u8) -> FileAlert {
        FileAlert {
            integration: "cases".into(),
            file: RemoteFile {
                id: format!("F-{name}"),
                name: name.into(),
                web_url: Some(format!("https://files.example/{name}")),
                mime_type: Some("image/jpeg".into()),
                ..RemoteFile::default()
            },
            risk,
            score,
            summary: "GPS 52.37,4.89; owner J*** D**".into(),
            findings: vec![
                Finding {
                    category: "owner".into(),
                    code: "owner.name".into(),
                    severity: RiskLevel::Medium,
                    source: "exif:ExifIFD/0xa430".into(),
                    value: "J*** D**".into(),
                },
                Finding {
                    category: "gps".into(),
                    code: "gps.coordinates".into(),
                    severity: RiskLevel::High,
                    source: "exif:GPS/0x0002".into(),
                    value: "52.37281, 4.89361".into(),
                },
            ],
        }
    }

    fn texts(m: &Message) -> String {
        serde_json::to_string(&m.blocks).unwrap_or_default()
    }

    #[test]
    fn a_single_alert_has_a_header_the_risk_and_findings_worst_first() {
        let m = render(
            &Notification::HighRiskFiles(Digest::of(vec![alert("IMG_1.jpg", RiskLevel::High, 87)])),
            5,
        );
        assert_eq!(m.blocks[0]["type"], "header");
        assert_eq!(
            m.blocks[0]["text"]["text"],
            ":large_orange_circle: High-risk image found"
        );
        assert_eq!(
            m.blocks[1]["text"]["text"],
            "*<https://files.example/IMG_1.jpg|IMG_1.jpg>*\nGPS 52.37,4.89; owner J*** D**"
        );
        let findings = m.blocks[2]["text"]["text"].as_str().unwrap_or_default();
        assert!(findings.starts_with("*Findings*\n• *GPS location* (high): 52.37281, 4.89361"));
        assert!(findings.find("GPS").unwrap_or(0) < findings.find("Camera owner").unwrap_or(0));
        assert_eq!(m.text, "High-risk image: IMG_1.jpg (score 87/100) in cases");
    }

    #[test]
    fn untrusted_names_cannot_ping_or_link() {
        let a = alert(
            "<!channel> <https://evil|click>.jpg",
            RiskLevel::Critical,
            99,
        );
        let m = render(&Notification::HighRiskFiles(Digest::of(vec![a])), 5);
        let all = texts(&m);
        assert!(!all.contains("<!channel>"), "{all}");
        assert!(all.contains("&lt;!channel&gt;"), "{all}");
    }

    #[test]
    fn a_long_digest_stays_within_slack_limits_and_counts_the_rest() {
        let alerts: Vec<FileAlert> = (0..500)
            .map(|i| {
                alert(
                    &format!("photo-{i:03}.jpg"),
                    if i % 10 == 0 {
                        RiskLevel::Critical
                    } else {
                        RiskLevel::High
                    },
                    80,
                )
            })
            .collect();
        let m = render(&Notification::HighRiskFiles(Digest::of(alerts)), 5);
        assert!(m.blocks.len() <= MAX_BLOCKS);
        assert_eq!(
            m.blocks[0]["text"]["text"],
            ":rotating_light: 500 high-risk images found"
        );
        assert!(texts(&m).contains("…and 480 more high-risk images"));
        for b in &m.blocks {
            let t = b["text"]["text"].as_str().unwrap_or_default();
            assert!(t.chars().count() <= MAX_SECTION_CHARS);
        }
        // Critical files are listed first.
        assert!(
            m.blocks[3]["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains(":red_circle: Critical")
        );
        assert_eq!(
            m.text,
            "ProofPix found 500 high-risk images (50 critical, 450 high)"
        );
    }

    #[test]
    fn huge_values_are_cut_to_the_block_limits() {
        let mut a = alert(&"x".repeat(400), RiskLevel::High, 80);
        a.summary = "y".repeat(10_000);
        a.findings = (0..200)
            .map(|i| Finding {
                category: "text".into(),
                code: "t".into(),
                severity: RiskLevel::Low,
                source: "xmp:dc/description".into(),
                value: format!("{i} {}", "z".repeat(500)),
            })
            .collect();
        let m = render(&Notification::HighRiskFiles(Digest::of(vec![a])), 500);
        for b in &m.blocks {
            let t = b["text"]["text"].as_str().unwrap_or_default();
            assert!(t.chars().count() <= MAX_SECTION_CHARS);
        }
        assert!(
            m.blocks[0]["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .count()
                <= MAX_HEADER_CHARS
        );
        assert!(texts(&m).contains("more findings_"));
    }

    #[test]
    fn batch_completion_counts_by_risk_and_links_the_dashboard() {
        let b = BatchSummary {
            batch_id: "b-1".into(),
            integration: "cases".into(),
            platform: "Salesforce".into(),
            started_at: "2026-01-01T10:00:00Z".into(),
            finished_at: "2026-01-01T10:05:00Z".into(),
            files_total: 10,
            files_ok: 9,
            files_failed: 1,
            by_risk: vec![
                (RiskLevel::High, 2),
                (RiskLevel::Critical, 1),
                (RiskLevel::None, 6),
            ],
            dashboard_url: Some("https://proofpix.example/batches/b-1".into()),
        };
        let m = render(&Notification::BatchCompleted(b), 5);
        assert_eq!(
            m.blocks[0]["text"]["text"],
            ":warning: Scan finished with 1 failed: cases"
        );
        let all = texts(&m);
        assert!(
            all.contains(":red_circle: Critical *1*   :large_orange_circle: High *2*"),
            "{all}"
        );
        assert!(all.contains(
            "<https://proofpix.example/batches/b-1|Open this batch in the ProofPix dashboard>"
        ));
        assert_eq!(
            m.text,
            "Scan finished: cases: 10 files, 3 high-risk, 1 failed"
        );
    }
}
