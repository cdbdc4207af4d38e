//! Every error becomes a JSON problem document (RFC 9457).
//!
//! Client errors carry their status and a message saying what to fix.
//! Internal errors carry a generic message and an id; the details go to the
//! log, never to the response (they may name files, hosts or worse). Bad
//! JSON, unknown fields, wrong types and oversized bodies are 4xx, never 500.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// A problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short title (the status reason).
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong and what to do.
    pub detail: String,
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// 500 with a generic message; `cause` is logged with an id.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut id = [0u8; 6];
        let _ = getrandom::getrandom(&mut id);
        let id = hex::encode(id);
        tracing::error!(error.id = %id, "internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error (id {id}); the server log has the details"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank",
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut resp = (self.status, Json(problem)).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

impl From<proofpix_store::StoreError> for ApiError {
    fn from(e: proofpix_store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<proofpix_service::ServiceError> for ApiError {
    fn from(e: proofpix_service::ServiceError) -> Self {
        use proofpix_service::ServiceError as S;
        match e {
            S::NoIntegration(_) | S::NoPlugin(..) | S::NoFile { .. } => {
                ApiError::not_found(e.to_string())
            }
            S::InvalidConfig { .. }
            | S::Credentials { .. }
            | S::Context(_)
            | S::ActionRefused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            S::Call(_) | S::Load(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// `Json<T>` whose rejections are problem documents.
///
/// Every request body of this API is a JSON object. serde accepts a JSON
/// array for a struct (its fields in order), so `[true, "1h"]` would pass as
/// settings; the body is therefore read as a [`serde_json::Value`] first and
/// anything but an object is refused with 422, once, here.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => object_body(v).map(ApiJson),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text())
                }
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the body as JSON with Content-Type: application/json",
                ),
                JsonRejection::BytesRejection(e) => ApiError::new(e.status(), e.body_text()),
                other => ApiError::bad_request(other.body_text()),
            }),
        }
    }
}

/// Decodes a request body that must be a JSON object into `T`: anything else
/// (an array, a string, a number, `null`) is 422, and so is an object of the
/// wrong shape (unknown field, wrong type), with serde's message.
///
/// # Errors
/// 422 naming what to fix.
pub fn object_body<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    if !v.is_object() {
        let kind = match v {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        };
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the request body must be a JSON object, not {kind}"),
        ));
    }
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })
}

/// Turns an error response that is not already a problem document (axum's
/// own rejections for a bad path or query parameter, a wrong method, a body
/// over the limit: `text/plain` or empty) into one, keeping its status and
/// its text as the detail. Applied to every `/api` route.
pub async fn problem_for_plain_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                "this route does not take that method; see /api/openapi.json".to_string()
            }
            _ => status.canonical_reason().unwrap_or("Error").to_string(),
        }
    } else {
        text
    };
    let mut out = ApiError::new(status, detail).into_response();
    // Keep `Allow` (405) and similar headers from the original.
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The standard error responses: status, description, and whether only
/// operations with a request body can answer it.
const STANDARD_ERRORS: &[(&str, &str, bool)] = &[
    (
        "400",
        "Bad request: the body is not JSON, or a path or query parameter does not parse",
        false,
    ),
    (
        "401",
        "No valid token: send `Authorization: Bearer <token>` or sign in",
        false,
    ),
    ("403", "The token's role may not do this", false),
    ("404", "No such resource", false),
    (
        "413",
        "The body is larger than the server's limit (`server.max_body_kib`)",
        true,
    ),
    (
        "415",
        "The body is not sent as `Content-Type: application/json`",
        true,
    ),
    (
        "422",
        "The input is well-formed but invalid; `detail` names the field to fix",
        false,
    ),
];

/// Completes the generated OpenAPI document (as JSON) with what every operation shares:
/// error responses are `application/problem+json` [`Problem`] documents; 400 (a path or
/// query parameter that does not parse), 401, 403, 404, 422 and, for operations with a
/// body, 413 and 415 are documented everywhere; and the two ways to authenticate
/// (`Authorization: Bearer` and the dashboard's session cookie) are declared as security
/// schemes that every operation but sign-in requires.
pub fn complete_openapi(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                let has_body = op.contains_key("requestBody");
                let is_sign_in = path == "/api/session" && method == "post";
                let responses = op
                    .entry("responses")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                let Some(responses) = responses else {
                    continue;
                };
                for (status, description, body_only) in STANDARD_ERRORS {
                    if *body_only && !has_body {
                        continue;
                    }
                    if is_sign_in && *status == "403" {
                        continue;
                    }
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| json!({"description": description}));
                }
                for (status, response) in responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, Some(r)) = (is_error, response.as_object_mut()) {
                        r.insert("content".into(), problem.clone());
                        if r.get("description")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                        {
                            r.insert("description".into(), json!("A problem document"));
                        }
                    }
                }
                // Signing in needs no credentials, and neither does signing out: it clears the
                // cookie (and ends its session when the request carries one), so without one it
                // is 204 as well.
                if is_sign_in || (path == "/api/session" && method == "delete") {
                    op.insert("security".into(), json!([]));
                }
                // A sync's body is optional: none (or only whitespace) is an incremental sync.
                if path == "/api/integrations/{id}/sync"
                    && let Some(body) = op.get_mut("requestBody").and_then(Value::as_object_mut)
                {
                    body.insert("required".into(), json!(false));
                }
            }
        }
    }
    if let Some(root) = doc.as_object_mut() {
        let components = root
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(components) = components {
            components.insert(
                "securitySchemes".into(),
                json!({
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API token: `Authorization: Bearer <token>`"
                    },
                    "cookie": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": crate::auth::SESSION_COOKIE,
                        "description": "The dashboard's session cookie, set by POST /api/session"
                    }
                }),
            );
        }
        root.insert("security".into(), json!([{"bearer": []}, {"cookie": []}]));
    }
}
