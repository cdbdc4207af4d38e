//! The redb store: schema, typed tables, migrations, idempotency records and the hash-chained audit log.
