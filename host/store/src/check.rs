//! The full integrity check behind `proofpix store check`.
//!
//! Three independent layers, each catching what the others cannot:
//!
//! | layer | catches |
//! |---|---|
//! | redb `check_integrity` (xxh3 checksums of every committed page) | any changed byte in a live B-tree page, including ones our records do not look at |
//! | decoding every record, opening every sealed value (AEAD) | altered records; a sealed value altered, moved or under another key |
//! | the audit chain ([`Store::audit_verify`]) and cross-table invariants | edited or removed audit entries; counters that disagree with the rows they count |
//!
//! redb's checksums are not cryptographic: someone who rewrites a page can recompute them.
//! The AEAD tags and the MAC over the audit head are what a deliberate edit cannot forge
//! without the master key.

use std::collections::BTreeMap;

use proofpix_vault::{Aad, Sealed};
use redb::{ReadableTable, ReadableTableMetadata};

use crate::audit::VerifyReport;
use crate::codec::decode;
use crate::idempotency::WritebackRow;
use crate::queue::{ItemState, QueueRow};
use crate::records::{FileRow, TokenRow};
use crate::schema::*;
use crate::store::{open_tokens, secret_aad_field};
use crate::{AnalysisResult, BatchRecord, IntegrationRecord, PluginRecord, Store, StoreError};

/// What [`Store::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityReport {
    /// `false` if redb found damage and repaired it (rolled back to an intact commit).
    pub database_intact: bool,
    /// The audit chain.
    pub audit: VerifyReport,
    /// Records decoded.
    pub records: u64,
    /// Sealed values opened.
    pub sealed_values: u64,
    /// Problems: undecodable records, sealed values that do not open, broken invariants.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    /// Whether everything checked out.
    pub fn is_ok(&self) -> bool {
        self.database_intact && self.audit.is_ok() && self.problems.is_empty()
    }
}

/// Several lines for `proofpix store check`.
impl std::fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.database_intact {
            writeln!(f, "database pages: every checksum verified")?;
        } else {
            writeln!(
                f,
                "database pages: damage found and repaired by rolling back to an intact commit"
            )?;
        }
        writeln!(f, "{}", self.audit)?;
        writeln!(
            f,
            "records: {} decoded, {} sealed values opened",
            self.records, self.sealed_values
        )?;
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        Ok(())
    }
}

impl Store {
    /// Runs every check (see the module docs). Needs exclusive access: no other transaction
    /// may be open on this handle.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when redb finds corruption it cannot repair (that *is* the
    /// finding); other problems are listed in the report.
    pub fn check(&mut self) -> Result<IntegrityReport, StoreError> {
        let database_intact = self.db.check_integrity()?;
        let audit = self.audit_verify()?;
        let mut report = IntegrityReport {
            database_intact,
            audit,
            records: 0,
            sealed_values: 0,
            problems: Vec::new(),
        };
        self.read(|txn| {
            let p = &mut report.problems;
            let mut n = 0u64;
            macro_rules! decode_all {
                ($def:expr, $name:literal, $ty:ty) => {
                    for e in txn.open_table($def)?.iter()? {
                        let (_, v) = e?;
                        n += 1;
                        if let Err(e) = decode::<$ty>($name, v.value()) {
                            p.push(e.to_string());
                        }
                    }
                };
            }
            decode_all!(PLUGINS, "plugins", PluginRecord);
            decode_all!(INTEGRATIONS, "integrations", IntegrationRecord);
            decode_all!(FILES, "files", FileRow);
            decode_all!(RESULTS, "results", AnalysisResult);
            decode_all!(BATCHES, "batches", BatchRecord);
            decode_all!(WRITEBACKS, "writebacks", WritebackRow);

            for e in txn.open_table(SECRETS)?.iter()? {
                let (k, v) = e?;
                let (integration, field) = k.value();
                let aad_field = secret_aad_field(field);
                report.sealed_values += 1;
                if let Err(e) = proofpix_vault::open(
                    &self.key,
                    &Aad::new(integration, &aad_field),
                    &Sealed::from_bytes(v.value().to_vec()),
                ) {
                    p.push(e.to_string());
                }
            }
            for e in txn.open_table(TOKENS)?.iter()? {
                let (k, v) = e?;
                n += 1;
                report.sealed_values += 1;
                let opened = decode::<TokenRow>("tokens", v.value())
                    .and_then(|row| open_tokens(&self.key, k.value(), row));
                if let Err(e) = opened {
                    p.push(e.to_string());
                }
            }

            // Plugin state totals equal the sum of their entries.
            let mut kv: BTreeMap<String, u64> = BTreeMap::new();
            for e in txn.open_table(KV_STATE)?.iter()? {
                let (k, v) = e?;
                let (integration, key) = k.value();
                *kv.entry(integration.to_owned()).or_default() +=
                    (key.len() + v.value().len()) as u64;
            }
            let mut usage: BTreeMap<String, u64> = BTreeMap::new();
            for e in txn.open_table(KV_USAGE)?.iter()? {
                let (k, v) = e?;
                usage.insert(k.value().to_owned(), v.value());
            }
            if kv != usage {
                p.push(format!(
                    "plugin state byte totals {usage:?} disagree with the entries {kv:?}"
                ));
            }

            // Queue counters and indexes agree with the items.
            let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut due = 0u64;
            let mut parked = 0u64;
            let items = txn.open_table(QUEUE_ITEMS)?;
            let due_idx = txn.open_table(QUEUE_DUE)?;
            let parked_idx = txn.open_table(QUEUE_PARKED)?;
            let dedup = txn.open_table(QUEUE_DEDUP)?;
            for e in items.iter()? {
                let (k, v) = e?;
                n += 1;
                let id = k.value();
                let row: QueueRow = match decode("queue_items", v.value()) {
                    Ok(r) => r,
                    Err(e) => {
                        p.push(e.to_string());
                        continue;
                    }
                };
                let c = counts.entry(row.integration.clone()).or_default();
                let integration = row.integration.as_str();
                match row.state {
                    ItemState::Ready | ItemState::Leased => {
                        c.0 += 1;
                        due += 1;
                        if due_idx.get((integration, row.due_ms, id))?.is_none() {
                            p.push(format!(
                                "queue item {id} is pending but not in the due index"
                            ));
                        }
                    }
                    ItemState::Parked => {
                        c.1 += 1;
                        parked += 1;
                        if parked_idx.get((integration, id))?.is_none() {
                            p.push(format!(
                                "queue item {id} is parked but not in the parked index"
                            ));
                        }
                    }
                }
                if dedup
                    .get((integration, row.dedup_key.as_str()))?
                    .map(|v| v.value())
                    != Some(id)
                {
                    p.push(format!("queue item {id} is missing from the dedup index"));
                }
            }
            if due_idx.len()? != due || parked_idx.len()? != parked || dedup.len()? != due + parked
            {
                p.push("the queue indexes hold entries for items that do not exist".into());
            }
            let mut stored_counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for e in txn.open_table(QUEUE_COUNTS)?.iter()? {
                let (k, v) = e?;
                stored_counts.insert(k.value().to_owned(), v.value());
            }
            if stored_counts != counts {
                p.push(format!(
                    "queue depth counters {stored_counts:?} disagree with the items {counts:?}"
                ));
            }
            report.records = n;
            Ok(())
        })?;
        Ok(report)
    }
}
