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
            S::NoIntegration(_) | S::NoPlugin(..) => ApiError::not_found(e.to_string()),
            S::InvalidConfig { .. } | S::Credentials { .. } | S::Context(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            S::Call(_) | S::Load(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// `Json<T>` whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
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
