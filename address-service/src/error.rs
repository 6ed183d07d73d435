//! `AppError`: every way a request can fail, each with a stable code and a JSON body.
//!
//! Bodies look like `{"error": {"code": "invalid_json", "message": "..."}}`; the code is the
//! contract, the message is for people. Internal details are logged, never sent.

use crate::address::{Field, Problems};
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest value accepted in any address field, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request body does not match the schema: {0}")]
    InvalidBody(String),
    #[error("field {field} is longer than {MAX_FIELD_BYTES} bytes")]
    FieldTooLong { field: &'static str },
    #[error("{0:?} is not a known country code")]
    UnknownCountry(String),
    #[error("the address is not valid")]
    InvalidAddress(Problems),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("an API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")]
    Unauthorized,
    #[error("the API key does not allow this ({0})")]
    Forbidden(&'static str),
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the request took longer than the server allows")]
    Timeout,
    #[error("the service is not ready")]
    NotReady,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::InvalidJson(_) | AppError::InvalidBody(_) | AppError::FieldTooLong { .. } => {
                StatusCode::BAD_REQUEST
            }
            AppError::UnknownCountry(_) | AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::InvalidAddress(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Timeout | AppError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::InvalidJson(_) => "invalid_json",
            AppError::InvalidBody(_) => "invalid_body",
            AppError::FieldTooLong { .. } => "field_too_long",
            AppError::UnknownCountry(_) => "unknown_country",
            AppError::InvalidAddress(_) => "invalid_address",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Timeout => "timeout",
            AppError::NotReady => "not_ready",
            AppError::Internal(_) => "internal",
        }
    }
}

/// The JSON error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `unknown_country`, `invalid_address`.
    pub code: String,
    pub message: String,
    /// For `invalid_address`: what is wrong with each field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, crate::address::Problem>>)]
    pub fields: Option<Problems>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let status = self.status();
        let retry_after = match &self {
            AppError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                fields: match self {
                    AppError::InvalidAddress(p) => Some(p),
                    _ => None,
                },
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON request body: checks the content type, the size limit, the syntax (including
/// nesting depth, which serde_json caps) and the schema, each failure a distinct 4xx.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    crate::Limits: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(AppError::UnsupportedMediaType);
        }
        let limit = crate::Limits::from_ref(state).body_limit_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge { limit }
            } else {
                AppError::InvalidJson(e.body_text())
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = T::deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                use serde_json::error::Category;
                match e.classify() {
                    Category::Data => AppError::InvalidBody(e.to_string()),
                    Category::Syntax | Category::Eof | Category::Io => {
                        AppError::InvalidJson(e.to_string())
                    }
                }
            })?;
        Ok(ApiJson(value))
    }
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    let (kind, subtype) = mime.split_once('/').unwrap_or_default();
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .len()
                .checked_sub(5)
                .and_then(|i| subtype.get(i..))
                .is_some_and(|end| end.eq_ignore_ascii_case("+json")))
}

/// Rejects any address field longer than [`MAX_FIELD_BYTES`].
pub fn check_field_lengths(address: &crate::address::Address) -> Result<(), AppError> {
    match Field::ALL
        .into_iter()
        .find(|f| address.get(*f).len() > MAX_FIELD_BYTES)
    {
        Some(f) => Err(AppError::FieldTooLong { field: f.as_str() }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let ok = |s: &'static str| is_json(Some(&HeaderValue::from_static(s)));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/+jsonx"));
        assert!(!ok("application"));
        assert!(!ok("text/json"));
        assert!(ok("APPLICATION/VND.API+JSON"));
        assert!(!is_json(None));
    }
}
