//! Records the stages read and write: cursors, file records, results, batches, integration
//! status and the audit log.

use proofpix_store::{
    AnalysisResult, AuditEvent, BatchRecord, FileRecord, FileStatus, IntegrationRecord,
    IntegrationStatus, StoreError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::{GenericClient, Row, Statement, Transaction};

use crate::error::corrupt;
use crate::{PgStore, from_ms, ms};

/// An enum as the text its serde name gives (`Analysed`, `Healthy`, ...).
pub(crate) fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The enum a stored text names.
pub(crate) fn enum_parse<T: DeserializeOwned>(
    table: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| corrupt(table, format!("unknown value '{text}': {e}")))
}

/// A file record from a row of [`GET_FILE`]'s columns.
pub(crate) fn file_from_row(
    integration: &str,
    remote_id: &str,
    row: &Row,
) -> Result<FileRecord, StoreError> {
    let status: String = row.get(4);
    Ok(FileRecord {
        integration: integration.to_owned(),
        remote_id: remote_id.to_owned(),
        version: row.get(0),
        name: row.get(1),
        content_hash: row.get(2),
        last_result: row.get::<_, Option<i64>>(3).map(|id| id as u64),
        status: enum_parse::<FileStatus>("files", &status)?,
        attempts: u32::try_from(row.get::<_, i64>(5)).unwrap_or(u32::MAX),
        last_error: row.get(6),
        updated_at: from_ms(row.get(7)),
        web_url: row.get(8),
    })
}

/// Inserts or replaces a file record (the record's own `updated_at`).
pub(crate) const PUT_FILE: &str = "INSERT INTO files (integration, remote_id, version, name, \
     content_hash, last_result, status, attempts, last_error, updated_ms, web_url) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (integration, remote_id) DO UPDATE SET version = EXCLUDED.version, \
     name = EXCLUDED.name, content_hash = EXCLUDED.content_hash, \
     last_result = EXCLUDED.last_result, status = EXCLUDED.status, \
     attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, \
     updated_ms = EXCLUDED.updated_ms, web_url = EXCLUDED.web_url";

const GET_FILE: &str = "SELECT version, name, content_hash, last_result, status, attempts, \
     last_error, updated_ms, web_url FROM files WHERE integration = $1 AND remote_id = $2";

const GET_RESULT: &str = "SELECT integration, remote_id, file_version, risk, score, \
     report_json, created_ms FROM results WHERE id = $1";

const NEXT_BATCH_ID: &str = "SELECT nextval(pg_get_serial_sequence('batches', 'id'))";

pub(crate) const PUT_BATCH: &str = "INSERT INTO batches (id, integration, started_ms, finished_ms, record) \
     VALUES ($1, $2, $3, $4, $5::text::jsonb) ON CONFLICT (id) DO UPDATE SET \
     integration = EXCLUDED.integration, started_ms = EXCLUDED.started_ms, \
     finished_ms = EXCLUDED.finished_ms, record = EXCLUDED.record";

const GET_BATCH: &str = "SELECT record::text FROM batches WHERE id = $1";

const SET_STATUS: &str = "UPDATE integrations SET status = $2, last_error = $3, updated_ms = $4 \
     WHERE id = $1";

const PUT_INTEGRATION: &str = "INSERT INTO integrations (id, plugin_id, plugin_version, config, \
     schedule, enabled, status, last_error, created_ms, updated_ms, operator_grant, \
     subscriptions, remediation, pixels) \
     VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8, $9, $10, $11::text::jsonb, \
     $12::text::jsonb, $13::text::jsonb, $14) \
     ON CONFLICT (id) DO UPDATE SET plugin_id = EXCLUDED.plugin_id, \
     plugin_version = EXCLUDED.plugin_version, config = EXCLUDED.config, \
     schedule = EXCLUDED.schedule, enabled = EXCLUDED.enabled, status = EXCLUDED.status, \
     last_error = EXCLUDED.last_error, created_ms = EXCLUDED.created_ms, \
     updated_ms = EXCLUDED.updated_ms, operator_grant = EXCLUDED.operator_grant, \
     subscriptions = EXCLUDED.subscriptions, remediation = EXCLUDED.remediation, \
     pixels = EXCLUDED.pixels RETURNING (xmax = 0)";

const GET_INTEGRATION: &str = "SELECT plugin_id, plugin_version, config::text, schedule, \
     enabled, status, last_error, created_ms, updated_ms, operator_grant::text, \
     subscriptions::text, remediation::text, pixels FROM integrations WHERE id = $1";

const ALL_INTEGRATIONS: &str = "SELECT plugin_id, plugin_version, config::text, schedule, \
     enabled, status, last_error, created_ms, updated_ms, operator_grant::text, \
     subscriptions::text, remediation::text, pixels, id FROM integrations \
     ORDER BY id COLLATE \"C\"";

pub(crate) const SET_CURSOR: &str = "INSERT INTO cursors (integration, cursor) VALUES ($1, $2) \
     ON CONFLICT (integration) DO UPDATE SET cursor = EXCLUDED.cursor";
pub(crate) const CLEAR_CURSOR: &str = "DELETE FROM cursors WHERE integration = $1";
const GET_CURSOR: &str = "SELECT cursor FROM cursors WHERE integration = $1";

/// Sets or clears a cursor inside a transaction (`set` and `clear` are [`SET_CURSOR`] and
/// [`CLEAR_CURSOR`], prepared).
pub(crate) async fn set_cursor_in(
    store: &PgStore,
    txn: &Transaction<'_>,
    [set, clear]: &[Statement; 2],
    integration: &str,
    cursor: Option<&str>,
) -> Result<(), StoreError> {
    match cursor {
        Some(c) => store.query(txn, set, &[&integration, &c]).await?,
        None => store.query(txn, clear, &[&integration]).await?,
    };
    Ok(())
}

fn integration_from_row(id: String, r: &Row) -> Result<IntegrationRecord, StoreError> {
    Ok(IntegrationRecord {
        id,
        plugin_id: r.get(0),
        plugin_version: r.get(1),
        config: serde_json::from_str(r.get::<_, &str>(2))
            .map_err(|e| corrupt("integrations", e.to_string()))?,
        schedule: r.get(3),
        enabled: r.get(4),
        status: enum_parse("integrations", r.get::<_, &str>(5))?,
        last_error: r.get(6),
        created_at: from_ms(r.get(7)),
        updated_at: from_ms(r.get(8)),
        grant: json_column(r.get(9))?,
        subscriptions: r.get::<_, Option<&str>>(10).map(json_column).transpose()?,
        remediation: r.get::<_, Option<&str>>(11).map(json_column).transpose()?,
        pixels: r.get(12),
    })
}

/// A typed setting from its jsonb column.
fn json_column<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("integrations", e.to_string()))
}

fn batch_json(batch: &BatchRecord) -> String {
    // A plain struct of strings, numbers and maps: serialising it cannot fail.
    serde_json::to_string(batch).unwrap_or_default()
}

/// Saves a batch (`st` is [`PUT_BATCH`], prepared).
pub(crate) async fn put_batch_in(
    store: &PgStore,
    client: &impl GenericClient,
    st: &Statement,
    batch: &BatchRecord,
) -> Result<(), StoreError> {
    store
        .query(
            client,
            st,
            &[
                &(batch.id as i64),
                &batch.integration,
                &ms(batch.started_at),
                &batch.finished_at.map(ms),
                &batch_json(batch),
            ],
        )
        .await?;
    Ok(())
}

impl PgStore {
    /// The discovery cursor of an integration.
    pub(crate) fn cursor_of(&self, integration: &str) -> Result<Option<String>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([GET_CURSOR]).await.map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&integration]).await?;
            Ok(rows.first().map(|r| r.get(0)))
        })
    }

    /// A file record.
    ///
    /// # Errors
    ///
    /// A database failure, or a stored status this build does not know.
    pub fn file_record(
        &self,
        integration: &str,
        remote_id: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([GET_FILE]).await.map_err(|e| self.err(e))?;
            let rows = self
                .query(conn.client(), &st, &[&integration, &remote_id])
                .await?;
            rows.first()
                .map(|r| file_from_row(integration, remote_id, r))
                .transpose()
        })
    }

    pub(crate) fn put_file_record(&self, f: &FileRecord) -> Result<(), StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([PUT_FILE]).await.map_err(|e| self.err(e))?;
            self.query(
                conn.client(),
                &st,
                &[
                    &f.integration,
                    &f.remote_id,
                    &f.version,
                    &f.name,
                    &f.content_hash,
                    &f.last_result.map(|id| id as i64),
                    &enum_text(&f.status),
                    &i64::from(f.attempts),
                    &f.last_error,
                    &ms(f.updated_at),
                    &f.web_url,
                ],
            )
            .await?;
            Ok(())
        })
    }

    pub(crate) fn result_by_id(&self, id: u64) -> Result<Option<AnalysisResult>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([GET_RESULT]).await.map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&(id as i64)]).await?;
            rows.first()
                .map(|r| {
                    Ok(AnalysisResult {
                        id,
                        integration: r.get(0),
                        remote_id: r.get(1),
                        file_version: r.get(2),
                        risk: enum_parse("results", r.get(3))?,
                        score: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
                        report_json: r.get(5),
                        created_at: from_ms(r.get(6)),
                    })
                })
                .transpose()
        })
    }

    pub(crate) fn start_batch_for(&self, integration: &str) -> Result<BatchRecord, StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [next, put] = conn
                .prepare([NEXT_BATCH_ID, PUT_BATCH])
                .await
                .map_err(|e| self.err(e))?;
            let id: i64 = self.query(conn.client(), &next, &[]).await?[0].get(0);
            let batch = BatchRecord::started(id as u64, integration, now);
            put_batch_in(self, conn.client(), &put, &batch).await?;
            Ok(batch)
        })
    }

    /// A batch by id.
    ///
    /// # Errors
    ///
    /// A database failure, or a stored batch that does not decode.
    pub fn batch(&self, id: u64) -> Result<Option<BatchRecord>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([GET_BATCH]).await.map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&(id as i64)]).await?;
            rows.first()
                .map(|r| {
                    serde_json::from_str(r.get::<_, &str>(0))
                        .map_err(|e| corrupt("batches", e.to_string()))
                })
                .transpose()
        })
    }

    pub(crate) fn set_status(
        &self,
        id: &str,
        status: IntegrationStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn.prepare([SET_STATUS]).await.map_err(|e| self.err(e))?;
            let client = conn.client();
            let n = client
                .execute(&st, &[&id, &enum_text(&status), &last_error, &ms(now)])
                .await;
            self.counters.waited(1);
            if n.map_err(|e| self.err(e))? == 0 {
                return Err(StoreError::NoSuchIntegration(id.to_owned()));
            }
            Ok(())
        })
    }

    /// An integration's record.
    ///
    /// # Errors
    ///
    /// A database failure, or a stored value this build does not know.
    pub fn integration(&self, id: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn
                .prepare([GET_INTEGRATION])
                .await
                .map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[&id]).await?;
            rows.first()
                .map(|r| integration_from_row(id.to_owned(), r))
                .transpose()
        })
    }

    /// Every integration record, by id.
    pub(crate) fn all_integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn
                .prepare([ALL_INTEGRATIONS])
                .await
                .map_err(|e| self.err(e))?;
            let rows = self.query(conn.client(), &st, &[]).await?;
            rows.iter()
                .map(|r| integration_from_row(r.get(13), r))
                .collect()
        })
    }

    /// Creates or replaces an integration record with its audit entry, in one transaction.
    pub(crate) fn put_integration_audited(
        &self,
        rec: &IntegrationRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        // Plain structs of strings, numbers and lists: serialising them cannot fail.
        let config = serde_json::to_string(&rec.config).unwrap_or_else(|_| "{}".into());
        let grant = serde_json::to_string(&rec.grant).unwrap_or_else(|_| "{}".into());
        let subscriptions = rec
            .subscriptions
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok());
        let remediation = rec
            .remediation
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok());
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn
                .prepare([PUT_INTEGRATION])
                .await
                .map_err(|e| self.err(e))?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let rows = self
                .query(
                    &txn,
                    &st,
                    &[
                        &rec.id,
                        &rec.plugin_id,
                        &rec.plugin_version,
                        &config,
                        &rec.schedule,
                        &rec.enabled,
                        &enum_text(&rec.status),
                        &rec.last_error,
                        &ms(rec.created_at),
                        &ms(rec.updated_at),
                        &grant,
                        &subscriptions,
                        &remediation,
                        &rec.pixels,
                    ],
                )
                .await?;
            let created = rows.first().is_some_and(|r| r.get::<_, bool>(0));
            let action = if created {
                "integration.create"
            } else {
                "integration.update"
            };
            let event = AuditEvent::new(actor, action, &rec.id).details(serde_json::json!({
                "plugin": rec.plugin_id,
                "plugin_version": rec.plugin_version,
                "enabled": rec.enabled,
            }));
            crate::audit::append_audit(&txn, &self.key, now, &event)
                .await
                .map_err(|e| self.err(e))?;
            self.counters.add(3, 3);
            self.commit(txn).await?;
            Ok(())
        })
    }

    pub(crate) fn append_audit_event(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        let now = self.now();
        self.block_on(async {
            let mut conn = self.conn().await?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            let seq = crate::audit::append_audit(&txn, &self.key, now, event)
                .await
                .map_err(|e| self.err(e))?;
            self.counters.add(3, 3);
            self.commit(txn).await?;
            Ok(seq)
        })
    }
}
