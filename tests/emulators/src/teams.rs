//! Microsoft Teams incoming webhooks (Workflows and the legacy connector
//! format). Not implemented yet.
