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
//! [`WriteBatch`] is the usual way in: it loads the memo, answers from it, collects the call's
//! answers and saves or clears the memo (its documentation has a whole `write_back`). Use
//! [`WriteMemo`] directly when a call's shape does not fit.

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

    /// How many outcomes the memo holds.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether the memo holds no outcome.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// One `write-back` call's outcomes, answered from the [`WriteMemo`] where the call before it
/// (the one the host is retrying) already got a final answer.
///
/// Start it with the call's results, tell it each result's [`digest`] before writing
/// ([`WriteBatch::recall`] answers it from the memo when it can), record each answer with
/// [`WriteBatch::done`], then either [`WriteBatch::save`] and fail the call (something must be
/// sent again) or [`WriteBatch::finish`].
///
/// ```no_run
/// use proofpix_sdk::prelude::*;
/// use proofpix_sdk::writeback::{self, WriteBatch};
///
/// fn write_back(results: Vec<FileResult>) -> Result<Vec<WriteOutcome>, PluginError> {
///     let mut batch = WriteBatch::start(&results);
///     let mut stop = None;
///     for (i, r) in results.iter().enumerate() {
///         let value = format!("{}|{}", r.risk.label(), r.score);
///         if batch.recall(i, writeback::digest(format!("{}|{value}", r.file.id))) || stop.is_some() {
///             continue;
///         }
///         match write_one(r, &value) {
///             Err(e @ (PluginError::RateLimited(_) | PluginError::Transient(_))) => stop = Some(e),
///             outcome => batch.done(i, outcome),
///         }
///     }
///     if let Some(e) = stop {
///         batch.save()?;
///         return Err(e);
///     }
///     Ok(batch.finish(results))
/// }
/// # fn write_one(_: &FileResult, _: &str) -> Result<(), PluginError> { Ok(()) }
/// ```
#[derive(Debug)]
pub struct WriteBatch {
    memo: WriteMemo,
    ids: Vec<String>,
    digests: Vec<Option<String>>,
    outcomes: Vec<Option<Result<(), PluginError>>>,
}

impl WriteBatch {
    /// A batch for `results`, with the memo the previous call saved.
    pub fn start(results: &[FileResult]) -> Self {
        WriteBatch::with_memo(results, WriteMemo::load())
    }

    /// A batch for `results` with the given memo (for tests, and plugins that keep their own).
    pub fn with_memo(results: &[FileResult], memo: WriteMemo) -> Self {
        WriteBatch {
            memo,
            ids: results.iter().map(|r| r.file.id.clone()).collect(),
            digests: vec![None; results.len()],
            outcomes: vec![None; results.len()],
        }
    }

    /// Notes the digest of result `index`'s write. When the previous call got a final answer to
    /// exactly this write, that answer becomes the outcome and this returns `true`: do not send
    /// it again.
    pub fn recall(&mut self, index: usize, digest: String) -> bool {
        let Some(id) = self.ids.get(index) else {
            return false;
        };
        let remembered = self.memo.recall(id, &digest);
        if let Some(slot) = self.digests.get_mut(index) {
            *slot = Some(digest);
        }
        match (remembered, self.outcomes.get_mut(index)) {
            (Some(outcome), Some(slot)) => {
                *slot = Some(outcome);
                true
            }
            _ => false,
        }
    }

    /// Records result `index`'s answer. Only final ones are remembered if the call stops; a
    /// result answered without a write (no digest, such as a file with no platform id) is not.
    pub fn done(&mut self, index: usize, outcome: Result<(), PluginError>) {
        if let Some(slot) = self.outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    /// Result `index`'s answer so far.
    pub fn outcome(&self, index: usize) -> Option<&Result<(), PluginError>> {
        self.outcomes.get(index).and_then(Option::as_ref)
    }

    /// How many results have no answer yet.
    pub fn unanswered(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_none()).count()
    }

    /// Saves the final answers of this call (those from the memo included) for the host's
    /// retry, replacing the previous memo.
    ///
    /// # Errors
    /// The host refused the state write; fail the call with it.
    pub fn save(&self) -> Result<(), PluginError> {
        self.to_memo().save()
    }

    /// The memo [`WriteBatch::save`] stores.
    fn to_memo(&self) -> WriteMemo {
        let mut memo = WriteMemo::default();
        for ((id, digest), outcome) in self.ids.iter().zip(&self.digests).zip(&self.outcomes) {
            if let (Some(digest), Some(outcome)) = (digest, outcome) {
                memo.remember(id, digest, outcome);
            }
        }
        memo
    }

    /// The call is over: deletes the memo and gives the outcomes in the order of `results`
    /// (the same results the batch started with). A result with no answer counts as written,
    /// so finish only when [`WriteBatch::unanswered`] is 0.
    pub fn finish(self, results: Vec<FileResult>) -> Vec<WriteOutcome> {
        WriteMemo::clear();
        outcomes(results, self.outcomes)
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

/// Every result skipped because the integration's `field` (a boolean setting such as
/// `write_back`) turned write-back off: "write-back is off in the integration's settings
/// (write_back)".
pub fn turned_off(results: Vec<FileResult>, field: &str) -> Vec<WriteOutcome> {
    skip_all(
        results,
        &format!("write-back is off in the integration's settings ({field})"),
    )
}

/// The call's outcomes, one per result in order: `Ok(())` as written, an error as that file's
/// failure, none as written.
fn outcomes(
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

    fn result(id: &str) -> FileResult {
        FileResult {
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
        }
    }

    /// A retried call: the file written before is answered from the memo, the file whose write
    /// changed and the file throttled last time are sent, and what is saved on a second stop
    /// holds every final answer of this call, recalled ones included.
    #[test]
    fn a_batch_answers_from_the_memo_and_saves_what_is_final() {
        let mut memo = WriteMemo::default();
        memo.remember("a", "da", &Ok(()));
        memo.remember("b", "old", &Ok(()));
        memo.remember("gone", "dg", &Ok(()));
        let results = [result("a"), result("b"), result("c"), result("d")];
        let mut batch = WriteBatch::with_memo(&results, memo);
        assert!(batch.recall(0, "da".into()));
        assert!(!batch.recall(1, "new".into()));
        assert!(!batch.recall(2, "dc".into()));
        assert!(!batch.recall(9, "x".into()), "an index past the results");
        batch.done(1, Err(PluginError::not_found("b is gone")));
        batch.done(3, Err(PluginError::fatal("no id")));
        assert_eq!(batch.unanswered(), 1);
        assert!(matches!(batch.outcome(0), Some(Ok(()))));
        assert!(batch.outcome(2).is_none());
        let saved = batch.to_memo();
        assert!(
            saved.recall("a", "da").is_some(),
            "recalled, kept for the next retry"
        );
        assert!(matches!(
            saved.recall("b", "new"),
            Some(Err(PluginError::NotFound(_)))
        ));
        assert!(
            saved.recall("gone", "dg").is_none(),
            "not in this call: dropped"
        );
        assert!(
            !format!("{saved:?}").contains("no id"),
            "answered without a write: not kept"
        );
        assert_eq!(saved.len(), 2);
    }

    /// An empty call has nothing to answer and nothing to save.
    #[test]
    fn an_empty_batch_is_answered() {
        let batch = WriteBatch::with_memo(&[], WriteMemo::default());
        assert_eq!(batch.unanswered(), 0);
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
        let out = outcomes(
            vec![result("a"), result("b")],
            vec![Some(Ok(())), Some(Err(PluginError::not_found("gone")))],
        );
        assert!(matches!(out[0].outcome, Ok(WriteResult::Written)));
        assert!(matches!(out[1].outcome, Err(PluginError::NotFound(_))));
        let skipped = turned_off(vec![result("a")], "write_back");
        assert!(matches!(
            &skipped[0].outcome,
            Ok(WriteResult::Skipped(why)) if why == "write-back is off in the integration's settings (write_back)"
        ));
        assert!(skip_all(vec![], "x").is_empty());
    }
}
