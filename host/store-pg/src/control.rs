//! The control plane on PostgreSQL: proofpix-store's [`ControlStore`] (integrations, sealed
//! secrets and tokens, plugins, the audit log, API tokens and sessions, settings, batches,
//! the inventory).
//!
//! Each method is one transaction, and each change made on someone's behalf appends its
//! audit entry in that transaction, as redb does. Secrets and OAuth tokens are sealed with
//! the master key by [`proofpix_vault::seal`] under the same associated data as redb uses
//! (`(integration, "secret/<field>")`, `(integration, "token/access")`,
//! `(integration, "token/refresh")`), so nothing is in clear in the database and a sealed
//! value moved to another record does not open.

use std::io::Write;
use std::time::Duration;

use proofpix_store::{
    ApiTokenRecord, AuditEntry, AuditEvent, BatchRecord, ControlStore, DeletedCounts, FileRecord,
    IntegrationRecord, InventoryCursor, InventoryPage, InventoryQuery, InventoryRow, InventorySort,
    PluginRecord, PurgedHistory, RiskLevel, SessionRecord, Signal, Stage, StoreError, TokenSet,
    VerifyReport, stage_queue,
};
use proofpix_vault::{Aad, Sealed, Secret};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Transaction};

use crate::error::corrupt;
use crate::records::{enum_parse, enum_text, file_from_row, put_batch_in};
use crate::{PgStore, from_ms, ms};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

const TOKEN_ACCESS_FIELD: &str = "token/access";
const TOKEN_REFRESH_FIELD: &str = "token/refresh";

fn secret_aad_field(field: &str) -> String {
    format!("secret/{field}")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn token_from_row(r: &Row, at: usize) -> ApiTokenRecord {
    ApiTokenRecord {
        name: r.get(at),
        role: r.get(at + 1),
        created_by: r.get(at + 2),
        created_at: from_ms(r.get(at + 3)),
    }
}

const TOKEN_COLUMNS: &str = "name, role, created_by, created_ms";

const FILE_COLUMNS: &str = "version, name, content_hash, last_result, status, attempts, \
     last_error, updated_ms, web_url";

impl PgStore {
    /// One statement, its rows.
    pub(crate) async fn q(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let rows = client.query(sql, params).await;
        self.counters.waited(1);
        rows.map_err(|e| self.err(e))
    }

    /// One statement, the rows it changed.
    pub(crate) async fn x(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, StoreError> {
        let n = client.execute(sql, params).await;
        self.counters.waited(1);
        n.map_err(|e| self.err(e))
    }

    async fn audit_in(&self, txn: &Transaction<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
        let seq = crate::audit::append_audit(txn, &self.key, self.now(), event)
            .await
            .map_err(|e| self.err(e))?;
        self.counters.add(3, 3);
        Ok(seq)
    }

    /// Runs `f` in one transaction and commits it (a failure rolls everything back).
    fn transact<T>(
        &self,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let txn = conn.begin().await.map_err(|e| self.err(e))?;
            self.counters.waited(1);
            let out = f(&txn).await?;
            self.commit(txn).await?;
            Ok(out)
        })
    }

    /// Rows of one statement outside a transaction.
    pub(crate) fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            self.q(conn.client(), sql, params).await
        })
    }

    async fn require_integration(&self, txn: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
        // FOR SHARE: a concurrent delete of the integration waits for this transaction.
        let rows = self
            .q(
                txn,
                "SELECT 1 FROM integrations WHERE id = $1 FOR SHARE",
                &[&id],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::NoSuchIntegration(id.to_owned()));
        }
        Ok(())
    }

    /// Stores a token record under its hash; returns the rows written (0 when `KeepName`
    /// met a token of that name).
    async fn put_api_token(
        &self,
        txn: &Transaction<'_>,
        token_sha256: &str,
        record: &ApiTokenRecord,
        on_conflict: TokenConflict,
    ) -> Result<u64, StoreError> {
        let sql = match on_conflict {
            TokenConflict::KeepName => {
                "INSERT INTO api_tokens (token_sha256, name, role, created_by, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING"
            }
            TokenConflict::Replace => {
                "INSERT INTO api_tokens (token_sha256, name, role, created_by, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_sha256) DO UPDATE SET \
                 name = EXCLUDED.name, role = EXCLUDED.role, created_by = EXCLUDED.created_by, \
                 created_ms = EXCLUDED.created_ms"
            }
        };
        self.x(
            txn,
            sql,
            &[
                &token_sha256,
                &record.name,
                &record.role,
                &record.created_by,
                &ms(record.created_at),
            ],
        )
        .await
    }

    /// Removes the sessions opened with any of `tokens`; returns how many.
    async fn end_sessions_of(
        &self,
        txn: &Transaction<'_>,
        tokens: &[String],
    ) -> Result<u64, StoreError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        self.x(
            txn,
            "DELETE FROM sessions WHERE token_sha256 = ANY($1)",
            &[&tokens],
        )
        .await
    }

    fn inventory_in(&self, q: &InventoryQuery) -> Result<InventoryPage, StoreError> {
        let limit = q.limit.max(1);
        let mut sql = String::from(
            "SELECT f.integration, f.remote_id, f.name, f.version, f.status, f.last_error, \
             f.updated_ms, r.id, r.risk, r.score, r.created_ms, r.report_json, f.web_url, ",
        );
        // The sort key as redb computes it: a number, a text, then the file's identity.
        match q.sort {
            InventorySort::Risk => {
                sql += &format!(
                    "CASE WHEN r.id IS NULL THEN -1 ELSE ({}::bigint << 32) + r.score END \
                     AS k_number, ",
                    risk_rank_sql("r.risk")
                );
            }
            InventorySort::AnalysedAt => {
                sql += "coalesce(r.created_ms, -9223372036854775808) AS k_number, ";
            }
            InventorySort::Name | InventorySort::Key => sql += "0::bigint AS k_number, ",
        }
        sql.push_str(if q.sort == InventorySort::Name {
            "f.name AS k_text "
        } else {
            "''::text AS k_text "
        });
        sql.push_str(
            "FROM files f LEFT JOIN results r ON r.id = f.last_result \
             AND r.integration = f.integration WHERE true",
        );
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut p = |v: Box<dyn ToSql + Sync + Send>| {
            params.push(v);
            format!("${}", params.len())
        };
        if !q.integrations.is_empty() {
            sql += &format!(
                " AND f.integration = ANY({})",
                p(Box::new(q.integrations.clone()))
            );
        }
        if !q.statuses.is_empty() {
            let statuses: Vec<String> = q.statuses.iter().map(enum_text).collect();
            sql += &format!(" AND f.status = ANY({})", p(Box::new(statuses)));
        }
        if let Some(needle) = q.search.as_deref().map(str::to_lowercase)
            && !needle.is_empty()
        {
            let n = p(Box::new(needle));
            sql += &format!(
                " AND (strpos(lower(f.name), {n}) > 0 OR strpos(lower(f.remote_id), {n}) > 0 \
                 OR strpos(lower(f.integration), {n}) > 0)"
            );
        }
        if !q.risks.is_empty() {
            let names: Vec<&'static str> = q.risks.iter().map(|r| r.as_str()).collect();
            sql += &format!(" AND r.risk = ANY({})", p(Box::new(names)));
        }
        if let Some(c) = &q.category {
            let needle = format!("\"category\":\"{c}\"");
            sql += &format!(" AND strpos(r.report_json, {}) > 0", p(Box::new(needle)));
        }
        if let Some(from) = q.analysed_from {
            sql += &format!(" AND r.created_ms >= {}", p(Box::new(ms(from))));
        }
        if let Some(to) = q.analysed_to {
            sql += &format!(" AND r.created_ms < {}", p(Box::new(ms(to))));
        }
        let descending = q.descending && q.sort != InventorySort::Key;
        // `f` is the filtered rows with their sort key; the cursor compares as a row value.
        let key = "(k_number, k_text COLLATE \"C\", integration COLLATE \"C\", \
                   remote_id COLLATE \"C\")";
        let mut outer = format!("SELECT * FROM ({sql}) f WHERE true");
        if let Some(after) = &q.after {
            let cursor = format!(
                "({}::bigint, {}::text COLLATE \"C\", {}::text COLLATE \"C\", {}::text COLLATE \"C\")",
                p(Box::new(after.number)),
                p(Box::new(after.text.clone())),
                p(Box::new(after.integration.clone())),
                p(Box::new(after.remote_id.clone())),
            );
            outer += &format!(" AND {key} {} {cursor}", if descending { "<" } else { ">" });
        }
        let dir = if descending { "DESC" } else { "ASC" };
        outer += &format!(
            " ORDER BY k_number {dir}, k_text COLLATE \"C\" {dir}, integration COLLATE \"C\" {dir}, \
             remote_id COLLATE \"C\" {dir} LIMIT {}",
            p(Box::new(clamp(limit + 1)))
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.rows(&outer, &refs)?;
        let more = rows.len() > limit;
        let scanned = rows.len() as u64;
        let mut out = Vec::with_capacity(limit);
        for r in rows.iter().take(limit) {
            let result_id: Option<i64> = r.get(7);
            let report: Option<String> = r.get(11);
            out.push(InventoryRow {
                integration: r.get(0),
                remote_id: r.get(1),
                name: r.get(2),
                version: r.get(3),
                status: enum_parse("files", r.get::<_, &str>(4))?,
                last_error: r.get(5),
                updated_at: from_ms(r.get(6)),
                web_url: r.get(12),
                result_id: result_id.map(|id| id as u64),
                risk: r
                    .get::<_, Option<&str>>(8)
                    .map(|t| enum_parse("results", t))
                    .transpose()?,
                score: r
                    .get::<_, Option<i64>>(9)
                    .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
                analysed_at: r.get::<_, Option<i64>>(10).map(from_ms),
                categories: report.as_deref().map(categories_of).unwrap_or_default(),
                cursor: InventoryCursor {
                    number: r.get(13),
                    text: r.get(14),
                    integration: r.get(0),
                    remote_id: r.get(1),
                },
            });
        }
        let next = if more {
            out.last().map(|r| r.cursor.clone())
        } else {
            None
        };
        Ok(InventoryPage {
            rows: out,
            next,
            scanned,
        })
    }
}

/// The categories of a report's findings, each once, sorted (as redb lists them).
fn categories_of(report_json: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Finding {
        category: String,
    }
    #[derive(serde::Deserialize)]
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

impl ControlStore for PgStore {
    fn integration(&self, id: &str) -> Result<Option<IntegrationRecord>, StoreError> {
        PgStore::integration(self, id)
    }

    fn delete_integration(&self, id: &str, actor: &str) -> Result<DeletedCounts, StoreError> {
        self.transact(async |t| {
            if self
                .x(t, "DELETE FROM integrations WHERE id = $1", &[&id])
                .await?
                == 0
            {
                return Err(StoreError::NoSuchIntegration(id.to_owned()));
            }
            let mut queues = vec![id.to_owned()];
            queues.extend(Stage::ALL.iter().map(|s| stage_queue(id, *s)));
            let counts = DeletedCounts {
                secrets: self
                    .x(t, "DELETE FROM secrets WHERE integration = $1", &[&id])
                    .await?,
                tokens: self
                    .x(t, "DELETE FROM tokens WHERE integration = $1", &[&id])
                    .await?,
                kv_entries: self
                    .x(t, "DELETE FROM kv WHERE namespace = $1", &[&id])
                    .await?,
                files: self
                    .x(t, "DELETE FROM files WHERE integration = $1", &[&id])
                    .await?,
                queue_items: self
                    .x(
                        t,
                        "DELETE FROM queue_items WHERE queue = ANY($1)",
                        &[&queues],
                    )
                    .await?,
                writebacks: self
                    .x(t, "DELETE FROM writebacks WHERE integration = $1", &[&id])
                    .await?,
            };
            self.x(t, "DELETE FROM cursors WHERE integration = $1", &[&id])
                .await?;
            self.x(t, "DELETE FROM sync_leases WHERE integration = $1", &[&id])
                .await?;
            self.x(t, "DELETE FROM schedules WHERE integration = $1", &[&id])
                .await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "integration.delete", id).details(serde_json::json!({
                    "secrets": counts.secrets,
                    "tokens": counts.tokens,
                    "kv_entries": counts.kv_entries,
                    "files": counts.files,
                    "queue_items": counts.queue_items,
                })),
            )
            .await?;
            Ok(counts)
        })
    }

    fn set_secret(
        &self,
        integration: &str,
        field: &str,
        value: &Secret,
        actor: &str,
    ) -> Result<(), StoreError> {
        let aad_field = secret_aad_field(field);
        let sealed = proofpix_vault::seal(&self.key, &Aad::new(integration, &aad_field), value)?;
        self.transact(async |t| {
            self.require_integration(t, integration).await?;
            self.x(
                t,
                "INSERT INTO secrets (integration, field, sealed) VALUES ($1, $2, $3) \
                 ON CONFLICT (integration, field) DO UPDATE SET sealed = EXCLUDED.sealed",
                &[&integration, &field, &sealed.as_bytes()],
            )
            .await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "secret.set", format!("{integration}/{field}")),
            )
            .await?;
            Ok(())
        })
    }

    fn secret(&self, integration: &str, field: &str) -> Result<Option<Secret>, StoreError> {
        let rows = self.rows(
            "SELECT sealed FROM secrets WHERE integration = $1 AND field = $2",
            &[&integration, &field],
        )?;
        let aad_field = secret_aad_field(field);
        Ok(rows
            .first()
            .map(|r| {
                proofpix_vault::open(
                    &self.key,
                    &Aad::new(integration, &aad_field),
                    &Sealed::from_bytes(r.get(0)),
                )
            })
            .transpose()?)
    }

    fn secret_fields(&self, integration: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .rows(
                "SELECT field FROM secrets WHERE integration = $1 ORDER BY field COLLATE \"C\"",
                &[&integration],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn delete_secret(
        &self,
        integration: &str,
        field: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let n = self
                .x(
                    t,
                    "DELETE FROM secrets WHERE integration = $1 AND field = $2",
                    &[&integration, &field],
                )
                .await?;
            if n > 0 {
                self.audit_in(
                    t,
                    &AuditEvent::new(actor, "secret.delete", format!("{integration}/{field}")),
                )
                .await?;
            }
            Ok(n > 0)
        })
    }

    fn set_tokens(
        &self,
        integration: &str,
        tokens: &TokenSet,
        actor: &str,
    ) -> Result<(), StoreError> {
        let access = proofpix_vault::seal(
            &self.key,
            &Aad::new(integration, TOKEN_ACCESS_FIELD),
            &tokens.access_token,
        )?;
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|r| {
                proofpix_vault::seal(&self.key, &Aad::new(integration, TOKEN_REFRESH_FIELD), r)
            })
            .transpose()?;
        let context = serde_json::to_string(&tokens.context).unwrap_or_else(|_| "{}".into());
        self.transact(async |t| {
            self.require_integration(t, integration).await?;
            self.x(
                t,
                "INSERT INTO tokens (integration, access, refresh, expires_ms, scope, context) \
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb) ON CONFLICT (integration) DO UPDATE \
                 SET access = EXCLUDED.access, refresh = EXCLUDED.refresh, \
                 expires_ms = EXCLUDED.expires_ms, scope = EXCLUDED.scope, \
                 context = EXCLUDED.context",
                &[
                    &integration,
                    &access.as_bytes(),
                    &refresh.as_ref().map(Sealed::as_bytes),
                    &tokens.expires_at.map(ms),
                    &tokens.scope,
                    &context,
                ],
            )
            .await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "tokens.set", integration).details(serde_json::json!({
                    "has_refresh_token": tokens.refresh_token.is_some(),
                    "expires_at": tokens.expires_at.map(rfc3339),
                })),
            )
            .await?;
            Ok(())
        })
    }

    fn tokens(&self, integration: &str) -> Result<Option<TokenSet>, StoreError> {
        let rows = self.rows(
            "SELECT access, refresh, expires_ms, scope, context::text FROM tokens \
             WHERE integration = $1",
            &[&integration],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let access_token = proofpix_vault::open(
            &self.key,
            &Aad::new(integration, TOKEN_ACCESS_FIELD),
            &Sealed::from_bytes(r.get(0)),
        )?;
        let refresh_token = r
            .get::<_, Option<Vec<u8>>>(1)
            .map(|b| {
                proofpix_vault::open(
                    &self.key,
                    &Aad::new(integration, TOKEN_REFRESH_FIELD),
                    &Sealed::from_bytes(b),
                )
            })
            .transpose()?;
        Ok(Some(TokenSet {
            access_token,
            refresh_token,
            expires_at: r.get::<_, Option<i64>>(2).map(from_ms),
            scope: r.get(3),
            context: serde_json::from_str(r.get::<_, &str>(4))
                .map_err(|e| corrupt("tokens", e.to_string()))?,
        }))
    }

    fn delete_tokens(&self, integration: &str, actor: &str) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let n = self
                .x(
                    t,
                    "DELETE FROM tokens WHERE integration = $1",
                    &[&integration],
                )
                .await?;
            if n > 0 {
                self.audit_in(t, &AuditEvent::new(actor, "tokens.delete", integration))
                    .await?;
            }
            Ok(n > 0)
        })
    }

    fn plugin(&self, id: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.rows("SELECT record::text FROM plugins WHERE id = $1", &[&id])?
            .first()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| corrupt("plugins", e.to_string()))
            })
            .transpose()
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.rows(
            "SELECT record::text FROM plugins ORDER BY id COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| corrupt("plugins", e.to_string()))
        })
        .collect()
    }

    fn put_plugin(&self, plugin: &PluginRecord, actor: &str) -> Result<(), StoreError> {
        let json = serde_json::to_string(plugin).map_err(|e| corrupt("plugins", e.to_string()))?;
        self.transact(async |t| {
            self.x(
                t,
                "INSERT INTO plugins (id, record) VALUES ($1, $2::text::jsonb) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                &[&plugin.id, &json],
            )
            .await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "plugin.install", &plugin.id).details(serde_json::json!({
                    "version": plugin.version,
                    "content_hash": plugin.content_hash,
                    "capabilities": plugin.capabilities,
                })),
            )
            .await?;
            Ok(())
        })
    }

    fn remove_plugin(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let n = self
                .x(t, "DELETE FROM plugins WHERE id = $1", &[&id])
                .await?;
            self.x(t, "DELETE FROM plugin_files WHERE id = $1", &[&id])
                .await?;
            if n > 0 {
                self.audit_in(t, &AuditEvent::new(actor, "plugin.remove", id))
                    .await?;
            }
            Ok(n > 0)
        })
    }

    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        PgStore::audit_entries(self, from_seq, limit)
    }

    fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_latest_in(limit)
    }

    fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        self.audit_verify_in()
    }

    fn audit_export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        self.audit_export_in(out)
    }

    fn session(
        &self,
        session_sha256: &str,
    ) -> Result<Option<(SessionRecord, ApiTokenRecord)>, StoreError> {
        let now = ms(self.now());
        let rows = self.rows(
            "SELECT s.token_sha256, s.token_name, s.created_ms, s.expires_ms, \
             t.name, t.role, t.created_by, t.created_ms FROM sessions s \
             JOIN api_tokens t ON t.token_sha256 = s.token_sha256 \
             WHERE s.session_sha256 = $1 AND s.expires_ms > $2",
            &[&session_sha256, &now],
        )?;
        Ok(rows.first().map(|r| {
            (
                SessionRecord {
                    token_sha256: r.get(0),
                    token_name: r.get(1),
                    created_at: from_ms(r.get(2)),
                    expires_at: from_ms(r.get(3)),
                },
                token_from_row(r, 4),
            )
        }))
    }

    fn put_session(
        &self,
        session_sha256: &str,
        record: &SessionRecord,
    ) -> Result<bool, StoreError> {
        self.transact(async |t| {
            // FOR SHARE: a revocation of the token waits for this sign-in, then ends it.
            let token = self
                .q(
                    t,
                    "SELECT 1 FROM api_tokens WHERE token_sha256 = $1 FOR SHARE",
                    &[&record.token_sha256],
                )
                .await?;
            if token.is_empty() {
                return Ok(false);
            }
            self.x(
                t,
                "INSERT INTO sessions (session_sha256, token_sha256, token_name, created_ms, \
                 expires_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_sha256) DO UPDATE \
                 SET token_sha256 = EXCLUDED.token_sha256, token_name = EXCLUDED.token_name, \
                 created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms",
                &[
                    &session_sha256,
                    &record.token_sha256,
                    &record.token_name,
                    &ms(record.created_at),
                    &ms(record.expires_at),
                ],
            )
            .await?;
            self.audit_in(
                t,
                &AuditEvent::new(
                    format!("token:{}", record.token_name),
                    "session.create",
                    &record.token_name,
                )
                .details(serde_json::json!({ "expires_at": rfc3339(record.expires_at) })),
            )
            .await?;
            Ok(true)
        })
    }

    fn delete_session(&self, session_sha256: &str) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let rows = self
                .q(
                    t,
                    "DELETE FROM sessions WHERE session_sha256 = $1 RETURNING token_name",
                    &[&session_sha256],
                )
                .await?;
            let Some(r) = rows.first() else {
                return Ok(false);
            };
            let name: String = r.get(0);
            self.audit_in(
                t,
                &AuditEvent::new(format!("token:{name}"), "session.delete", &name),
            )
            .await?;
            Ok(true)
        })
    }

    fn expire_sessions(&self) -> Result<usize, StoreError> {
        let now = ms(self.now());
        self.block_on(async {
            let mut conn = self.conn().await?;
            self.x(
                conn.client(),
                "DELETE FROM sessions WHERE expires_ms <= $1",
                &[&now],
            )
            .await
        })
        .map(|n| n as usize)
    }

    fn session_count(&self) -> Result<u64, StoreError> {
        let rows = self.rows("SELECT count(*) FROM sessions", &[])?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn api_token(&self, token_sha256: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = $1"),
                &[&token_sha256],
            )?
            .first()
            .map(|r| token_from_row(r, 0)))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        Ok(self
            .rows(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY token_sha256 COLLATE \"C\""
                ),
                &[],
            )?
            .iter()
            .map(|r| token_from_row(r, 0))
            .collect())
    }

    fn put_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.transact(async |t| {
            let stale: Vec<String> = self
                .q(
                    t,
                    "DELETE FROM api_tokens WHERE name = $1 RETURNING token_sha256",
                    &[&record.name],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .filter(|k: &String| k != token_sha256)
                .collect();
            self.put_api_token(t, token_sha256, record, TokenConflict::Replace)
                .await?;
            // A replaced token's dashboard sessions end with it.
            self.end_sessions_of(t, &stale).await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "api-token.create", &record.name)
                    .details(serde_json::json!({"role": record.role})),
            )
            .await?;
            Ok(())
        })
    }

    fn create_api_token(
        &self,
        token_sha256: &str,
        record: &ApiTokenRecord,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let inserted = self
                .put_api_token(t, token_sha256, record, TokenConflict::KeepName)
                .await?;
            if inserted == 0 {
                return Ok(false);
            }
            self.audit_in(
                t,
                &AuditEvent::new(actor, "api-token.create", &record.name)
                    .details(serde_json::json!({"role": record.role})),
            )
            .await?;
            Ok(true)
        })
    }

    fn rotate_api_token(
        &self,
        name: &str,
        new_token_sha256: &str,
        actor: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let now = self.now();
        self.transact(async |t| {
            let rows = self
                .q(
                    t,
                    &format!(
                        "DELETE FROM api_tokens WHERE name = $1 RETURNING token_sha256, {TOKEN_COLUMNS}"
                    ),
                    &[&name],
                )
                .await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            let old: String = r.get(0);
            let mut record = token_from_row(r, 1);
            record.created_at = now;
            self.put_api_token(t, new_token_sha256, &record, TokenConflict::Replace)
                .await?;
            // The old secret's dashboard sessions end with it.
            let sessions = self.end_sessions_of(t, &[old]).await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "api-token.rotate", name).details(
                    serde_json::json!({"role": record.role, "sessions_ended": sessions}),
                ),
            )
            .await?;
            Ok(Some(record))
        })
    }

    fn delete_api_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        self.transact(async |t| {
            let keys: Vec<String> = self
                .q(
                    t,
                    "DELETE FROM api_tokens WHERE name = $1 RETURNING token_sha256",
                    &[&name],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            // Revoking a token signs out every dashboard session opened with it.
            let sessions = self.end_sessions_of(t, &keys).await?;
            if !keys.is_empty() {
                self.audit_in(
                    t,
                    &AuditEvent::new(actor, "api-token.delete", name)
                        .details(serde_json::json!({ "sessions_ended": sessions })),
                )
                .await?;
            }
            Ok(!keys.is_empty())
        })
    }

    fn put_setting(&self, name: &str, json: &str, actor: &str) -> Result<(), StoreError> {
        let value: serde_json::Value =
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
        self.transact(async |t| {
            self.x(
                t,
                "INSERT INTO settings (name, json) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET json = EXCLUDED.json",
                &[&name, &json],
            )
            .await?;
            self.audit_in(
                t,
                &AuditEvent::new(actor, "settings.update", name).details(value),
            )
            .await?;
            Ok(())
        })
    }

    fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .rows("SELECT json FROM settings WHERE name = $1", &[&name])?
            .first()
            .map(|r| r.get(0)))
    }

    fn recent_batches(
        &self,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        self.rows(
            "SELECT record::text FROM batches WHERE ($1::text IS NULL OR integration = $1) \
             ORDER BY id DESC LIMIT $2",
            &[&integration, &clamp(limit)],
        )?
        .iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| corrupt("batches", e.to_string()))
        })
        .collect()
    }

    fn batches_since(
        &self,
        integration: Option<&str>,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        // As redb does: down the ids to the first batch that started before `since` (the
        // subquery walks the primary key backwards and stops at that batch), `result_ids`
        // emptied in the database so they never cross the wire.
        self.rows(
            "SELECT jsonb_set(record, '{result_ids}', '[]'::jsonb)::text FROM batches \
             WHERE id > COALESCE((SELECT max(id) FROM batches WHERE started_ms < $2), 0) \
             AND ($1::text IS NULL OR integration = $1) \
             ORDER BY id DESC LIMIT $3",
            &[&integration, &ms(since), &clamp(limit)],
        )?
        .iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| corrupt("batches", e.to_string()))
        })
        .collect()
    }

    fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            let [st] = conn
                .prepare([crate::records::PUT_BATCH])
                .await
                .map_err(|e| self.err(e))?;
            put_batch_in(self, conn.client(), &st, batch).await
        })
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryPage, StoreError> {
        self.inventory_in(q)
    }

    fn files(
        &self,
        integration: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let rows = self.rows(
            &format!(
                "SELECT {FILE_COLUMNS}, remote_id FROM files WHERE integration = $1 \
                 AND ($2::text IS NULL OR remote_id COLLATE \"C\" > $2::text COLLATE \"C\") \
                 ORDER BY remote_id COLLATE \"C\" LIMIT $3"
            ),
            &[&integration, &after, &clamp(limit)],
        )?;
        rows.iter()
            .map(|r| file_from_row(integration, r.get::<_, &str>(9), r))
            .collect()
    }

    fn file_count(&self, integration: &str) -> Result<u64, StoreError> {
        let rows = self.rows(
            "SELECT count(*) FROM files WHERE integration = $1",
            &[&integration],
        )?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn result_count(&self) -> Result<u64, StoreError> {
        let rows = self.rows("SELECT count(*) FROM results", &[])?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn forget_writebacks(&self, integration: &str) -> Result<u64, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            self.x(
                conn.client(),
                "DELETE FROM writebacks WHERE integration = $1 AND state <> 'intent'",
                &[&integration],
            )
            .await
        })
    }

    fn purge_integration_history(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<PurgedHistory, StoreError> {
        self.transact(async |t| {
            let purged = PurgedHistory {
                results: self
                    .x(t, "DELETE FROM results WHERE integration = $1", &[&id])
                    .await?,
                batches: self
                    .x(t, "DELETE FROM batches WHERE integration = $1", &[&id])
                    .await?,
            };
            self.audit_in(
                t,
                &AuditEvent::new(actor, "integration.purge-history", id).details(
                    serde_json::json!({"results": purged.results, "batches": purged.batches}),
                ),
            )
            .await?;
            Ok(purged)
        })
    }

    fn expire_leases(&self) -> Result<u64, StoreError> {
        // A lease past its expiry is already claimable (a claim takes due leased items); the
        // others belong to live workers, on this node or another, and are left alone.
        let now = ms(self.now());
        let rows = self.rows(
            "SELECT count(*) FROM queue_items WHERE state = 'leased' AND due_ms <= $1",
            &[&now],
        )?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    fn try_acquire_sync(
        &self,
        integration: &str,
        node_id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let expires = ms(now + ttl);
        // One statement: the row is inserted, or updated only when this node holds it or its
        // holder's expired; concurrent claims of one row wait for each other on its lock.
        let rows = self.rows(
            "INSERT INTO sync_leases (integration, node, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (integration) DO UPDATE SET node = EXCLUDED.node, \
             expires_ms = EXCLUDED.expires_ms \
             WHERE sync_leases.node = EXCLUDED.node OR sync_leases.expires_ms <= $4 \
             RETURNING 1",
            &[&integration, &node_id, &expires, &ms(now)],
        )?;
        Ok(!rows.is_empty())
    }

    fn release_sync(&self, integration: &str, node_id: &str) -> Result<bool, StoreError> {
        self.block_on(async {
            let mut conn = self.conn().await?;
            self.x(
                conn.client(),
                "DELETE FROM sync_leases WHERE integration = $1 AND node = $2",
                &[&integration, &node_id],
            )
            .await
        })
        .map(|n| n > 0)
    }

    fn schedule_next(&self, integration: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let rows = self.rows(
            "SELECT next_ms FROM schedules WHERE integration = $1",
            &[&integration],
        )?;
        Ok(rows.first().map(|r| from_ms(r.get(0))))
    }

    fn advance_schedule(
        &self,
        integration: &str,
        expected: Option<OffsetDateTime>,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        // Times are kept in milliseconds; `expected` is one this store returned (or a time
        // truncated the same way), so comparing in milliseconds is exact.
        let rows = match (expected, next) {
            (None, Some(next)) => self.rows(
                "INSERT INTO schedules (integration, next_ms) VALUES ($1, $2) \
                 ON CONFLICT (integration) DO NOTHING RETURNING 1",
                &[&integration, &ms(next)],
            )?,
            (Some(expected), Some(next)) => self.rows(
                "UPDATE schedules SET next_ms = $3 WHERE integration = $1 AND next_ms = $2 \
                 RETURNING 1",
                &[&integration, &ms(expected), &ms(next)],
            )?,
            (Some(expected), None) => self.rows(
                "DELETE FROM schedules WHERE integration = $1 AND next_ms = $2 RETURNING 1",
                &[&integration, &ms(expected)],
            )?,
            (None, None) => {
                return Ok(self.schedule_next(integration)?.is_none());
            }
        };
        Ok(!rows.is_empty())
    }

    fn signal(&self, message: &str) -> Result<(), StoreError> {
        crate::signals::check_len(message)?;
        self.rows(
            "SELECT pg_notify($1, $2)",
            &[&self.channel.as_str(), &message],
        )
        .map(|_| ())
    }

    fn listen(&self, on: Box<dyn Fn(Signal) + Send + Sync>) -> Result<bool, StoreError> {
        crate::signals::listen(self, on);
        Ok(true)
    }

    fn put_plugin_file(&self, id: &str, content_hash: &str, file: &[u8]) -> Result<(), StoreError> {
        let now = ms(self.now());
        self.transact(async |t| {
            self.x(
                t,
                "INSERT INTO plugin_files (id, content_hash, file, stored_ms) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id, content_hash) DO UPDATE SET stored_ms = EXCLUDED.stored_ms",
                &[&id, &content_hash, &file, &now],
            )
            .await?;
            // The newest two: this one and the one before it (a rollback's).
            self.x(
                t,
                "DELETE FROM plugin_files WHERE id = $1 AND content_hash NOT IN \
                 (SELECT content_hash FROM plugin_files WHERE id = $1 \
                  ORDER BY stored_ms DESC, content_hash LIMIT 2)",
                &[&id],
            )
            .await?;
            Ok(())
        })
    }

    fn plugin_file(&self, id: &str, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.rows(
            "SELECT file FROM plugin_files WHERE id = $1 AND content_hash = $2",
            &[&id, &content_hash],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}

/// What storing a token does when one is already there.
#[derive(Clone, Copy)]
enum TokenConflict {
    /// A token of the same name stays; nothing is written (create).
    KeepName,
    /// The record under the same hash is replaced (import, rotation).
    Replace,
}

/// SQL for the rank of the risk level named in `column` ([`RiskLevel::rank`], from the one
/// list of levels, so redb's order and this one cannot drift apart); an unknown word ranks 0.
fn risk_rank_sql(column: &str) -> String {
    let mut sql = format!("(CASE {column}");
    for level in RiskLevel::ALL {
        sql += &format!(" WHEN '{}' THEN {}", level.as_str(), level.rank());
    }
    sql + " ELSE 0 END)"
}
