//! The file inventory: every file of every integration with its latest analysis, searched,
//! filtered, sorted and paged with a keyset cursor; and the purge of what a deleted
//! integration owned (its results and batches).
//!
//! The inventory reads the `files` table and, for each file with a result, that result
//! (`files.last_result` → `results`), in one read transaction. Rows are decoded borrowing from
//! the page (no string is copied unless the row is kept), and a page sorted by risk, name or
//! analysis time keeps only the best `limit` rows in a bounded heap, so a page costs one pass
//! over the files the filters allow and memory for one page. In key order
//! ([`InventorySort::Key`]) a page starts at its cursor and stops after `limit` rows: that is
//! how an export streams any number of rows.
//!
//! Every value here (names, remote ids) comes from a plugin or a scanned file: untrusted,
//! returned as data, never interpreted.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use proofpix_model::RiskLevel;
use redb::ReadableTable;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::codec::{FORMAT_V1, ts};
use crate::schema::{self, BATCHES, FILES, RESULTS};
use crate::{AuditEvent, BatchRecord, FileStatus, Store, StoreError};

/// The order of an inventory page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InventorySort {
    /// Highest risk first (then score, then integration and remote id).
    #[default]
    Risk,
    /// By file name (byte order), then integration and remote id.
    Name,
    /// By the time of the latest analysis, then integration and remote id.
    AnalysedAt,
    /// By integration and remote id: the table's order; pages stop early (exports).
    Key,
}

/// A position in an inventory order: the sort value of the last row of a page plus its
/// identity. Pass it back as `after` for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryCursor {
    /// The sort value: risk rank × 2^32 + score (risk), ms since the epoch (analysed at), 0
    /// (name, key).
    pub number: i64,
    /// The file name (name order), else empty.
    pub text: String,
    /// The integration.
    pub integration: String,
    /// The remote id.
    pub remote_id: String,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct InventoryQuery {
    /// Case-insensitive substring of the name, the remote id (the platform's path or id) or
    /// the integration id.
    pub search: Option<String>,
    /// Only these risk levels; empty: any. A file never analysed has no risk and is left
    /// out when this is set.
    pub risks: Vec<RiskLevel>,
    /// Only files whose latest report has a finding of this category (`gps`, `owner`...).
    pub category: Option<String>,
    /// Only these integrations; empty: all.
    pub integrations: Vec<String>,
    /// Only these pipeline states; empty: any.
    pub statuses: Vec<FileStatus>,
    /// Analysed at or after this time.
    pub analysed_from: Option<OffsetDateTime>,
    /// Analysed before this time.
    pub analysed_to: Option<OffsetDateTime>,
    /// The order.
    pub sort: InventorySort,
    /// Descending (the default for risk and analysis time is up to the caller).
    pub descending: bool,
    /// Rows after this position in the order.
    pub after: Option<InventoryCursor>,
    /// At most this many rows.
    pub limit: usize,
}

/// One row of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    /// The integration.
    pub integration: String,
    /// The remote id.
    pub remote_id: String,
    /// The file name (untrusted).
    pub name: String,
    /// The remote version last seen.
    pub version: String,
    /// Pipeline state.
    pub status: FileStatus,
    /// The last error, if the file failed.
    pub last_error: Option<String>,
    /// When the file record last changed.
    pub updated_at: OffsetDateTime,
    /// The plugin's link to the file (untrusted, any scheme: see [`crate::FileRecord::web_url`]).
    pub web_url: Option<String>,
    /// The latest result id.
    pub result_id: Option<u64>,
    /// The latest risk level.
    pub risk: Option<RiskLevel>,
    /// The latest score.
    pub score: Option<u32>,
    /// When the latest analysis was stored.
    pub analysed_at: Option<OffsetDateTime>,
    /// The finding categories of the latest report, sorted, each once.
    pub categories: Vec<String>,
    /// This row's position, for the next page's `after`.
    pub cursor: InventoryCursor,
}

/// A page of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryPage {
    /// The rows, in order.
    pub rows: Vec<InventoryRow>,
    /// Pass as `after` for the next page; `None` when this page is the last.
    pub next: Option<InventoryCursor>,
    /// Files examined (matched the integration filter) to build the page.
    pub scanned: u64,
}

/// What [`Store::purge_integration_history`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgedHistory {
    /// Analysis results.
    pub results: u64,
    /// Batches.
    pub batches: u64,
}

/// `FileRow`, borrowed (same field order: postcard is positional).
#[derive(Deserialize)]
struct FileRowRef<'a> {
    #[serde(borrow)]
    version: &'a str,
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow)]
    _content_hash: Option<&'a str>,
    last_result: Option<u64>,
    status: FileStatus,
    _attempts: u32,
    #[serde(borrow)]
    last_error: Option<&'a str>,
    #[serde(with = "ts")]
    updated_at: OffsetDateTime,
    #[serde(borrow)]
    web_url: Option<&'a str>,
}

/// `AnalysisResult`, borrowed.
#[derive(Deserialize)]
struct ResultRef<'a> {
    _id: u64,
    #[serde(borrow)]
    integration: &'a str,
    #[serde(borrow)]
    _remote_id: &'a str,
    #[serde(borrow)]
    _file_version: &'a str,
    risk: RiskLevel,
    score: u32,
    #[serde(borrow)]
    report_json: &'a str,
    #[serde(with = "ts")]
    created_at: OffsetDateTime,
}

fn decode_ref<'a, T: Deserialize<'a>>(
    table: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
            table,
            reason: e.to_string(),
        }),
        _ => Err(StoreError::Corrupt {
            table,
            reason: "unknown record format".into(),
        }),
    }
}

/// Case-insensitive substring test; `needle` is already lowercase.
fn contains_folded(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(needle)
}

/// The categories of a report's findings, each once, sorted.
fn categories_of(report_json: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Finding {
        category: String,
    }
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        findings: Vec<Finding>,
    }
    let mut out: Vec<String> = serde_json::from_str::<Report>(report_json)
        .map(|r| r.findings.into_iter().map(|f| f.category).collect())
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// A candidate row's sort key, borrowed.
struct KeyRef<'a> {
    number: i64,
    text: &'a str,
    integration: &'a str,
    remote_id: &'a str,
}

fn cmp_keys(a: &KeyRef<'_>, b: &InventoryCursor) -> Ordering {
    a.number
        .cmp(&b.number)
        .then_with(|| a.text.cmp(b.text.as_str()))
        .then_with(|| a.integration.cmp(b.integration.as_str()))
        .then_with(|| a.remote_id.cmp(b.remote_id.as_str()))
}

fn cmp_cursors(a: &InventoryCursor, b: &InventoryCursor) -> Ordering {
    cmp_keys(
        &KeyRef {
            number: a.number,
            text: &a.text,
            integration: &a.integration,
            remote_id: &a.remote_id,
        },
        b,
    )
}

/// A kept row in the heap, ordered so the heap's top is the row to drop first.
struct Kept {
    row: InventoryRow,
    descending: bool,
}

impl Kept {
    fn order(&self, other: &Self) -> Ordering {
        let o = cmp_cursors(&self.row.cursor, &other.row.cursor);
        if self.descending { o.reverse() } else { o }
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.order(other) == Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order(other)
    }
}

impl Store {
    /// A page of the file inventory (see the module docs).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn inventory(&self, q: &InventoryQuery) -> Result<InventoryPage, StoreError> {
        let limit = q.limit.max(1);
        let needle = q.search.as_deref().map(str::to_lowercase);
        let category = q
            .category
            .as_deref()
            .map(|c| format!("\"category\":\"{c}\""));
        self.read(|txn| self.inventory_in(txn, q, limit, needle, category))
    }

    fn inventory_in(
        &self,
        txn: &redb::ReadTransaction,
        q: &InventoryQuery,
        limit: usize,
        needle: Option<String>,
        category: Option<String>,
    ) -> Result<InventoryPage, StoreError> {
        // Only filters on the analysis and the risk and time orders need each file's result
        // while scanning; otherwise only the page's rows read theirs, at the end.
        let needs_result = !q.risks.is_empty()
            || category.is_some()
            || q.analysed_from.is_some()
            || q.analysed_to.is_some()
            || matches!(q.sort, InventorySort::Risk | InventorySort::AnalysedAt);
        let files = txn.open_table(FILES)?;
        let results = txn.open_table(RESULTS)?;
        let mut heap: BinaryHeap<Kept> = BinaryHeap::with_capacity(limit + 1);
        let mut in_order: Vec<InventoryRow> = Vec::new();
        let mut scanned = 0u64;
        let mut more = false;

        // In key order, start at the cursor (or the first integration asked for).
        let range_start: (String, String) = match (&q.sort, &q.after) {
            (InventorySort::Key, Some(c)) => (c.integration.clone(), c.remote_id.clone()),
            _ => (String::new(), String::new()),
        };
        let mut integrations: Vec<String> = q.integrations.clone();
        integrations.sort();
        integrations.dedup();
        let spans: Vec<(String, Option<String>)> = if integrations.is_empty() {
            vec![(String::new(), None)]
        } else {
            integrations
                .iter()
                .map(|i| (i.clone(), Some(schema::prefix_end(i))))
                .collect()
        };
        'spans: for (first, end) in &spans {
            let start: (&str, &str) = if range_start.0.as_str() > first.as_str()
                || (range_start.0 == *first && !range_start.1.is_empty())
            {
                (range_start.0.as_str(), range_start.1.as_str())
            } else {
                (first.as_str(), "")
            };
            if let Some(end) = end
                && start.0 >= end.as_str()
            {
                continue;
            }
            let iter = match end {
                Some(end) => files.range(start..(end.as_str(), ""))?,
                None => files.range(start..)?,
            };
            for e in iter {
                let (k, v) = e?;
                let (integration, remote_id) = k.value();
                let bytes = v.value();
                scanned += 1;
                let f: FileRowRef<'_> = decode_ref("files", bytes)?;
                if !q.statuses.is_empty() && !q.statuses.contains(&f.status) {
                    continue;
                }
                if let Some(n) = &needle
                    && !(contains_folded(f.name, n)
                        || contains_folded(remote_id, n)
                        || contains_folded(integration, n))
                {
                    continue;
                }
                let result_guard = match f.last_result {
                    Some(id) if needs_result => results.get(id)?,
                    _ => None,
                };
                let result: Option<ResultRef<'_>> = match &result_guard {
                    Some(g) => {
                        let r: ResultRef<'_> = decode_ref("results", g.value())?;
                        // A result left behind by a deleted integration of the same id is not
                        // this file's.
                        (r.integration == integration).then_some(r)
                    }
                    None => None,
                };
                if !q.risks.is_empty()
                    && !result.as_ref().is_some_and(|r| q.risks.contains(&r.risk))
                {
                    continue;
                }
                if let Some(c) = &category
                    && !result
                        .as_ref()
                        .is_some_and(|r| r.report_json.contains(c.as_str()))
                {
                    continue;
                }
                if let Some(from) = q.analysed_from
                    && result.as_ref().is_none_or(|r| r.created_at < from)
                {
                    continue;
                }
                if let Some(to) = q.analysed_to
                    && result.as_ref().is_none_or(|r| r.created_at >= to)
                {
                    continue;
                }
                let key = KeyRef {
                    number: match q.sort {
                        InventorySort::Risk => result.as_ref().map_or(-1, |r| {
                            (i64::from(r.risk.rank()) << 32) + i64::from(r.score)
                        }),
                        InventorySort::AnalysedAt => result
                            .as_ref()
                            .map_or(i64::MIN, |r| ts::to_ms(r.created_at)),
                        InventorySort::Name | InventorySort::Key => 0,
                    },
                    text: if q.sort == InventorySort::Name {
                        f.name
                    } else {
                        ""
                    },
                    integration,
                    remote_id,
                };
                if let Some(after) = &q.after {
                    let o = cmp_keys(&key, after);
                    let past = if q.descending && q.sort != InventorySort::Key {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    };
                    if !past {
                        continue;
                    }
                }
                if q.sort == InventorySort::Key {
                    if in_order.len() >= limit {
                        more = true;
                        break 'spans;
                    }
                } else if heap.len() >= limit {
                    // Keep it only if it comes before the worst kept row.
                    let worst = &heap.peek().map(|k| &k.row.cursor);
                    if let Some(worst) = worst {
                        let o = cmp_keys(&key, worst);
                        let better = if q.descending {
                            o == Ordering::Greater
                        } else {
                            o == Ordering::Less
                        };
                        more = true;
                        if !better {
                            continue;
                        }
                    }
                }
                let row = InventoryRow {
                    integration: integration.to_owned(),
                    remote_id: remote_id.to_owned(),
                    name: f.name.to_owned(),
                    version: f.version.to_owned(),
                    status: f.status,
                    last_error: f.last_error.map(str::to_owned),
                    updated_at: f.updated_at,
                    web_url: f.web_url.map(str::to_owned),
                    result_id: if needs_result {
                        result.as_ref().and(f.last_result)
                    } else {
                        f.last_result
                    },
                    risk: result.as_ref().map(|r| r.risk),
                    score: result.as_ref().map(|r| r.score),
                    analysed_at: result.as_ref().map(|r| r.created_at),
                    categories: Vec::new(),
                    cursor: InventoryCursor {
                        number: key.number,
                        text: key.text.to_owned(),
                        integration: integration.to_owned(),
                        remote_id: remote_id.to_owned(),
                    },
                };
                if q.sort == InventorySort::Key {
                    in_order.push(row);
                } else {
                    heap.push(Kept {
                        row,
                        descending: q.descending,
                    });
                    if heap.len() > limit {
                        heap.pop();
                    }
                }
            }
        }
        let mut rows = if q.sort == InventorySort::Key {
            in_order
        } else {
            // into_sorted_vec is ascending by `Kept` order: best first.
            heap.into_sorted_vec().into_iter().map(|k| k.row).collect()
        };
        // The page's rows: their categories, and their result when the scan did not read it.
        for row in &mut rows {
            let Some(id) = row.result_id else { continue };
            let Some(g) = results.get(id)? else {
                row.result_id = None;
                continue;
            };
            let r: ResultRef<'_> = decode_ref("results", g.value())?;
            if r.integration != row.integration {
                row.result_id = None;
                continue;
            }
            row.categories = categories_of(r.report_json);
            row.risk = Some(r.risk);
            row.score = Some(r.score);
            row.analysed_at = Some(r.created_at);
        }
        let next = if more {
            rows.last().map(|r| r.cursor.clone())
        } else {
            None
        };
        Ok(InventoryPage {
            rows,
            next,
            scanned,
        })
    }

    /// Removes every analysis result and batch of an integration (after the integration
    /// itself was deleted), in one transaction with an `integration.purge-history` audit
    /// entry, so a new integration with the same id starts with no history.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    pub fn purge_integration_history(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<PurgedHistory, StoreError> {
        self.write(|txn| {
            let mut purged = PurgedHistory::default();
            let mut results = txn.open_table(RESULTS)?;
            let mut doomed = Vec::new();
            for e in results.iter()? {
                let (k, v) = e?;
                let r: ResultRef<'_> = decode_ref("results", v.value())?;
                if r.integration == id {
                    doomed.push(k.value());
                }
            }
            for k in &doomed {
                results.remove(*k)?;
            }
            purged.results = doomed.len() as u64;
            drop(results);
            let mut batches = txn.open_table(BATCHES)?;
            let mut doomed = Vec::new();
            for e in batches.iter()? {
                let (k, v) = e?;
                let b: BatchRecord = crate::codec::decode("batches", v.value())?;
                if b.integration == id {
                    doomed.push(k.value());
                }
            }
            for k in &doomed {
                batches.remove(*k)?;
            }
            purged.batches = doomed.len() as u64;
            drop(batches);
            self.audit_in(
                txn,
                &AuditEvent::new(actor, "integration.purge-history", id).details(
                    serde_json::json!({"results": purged.results, "batches": purged.batches}),
                ),
            )?;
            Ok(purged)
        })
    }
}
