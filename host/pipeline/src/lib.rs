//! The sync pipeline: discovery, host-side fetch, analysis, idempotent write-back and notifications.
