//! Discovery: which image files are linked to the records in scope, full and incremental.
//!
//! Salesforce Files are ContentDocuments whose content lives in ContentVersions and which are
//! shared to records through ContentDocumentLinks; legacy Attachments hang off a record directly
//! (reference §1.2). A file's id here is its ContentDocumentId (stable across versions) and its
//! version the latest ContentVersion id, so a new version is analysed once more; an Attachment
//! is its own id, versioned by its `SystemModstamp`.
//!
//! A run is a sequence of phases, each one SOQL query followed through `nextRecordsUrl`, one page
//! per `discover` call:
//!
//! | run | phases |
//! |---|---|
//! | full (no cursor) | **links** in scope → their latest image versions; **attachments** in scope |
//! | incremental | **versions** changed since the mark → kept if linked in scope; **links** created since the mark → latest versions; **attachments** changed since the mark |
//!
//! **Marks.** At the start of every run the plugin records, per stream (versions, links,
//! attachments), the newest `SystemModstamp` that exists *now* and the ids sharing it; the run's
//! final cursor carries these marks, and the next run lists what changed at or after them. Taking
//! the marks before listing (rather than the newest value listed) means a file changed while a
//! run is under way is listed again by the next run instead of being skipped. The lower bound is
//! inclusive: records that share the mark's millisecond are compared by id, so ties are neither
//! skipped nor listed twice (past 200 ids at one millisecond they are listed again, and the host's
//! (id, version) check makes that harmless).
//!
//! An expired query locator (`INVALID_QUERY_LOCATOR`) restarts the current phase; what was
//! already listed comes again and the host skips it. What this does not see: a file unlinked from
//! the scope (no `removed` ids), and a record that enters the scope without any file or link
//! changing (a Case whose Status changes); a full listing (`proofpix integration sync --full`)
//! reconciles both.

use std::collections::{BTreeMap, BTreeSet};

use proofpix_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{self, PageError, QueryPage, in_list, text};
use crate::settings::Settings;
use crate::time::{self as sftime, Millis};

/// Ids per `IN (...)` list: keeps URLs near 4 KB, well under Salesforce's limits.
const IDS_PER_QUERY: usize = 200;
/// Ids remembered at a mark's millisecond.
const MAX_TIE_IDS: usize = 200;
/// Cursor format version.
const CURSOR_VERSION: u8 = 1;

/// Where a stream's last run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Milliseconds since the epoch.
    pub ms: Millis,
    /// Ids whose `SystemModstamp` is exactly `ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

impl Mark {
    /// Whether a record stamped `ms` with `id` is past this mark.
    fn passed_by(&self, ms: Millis, id: &str) -> bool {
        ms > self.ms || (ms == self.ms && !self.ids.iter().any(|i| i == id))
    }
}

/// Marks of the three streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    versions: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    links: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachments: Option<Mark>,
}

/// The sync cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(default)]
    v: u8,
    /// Marks of the last completed run: this run lists what changed since. `None` = full run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Marks>,
    /// Marks taken at the start of this run: the next run's `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    taking: Option<Marks>,
    /// Index into the run's phases.
    #[serde(default)]
    phase: usize,
    /// `nextRecordsUrl` within the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Versions,
    Links,
    Attachments,
}

fn phases(s: &Settings, incremental: bool) -> Vec<Phase> {
    let mut p = Vec::new();
    if incremental {
        p.push(Phase::Versions);
    }
    p.push(Phase::Links);
    if s.attachments {
        p.push(Phase::Attachments);
    }
    p
}

/// `SELECT Id FROM Case WHERE (scope)`.
fn scope_query(s: &Settings) -> String {
    match &s.scope_where {
        Some(w) => format!("SELECT Id FROM {} WHERE ({w})", s.scope_object),
        None => format!("SELECT Id FROM {}", s.scope_object),
    }
}

fn extensions(s: &Settings) -> String {
    in_list(&s.extensions)
}

fn since_clause(mark: Option<&Mark>) -> String {
    mark.map(|m| format!(" AND SystemModstamp >= {}", sftime::soql_floor(m.ms)))
        .unwrap_or_default()
}

fn phase_query(s: &Settings, phase: Phase, since: Option<&Marks>) -> String {
    let scope = scope_query(s);
    match phase {
        Phase::Versions => format!(
            "SELECT Id, ContentDocumentId, Title, FileExtension, ContentSize, Checksum, VersionNumber, SystemModstamp FROM ContentVersion WHERE IsLatest = true AND FileExtension IN {}{} ORDER BY SystemModstamp, Id",
            extensions(s),
            since_clause(since.and_then(|m| m.versions.as_ref()))
        ),
        Phase::Links => format!(
            "SELECT Id, ContentDocumentId, LinkedEntityId, SystemModstamp FROM ContentDocumentLink WHERE LinkedEntityId IN ({scope}){} ORDER BY SystemModstamp, Id",
            since_clause(since.and_then(|m| m.links.as_ref()))
        ),
        Phase::Attachments => format!(
            "SELECT Id, Name, ContentType, BodyLength, ParentId, SystemModstamp FROM Attachment WHERE ParentId IN ({scope}) AND ContentType LIKE 'image/%'{} ORDER BY SystemModstamp, Id",
            since_clause(since.and_then(|m| m.attachments.as_ref()))
        ),
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Versions => "listing changed file versions",
        Phase::Links => "listing files linked to the records in scope",
        Phase::Attachments => "listing attachments",
    }
}

/// The newest stamp now, and the ids sharing it.
fn take_mark(s: &Settings, soql: &str, doing: &str) -> Result<Option<Mark>, PluginError> {
    let page = api::query(s, soql, doing)?;
    let mut mark: Option<Mark> = None;
    for r in &page.records {
        let (Some(id), Some(ms)) = (
            text(r, "Id"),
            text(r, "SystemModstamp").and_then(sftime::parse),
        ) else {
            continue;
        };
        match &mut mark {
            None => {
                mark = Some(Mark {
                    ms,
                    ids: vec![id.to_string()],
                })
            }
            Some(m) if ms == m.ms && m.ids.len() < MAX_TIE_IDS => m.ids.push(id.to_string()),
            Some(_) => break,
        }
    }
    Ok(mark)
}

fn take_marks(s: &Settings) -> Result<Marks, PluginError> {
    let scope = scope_query(s);
    let versions = take_mark(
        s,
        &format!(
            "SELECT Id, SystemModstamp FROM ContentVersion WHERE IsLatest = true AND FileExtension IN {} ORDER BY SystemModstamp DESC, Id DESC LIMIT {MAX_TIE_IDS}",
            extensions(s)
        ),
        "marking where this run starts",
    )?;
    let links = take_mark(
        s,
        &format!(
            "SELECT Id, SystemModstamp FROM ContentDocumentLink WHERE LinkedEntityId IN ({scope}) ORDER BY SystemModstamp DESC, Id DESC LIMIT {MAX_TIE_IDS}"
        ),
        "marking where this run starts",
    )?;
    let attachments = if s.attachments {
        take_mark(
            s,
            &format!(
                "SELECT Id, SystemModstamp FROM Attachment WHERE ParentId IN ({scope}) AND ContentType LIKE 'image/%' ORDER BY SystemModstamp DESC, Id DESC LIMIT {MAX_TIE_IDS}"
            ),
            "marking where this run starts",
        )?
    } else {
        None
    };
    Ok(Marks {
        versions,
        links,
        attachments,
    })
}

/// One discovery page.
///
/// # Errors
/// Configuration problems (`invalid-config`), throttling and transient failures for the host to
/// retry.
pub fn discover(cursor: Option<String>) -> Result<Page, PluginError> {
    let s = Settings::load()?;
    let mut c: Cursor = pagination::decode(cursor.as_deref())?.unwrap_or_default();
    if c.v > CURSOR_VERSION {
        return Err(PluginError::fatal(
            "the sync cursor was written by a newer plugin version; reset the integration's cursor to resync",
        ));
    }
    c.v = CURSOR_VERSION;
    if c.taking.is_none() {
        // Marks get a call of their own: every call stays a few requests, so one failed request
        // costs little when the host retries the call.
        c.taking = Some(take_marks(&s)?);
        c.phase = 0;
        c.next = None;
        return Ok(Page {
            files: Vec::new(),
            removed: Vec::new(),
            cursor: Some(pagination::encode(&c)?),
            more: true,
        });
    }
    let list = phases(&s, c.since.is_some());
    let Some(&phase) = list.get(c.phase) else {
        return finish(c, Vec::new());
    };
    let doing = phase_name(phase);
    let page = match c.next.take() {
        Some(next) => match api::query_more(&s, &next, doing) {
            Ok(p) => p,
            Err(PageError::LocatorGone) => {
                log::warn(
                    "Salesforce's query locator expired; restarting this listing (the host skips files already seen)",
                );
                api::query(&s, &phase_query(&s, phase, c.since.as_ref()), doing)?
            }
            Err(PageError::Other(e)) => return Err(e),
        },
        None => api::query(&s, &phase_query(&s, phase, c.since.as_ref()), doing)?,
    };
    let QueryPage { records, next } = page;
    let files = match phase {
        Phase::Versions => changed_versions(
            &s,
            &records,
            c.since.as_ref().and_then(|m| m.versions.as_ref()),
        )?,
        Phase::Links => linked_files(&s, &records, c.since.as_ref())?,
        Phase::Attachments => attachments(
            &records,
            c.since.as_ref().and_then(|m| m.attachments.as_ref()),
        )?,
    };
    match next {
        Some(n) => c.next = Some(n),
        None => c.phase += 1,
    }
    if c.phase >= list.len() {
        return finish(c, files);
    }
    Ok(Page {
        files,
        removed: Vec::new(),
        cursor: Some(pagination::encode(&c)?),
        more: true,
    })
}

/// The last page of a run: the marks taken at its start become the next run's `since`.
fn finish(c: Cursor, files: Vec<RemoteFile>) -> Result<Page, PluginError> {
    let end = Cursor {
        v: CURSOR_VERSION,
        since: Some(c.taking.unwrap_or_default()),
        taking: None,
        phase: 0,
        next: None,
    };
    Ok(Page {
        files,
        removed: Vec::new(),
        cursor: Some(pagination::encode(&end)?),
        more: false,
    })
}

fn past(mark: Option<&Mark>, r: &Value) -> bool {
    let Some(mark) = mark else { return true };
    match (
        text(r, "Id"),
        text(r, "SystemModstamp").and_then(sftime::parse),
    ) {
        (Some(id), Some(ms)) => mark.passed_by(ms, id),
        // A record without a readable stamp is listed: listing twice is harmless, skipping is not.
        _ => true,
    }
}

/// Latest image versions of `documents`, by document.
fn latest_versions(s: &Settings, documents: &[String]) -> Result<Vec<Value>, PluginError> {
    let mut out = Vec::new();
    for chunk in documents.chunks(IDS_PER_QUERY) {
        let soql = format!(
            "SELECT Id, ContentDocumentId, Title, FileExtension, ContentSize, Checksum, VersionNumber, SystemModstamp FROM ContentVersion WHERE ContentDocumentId IN {} AND IsLatest = true AND FileExtension IN {}",
            in_list(chunk),
            extensions(s)
        );
        out.extend(api::query_all(
            s,
            &soql,
            "reading the latest versions of linked files",
        )?);
    }
    Ok(out)
}

/// Files behind a page of links. In an incremental run (`since` set), a file whose latest
/// version is past the versions mark is left out: the run's versions phase lists it.
fn linked_files(
    s: &Settings,
    links: &[Value],
    since: Option<&Marks>,
) -> Result<Vec<RemoteFile>, PluginError> {
    let links_mark = since.and_then(|m| m.links.as_ref());
    let mut record_of: BTreeMap<String, String> = BTreeMap::new();
    for l in links.iter().filter(|l| past(links_mark, l)) {
        if let (Some(doc), Some(entity)) = (text(l, "ContentDocumentId"), text(l, "LinkedEntityId"))
        {
            record_of
                .entry(doc.to_string())
                .or_insert_with(|| entity.to_string());
        }
    }
    let documents: Vec<String> = record_of.keys().cloned().collect();
    let versions = latest_versions(s, &documents)?;
    let instance = api::instance_url()?;
    Ok(versions
        .iter()
        .filter(|v| since.is_none_or(|m| !past(m.versions.as_ref(), v)))
        .filter_map(|v| {
            let doc = text(v, "ContentDocumentId")?;
            file_of_version(&instance, s, v, record_of.get(doc).map(String::as_str))
        })
        .collect())
}

fn changed_versions(
    s: &Settings,
    versions: &[Value],
    since: Option<&Mark>,
) -> Result<Vec<RemoteFile>, PluginError> {
    let changed: Vec<&Value> = versions.iter().filter(|v| past(since, v)).collect();
    let documents: BTreeSet<String> = changed
        .iter()
        .filter_map(|v| text(v, "ContentDocumentId").map(String::from))
        .collect();
    let documents: Vec<String> = documents.into_iter().collect();
    let scope = scope_query(s);
    let mut record_of: BTreeMap<String, String> = BTreeMap::new();
    for chunk in documents.chunks(IDS_PER_QUERY) {
        let soql = format!(
            "SELECT ContentDocumentId, LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId IN {} AND LinkedEntityId IN ({scope})",
            in_list(chunk)
        );
        for l in api::query_all(
            s,
            &soql,
            "checking which changed files are linked to the records in scope",
        )? {
            if let (Some(doc), Some(entity)) =
                (text(&l, "ContentDocumentId"), text(&l, "LinkedEntityId"))
            {
                record_of
                    .entry(doc.to_string())
                    .or_insert_with(|| entity.to_string());
            }
        }
    }
    let instance = api::instance_url()?;
    Ok(changed
        .into_iter()
        .filter_map(|v| {
            let record = record_of.get(text(v, "ContentDocumentId")?)?;
            file_of_version(&instance, s, v, Some(record))
        })
        .collect())
}

fn file_of_version(
    instance: &str,
    s: &Settings,
    v: &Value,
    record: Option<&str>,
) -> Option<RemoteFile> {
    let version = text(v, "Id")?;
    let document = text(v, "ContentDocumentId")?;
    let ext = text(v, "FileExtension")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let title = text(v, "Title").unwrap_or(document);
    let name = if ext.is_empty() || title.to_ascii_lowercase().ends_with(&format!(".{ext}")) {
        title.to_string()
    } else {
        format!("{title}.{ext}")
    };
    let mut properties = vec![
        ("kind".to_string(), "file".to_string()),
        ("version".to_string(), version.to_string()),
    ];
    if let Some(r) = record {
        properties.push(("record".into(), r.into()));
    }
    Some(RemoteFile {
        id: document.to_string(),
        name,
        mime_type: mime_of(&ext).map(String::from),
        size: v.get("ContentSize").and_then(Value::as_u64),
        modified: text(v, "SystemModstamp").map(String::from),
        version: version.to_string(),
        container: record.map(String::from),
        web_url: Some(format!(
            "{instance}/lightning/r/ContentDocument/{document}/view"
        )),
        path: record.map(|r| format!("{}/{r}", s.scope_object)),
        properties,
    })
}

fn attachments(records: &[Value], since: Option<&Mark>) -> Result<Vec<RemoteFile>, PluginError> {
    let instance = api::instance_url()?;
    Ok(records
        .iter()
        .filter(|r| past(since, r))
        .filter_map(|r| {
            let id = text(r, "Id")?;
            let stamp = text(r, "SystemModstamp")?;
            let parent = text(r, "ParentId");
            let mut properties = vec![("kind".to_string(), "attachment".to_string())];
            if let Some(p) = parent {
                properties.push(("record".into(), p.into()));
            }
            Some(RemoteFile {
                id: id.to_string(),
                name: text(r, "Name").unwrap_or(id).to_string(),
                mime_type: text(r, "ContentType").map(String::from),
                size: r.get("BodyLength").and_then(Value::as_u64),
                modified: Some(stamp.to_string()),
                // An Attachment's Body can be replaced in place; its stamp changes when it is.
                version: sftime::parse(stamp)
                    .map_or_else(|| stamp.to_string(), |ms| ms.to_string()),
                container: parent.map(String::from),
                web_url: Some(format!("{instance}/{id}")),
                path: parent.map(|p| format!("Attachment/{p}")),
                properties,
            })
        })
        .collect())
}

fn mime_of(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "bmp" => "image/bmp",
        _ => return None,
    })
}

/// The request the host runs to fetch a file's bytes.
///
/// # Errors
/// A file this plugin did not list (no kind or version property).
pub fn download(file: RemoteFile) -> Result<DownloadSpec, PluginError> {
    let s = Settings::load()?;
    let base = api::data_base(&s)?;
    let safe = |id: &str| {
        !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let url = match file.property("kind") {
        Some("file") => {
            let version = file.property("version").unwrap_or(&file.version);
            if !safe(version) {
                return Err(PluginError::fatal(format!(
                    "not a ContentVersion id: {version:?}"
                )));
            }
            format!("{base}/sobjects/ContentVersion/{version}/VersionData")
        }
        Some("attachment") if safe(&file.id) => {
            format!("{base}/sobjects/Attachment/{}/Body", file.id)
        }
        _ => {
            return Err(PluginError::fatal(format!(
                "file {} was not listed by this plugin version; run a full sync",
                file.id
            )));
        }
    };
    Ok(DownloadSpec {
        location: ContentLocation::Http(proofpix_sdk::http::Request::get(&url).into_wit()),
        supports_range: s.range_requests,
    })
}

/// `SELECT Id FROM {scope} LIMIT 1`, for the connection test.
pub fn scope_probe(s: &Settings) -> String {
    format!("{} LIMIT 1", scope_query(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_passes_later_stamps_and_unseen_ties_only() {
        let m = Mark {
            ms: 100,
            ids: vec!["a".into()],
        };
        assert!(m.passed_by(101, "a"));
        assert!(!m.passed_by(100, "a"));
        assert!(m.passed_by(100, "b"));
        assert!(!m.passed_by(99, "c"));
    }

    #[test]
    fn cursors_round_trip_and_old_fields_default() {
        let c: Cursor = serde_json::from_str(r#"{"since":{"versions":{"ms":5,"ids":["x"]}}}"#)
            .unwrap_or_default();
        assert_eq!(
            c.since
                .as_ref()
                .and_then(|m| m.versions.as_ref())
                .map(|m| m.ms),
            Some(5)
        );
        assert_eq!(c.phase, 0);
    }
}
