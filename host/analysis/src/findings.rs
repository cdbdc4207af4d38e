//! From extracted items to findings: codes, severities under the policy, readable and masked
//! values, the cross-family check, and the file's risk level and score.
//!
//! Masking (unless `Options::show_values`): person names keep their initials (`J*** D**`),
//! e-mail addresses their first letter and domain ending (`j***@e******.com`), phone numbers
//! their last two digits, serials and ids their last four characters, GPS one decimal (about
//! 11 km). Device names, software, timestamps and place names are shown: a reviewer needs them
//! and they name no one.

use std::collections::HashSet;

use crate::ctx::{Item, Value};
use crate::model::{Category, Family, Finding, RiskLevel, Source};
use crate::policy::Policy;

/// Most findings reported per file.
const MAX_FINDINGS: usize = 1000;

fn contains_email(s: &str) -> bool {
    s.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '@' && c != '.');
        match w.split_once('@') {
            Some((a, b)) => {
                !a.is_empty() && b.contains('.') && !b.starts_with('.') && !b.ends_with('.')
            }
            None => false,
        }
    })
}

fn contains_phone(s: &str) -> bool {
    // Seven or more digits in a run that allows separators: "+1 (555) 010-9999".
    let mut digits = 0u32;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits = digits.saturating_add(1);
            if digits >= 9 {
                return s.contains('+') || s.contains('-') || s.contains(' ') || s.contains('(');
            }
        } else if !matches!(c, ' ' | '-' | '(' | ')' | '.' | '+' | '/') {
            digits = 0;
        }
    }
    false
}

/// The stable code of an item.
pub(crate) fn code_for(item: &Item) -> &'static str {
    let n = item.name.as_str();
    let v = match &item.value {
        Value::Text(t) => t.as_str(),
        _ => "",
    };
    match item.category {
        Category::Gps => {
            if n.contains("Dest") {
                "gps.destination"
            } else {
                "gps.coordinates"
            }
        }
        Category::Serial => {
            if n.contains("Lens") {
                "serial.lens"
            } else if n.contains("Internal") {
                "serial.internal"
            } else {
                "serial.body"
            }
        }
        Category::Owner => "owner.name",
        Category::Person => {
            if n.starts_with("Region") {
                "person.face_region"
            } else if n.contains("Baby") || n.contains("Pet") {
                "person.baby_name"
            } else if n.contains("Face") {
                "person.face_name"
            } else {
                "person.in_image"
            }
        }
        Category::Contact => {
            if contains_email(v) || n.contains("Email") {
                "contact.email"
            } else if n.contains("Tel") || contains_phone(v) {
                "contact.phone"
            } else if n.contains("URL") || n.contains("Url") || v.starts_with("http") {
                "contact.url"
            } else if n == "Contact" {
                "contact.other"
            } else {
                "contact.address"
            }
        }
        Category::Author => "author.name",
        Category::LocationText => "location.place",
        Category::Thumbnail => {
            if n.starts_with("Thumbnail") || n.starts_with("Photoshop") {
                "thumbnail.embedded"
            } else {
                "thumbnail.preview"
            }
        }
        Category::UniqueId => {
            if n == "ContentIdentifier" {
                "unique_id.content_identifier"
            } else if n.contains("Document") || n.contains("Instance") {
                "unique_id.document"
            } else {
                "unique_id.image"
            }
        }
        Category::History => {
            if n.contains("FileName") {
                "history.file_name"
            } else {
                "history.edits"
            }
        }
        Category::Timestamp => {
            if n == "ModifyDate" {
                "timestamp.modify"
            } else if n.starts_with("GPS") {
                "timestamp.gps"
            } else {
                "timestamp.capture"
            }
        }
        Category::Device => {
            if n == "Software" {
                "device.software"
            } else if n.starts_with("Lens") {
                "device.lens"
            } else {
                "device.make_model"
            }
        }
        Category::Copyright => "copyright.notice",
        Category::Text => "text.free",
        Category::Trailer => {
            if n.starts_with("Samsung") {
                "trailer.samsung"
            } else if n.starts_with("Hidden") {
                "trailer.hidden_image"
            } else {
                "trailer.after_end"
            }
        }
        Category::ThumbnailMismatch => {
            if n.contains("Aspect") {
                "thumbnail_mismatch.aspect"
            } else {
                "thumbnail_mismatch.content"
            }
        }
        Category::EmbeddedMedia => "embedded_media.motion_photo",
        // Metadata items never carry the pixel stage's categories; its findings come with
        // their own codes.
        Category::TextPii => "text_pii.email",
        Category::Barcode => "barcode.text",
        Category::Face => "face.frontal",
    }
}

/// GPS precision class for a recording resolution in metres.
pub(crate) fn precision_class(res_m: f64, precise_m: f64) -> &'static str {
    if res_m <= 10.0_f64.min(precise_m) {
        "exact"
    } else if res_m <= precise_m {
        "precise"
    } else if res_m <= 10_000.0 {
        "approximate"
    } else {
        "coarse"
    }
}

fn default_severity(item: &Item, code: &str, policy: &Policy) -> (RiskLevel, Option<String>) {
    use RiskLevel::{Critical, High, Low, Medium};
    match (&item.value, item.category) {
        (Value::Gps { resolution_m, .. }, _) => {
            let class = precision_class(*resolution_m, policy.precise_gps_meters());
            let sev = match class {
                "exact" | "precise" => High,
                "approximate" => Medium,
                _ => Low,
            };
            (
                sev,
                Some(format!(
                    "{class} (recorded to about {} m)",
                    fmt_m(*resolution_m)
                )),
            )
        }
        (Value::Text(t), Category::Text) => {
            if contains_email(t) {
                (Medium, Some("contains an e-mail address".to_owned()))
            } else if contains_phone(t) {
                (Medium, Some("contains a phone number".to_owned()))
            } else {
                (Low, None)
            }
        }
        (_, c) => (
            match c {
                Category::Gps | Category::Person | Category::Contact | Category::Owner => High,
                Category::ThumbnailMismatch | Category::EmbeddedMedia => High,
                Category::Trailer => match code {
                    "trailer.hidden_image" => Critical,
                    "trailer.samsung" => Medium,
                    _ => High,
                },
                Category::Serial
                | Category::UniqueId
                | Category::Timestamp
                | Category::History
                | Category::Author
                | Category::LocationText
                | Category::Thumbnail => Medium,
                Category::Device | Category::Copyright | Category::Text => Low,
                Category::TextPii | Category::Barcode | Category::Face => Medium,
            },
            None,
        ),
    }
}

fn fmt_m(m: f64) -> String {
    if m < 1.0 {
        "1".to_owned()
    } else if m < 1000.0 {
        format!("{}", m.round() as i64)
    } else {
        format!("{}", ((m / 1000.0).round() * 1000.0) as i64)
    }
}

fn mask_word(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => std::iter::once(f).chain(c.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Mask a name: keep each word's initial.
pub fn mask_name(s: &str) -> String {
    s.split_whitespace()
        .take(16)
        .map(mask_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mask an e-mail address: first letter, then the domain's last label.
pub fn mask_email(s: &str) -> String {
    s.split_whitespace()
        .map(|w| match w.split_once('@') {
            Some((user, domain)) => {
                let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
                let tld = if tld.is_empty() {
                    String::new()
                } else {
                    format!(".{tld}")
                };
                format!("{}@{}{}", mask_word(user), mask_word(host), tld)
            }
            None => mask_word(w),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_tail(s: &str, keep: usize) -> String {
    let n = s.chars().count();
    if n <= keep {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < n.saturating_sub(keep) && !c.is_whitespace() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn display_value(item: &Item, code: &str, show: bool) -> String {
    match &item.value {
        Value::Gps { lat, lon, .. } => {
            if show {
                format!("{lat:.6}, {lon:.6}")
            } else {
                format!("{lat:.1}, {lon:.1} (masked)")
            }
        }
        Value::Binary(n) => format!("{n}-byte embedded image"),
        Value::Text(t) => {
            let t = shorten(t, 200);
            if show {
                return t;
            }
            match item.category {
                Category::Owner | Category::Person | Category::Author => mask_name(&t),
                Category::Contact => match code {
                    "contact.email" => mask_email(&t),
                    "contact.phone" => mask_tail(&t, 2),
                    _ => mask_name(&t),
                },
                Category::Serial => mask_tail(&t, 4),
                Category::UniqueId => mask_tail(&t, 4),
                Category::Text => {
                    if contains_email(&t) {
                        mask_email(&t)
                    } else {
                        mask_name(&t)
                    }
                }
                Category::History if t.contains('/') || t.contains('\\') => mask_name(&t),
                _ => t,
            }
        }
    }
}

fn family_label(f: Family) -> &'static str {
    match f {
        Family::Exif => "EXIF",
        Family::Xmp => "XMP",
        Family::Iptc => "IPTC",
        Family::Icc => "ICC",
        Family::MakerNote => "maker notes",
        Family::Photoshop => "Photoshop",
        Family::Container => "container",
        Family::Pixels => "pixels",
    }
}

/// Build the findings of a file.
pub(crate) fn build(items: &[Item], policy: &Policy, show: bool) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut seen: HashSet<(String, String, String, String)> = HashSet::new();
    for item in items {
        if out.len() >= MAX_FINDINGS {
            break;
        }
        let code = code_for(item);
        let (def, detail) = default_severity(item, code, policy);
        let severity = policy.severity(code, item.category, def);
        if severity == RiskLevel::None {
            continue;
        }
        let value = display_value(item, code, show);
        // Deduplicate on the raw value: two different names can mask to the same string.
        let raw = match &item.value {
            Value::Text(t) => t.clone(),
            Value::Gps { lat, lon, .. } => format!("{lat},{lon}"),
            Value::Binary(n) => format!("{n}@{:?}", item.offset),
        };
        let key = (code.to_owned(), item.group.clone(), item.name.clone(), raw);
        if !seen.insert(key) {
            continue;
        }
        out.push(Finding {
            category: item.category,
            code: code.to_owned(),
            severity,
            source: Source {
                family: item.family,
                group: item.group.clone(),
                tag: item.tag.clone(),
                name: item.name.clone(),
                offset: item.offset,
            },
            value,
            detail,
            region: None,
            confidence: None,
        });
    }
    cross_family(&mut out, policy);
    out
}

/// The same kind of field in two families: a strip of one family would leave the other.
fn cross_family(out: &mut Vec<Finding>, policy: &Policy) {
    let watched = [
        Category::Gps,
        Category::Serial,
        Category::Owner,
        Category::Person,
        Category::Author,
        Category::LocationText,
    ];
    let mut extra = Vec::new();
    for cat in watched {
        let mut fams: Vec<Family> = out
            .iter()
            .filter(|f| f.category == cat)
            .map(|f| match f.source.family {
                Family::MakerNote => Family::Exif,
                other => other,
            })
            .collect();
        fams.sort();
        fams.dedup();
        if fams.len() < 2 {
            continue;
        }
        let code = format!("{}.cross_family", cat.code_prefix());
        let max = out
            .iter()
            .filter(|f| f.category == cat)
            .map(|f| f.severity)
            .max()
            .unwrap_or(RiskLevel::Low);
        let severity = policy.severity(&code, cat, max);
        if severity == RiskLevel::None {
            continue;
        }
        let labels: Vec<&str> = fams.iter().map(|f| family_label(*f)).collect();
        extra.push(Finding {
            category: cat,
            code,
            severity,
            source: Source {
                family: Family::Container,
                group: "ProofPix".to_owned(),
                tag: "cross-family".to_owned(),
                name: "SameFieldInSeveralFamilies".to_owned(),
                offset: None,
            },
            value: format!("{cat} present in {}", labels.join(" and ")),
            detail: Some("stripping one family would leave the others".to_owned()),
            region: None,
            confidence: None,
        });
    }
    out.extend(extra);
}

/// The file's risk level and 0–100 score.
///
/// The level is the highest finding severity, raised to the policy's `gps_with_person` level
/// when a precise GPS fix and a named person occur together. The score starts at the floor of
/// the level's band (low 10, medium 30, high 60, critical 85) and adds, per distinct code,
/// 1 (low), 3 (medium), 5 (high) or 8 (critical) points, capped at the band's top (29, 59, 84,
/// 100).
pub(crate) fn risk(findings: &[Finding], policy: &Policy) -> (RiskLevel, u8) {
    let mut level = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(RiskLevel::None);
    let precise_gps = findings.iter().any(|f| {
        f.category == Category::Gps && f.severity >= RiskLevel::High && f.code != "gps.cross_family"
    });
    let person = findings.iter().any(|f| f.category.identifies_person());
    if precise_gps && person {
        level = level.max(policy.gps_with_person());
    }
    let (floor, top) = match level {
        RiskLevel::None => return (RiskLevel::None, 0),
        RiskLevel::Low => (10u8, 29u8),
        RiskLevel::Medium => (30, 59),
        RiskLevel::High => (60, 84),
        RiskLevel::Critical => (85, 100),
    };
    let mut codes: Vec<(&str, RiskLevel)> = findings
        .iter()
        .map(|f| (f.code.as_str(), f.severity))
        .collect();
    codes.sort();
    codes.dedup_by(|a, b| a.0 == b.0);
    let pts: u32 = codes
        .iter()
        .map(|(_, s)| match s {
            RiskLevel::Critical => 8u32,
            RiskLevel::High => 5,
            RiskLevel::Medium => 3,
            RiskLevel::Low => 1,
            RiskLevel::None => 0,
        })
        .sum();
    let score = u32::from(floor).saturating_add(pts).min(u32::from(top));
    (level, u8::try_from(score).unwrap_or(top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails_are_masked_but_readable() {
        assert_eq!(mask_name("Jane Doe"), "J*** D**");
        assert_eq!(mask_email("jane@example.com"), "j***@e******.com");
        assert_eq!(mask_tail("560018150", 4), "*****8150");
    }

    #[test]
    fn phone_numbers_and_emails_are_noticed_in_free_text() {
        assert!(contains_email("call me: a.b@c.org"));
        assert!(!contains_email("user@ home"));
        assert!(contains_phone("Tel +44 20 7946 0958"));
        assert!(!contains_phone("IMG_20230101"));
    }

    #[test]
    fn gps_precision_classes_follow_the_threshold() {
        assert_eq!(precision_class(3.0, 100.0), "exact");
        assert_eq!(precision_class(50.0, 100.0), "precise");
        assert_eq!(precision_class(1852.0, 100.0), "approximate");
        assert_eq!(precision_class(111_000.0, 100.0), "coarse");
    }
}
