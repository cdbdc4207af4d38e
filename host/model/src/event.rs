//! A platform's webhook delivery, and what the connector made of it.

use serde::{Deserialize, Serialize};

use crate::RemoteFile;

/// A request the platform sent to the host's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRequest {
    /// The HTTP method.
    pub method: String,
    /// The path below `/hooks/{integration}`.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The headers, as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The answer the platform gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What a delivery means: the answer, and the files it changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOutcome {
    /// What the host answers the platform with (a challenge echo, an ack).
    pub response: InboundResponse,
    /// Files new or changed.
    pub changed: Vec<RemoteFile>,
    /// Ids of files gone.
    pub removed: Vec<String>,
    /// The event cannot be narrowed to files: run an incremental sync.
    pub resync: bool,
}
