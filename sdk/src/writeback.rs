//! Write-back across the host's retries: a memo of what was already final, and the outcomes.
//!
//! A plugin cannot wait. When a platform throttles a write (429), fails transiently or refuses
//! the token halfway through a `write-back` call, the plugin fails the whole call and the host
//! retries it after the Retry-After, with the same results; it never retries one file. Without a
//! memory, the retry would write the files that already succeeded a second time (a second
//! comment, a second record, a doubled request budget).
//!
//! [`WriteMemo`] is that memory, kept in the plugin's [`crate::state`] under [`MEMO_KEY`]: for
//! each file whose outcome was final (written, gone, refused for good), a [`digest`] of the exact
//! write and the outcome. On the retry, a file with the same digest is answered from the memo
//! without a request; a file whose write changed (a newer analysis) is written again. An entry
//! is used for one retry: the memo saved when a call stops holds only that call's final
//! outcomes, and a call that finishes deletes it.
//!
//! ```no_run
//! use proofpix_sdk::prelude::*;
//! use proofpix_sdk::writeback::{self, WriteMemo};
//!
//! fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
//!     let memo = WriteMemo::load();
//!     let mut outcomes: Vec<Option<Result<(), PluginError>>> = vec![None; results.len()];
//!     let mut digests = Vec::new();
//!     let mut stop = None;
//!     for (i, r) in results.iter().enumerate() {
//!         let digest = writeback::digest(format!("{}|{}|{}", r.file.id, r.risk.label(), r.score));
//!         digests.push(digest.clone());
//!         if let Some(done) = memo.recall(&r.file.id, &digest) {
//!             outcomes[i] = Some(done);
//!             continue;
//!         }
//!         if stop.is_some() {
//!             continue;
//!         }
//!         match write_one(r) {
//!             Ok(()) => outcomes[i] = Some(Ok(())),
//!             Err(e @ (PluginError::RateLimited(_) | PluginError::Transient(_))) => stop = Some(e),
//!             Err(e) => outcomes[i] = Some(Err(e)),
//!         }
//!     }
//!     if let Some(e) = stop {
//!         let ids = results.iter().map(|r| r.file.id.as_str());
//!         WriteMemo::of(ids.zip(&digests).zip(&outcomes)).save()?;
//!         return Err(e);
//!     }
//!     WriteMemo::clear();
//!     Ok(writeback::outcomes(results, outcomes))
//! }
//! # fn write_one(_: &FileResult) -> Result<(), PluginError> { Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{FileResult, PluginError, WriteOutcome, WriteResult, state};

/// The [`crate::state`] key the memo is kept under.
pub const MEMO_KEY: &str = "write-back-memo";

/// A final outcome, as remembered. The variant names are the stored form: renaming one would
/// make memos written by an earlier version unreadable (they then read as empty, and the retry
/// writes again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Remembered {
    Written,
    NotFound(String),
    InvalidConfig(Option<String>, String),
    Fatal(String),
}

impl Remembered {
    /// `None` for an outcome that is not final: a retry may turn out differently.
    fn of(outcome: &Result<(), PluginError>) -> Option<Self> {
        match outcome {
            Ok(()) => Some(Remembered::Written),
            Err(PluginError::NotFound(m)) => Some(Remembered::NotFound(m.clone())),
            Err(PluginError::InvalidConfig(p)) => Some(Remembered::InvalidConfig(
                p.field.clone(),
                p.message.clone(),
            )),
            Err(PluginError::Fatal(m)) => Some(Remembered::Fatal(m.clone())),
            Err(_) => None,
        }
    }

    fn outcome(&self) -> Result<(), PluginError> {
        match self {
            Remembered::Written => Ok(()),
            Remembered::NotFound(m) => Err(PluginError::not_found(m.clone())),
            Remembered::InvalidConfig(f, m) => {
                Err(PluginError::invalid_config(f.as_deref(), m.clone()))
            }
            Remembered::Fatal(m) => Err(PluginError::fatal(m.clone())),
        }
    }
}

/// The final write-back outcomes of a call that stopped, kept for the host's retry of it.
///
/// Final outcomes are `Ok(())` (written), `not-found`, `invalid-config` and `fatal`; throttling,
/// transient failures, refused tokens and egress refusals are not remembered, so the retry
/// tries those files again.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteMemo {
    /// file id → (digest of the write, outcome).
    done: BTreeMap<String, (String, Remembered)>,
}

impl WriteMemo {
    /// The memo the previous call saved, or an empty one (none saved, or one that no longer
    /// parses).
    pub fn load() -> Self {
        state::get_json(MEMO_KEY).unwrap_or_default()
    }

    /// Stores the memo for the retry.
    ///
    /// # Errors
    /// The host refused the state write (over its size cap): the caller should fail the call
    /// with it, as the retry would otherwise write the remembered files again.
    pub fn save(&self) -> Result<(), PluginError> {
        state::set_json(MEMO_KEY, self)
    }

    /// Deletes the stored memo: the call finished, nothing is left to retry.
    pub fn clear() {
        state::delete(MEMO_KEY)
    }

    /// The remembered outcome of `file_id`, if the memo holds one for exactly this `digest`.
    pub fn recall(&self, file_id: &str, digest: &str) -> Option<Result<(), PluginError>> {
        match self.done.get(file_id) {
            Some((d, remembered)) if d == digest => Some(remembered.outcome()),
            _ => None,
        }
    }

    /// The digest remembered for `file_id`, whatever its outcome.
    pub fn digest_of(&self, file_id: &str) -> Option<&str> {
        self.done.get(file_id).map(|(d, _)| d.as_str())
    }

    /// Remembers `outcome` of the write `digest` to `file_id` when it is final; returns whether
    /// it was.
    pub fn remember(
        &mut self,
        file_id: &str,
        digest: &str,
        outcome: &Result<(), PluginError>,
    ) -> bool {
        match Remembered::of(outcome) {
            Some(r) => {
                self.done
                    .insert(file_id.to_string(), (digest.to_string(), r));
                true
            }
            None => false,
        }
    }

    /// A memo of the final outcomes among `((file id, digest), outcome)`; files with no outcome
    /// yet (`None`) or one that is not final are left out.
    pub fn of<'a, I, S, D>(entries: I) -> Self
    where
        I: IntoIterator<Item = ((S, D), &'a Option<Result<(), PluginError>>)>,
        S: AsRef<str>,
        D: AsRef<str>,
    {
        let mut memo = WriteMemo::default();
        for ((file_id, digest), outcome) in entries {
            if let Some(outcome) = outcome {
                memo.remember(file_id.as_ref(), digest.as_ref(), outcome);
            }
        }
        memo
    }

    /// How many outcomes the memo holds.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether the memo holds no outcome.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// A short, stable digest of `data`: 16 hex digits of 64-bit FNV-1a. Enough to notice that a
/// write or a configuration changed; not a cryptographic hash (nothing secret depends on it).
///
/// # Examples
///
/// ```
/// use proofpix_sdk::writeback::digest;
///
/// assert_eq!(digest(""), "cbf29ce484222325");
/// assert_ne!(digest("a|High"), digest("a|Low"));
/// ```
pub fn digest(data: impl AsRef<[u8]>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.as_ref() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Every result skipped with the same `reason`, such as write-back turned off in the settings.
pub fn skip_all(results: Vec<FileResult>, reason: &str) -> Vec<WriteOutcome> {
    results
        .into_iter()
        .map(|r| WriteOutcome::skipped(r.file.id, reason))
        .collect()
}

/// The reason [`skip_all`] gives when the integration's `field` (a boolean setting such as
/// `write_back`) turned write-back off.
pub fn off_in_settings(field: &str) -> String {
    format!("write-back is off in the integration's settings ({field})")
}

/// The call's outcomes, one per result in order: `Ok(())` as written, an error as that file's
/// failure. A result with no outcome counts as written, so call this only when every write was
/// answered (or answered from the memo).
pub fn outcomes(
    results: Vec<FileResult>,
    outcomes: Vec<Option<Result<(), PluginError>>>,
) -> Vec<WriteOutcome> {
    results
        .into_iter()
        .zip(outcomes)
        .map(|(r, o)| WriteOutcome {
            file_id: r.file.id,
            outcome: o.unwrap_or(Ok(())).map(|()| WriteResult::Written),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Final outcomes come back exactly as they went in; passing ones are not remembered.
    #[test]
    fn final_outcomes_round_trip_and_passing_ones_are_not_remembered() {
        let mut memo = WriteMemo::default();
        for (i, o) in [
            Ok(()),
            Err(PluginError::not_found("gone")),
            Err(PluginError::invalid_config(Some("x"), "m")),
            Err(PluginError::invalid_config(None, "m")),
            Err(PluginError::fatal("f")),
        ]
        .into_iter()
        .enumerate()
        {
            let id = format!("f{i}");
            assert!(memo.remember(&id, "d", &o), "{o:?}");
            assert_eq!(
                format!("{:?}", memo.recall(&id, "d")),
                format!("{:?}", Some(o))
            );
        }
        for o in [
            Err(PluginError::transient("t")),
            Err(PluginError::rate_limited(Some(1), "r")),
            Err(PluginError::unauthorized("u")),
            Err(PluginError::egress_refused("https://x", "no")),
        ] {
            assert!(!memo.remember("g", "d", &o), "{o:?}");
        }
        assert_eq!(memo.recall("g", "d").map(|_| ()), None);
        assert_eq!(memo.len(), 5);
    }

    /// A different write to the same file (a newer analysis) is not answered from the memo.
    #[test]
    fn a_changed_write_is_not_answered_from_the_memo() {
        let mut memo = WriteMemo::default();
        memo.remember("f", &digest("f|High"), &Ok(()));
        assert!(memo.recall("f", &digest("f|High")).is_some());
        assert!(memo.recall("f", &digest("f|Low")).is_none());
        assert!(memo.recall("other", &digest("f|High")).is_none());
        assert_eq!(memo.digest_of("f"), Some(digest("f|High").as_str()));
    }

    /// The stored form is the one earlier plugin versions wrote, so an upgrade between a stop
    /// and its retry still answers from the memo.
    #[test]
    fn the_stored_form_reads_memos_written_before_the_sdk_kept_them() {
        let stored = r#"{"done":{"a":["0011","Written"],"b":["0022",{"NotFound":"gone"}],"c":["0033",{"InvalidConfig":["template_key","no template"]}],"d":["0044",{"Fatal":"no"}]}}"#;
        let memo: WriteMemo = serde_json::from_str(stored).unwrap();
        assert!(matches!(memo.recall("a", "0011"), Some(Ok(()))));
        assert!(matches!(
            memo.recall("c", "0033"),
            Some(Err(PluginError::InvalidConfig(p))) if p.field.as_deref() == Some("template_key")
        ));
        assert_eq!(serde_json::to_string(&memo).unwrap(), stored);
    }

    /// `of` keeps final outcomes only and skips files with no answer yet, including an empty call.
    #[test]
    fn a_memo_of_a_stopped_call_keeps_its_final_outcomes_only() {
        let ids = ["a", "b", "c"];
        let digests = ["1".to_string(), "2".to_string(), "3".to_string()];
        let outcomes = [Some(Ok(())), None, Some(Err(PluginError::transient("t")))];
        let memo = WriteMemo::of(ids.iter().zip(&digests).zip(&outcomes));
        assert_eq!(memo.len(), 1);
        assert!(memo.recall("a", "1").is_some());
        let none: [Option<Result<(), PluginError>>; 0] = [];
        let empty = WriteMemo::of(ids.iter().zip(&digests).zip(&none));
        assert!(empty.is_empty());
    }

    /// FNV-1a's published test vectors.
    #[test]
    fn the_digest_is_fnv1a_64() {
        assert_eq!(digest(""), "cbf29ce484222325");
        assert_eq!(digest("a"), "af63dc4c8601ec8c");
        assert_eq!(digest("foobar"), "85944171f73967e8");
    }

    /// Skipped and final outcomes in the order of the results.
    #[test]
    fn outcomes_follow_the_results() {
        let r = |id: &str| FileResult {
            file: crate::RemoteFile {
                id: id.into(),
                ..crate::RemoteFile::default()
            },
            format: String::new(),
            risk: crate::RiskLevel::None,
            score: 0,
            findings: vec![],
            summary: String::new(),
            error: None,
            analysed_at: String::new(),
            policy_version: String::new(),
        };
        let out = outcomes(
            vec![r("a"), r("b")],
            vec![Some(Ok(())), Some(Err(PluginError::not_found("gone")))],
        );
        assert!(matches!(out[0].outcome, Ok(WriteResult::Written)));
        assert!(matches!(out[1].outcome, Err(PluginError::NotFound(_))));
        let skipped = skip_all(vec![r("a")], &off_in_settings("write_back"));
        assert!(matches!(
            &skipped[0].outcome,
            Ok(WriteResult::Skipped(why)) if why == "write-back is off in the integration's settings (write_back)"
        ));
        assert!(skip_all(vec![], "x").is_empty());
    }
}
