//! The risk level: the one scale findings, files, stored results and thresholds are measured in.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How risky a finding, or a whole file, is; ordered `none < low < medium < high < critical`.
///
/// It serialises as its lowercase name in every format (JSON, and the store's postcard rows
/// too), so a field that held the name as a string holds this type with the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RiskLevel {
    /// Nothing to report (also: a policy's way to hide a finding). Never a threshold: an
    /// operator's `min_risk` of `none` would match every file.
    #[default]
    None,
    /// Device and software fingerprints, copyright.
    Low,
    /// Linkable identifiers: serials, unique ids, exact timestamps, place names, history.
    Medium,
    /// Precise location, named people, creator contact details, hidden images.
    High,
    /// A precise location together with a named person, or recoverable hidden pixels.
    Critical,
}

impl RiskLevel {
    /// Every level, lowest first.
    pub const ALL: [RiskLevel; 5] = [
        RiskLevel::None,
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::Critical,
    ];

    /// The lowercase name used in JSON, policy files and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a level's lowercase name; `None` for any other word, so callers say what to
    /// fix (there is no silent fallback). Exact, as the API's schema documents it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == s)
    }

    /// Parses a name as the host's own records hold it: the lowercase name, or the
    /// capitalised one (`High`) that builds before this type wrote where they stored the
    /// contract's generated type with serde. Only for reading such records back
    /// ([`deserialize_stored`]); requests and policies take [`RiskLevel::parse`].
    pub fn parse_stored(s: &str) -> Option<Self> {
        Self::parse(s).or_else(|| {
            Self::ALL.into_iter().find(|level| {
                let name = level.as_str();
                s.len() == name.len()
                    && s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.eq_ignore_ascii_case(name)
            })
        })
    }

    /// The level's position, `none` = 0 to `critical` = 4 (for sorting in stores and SQL).
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a word that names no risk level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRiskLevel(pub String);

impl fmt::Display for UnknownRiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The word may come from a plugin or a request: show it escaped and bounded.
        let shown: String = self.0.chars().take(40).collect();
        write!(
            f,
            "unknown risk level {shown:?}: use none, low, medium, high or critical"
        )
    }
}

impl std::error::Error for UnknownRiskLevel {}

impl FromStr for RiskLevel {
    type Err = UnknownRiskLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownRiskLevel(s.to_owned()))
    }
}

impl Serialize for RiskLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RiskLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = RiskLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of none, low, medium, high, critical")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RiskLevel, E> {
                RiskLevel::parse(v).ok_or_else(|| {
                    E::invalid_value(
                        de::Unexpected::Str(v),
                        &"none, low, medium, high or critical",
                    )
                })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// Reads a risk level from a record the host stored itself, with [`RiskLevel::parse_stored`]:
/// for `#[serde(deserialize_with = "proofpix_model::deserialize_stored")]` on such fields.
///
/// # Errors
/// A word that names no level.
pub fn deserialize_stored<'de, D: Deserializer<'de>>(d: D) -> Result<RiskLevel, D::Error> {
    let word = String::deserialize(d)?;
    RiskLevel::parse_stored(&word).ok_or_else(|| {
        de::Error::invalid_value(
            de::Unexpected::Str(&word),
            &"none, low, medium, high or critical",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_follows_severity() {
        for (i, level) in RiskLevel::ALL.into_iter().enumerate() {
            assert_eq!(RiskLevel::parse(level.as_str()), Some(level));
            assert_eq!(level.to_string().parse::<RiskLevel>(), Ok(level));
            assert_eq!(usize::from(level.rank()), i);
        }
        assert!(RiskLevel::None < RiskLevel::Low && RiskLevel::High < RiskLevel::Critical);
        assert_eq!(
            RiskLevel::parse("High"),
            None,
            "names are exact, as the API documents"
        );
    }

    #[test]
    fn an_unknown_word_is_an_error_that_says_what_to_use() {
        assert_eq!(RiskLevel::parse("severe"), None);
        let err = "severe".parse::<RiskLevel>().unwrap_err().to_string();
        assert!(err.contains("\"severe\"") && err.contains("none, low, medium, high or critical"));
        let json = serde_json::from_str::<RiskLevel>("\"severe\"").unwrap_err();
        assert!(
            json.to_string()
                .contains("none, low, medium, high or critical"),
            "{json}"
        );
        // A hostile word is shown bounded and escaped.
        let long = format!("{}\n", "x".repeat(500));
        let shown = long.parse::<RiskLevel>().unwrap_err().to_string();
        assert!(shown.len() < 120 && !shown.contains('\n'), "{shown}");
    }

    #[test]
    fn it_serialises_as_the_name_in_json_and_in_postcard() {
        assert_eq!(
            serde_json::to_string(&RiskLevel::Critical).unwrap(),
            "\"critical\""
        );
        // The store's rows held the name as a `String`: the typed field keeps their bytes.
        let typed = postcard::to_allocvec(&RiskLevel::Medium).unwrap();
        assert_eq!(typed, postcard::to_allocvec(&"medium".to_owned()).unwrap());
        let back: RiskLevel = postcard::from_bytes(&typed).unwrap();
        assert_eq!(back, RiskLevel::Medium);
        let old_row = postcard::to_allocvec("high").unwrap();
        assert_eq!(
            postcard::from_bytes::<RiskLevel>(&old_row).unwrap(),
            RiskLevel::High
        );
    }

    #[test]
    fn a_stored_record_may_spell_the_level_capitalised_a_request_may_not() {
        for level in RiskLevel::ALL {
            let mut capital = level.as_str().to_owned();
            capital[..1].make_ascii_uppercase();
            assert_eq!(RiskLevel::parse_stored(&capital), Some(level));
            assert_eq!(RiskLevel::parse_stored(level.as_str()), Some(level));
            assert_eq!(RiskLevel::parse(&capital), None);
        }
        assert_eq!(RiskLevel::parse_stored("HIGH"), Some(RiskLevel::High));
        assert_eq!(RiskLevel::parse_stored("hIGH"), None);
        assert_eq!(RiskLevel::parse_stored("Severe"), None);

        #[derive(Deserialize)]
        struct Row {
            #[serde(deserialize_with = "deserialize_stored")]
            risk: RiskLevel,
        }
        let old: Row = serde_json::from_str(r#"{"risk":"Critical"}"#).unwrap();
        assert_eq!(old.risk, RiskLevel::Critical);
        assert!(serde_json::from_str::<Row>(r#"{"risk":"Severe"}"#).is_err());
    }
}
