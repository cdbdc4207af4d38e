//! Risk policy: how severe each finding is, and when findings combine into a critical file.
//!
//! The default policy ([`Policy::default`]) follows the issue's ranking:
//!
//! | severity | findings (codes) |
//! |---|---|
//! | critical | precise GPS together with a named person (`person.*`, `owner.name`, `author.name`, `contact.*`) in the same file; data after the end of the image that holds another image (`trailer.hidden_image`) |
//! | high | precise GPS (`gps.coordinates`, `gps.destination` recorded to 100 m or better), face and person names (`person.*`), owner names, creator contact details (`contact.*`), a thumbnail that does not match the image (`thumbnail_mismatch.*`), embedded video (`embedded_media.*`), unexplained data after the image (`trailer.after_end`) |
//! | medium | GPS coarser than 100 m but within 10 km, serial numbers, unique ids, exact timestamps, editing history and file names, authors, place names, embedded thumbnails, Samsung trailers, free text that contains an e-mail address or phone number |
//! | low | device, lens and software; copyright notices; other free text; GPS coarser than 10 km |
//!
//! An operator overrides it with a TOML file (`--policy FILE`):
//!
//! ```toml
//! # GPS recorded to this many metres or better counts as precise (default 100).
//! precise_gps_meters = 50
//! # File risk when precise GPS and a named person occur together (default "critical").
//! gps_with_person = "high"
//!
//! [severity]
//! # A finding code or a whole category; "none" hides the finding.
//! "serial.body" = "high"
//! device = "none"
//! ```
//!
//! Validation fails closed: an unknown key, category, code or level is an error that names the
//! line and column, and nothing is half-applied. [`Policy::version`] is a stable short hash of
//! the effective policy, for idempotency keys: two files that mean the same policy hash the same.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{Category, RiskLevel};

/// Every finding code this crate emits, with its category.
pub const CODES: &[(&str, Category)] = &[
    ("gps.coordinates", Category::Gps),
    ("gps.destination", Category::Gps),
    ("gps.cross_family", Category::Gps),
    ("serial.body", Category::Serial),
    ("serial.lens", Category::Serial),
    ("serial.internal", Category::Serial),
    ("serial.cross_family", Category::Serial),
    ("owner.name", Category::Owner),
    ("owner.cross_family", Category::Owner),
    ("person.face_region", Category::Person),
    ("person.face_name", Category::Person),
    ("person.baby_name", Category::Person),
    ("person.in_image", Category::Person),
    ("person.cross_family", Category::Person),
    ("contact.email", Category::Contact),
    ("contact.phone", Category::Contact),
    ("contact.address", Category::Contact),
    ("contact.url", Category::Contact),
    ("contact.other", Category::Contact),
    ("author.name", Category::Author),
    ("author.cross_family", Category::Author),
    ("location.place", Category::LocationText),
    ("location.cross_family", Category::LocationText),
    ("thumbnail.embedded", Category::Thumbnail),
    ("thumbnail.preview", Category::Thumbnail),
    ("unique_id.image", Category::UniqueId),
    ("unique_id.document", Category::UniqueId),
    ("unique_id.content_identifier", Category::UniqueId),
    ("history.edits", Category::History),
    ("history.file_name", Category::History),
    ("timestamp.capture", Category::Timestamp),
    ("timestamp.modify", Category::Timestamp),
    ("timestamp.gps", Category::Timestamp),
    ("device.make_model", Category::Device),
    ("device.lens", Category::Device),
    ("device.software", Category::Device),
    ("copyright.notice", Category::Copyright),
    ("text.free", Category::Text),
    ("trailer.after_end", Category::Trailer),
    ("trailer.hidden_image", Category::Trailer),
    ("trailer.samsung", Category::Trailer),
    ("thumbnail_mismatch.aspect", Category::ThumbnailMismatch),
    ("thumbnail_mismatch.content", Category::ThumbnailMismatch),
    ("embedded_media.motion_photo", Category::EmbeddedMedia),
    // The pixel stage (`proofpix-pixels`): what the picture shows.
    ("text_pii.email", Category::TextPii),
    ("text_pii.phone", Category::TextPii),
    ("text_pii.card_number", Category::TextPii),
    ("text_pii.iban", Category::TextPii),
    ("text_pii.national_id.us_ssn", Category::TextPii),
    ("text_pii.national_id.uk_nino", Category::TextPii),
    ("text_pii.national_id.de_tax_id", Category::TextPii),
    ("barcode.wifi", Category::Barcode),
    ("barcode.contact", Category::Barcode),
    ("barcode.boarding_pass", Category::Barcode),
    ("barcode.payment", Category::Barcode),
    ("barcode.url", Category::Barcode),
    ("barcode.text", Category::Barcode),
    ("face.frontal", Category::Face),
    ("face.with_text_pii", Category::Face),
];

/// Default GPS precision threshold in metres.
pub const DEFAULT_PRECISE_GPS_METERS: f64 = 100.0;

/// A validated risk policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    by_code: BTreeMap<String, RiskLevel>,
    by_category: BTreeMap<Category, RiskLevel>,
    precise_gps_meters: f64,
    gps_with_person: RiskLevel,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            by_code: BTreeMap::new(),
            by_category: BTreeMap::new(),
            precise_gps_meters: DEFAULT_PRECISE_GPS_METERS,
            gps_with_person: RiskLevel::Critical,
        }
    }
}

/// Why a policy file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is not valid TOML or does not match the schema.
    #[error("policy {line}:{column}: {message}")]
    Invalid {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    precise_gps_meters: Option<toml::Spanned<f64>>,
    gps_with_person: Option<toml::Spanned<String>>,
    severity: Option<BTreeMap<toml::Spanned<String>, toml::Spanned<String>>>,
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count().saturating_add(1);
    let col = before
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        .saturating_add(1);
    (line, col)
}

fn err_at(src: &str, offset: usize, message: String) -> PolicyError {
    let (line, column) = line_col(src, offset);
    PolicyError::Invalid {
        line,
        column,
        message,
    }
}

fn level(src: &str, v: &toml::Spanned<String>) -> Result<RiskLevel, PolicyError> {
    RiskLevel::parse(v.get_ref()).ok_or_else(|| {
        err_at(
            src,
            v.span().start,
            format!(
                "unknown severity '{}'; use none, low, medium, high or critical",
                v.get_ref()
            ),
        )
    })
}

impl Policy {
    /// Parse and validate a TOML policy.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] with the line and column of the first problem.
    pub fn from_toml_str(src: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(src).map_err(|e| {
            let off = e.span().map_or(0, |s| s.start);
            err_at(src, off, e.message().trim().to_owned())
        })?;
        let mut p = Policy::default();
        if let Some(m) = file.precise_gps_meters {
            let v = *m.get_ref();
            if !(v.is_finite() && v > 0.0 && v <= 1_000_000.0) {
                return Err(err_at(
                    src,
                    m.span().start,
                    format!("precise_gps_meters must be between 0 and 1000000, not {v}"),
                ));
            }
            p.precise_gps_meters = v;
        }
        if let Some(g) = &file.gps_with_person {
            p.gps_with_person = level(src, g)?;
        }
        for (k, v) in file.severity.unwrap_or_default() {
            let lv = level(src, &v)?;
            let key = k.get_ref();
            if let Some(c) = Category::parse(key) {
                p.by_category.insert(c, lv);
            } else if CODES.iter().any(|(c, _)| c == key) {
                p.by_code.insert(key.clone(), lv);
            } else {
                return Err(err_at(
                    src,
                    k.span().start,
                    format!(
                        "unknown category or code '{key}'; categories are {}; codes look like 'gps.coordinates'",
                        Category::ALL.map(Category::as_str).join(", ")
                    ),
                ));
            }
        }
        Ok(p)
    }

    /// GPS resolution (metres) at or below which a fix counts as precise.
    pub fn precise_gps_meters(&self) -> f64 {
        self.precise_gps_meters
    }

    /// File risk when precise GPS and a named person occur together.
    pub fn gps_with_person(&self) -> RiskLevel {
        self.gps_with_person
    }

    /// The effective severity of a finding: code override, then category override, then the
    /// default from the table in the module docs.
    pub fn severity(&self, code: &str, category: Category, default: RiskLevel) -> RiskLevel {
        if let Some(l) = self.by_code.get(code) {
            return *l;
        }
        if let Some(l) = self.by_category.get(&category) {
            return *l;
        }
        default
    }

    /// A stable short hash of the effective policy (`p1-` + 16 hex digits).
    pub fn version(&self) -> String {
        let mut canon = String::from("proofpix-policy-v1;");
        canon.push_str(&format!("precise_gps_meters={};", self.precise_gps_meters));
        canon.push_str(&format!("gps_with_person={};", self.gps_with_person));
        for (c, l) in &self.by_category {
            canon.push_str(&format!("cat:{c}={l};"));
        }
        for (c, l) in &self.by_code {
            canon.push_str(&format!("code:{c}={l};"));
        }
        // FNV-1a, 64 bit: stable across platforms and releases.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canon.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("p1-{h:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_file_is_the_default() {
        assert_eq!(Policy::from_toml_str(""), Ok(Policy::default()));
        assert_eq!(
            Policy::from_toml_str("").map(|p| p.version()),
            Ok(Policy::default().version())
        );
    }

    #[test]
    fn a_misspelt_code_is_rejected_with_its_line_and_column() {
        let src = "precise_gps_meters = 50\n[severity]\n\"gps.coordinate\" = \"high\"\n";
        let e = Policy::from_toml_str(src)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("policy 3:1: unknown category or code 'gps.coordinate'"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_severity_names_the_allowed_levels() {
        let src = "[severity]\ndevice = \"severe\"\n";
        let e = Policy::from_toml_str(src)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            e,
            "policy 2:10: unknown severity 'severe'; use none, low, medium, high or critical"
        );
    }

    #[test]
    fn an_unknown_top_level_key_is_rejected() {
        let e = Policy::from_toml_str("precise_gps = 3\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("policy 1:1:"), "{e}");
    }

    #[test]
    fn overrides_apply_code_before_category() {
        let p = Policy::from_toml_str(
            "[severity]\ndevice = \"none\"\n\"device.software\" = \"medium\"\n",
        )
        .unwrap_or_default();
        assert_eq!(
            p.severity("device.software", Category::Device, RiskLevel::Low),
            RiskLevel::Medium
        );
        assert_eq!(
            p.severity("device.make_model", Category::Device, RiskLevel::Low),
            RiskLevel::None
        );
        assert_ne!(p.version(), Policy::default().version());
    }
}
