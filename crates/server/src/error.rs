//! The one place errors become HTTP answers: `{"title", "status", "details"}` JSON with
//! the right status code. Server faults are logged with a reference the answer repeats,
//! and never show internals.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gridroll_domain::intake::{Problem, Problems};
use gridroll_store::{PartnerProgramsError, StoreError};
use serde_json::{Map, Value, json};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub title: String,
    pub details: Value,
    /// Headers the answer carries beside the body, such as `Retry-After`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Members of the body beside the contract's, where an operation's Leap schema asks
    /// for more (`errors` of a single meter's creation).
    pub members: Box<Map<String, Value>>,
    /// The problems `details` lists, for answers that also show them in Leap's shape.
    pub problems: Box<[Problem]>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, title: impl Into<String>, details: Value) -> Self {
        Self {
            status,
            title: title.into(),
            details,
            headers: Vec::new(),
            members: Box::default(),
            problems: Box::default(),
        }
    }

    /// The error with Leap's `message` (the title again) beside the contract's members,
    /// as the listing of provisional assets answers it (Leap's `ValidationError`).
    pub fn with_message(mut self) -> Self {
        self.members
            .insert("message".to_owned(), json!(self.title.clone()));
        self
    }

    /// The error as `POST /v1.1/meters` answers it: besides the contract's members,
    /// Leap's `errors`, one `{field, description, suggestions}` for each problem (the
    /// field left out for a problem with the body as a whole, the suggestions when a
    /// nearby field or value was probably meant).
    pub fn with_create_meter_errors(mut self) -> Self {
        let errors: Vec<Value> = if self.problems.is_empty() {
            let description = self.details["error"].as_str().unwrap_or(&self.title);
            vec![json!({"description": description})]
        } else {
            self.problems.iter().map(create_meter_error).collect()
        };
        self.members.insert("errors".to_owned(), json!(errors));
        self
    }

    /// The error with a header on its answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 with details.
    pub fn bad_request(title: impl Into<String>, details: Value) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, details)
    }

    /// 400 listing the problems of an upload.
    pub fn invalid_assets(problems: Problems) -> Self {
        let title = match problems.total {
            1 => "The request has 1 problem; nothing was stored".to_owned(),
            n if n > problems.listed.len() => format!(
                "The request has {n} problems (the first {} are listed); nothing was stored",
                problems.listed.len()
            ),
            n => format!("The request has {n} problems; nothing was stored"),
        };
        let mut error = Self::bad_request(title, json!(problems.listed));
        error.problems = problems.listed.into();
        error
    }

    pub fn not_found(title: impl Into<String>, details: Value) -> Self {
        Self::new(StatusCode::NOT_FOUND, title, details)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            json!({"error": "send a valid API key as Authorization: Bearer <key>"}),
        )
    }

    /// 403: the key lacks the scope the operation needs.
    pub fn forbidden_scope(scope: Option<gridroll_domain::scope::Scope>) -> Self {
        let details = match scope {
            Some(scope) => json!({
                "error": format!("this API key lacks the scope {scope}; use a key that has it"),
                "scope": scope.as_str(),
            }),
            None => json!({"error": "this operation is not open to API keys"}),
        };
        Self::new(StatusCode::FORBIDDEN, "Forbidden", details)
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large",
            json!({"limit_bytes": limit}),
        )
    }

    pub fn internal(error: &dyn std::error::Error) -> Self {
        let reference = uuid::Uuid::now_v7();
        tracing::error!(%reference, error = %error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An error happened whilst processing your request",
            json!({"reference": reference}),
        )
    }
}

/// One problem as Leap's `CreateMeterError`.
fn create_meter_error(problem: &Problem) -> Value {
    let mut error = json!({"description": problem.message});
    if let Some(field) = &problem.problem_field {
        error["field"] = json!(field);
    }
    if let Some(suggestion) = &problem.suggestion {
        error["suggestions"] = json!([{"suggestions": [
            {"field": problem.problem_field, "suggestion": suggestion}
        ]}]);
    }
    error
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::StorageFull(location) => Self::storage_full(&location),
            other => Self::internal(&other),
        }
    }
}

impl From<PartnerProgramsError> for ApiError {
    fn from(error: PartnerProgramsError) -> Self {
        match error {
            PartnerProgramsError::NoSuchPartner => {
                Self::not_found("Partner not found", json!({"error": error.to_string()}))
            }
            PartnerProgramsError::NoProgram => Self::bad_request(
                "A partner needs at least one program",
                json!({"error": "list the programs, or send null to allow every program"}),
            ),
            PartnerProgramsError::UnknownPrograms(programs) => {
                Self::bad_request("Unknown programs", json!({"programs": programs}))
            }
            PartnerProgramsError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    /// 507: the database has no room for the request's change, which was not made.
    pub fn storage_full(location: &str) -> Self {
        let reference = uuid::Uuid::now_v7();
        tracing::error!(%reference, location, "no storage left: a request was refused");
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "The server has no storage left; nothing was stored",
            json!({
                "error": "the server's database is full; send the request again once the operator has made room",
                "reference": reference,
            }),
        )
    }
}

/// The wire shape of every error, fields in the contract's order, then the id of the
/// request (also in its `x-request-id` header) for reports to the operator.
#[derive(serde::Serialize)]
struct ErrorBody {
    title: String,
    status: u16,
    details: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(flatten)]
    members: Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            title: self.title,
            status: self.status.as_u16(),
            details: self.details,
            request_id: crate::telemetry::request_id(),
            members: *self.members,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}
