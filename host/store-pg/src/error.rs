//! Errors: [`OpenError`] for connecting and migrating, and how a PostgreSQL failure becomes
//! the seam's [`StoreError`] once the store is open.
//!
//! Every message names the database by its URL with the password masked ([`masked_url`]);
//! nothing here formats a password, and tokio-postgres's own errors do not carry one.

use proofpix_store::StoreError;

/// Errors opening a PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL does not parse.
    #[error(
        "the database URL {url} is not valid ({reason}); expected \
         postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The schema name is not a plain identifier.
    #[error(
        "the schema name '{schema}' is not valid: use lower-case letters, digits and '_', \
         starting with a letter or '_', at most 63 characters"
    )]
    InvalidSchema {
        /// The name given.
        schema: String,
    },
    /// No connection could be made.
    #[error(
        "cannot connect to the PostgreSQL database {url} ({source}); check that it runs, that \
         it accepts connections from this host, the URL's host, port, user and database, and \
         for TLS its sslmode and sslrootcert (the CA that issued the server's certificate)"
    )]
    Unreachable {
        /// The URL, password masked.
        url: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database was migrated by a newer ProofPix.
    #[error(
        "the PostgreSQL database {url} has schema version {found}, but this proofpix \
         understands versions up to {supported}; another node runs a newer proofpix: upgrade \
         this node before starting it"
    )]
    NewerSchema {
        /// The URL, password masked.
        url: String,
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A migration failed; its transaction was rolled back, so the schema is as it was.
    #[error(
        "migrating the PostgreSQL database {url} to schema version {version} failed; the \
         database was left at the version it had"
    )]
    Migration {
        /// The URL, password masked.
        url: String,
        /// The version being applied.
        version: i64,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database's secrets are sealed under another master key than this node's.
    #[error(
        "this node's master key differs from the cluster's: the PostgreSQL database {url} \
         was set up with master key {cluster_key_id} and this node has key {node_key_id}; \
         give this node the cluster's key (PROOFPIX_MASTER_KEY or its key file) instead of \
         starting it with another, which would seal secrets no other node can open"
    )]
    KeyMismatch {
        /// The URL, password masked.
        url: String,
        /// The public id of this node's key.
        node_key_id: String,
        /// The public id of the key the database's canary was sealed with (`unknown` when
        /// it was not recorded).
        cluster_key_id: String,
    },
    /// The store's own runtime (the thread that drives the connections) could not start.
    #[error("cannot start the PostgreSQL store's connection thread")]
    Runtime(#[source] std::io::Error),
}

/// `url` with its password replaced by `***`, for messages and logs. A URL
/// (`postgres://user:pw@host/db`, or `?password=` in its query) and the key-value form
/// (`host=... password=...`) are both masked; something that parses as neither is not shown.
pub fn masked_url(url: &str) -> String {
    let trimmed = url.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Ok(mut u) = url::Url::parse(trimmed) else {
            return "<a database URL that does not parse>".to_string();
        };
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        if u.query_pairs().any(|(k, _)| k == "password") {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return u.to_string();
    }
    // Key-value form: mask the value after `password=` (quoted or not).
    let mut out = String::new();
    let mut rest = trimmed;
    while let Some(i) = rest.find("password") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let after_key = &after["password".len()..];
        let trimmed_eq = after_key.trim_start();
        if let Some(value) = trimmed_eq.strip_prefix('=') {
            let value = value.trim_start();
            let end = if let Some(quoted) = value.strip_prefix('\'') {
                // Up to the closing quote, past escaped ones.
                let mut end = None;
                let mut escaped = false;
                for (j, c) in quoted.char_indices() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '\'' if !escaped => {
                            end = Some(j + 2);
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                end.unwrap_or(value.len())
            } else {
                value.find(char::is_whitespace).unwrap_or(value.len())
            };
            out.push_str("password=***");
            rest = &value[end..];
        } else {
            out.push_str("password");
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
}

/// A PostgreSQL failure on an open store, as the seam's error.
pub(crate) fn backend(url: &str, e: tokio_postgres::Error) -> StoreError {
    let message = if e.is_closed() {
        format!(
            "the connection to the PostgreSQL database {url} was lost ({e}); nothing of this \
             operation was committed; it is retried once the database answers again"
        )
    } else if let Some(db) = e.as_db_error() {
        format!(
            "the PostgreSQL database {url} refused an operation: {} ({}); nothing of it was \
             committed",
            db.message(),
            db.code().code()
        )
    } else {
        format!(
            "the PostgreSQL store at {url} failed: {e}; nothing of this operation was committed"
        )
    };
    StoreError::Backend {
        message,
        source: Some(Box::new(e)),
    }
}

/// A stored value this build cannot read.
pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::masked_url;

    /// A password never reaches a message, whichever way the URL spells it.
    #[test]
    fn passwords_are_masked_in_every_spelling() {
        let cases = [
            (
                "postgres://proofpix:s3cr3t@db.example:5432/proofpix",
                "postgres://proofpix:***@db.example:5432/proofpix",
            ),
            (
                "postgresql://proofpix@db.example/proofpix?password=s3cr3t&sslmode=require",
                "postgresql://proofpix@db.example/proofpix?password=***&sslmode=require",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/test",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            (
                "host=db user=proofpix password=s3cr3t dbname=proofpix",
                "host=db user=proofpix password=*** dbname=proofpix",
            ),
            (
                "host=db password = 's3 cr\\'3t' dbname=proofpix",
                "host=db password=*** dbname=proofpix",
            ),
        ];
        for (url, want) in cases {
            let got = masked_url(url);
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("s3"), "{url}: {got}");
        }
    }
}
