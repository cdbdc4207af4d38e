//! Human-readable tables and summaries.
//!
//! Values printed here come from attacker-controlled files (names, comments).
//! Control characters are replaced so a crafted tag cannot rewrite the
//! operator's terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proofpix_analysis::{Report, RiskLevel};

/// Replaces control characters (including ESC) with `?`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Truncates to `n` characters with an ellipsis.
pub fn fit(s: &str, n: usize) -> String {
    let s = sanitize(s);
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One table row: risk, score, name, what was found.
pub struct Row {
    /// The file's risk.
    pub risk: RiskLevel,
    /// Its score.
    pub score: u8,
    /// Its name or path.
    pub name: String,
    /// Findings summary or error.
    pub detail: String,
}

impl Row {
    /// A row for an analysed file.
    pub fn from_report(name: &str, r: &Report) -> Self {
        let mut cats: Vec<(&'static str, RiskLevel)> = Vec::new();
        for f in &r.findings {
            let c = f.category.as_str();
            match cats.iter_mut().find(|(n, _)| *n == c) {
                Some(e) => e.1 = e.1.max(f.severity),
                None => cats.push((c, f.severity)),
            }
        }
        cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut detail = if cats.is_empty() {
            "no findings".to_string()
        } else {
            cats.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
        };
        if let Some(e) = &r.error {
            let _ = write!(detail, " [{}]", e);
        }
        Row {
            risk: r.risk,
            score: r.score,
            name: name.to_string(),
            detail,
        }
    }
}

/// Prints rows sorted by risk (highest first), then name.
pub fn print_table(mut rows: Vec<Row>) {
    rows.sort_by(|a, b| {
        b.risk
            .cmp(&a.risk)
            .then(b.score.cmp(&a.score))
            .then(a.name.cmp(&b.name))
    });
    let width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    println!("{:<8} {:>5}  {:<width$}  FINDINGS", "RISK", "SCORE", "FILE");
    for r in rows {
        println!(
            "{:<8} {:>5}  {:<width$}  {}",
            r.risk.as_str(),
            r.score,
            fit(&r.name, width),
            fit(&r.detail, 100)
        );
    }
}

/// "3 critical, 1 high, 2 none" in level order.
pub fn by_risk(counts: &BTreeMap<RiskLevel, u64>) -> String {
    let mut parts: Vec<String> = counts
        .iter()
        .rev()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    if parts.is_empty() {
        parts.push("none".into());
    }
    parts.join(", ")
}
