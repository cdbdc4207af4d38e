//! Which remediation actions the host may take on an integration's risky files.
//!
//! Remediation changes the customer's system (it replaces a file, removes a share link, moves a
//! file to quarantine), so it has two sides, like every grant: the plugin declares the actions
//! it can perform (contract 0.2's `remediations`), and the operator enables some of them per
//! integration with a [`RemediationPolicy`]. The host acts only on the intersection.
//!
//! Threats: an operator's typo (an action name that does not exist, a label action without a
//! label) is refused when the policy is set, with a message naming the field; a plugin is never
//! asked for an action it did not declare, because [`RemediationPolicy::check_declared`] refuses
//! such a policy and the host filters again before every call.
//!
//! Defaults fail safe: no actions, minimum risk `high`, no delay, and **simulation on**, so a
//! policy that only names actions reports what it would do and changes nothing until the
//! operator turns simulation off (the "count-only first" habit of our other restrictions).
//!
//! What it does not do: decide *when* (the host runs due actions after each sync) or remember
//! what was done (the store's record of intents and outcomes does, so nothing is done twice).
//!
//! | JSON key | type | default | meaning |
//! |---|---|---|---|
//! | `actions` | list of `replace-with-sanitised`, `restrict-sharing`, `apply-label`, `quarantine`, `notify-owner` | `[]` | what to do |
//! | `min_risk` | `low`, `medium`, `high`, `critical` | `high` | act on files at this risk or above |
//! | `delay_secs` | whole seconds | `0` | wait this long after the analysis before acting |
//! | `simulate` | bool | `true` | only report what would be done |
//! | `label` | string | none | the label for `apply-label` (required with it) |
//!
//! ```
//! use proofpix_model::{RemediationKind, RiskLevel};
//! use proofpix_policy::remediation::RemediationPolicy;
//!
//! let p = RemediationPolicy::from_json(r#"{"actions": ["quarantine"], "min_risk": "critical"}"#)?;
//! assert_eq!(p.actions, [RemediationKind::Quarantine]);
//! assert!(p.simulate, "simulation is on unless turned off");
//! assert!(p.applies_to(RiskLevel::Critical) && !p.applies_to(RiskLevel::High));
//! # Ok::<(), proofpix_policy::remediation::RemediationPolicyError>(())
//! ```

use proofpix_model::{RemediationKind, RiskLevel};
use serde::{Deserialize, Serialize};

/// Longest label accepted for `apply-label`; platform labels are short.
pub const MAX_LABEL_CHARS: usize = 128;
/// Longest delay accepted: 30 days. A longer one is almost certainly a unit mistake.
pub const MAX_DELAY_SECS: u64 = 30 * 24 * 3600;

/// An operator's remediation settings for one integration (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationPolicy {
    /// The actions enabled, each at most once.
    #[serde(default)]
    pub actions: Vec<RemediationKind>,
    /// Act on files at this risk level or above.
    #[serde(default = "default_min_risk")]
    pub min_risk: RiskLevel,
    /// Seconds to wait after a file's analysis before acting (0: at the end of the sync).
    #[serde(default)]
    pub delay_secs: u64,
    /// Only report what would be done.
    #[serde(default = "default_simulate")]
    pub simulate: bool,
    /// The label `apply-label` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

fn default_min_risk() -> RiskLevel {
    RiskLevel::High
}

fn default_simulate() -> bool {
    true
}

impl Default for RemediationPolicy {
    fn default() -> Self {
        RemediationPolicy {
            actions: Vec::new(),
            min_risk: default_min_risk(),
            delay_secs: 0,
            simulate: default_simulate(),
            label: None,
        }
    }
}

/// Why a remediation policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemediationPolicyError {
    /// Not JSON of the policy's shape.
    #[error("the remediation policy is invalid: {0}")]
    Parse(String),
    /// A field holds a value outside its range.
    #[error("remediation {field}: {problem}")]
    Field {
        /// The field to fix.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The plugin does not declare an enabled action.
    #[error(
        "remediation action {action} is not offered by plugin {plugin} (it offers: {offered}); remove it from the policy"
    )]
    NotDeclared {
        /// The action.
        action: RemediationKind,
        /// The plugin id.
        plugin: String,
        /// What the plugin declares, comma-separated, or `none`.
        offered: String,
    },
}

impl RemediationPolicy {
    /// Parses and validates a policy from JSON.
    ///
    /// # Errors
    /// [`RemediationPolicyError::Parse`] for JSON of another shape (unknown keys included),
    /// and the errors of [`RemediationPolicy::validate`].
    pub fn from_json(json: &str) -> Result<Self, RemediationPolicyError> {
        let p: RemediationPolicy =
            serde_json::from_str(json).map_err(|e| RemediationPolicyError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// The policy as JSON (the form [`RemediationPolicy::from_json`] reads).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the values: no action twice, a label with `apply-label` (and only a short one),
    /// a delay of at most [`MAX_DELAY_SECS`], a threshold above `none`.
    ///
    /// # Errors
    /// [`RemediationPolicyError::Field`] naming the field.
    pub fn validate(&self) -> Result<(), RemediationPolicyError> {
        let field = |field, problem: String| RemediationPolicyError::Field { field, problem };
        for (i, a) in self.actions.iter().enumerate() {
            if self.actions.iter().skip(i + 1).any(|b| b == a) {
                return Err(field("actions", format!("{a} is listed twice")));
            }
        }
        if self.min_risk == RiskLevel::None {
            return Err(field(
                "min_risk",
                "must be low, medium, high or critical; `none` would act on every file".into(),
            ));
        }
        if self.delay_secs > MAX_DELAY_SECS {
            return Err(field(
                "delay_secs",
                format!(
                    "{} seconds is more than the {MAX_DELAY_SECS} (30 days) allowed",
                    self.delay_secs
                ),
            ));
        }
        let label = self.label.as_deref().map(str::trim).unwrap_or_default();
        if self.actions.contains(&RemediationKind::ApplyLabel) && label.is_empty() {
            return Err(field(
                "label",
                "apply-label needs the label to apply".into(),
            ));
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(field(
                "label",
                format!("longer than {MAX_LABEL_CHARS} characters"),
            ));
        }
        Ok(())
    }

    /// Checks every enabled action is one the plugin declares.
    ///
    /// # Errors
    /// [`RemediationPolicyError::NotDeclared`] for the first action that is not.
    pub fn check_declared(
        &self,
        plugin: &str,
        declared: &[RemediationKind],
    ) -> Result<(), RemediationPolicyError> {
        match self.actions.iter().find(|a| !declared.contains(a)) {
            None => Ok(()),
            Some(a) => Err(RemediationPolicyError::NotDeclared {
                action: *a,
                plugin: plugin.to_string(),
                offered: if declared.is_empty() {
                    "none".into()
                } else {
                    declared
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
        }
    }

    /// Whether a file at risk `level` is at or above the policy's threshold.
    pub fn applies_to(&self, level: RiskLevel) -> bool {
        level != RiskLevel::None && level >= self.min_risk
    }

    /// The enabled actions that the plugin also declares, in the order they run.
    pub fn effective(&self, declared: &[RemediationKind]) -> Vec<RemediationKind> {
        RemediationKind::ALL
            .into_iter()
            .filter(|a| self.actions.contains(a) && declared.contains(a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row: JSON in, and the error text an operator sees (or none).
    #[test]
    fn policies_are_validated_with_messages_naming_the_field() {
        let cases: &[(&str, Option<&str>)] = &[
            ("{}", None),
            (r#"{"actions": ["quarantine", "notify-owner"]}"#, None),
            (
                r#"{"actions": ["apply-label"], "label": "Confidential"}"#,
                None,
            ),
            (
                r#"{"actions": ["apply-label"]}"#,
                Some("remediation label: apply-label needs the label to apply"),
            ),
            (
                r#"{"actions": ["quarantine", "quarantine"]}"#,
                Some("remediation actions: quarantine is listed twice"),
            ),
            (
                r#"{"min_risk": "none"}"#,
                Some(
                    "remediation min_risk: must be low, medium, high or critical; `none` would act on every file",
                ),
            ),
            (
                r#"{"delay_secs": 99999999}"#,
                Some(
                    "remediation delay_secs: 99999999 seconds is more than the 2592000 (30 days) allowed",
                ),
            ),
        ];
        for (json, want) in cases {
            let got = RemediationPolicy::from_json(json)
                .err()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), *want, "{json}");
        }
    }

    /// A typo in an action name or key must not silently mean "no remediation".
    #[test]
    fn unknown_actions_and_keys_are_refused() {
        for json in [r#"{"actions": ["delete"]}"#, r#"{"simulation": false}"#] {
            assert!(
                matches!(
                    RemediationPolicy::from_json(json),
                    Err(RemediationPolicyError::Parse(_))
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn simulation_is_on_and_the_threshold_high_by_default() {
        let p = RemediationPolicy::from_json(r#"{"actions": ["quarantine"]}"#).unwrap_or_default();
        assert!(p.simulate);
        assert_eq!(p.min_risk, RiskLevel::High);
        assert!(p.applies_to(RiskLevel::Critical));
        assert!(p.applies_to(RiskLevel::High));
        assert!(!p.applies_to(RiskLevel::Medium));
        assert!(!p.applies_to(RiskLevel::None));
    }

    /// The plugin's declaration is the other side of the grant.
    #[test]
    fn an_action_the_plugin_does_not_declare_is_refused_and_never_effective() {
        let p = RemediationPolicy {
            actions: vec![
                RemediationKind::Quarantine,
                RemediationKind::ReplaceWithSanitised,
            ],
            ..RemediationPolicy::default()
        };
        let declared = [RemediationKind::ReplaceWithSanitised];
        assert_eq!(
            p.check_declared("box", &declared)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "remediation action quarantine is not offered by plugin box (it offers: replace-with-sanitised); remove it from the policy"
            )
        );
        assert_eq!(
            p.effective(&declared),
            [RemediationKind::ReplaceWithSanitised]
        );
        assert!(p.effective(&[]).is_empty());
    }

    #[test]
    fn policies_round_trip_through_json() {
        let p = RemediationPolicy {
            actions: vec![RemediationKind::ApplyLabel],
            min_risk: RiskLevel::Medium,
            delay_secs: 60,
            simulate: false,
            label: Some("PII".into()),
        };
        assert_eq!(RemediationPolicy::from_json(&p.to_json()), Ok(p));
    }
}
