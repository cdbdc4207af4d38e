//! Schema versions and migrations.
//!
//! The meta table holds `schema_version`. On open:
//!
//! | file | result |
//! |---|---|
//! | new (no version) | tables created, version set to [`SCHEMA_VERSION`] |
//! | same version | opened |
//! | older | every migration step from its version up runs in **one** write transaction, then the version is bumped and an audit entry recorded; if any step fails, the transaction is dropped and the file is exactly as it was |
//! | newer | refused with [`OpenError::NewerSchema`]: an old binary must not write records it does not understand |
//!
//! The key check runs before migrations, so a migration that re-seals data can rely on the
//! key being the right one.

use std::fmt;

use proofpix_vault::MasterKey;
use redb::{ReadableTable, WriteTransaction};

use crate::audit::{self, AuditEvent};
use crate::schema::{self, META, SCHEMA_VERSION, meta};
use crate::{OpenError, Store, StoreError};

/// One migration step, from schema version `from` to `from + 1`.
#[derive(Clone, Copy)]
pub struct Migration {
    /// The version it upgrades from.
    pub from: u32,
    /// A name for error messages.
    pub name: &'static str,
    /// The step; it runs inside the open's write transaction.
    pub run: fn(&WriteTransaction) -> Result<(), StoreError>,
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Migration({} -> {}: {})",
            self.from,
            self.from + 1,
            self.name
        )
    }
}

/// The built-in steps, in order.
const BUILTIN: &[Migration] = &[
    Migration {
        from: 1,
        name: "add the api_tokens and settings tables",
        run: v1_to_v2,
    },
    Migration {
        from: 2,
        name: "record plugin signers and quarantine",
        run: v2_to_v3,
    },
    Migration {
        from: 3,
        name: "add the dashboard sessions table",
        run: v3_to_v4,
    },
    Migration {
        from: 4,
        name: "keep each file's web link",
        run: v4_to_v5,
    },
    Migration {
        from: 5,
        name: "lift each integration's grant, subscriptions, remediation and pixel setting out of its config",
        run: v5_to_v6,
    },
];

/// v6 gives integration records typed fields for the host's own settings, which schemas
/// 1-5 kept as JSON strings under reserved keys of the plugin's config map.
fn v5_to_v6(txn: &WriteTransaction) -> Result<(), StoreError> {
    use crate::codec::{decode, encode};
    use crate::records::IntegrationRecordV5;
    let mut t = txn.open_table(schema::INTEGRATIONS)?;
    let rows: Vec<(String, Vec<u8>)> = t
        .iter()?
        .map(|e| e.map(|(k, v)| (k.value().to_owned(), v.value().to_vec())))
        .collect::<Result<_, _>>()?;
    for (id, bytes) in rows {
        let old: IntegrationRecordV5 = decode("integrations", &bytes)?;
        t.insert(id.as_str(), encode(&old.lift()).as_slice())?;
    }
    Ok(())
}

/// v5 appends the plugin's `web-url` to file records; existing rows are re-encoded without
/// one (the next listing of each file fills it in).
fn v4_to_v5(txn: &WriteTransaction) -> Result<(), StoreError> {
    use crate::codec::{decode, encode};
    use crate::records::{FileRow, FileRowV4};
    let mut t = txn.open_table(schema::FILES)?;
    let rows: Vec<((String, String), Vec<u8>)> = t
        .iter()?
        .map(|e| {
            e.map(|(k, v)| {
                let (i, r) = k.value();
                ((i.to_owned(), r.to_owned()), v.value().to_vec())
            })
        })
        .collect::<Result<_, _>>()?;
    for ((integration, remote_id), bytes) in rows {
        let old: FileRowV4 = decode("files", &bytes)?;
        let new = FileRow {
            version: old.version,
            name: old.name,
            content_hash: old.content_hash,
            last_result: old.last_result,
            status: old.status,
            attempts: old.attempts,
            last_error: old.last_error,
            updated_at: old.updated_at,
            web_url: None,
        };
        t.insert(
            (integration.as_str(), remote_id.as_str()),
            encode(&new).as_slice(),
        )?;
    }
    Ok(())
}

/// v4 adds the dashboard's server-side sessions; existing data is untouched
/// (cookies issued before held the raw token and are no longer accepted, so
/// everyone signs in again once).
fn v3_to_v4(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(schema::SESSIONS)?;
    Ok(())
}

/// v3 adds provenance (signer, key id), the previous version and the
/// quarantine reason to plugin records; existing rows are re-encoded with
/// those empty.
fn v2_to_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    use crate::codec::{decode, encode};
    use crate::records::{PluginRecord, PluginRecordV1};
    let mut t = txn.open_table(schema::PLUGINS)?;
    let rows: Vec<(String, Vec<u8>)> = t
        .iter()?
        .map(|e| e.map(|(k, v)| (k.value().to_owned(), v.value().to_vec())))
        .collect::<Result<_, _>>()?;
    for (id, bytes) in rows {
        let old: PluginRecordV1 = decode("plugins", &bytes)?;
        let new = PluginRecord {
            id: old.id,
            version: old.version,
            content_hash: old.content_hash,
            capabilities: old.capabilities,
            installed_at: old.installed_at,
            signer: None,
            key_id: None,
            previous_version: None,
            quarantined: None,
        };
        t.insert(id.as_str(), encode(&new).as_slice())?;
    }
    Ok(())
}

/// v2 adds the daemon's API tokens and settings; existing data is untouched.
fn v1_to_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(schema::API_TOKENS)?;
    txn.open_table(schema::SETTINGS)?;
    Ok(())
}

pub(crate) fn read_version(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<u32>, StoreError> {
    match t.get(meta::SCHEMA_VERSION)? {
        None => Ok(None),
        Some(v) => {
            let bytes: [u8; 4] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                table: "meta",
                reason: "schema_version has the wrong length".into(),
            })?;
            Ok(Some(u32::from_be_bytes(bytes)))
        }
    }
}

fn write_version(txn: &WriteTransaction, v: u32) -> Result<(), StoreError> {
    txn.open_table(META)?
        .insert(meta::SCHEMA_VERSION, v.to_be_bytes().as_slice())?;
    Ok(())
}

fn check_key(txn: &WriteTransaction, key: &MasterKey) -> Result<bool, StoreError> {
    let mut m = txn.open_table(META)?;
    let stored = m.get(meta::KEY_CHECK)?.map(|v| v.value().to_vec());
    match stored {
        Some(stored) => Ok(key.key_check().matches(&stored)),
        None => {
            m.insert(meta::KEY_CHECK, key.key_check().0.as_slice())?;
            Ok(true)
        }
    }
}

pub(crate) fn open_schema(store: &Store, extra: &[Migration]) -> Result<(), OpenError> {
    let steps: Vec<Migration> = BUILTIN.iter().chain(extra).copied().collect();
    let target = SCHEMA_VERSION + extra.len() as u32;
    let txn = store.db.begin_write().map_err(StoreError::from)?;
    let version = read_version(&txn.open_table(META).map_err(StoreError::from)?)?;
    match version {
        None => {
            schema::create_tables(&txn).map_err(StoreError::from)?;
            write_version(&txn, target)?;
            check_key(&txn, &store.key)?;
            let now = store.now();
            audit::write_created_genesis(&txn, &store.key, now)?;
            txn.open_table(META)
                .map_err(StoreError::from)?
                .insert(
                    meta::CREATED_AT,
                    audit::rfc3339(now).unwrap_or_default().as_bytes(),
                )
                .map_err(StoreError::from)?;
            audit::append(
                &txn,
                &store.key,
                now,
                &AuditEvent::new("proofpix", "store.create", "store")
                    .details(serde_json::json!({ "schema_version": target })),
            )?;
        }
        Some(found) if found > target => {
            return Err(OpenError::NewerSchema {
                found,
                supported: target,
            });
        }
        Some(found) => {
            if !check_key(&txn, &store.key)? {
                return Err(OpenError::WrongKey);
            }
            if found < target {
                for step in steps.iter().filter(|s| s.from >= found && s.from < target) {
                    (step.run)(&txn).map_err(|e| OpenError::Migration {
                        from: found,
                        to: target,
                        step: step.name,
                        source: Box::new(e),
                    })?;
                }
                write_version(&txn, target)?;
                audit::append(
                    &txn,
                    &store.key,
                    store.now(),
                    &AuditEvent::new("proofpix", "store.migrate", "store")
                        .details(serde_json::json!({ "from": found, "to": target })),
                )?;
            }
            // A store from before genesis markers gets one now, if its head is genuine.
            audit::migrate_genesis(&txn, &store.key, store.now())?;
            let missing = schema::missing_tables(&txn).map_err(StoreError::from)?;
            if !missing.is_empty() {
                return Err(OpenError::Damaged {
                    reason: format!("the tables {missing:?} are missing"),
                });
            }
        }
    }
    txn.commit().map_err(StoreError::from)?;
    Ok(())
}
