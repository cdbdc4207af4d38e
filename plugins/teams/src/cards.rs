//! Cards for ProofPix notifications: one neutral [`Card`] per notification, rendered as an
//! Adaptive Card envelope (Workflows, reference §3.2) or a legacy MessageCard (§3.1).
//!
//! Threat model: file names, paths, summaries and problem messages come from scanned files or
//! remote services. Both card formats render markdown (Adaptive Card `TextBlock`/`FactSet`,
//! MessageCard `text`), and MessageCard also renders some HTML, so untrusted text is escaped per
//! format ([`escape`]) and links are built only from `http(s)` URLs. Finding values arrive
//! already masked by the host.
//!
//! Size: Teams refuses payloads over about 28 KB (§3.1, hedged). A digest lists at most
//! [`MAX_DIGEST_FILES`] files and counts the rest, and every string is cut, so a card stays a few
//! kilobytes; the caller still falls back to [`Card::compact`] on a 413.

use proofpix_sdk::notify;
use proofpix_sdk::prelude::*;
use proofpix_sdk::results::{self, category_label};
use proofpix_sdk::text::truncate_chars;
use serde_json::{Value, json};

/// Files listed one by one in a digest; the rest are counted.
pub const MAX_DIGEST_FILES: usize = notify::DIGEST_FILES;
/// Longest single text (title, fact, line).
const MAX_TEXT_CHARS: usize = 1000;
/// Longest finding value quoted.
const MAX_VALUE_CHARS: usize = 120;

/// How urgent a card looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Red: high and critical risk, failures.
    Attention,
    /// Amber: warnings, partial failures.
    Warning,
    /// Green: a clean completion.
    Good,
}

/// A piece of a line of text.
#[derive(Debug, Clone, PartialEq)]
pub enum Span {
    /// Untrusted or plain text, escaped when rendered.
    Text(String),
    /// Bold text, escaped when rendered.
    Bold(String),
    /// A link; rendered as its text alone unless the URL is http(s).
    Link {
        /// What the reader sees.
        text: String,
        /// Where it goes.
        url: String,
    },
}

/// A format-neutral card.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Title line.
    pub title: String,
    /// Plain-text summary (MessageCard `summary`, notification previews).
    pub summary: String,
    /// Colour.
    pub tone: Tone,
    /// Label/value pairs.
    pub facts: Vec<(String, String)>,
    /// Paragraphs, each a list of lines.
    pub paragraphs: Vec<Vec<Vec<Span>>>,
    /// Buttons: (title, URL).
    pub links: Vec<(String, String)>,
}

/// The markdown dialect to escape for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Adaptive Card markdown (no HTML).
    Adaptive,
    /// MessageCard markdown, which also renders some HTML.
    MessageCard,
}

impl Card {
    /// The card for a notification, listing at most `max_findings` findings per file.
    pub fn render(event: &Notification, max_findings: usize) -> Card {
        match event {
            Notification::HighRiskFiles(d) if d.total_files() == 1 => match d.alerts.first() {
                Some(a) => file_alert(a, max_findings),
                None => digest(d),
            },
            Notification::HighRiskFiles(d) => digest(d),
            Notification::BatchCompleted(b) => batch_completed(b),
            Notification::BatchFailed(p) => problem("Scan failed", p, Tone::Attention),
            Notification::IntegrationUnhealthy(p) => {
                problem("Integration needs attention", p, Tone::Warning)
            }
        }
    }

    /// Title and summary only, for when Teams refused the full card.
    pub fn compact(&self) -> Card {
        Card {
            title: self.title.clone(),
            summary: self.summary.clone(),
            tone: self.tone,
            facts: vec![],
            paragraphs: vec![vec![vec![Span::Text(self.summary.clone())]]],
            links: self.links.iter().take(1).cloned().collect(),
        }
    }

    /// `{"type":"message","attachments":[Adaptive Card 1.2]}` for Workflows (§3.2).
    pub fn adaptive_envelope(&self) -> Value {
        let color = match self.tone {
            Tone::Attention => "Attention",
            Tone::Warning => "Warning",
            Tone::Good => "Good",
        };
        let d = Dialect::Adaptive;
        let mut body = vec![json!({
            "type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
            "color": color, "text": escape(&truncate_chars(&self.title, MAX_TEXT_CHARS), d),
        })];
        if !self.facts.is_empty() {
            let facts: Vec<Value> = self
                .facts
                .iter()
                .map(|(k, v)| json!({"title": escape(k, d), "value": escape(&truncate_chars(v, MAX_TEXT_CHARS), d)}))
                .collect();
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        for p in &self.paragraphs {
            body.push(json!({
                "type": "TextBlock", "wrap": true,
                "text": p.iter().map(|l| line(l, d)).collect::<Vec<_>>().join("\n\n"),
            }));
        }
        let mut content = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": body,
        });
        let actions: Vec<Value> = self
            .links
            .iter()
            .filter(|(_, u)| is_web_url(u))
            .map(|(t, u)| json!({"type": "Action.OpenUrl", "title": t, "url": u.trim()}))
            .collect();
        if !actions.is_empty() {
            content["actions"] = json!(actions);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": content,
            }],
        })
    }

    /// A legacy MessageCard for Office 365 connectors (§3.1).
    pub fn message_card(&self) -> Value {
        let d = Dialect::MessageCard;
        let theme = match self.tone {
            Tone::Attention => "D13438",
            Tone::Warning => "FFB900",
            Tone::Good => "107C10",
        };
        let mut sections = Vec::new();
        if !self.facts.is_empty() {
            let facts: Vec<Value> = self
                .facts
                .iter()
                .map(|(k, v)| json!({"name": escape(k, d), "value": escape(&truncate_chars(v, MAX_TEXT_CHARS), d)}))
                .collect();
            sections.push(json!({"facts": facts, "markdown": true}));
        }
        for p in &self.paragraphs {
            sections.push(json!({
                "text": p.iter().map(|l| line(l, d)).collect::<Vec<_>>().join("\n\n"),
                "markdown": true,
            }));
        }
        let mut card = json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            // `summary` is shown as plain text (notification previews): no markdown to escape,
            // but no HTML either.
            "summary": truncate_chars(&self.summary, 200).replace('<', "‹").replace('>', "›"),
            "themeColor": theme,
            "title": escape(&truncate_chars(&self.title, MAX_TEXT_CHARS), d),
            "text": escape(&truncate_chars(&self.summary, MAX_TEXT_CHARS), d),
            "sections": sections,
        });
        let actions: Vec<Value> = self
            .links
            .iter()
            .filter(|(_, u)| is_web_url(u))
            .map(|(t, u)| {
                json!({"@type": "OpenUri", "name": t, "targets": [{"os": "default", "uri": u.trim()}]})
            })
            .collect();
        if !actions.is_empty() {
            card["potentialAction"] = json!(actions);
        }
        card
    }
}

fn file_alert(a: &FileAlert, max_findings: usize) -> Card {
    let level = a.risk.label();
    let mut facts = vec![
        ("File".to_string(), a.file.name.clone()),
        ("Risk".to_string(), format!("{level} ({}/100)", a.score)),
        ("Integration".to_string(), a.integration.clone()),
    ];
    if let Some(place) = a.file.path.as_deref().or(a.file.container.as_deref()) {
        facts.push(("Location".to_string(), place.to_string()));
    }
    let mut paragraphs = Vec::new();
    if !a.summary.trim().is_empty() {
        paragraphs.push(vec![vec![Span::Text(a.summary.trim().to_string())]]);
    }
    if max_findings > 0 && !a.findings.is_empty() {
        let mut lines = vec![vec![Span::Bold("Findings".into())]];
        for f in results::worst_first(&a.findings).iter().take(max_findings) {
            let mut l = vec![
                Span::Text("- ".into()),
                Span::Bold(category_label(&f.category).into()),
                Span::Text(format!(" ({})", f.severity.keyword())),
            ];
            if !f.value.trim().is_empty() {
                l.push(Span::Text(format!(
                    ": {}",
                    truncate_chars(f.value.trim(), MAX_VALUE_CHARS)
                )));
            }
            lines.push(l);
        }
        let rest = a.findings.len().saturating_sub(max_findings);
        if rest > 0 {
            lines.push(vec![Span::Text(notify::more_findings(rest))]);
        }
        paragraphs.push(lines);
    }
    let links = a
        .file
        .web_url
        .iter()
        .map(|u| ("Open file".to_string(), u.clone()))
        .collect();
    Card {
        title: format!(
            "{level}-risk image found: {}",
            truncate_chars(&a.file.name, 200)
        ),
        summary: notify::alert_line(a),
        tone: Tone::Attention,
        facts,
        paragraphs,
        links,
    }
}

/// A window's alerts: its totals count every file, the lines show the worst the message holds.
fn digest(d: &Digest) -> Card {
    let n = d.total_files();
    let counts = notify::digest_counts_text(d);
    let mut lines = Vec::new();
    for a in notify::digest_files(d) {
        let (labels, _) = results::category_labels(&a.findings, notify::DIGEST_CATEGORIES);
        let name = truncate_chars(&a.file.name, 200);
        let mut l = vec![Span::Text("- ".into())];
        l.push(match &a.file.web_url {
            Some(u) => Span::Link {
                text: name,
                url: u.clone(),
            },
            None => Span::Bold(name),
        });
        l.push(Span::Text(format!(
            " — {} ({}/100){}",
            a.risk.label(),
            a.score,
            if labels.is_empty() {
                String::new()
            } else {
                format!(": {}", labels.join(", "))
            }
        )));
        lines.push(l);
    }
    let more = notify::more_files(d);
    if more > 0 {
        lines.push(vec![Span::Text(format!(
            "…and {more} more. See the ProofPix dashboard or `proofpix results` for the full list."
        ))]);
    }
    Card {
        title: format!("{n} high-risk images found"),
        summary: notify::digest_line(d),
        tone: Tone::Attention,
        facts: vec![
            ("Images".to_string(), counts),
            (
                "Integrations".to_string(),
                notify::digest_integrations(d).join(", "),
            ),
        ],
        paragraphs: vec![lines],
        links: vec![],
    }
}

fn batch_completed(b: &BatchSummary) -> Card {
    let risky = notify::batch_high_risk(b);
    let by_risk = RiskLevel::WORST_FIRST
        .iter()
        .map(|&r| format!("{} {}", r.label(), notify::batch_count(b, r)))
        .collect::<Vec<_>>()
        .join(" · ");
    let mut facts = vec![("Integration".to_string(), b.integration.clone())];
    if !b.platform.is_empty() {
        facts.push(("Platform".to_string(), b.platform.clone()));
    }
    facts.extend([
        ("Files".to_string(), b.files_total.to_string()),
        ("Analysed".to_string(), b.files_ok.to_string()),
        ("Failed".to_string(), b.files_failed.to_string()),
        ("High-risk".to_string(), risky.to_string()),
        ("By risk".to_string(), by_risk),
        ("Batch".to_string(), b.batch_id.clone()),
    ]);
    if !b.finished_at.is_empty() {
        facts.push(("Finished".to_string(), b.finished_at.clone()));
    }
    let tone = if b.files_failed > 0 || risky > 0 {
        Tone::Warning
    } else {
        Tone::Good
    };
    Card {
        summary: notify::batch_line(b),
        title: notify::batch_title(b),
        tone,
        facts,
        paragraphs: vec![],
        links: b
            .dashboard_url
            .iter()
            .map(|u| ("Open in the ProofPix dashboard".to_string(), u.clone()))
            .collect(),
    }
}

fn problem(title: &str, p: &Problem, tone: Tone) -> Card {
    Card {
        title: format!("{title}: {}", p.integration),
        summary: format!(
            "{title}: {}: {}",
            p.integration,
            truncate_chars(&p.message, 300)
        ),
        tone,
        facts: vec![],
        paragraphs: vec![
            vec![vec![Span::Text(truncate_chars(&p.message, MAX_TEXT_CHARS))]],
            vec![vec![Span::Text(format!(
                "Diagnose with: proofpix integration test {}",
                p.integration
            ))]],
        ],
        links: vec![],
    }
}

fn line(spans: &[Span], d: Dialect) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(&truncate_chars(t, MAX_TEXT_CHARS), d),
            Span::Bold(t) => format!("**{}**", escape(&truncate_chars(t, MAX_TEXT_CHARS), d)),
            Span::Link { text, url } if is_web_url(url) => {
                format!("[{}]({})", escape(text, d), safe_url(url))
            }
            Span::Link { text, .. } => escape(text, d),
        })
        .collect()
}

/// Escapes untrusted text for the card's markdown: backslash before markdown punctuation, and
/// for MessageCards the HTML characters as entities too.
pub fn escape(s: &str, d: Dialect) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' if d == Dialect::MessageCard => out.push_str("&lt;"),
            '>' if d == Dialect::MessageCard => out.push_str("&gt;"),
            '&' if d == Dialect::MessageCard => out.push_str("&amp;"),
            // Parentheses only matter after `]`, which is escaped.
            '\\' | '*' | '_' | '[' | ']' | '#' | '`' | '~' | '|' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn is_web_url(u: &str) -> bool {
    let u = u.trim();
    u.starts_with("https://") || u.starts_with("http://")
}

/// A URL that cannot end a markdown link early.
fn safe_url(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for c in u.trim().chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> FileAlert {
        FileAlert {
            integration: "library".into(),
            file: RemoteFile {
                id: "1".into(),
                name: name.into(),
                web_url: Some("https://contoso.sharepoint.com/a b.jpg".into()),
                ..RemoteFile::default()
            },
            risk: RiskLevel::Critical,
            score: 95,
            summary: "GPS; owner J*** D**".into(),
            findings: vec![Finding {
                category: "gps".into(),
                code: "gps.coordinates".into(),
                severity: RiskLevel::High,
                source: "exif:GPS/0x0002".into(),
                value: "52.37281, 4.89361".into(),
            }],
        }
    }

    #[test]
    fn an_alert_is_an_adaptive_card_in_a_message_envelope() {
        let card = Card::render(
            &Notification::HighRiskFiles(Digest::of(vec![alert("a.jpg")])),
            5,
        );
        let v = card.adaptive_envelope();
        assert_eq!(v["type"], "message");
        assert_eq!(
            v["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let content = &v["attachments"][0]["content"];
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["version"], "1.2");
        assert_eq!(
            content["body"][0]["text"],
            "Critical-risk image found: a.jpg"
        );
        assert_eq!(content["body"][0]["color"], "Attention");
        assert_eq!(content["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            content["body"][3]["text"],
            "**Findings**\n\n- **GPS location** (high): 52.37281, 4.89361"
        );
        assert_eq!(content["body"][2]["text"], "GPS; owner J\\*\\*\\* D\\*\\*");
    }

    #[test]
    fn a_message_card_has_the_fields_the_legacy_connector_requires() {
        let card = Card::render(
            &Notification::HighRiskFiles(Digest::of(vec![alert("a.jpg")])),
            5,
        );
        let v = card.message_card();
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["@context"], "https://schema.org/extensions");
        assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(v["potentialAction"][0]["@type"], "OpenUri");
    }

    #[test]
    fn untrusted_names_cannot_inject_links_or_html() {
        let card = Card::render(
            &Notification::HighRiskFiles(Digest::of(vec![alert(
                "[click](https://evil)<b>x</b>.jpg",
            )])),
            5,
        );
        let adaptive = card.adaptive_envelope().to_string();
        assert!(!adaptive.contains("[click](https://evil)"), "{adaptive}");
        let legacy = card.message_card().to_string();
        assert!(!legacy.contains("<b>"), "{legacy}");
    }

    #[test]
    fn a_digest_of_many_files_lists_twenty_and_counts_the_rest() {
        let alerts: Vec<FileAlert> = (0..75).map(|i| alert(&format!("p{i}.jpg"))).collect();
        let card = Card::render(&Notification::HighRiskFiles(Digest::of(alerts)), 5);
        assert_eq!(card.title, "75 high-risk images found");
        let lines = &card.paragraphs[0];
        assert_eq!(lines.len(), MAX_DIGEST_FILES + 1);
        assert!(
            card.adaptive_envelope()
                .to_string()
                .contains("…and 55 more")
        );
        assert!(card.adaptive_envelope().to_string().len() < 28_000);
    }

    /// A window of 300 files whose message carries only 50: the card counts all 300 and says
    /// how many it does not show.
    #[test]
    fn a_digest_counts_the_whole_window_not_only_the_alerts_it_carries() {
        let alerts: Vec<FileAlert> = (0..50).map(|i| alert(&format!("p{i}.jpg"))).collect();
        let digest = Digest {
            alerts,
            total: 300,
            by_risk: vec![(RiskLevel::Critical, 120), (RiskLevel::High, 180)],
            window_start: "2026-12-06T10:00:00Z".into(),
            window_end: "2026-12-06T11:00:00Z".into(),
        };
        let card = Card::render(&Notification::HighRiskFiles(digest), 5);
        assert_eq!(card.title, "300 high-risk images found");
        assert!(
            card.summary.contains("120 critical, 180 high"),
            "{}",
            card.summary
        );
        assert!(
            card.adaptive_envelope()
                .to_string()
                .contains("…and 280 more"),
            "twenty shown of 300"
        );
    }
}
