//! Legal documents, the FAQ and support requests.
//!
//! The documents are Markdown files in `legal_dir`, read on every request. A line
//! `Last updated: YYYY-MM-DD` in a document sets its `last_updated`; without one the file's
//! modification date is used.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{ErrorBody, Faq, LegalDocument};
use super::ApiJson;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::mail::OutgoingMail;
use crate::state::AppState;
use crate::store::now;
use crate::store::support::SupportTicket;

pub const CATEGORIES: [&str; 5] = ["technical", "billing", "account", "feature_request", "other"];
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
const SUBJECT_MAX: usize = 200;
const MESSAGE_MAX: usize = 10_000;
const TICKET_ATTEMPTS: u32 = 5;

async fn read_document(state: &AppState, file: &str) -> ApiResult<(String, String)> {
    let path = state.config.legal_dir.join(file);
    let content = tokio::fs::read_to_string(&path).await.map_err(|error| {
        tracing::error!(path = %path.display(), %error, "failed to read a legal document");
        ApiError::Unavailable(format!("the document {file} is not available on this server"))
    })?;
    let stated = content.lines().find_map(|line| {
        line.trim().trim_matches('*').trim().strip_prefix("Last updated:").map(|date| date.trim().to_owned())
    });
    let last_updated = match stated {
        Some(date) => date,
        None => tokio::fs::metadata(&path)
            .await
            .and_then(|metadata| metadata.modified())
            .map(|time| chrono::DateTime::<chrono::Utc>::from(time).format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    };
    Ok((content, last_updated))
}

async fn document(state: &AppState, file: &str, title: &str) -> ApiResult<Json<Value>> {
    let (content, last_updated) = read_document(state, file).await?;
    Ok(Json(json!({ "title": title, "content": content, "last_updated": last_updated })))
}

#[utoipa::path(
    get,
    path = "/api/v1/legal/terms",
    tag = "legal",
    operation_id = "get_terms",
    summary = "Get the terms of service",
    responses(
        (status = 200, description = "The Markdown document", body = LegalDocument),
        (status = 503, description = "The document is missing from the server's legal directory (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn terms(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    document(&state, "terms.md", "Terms of Service").await
}

#[utoipa::path(
    get,
    path = "/api/v1/legal/privacy",
    tag = "legal",
    operation_id = "get_privacy_policy",
    summary = "Get the privacy policy",
    responses(
        (status = 200, description = "The Markdown document", body = LegalDocument),
        (status = 503, description = "The document is missing from the server's legal directory (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn privacy(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    document(&state, "privacy.md", "Privacy Policy").await
}

#[utoipa::path(
    get,
    path = "/api/v1/legal/dpa",
    tag = "legal",
    operation_id = "get_dpa",
    summary = "Get the data processing agreement",
    responses(
        (status = 200, description = "The Markdown document", body = LegalDocument),
        (status = 503, description = "The document is missing from the server's legal directory (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn dpa(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    document(&state, "dpa.md", "Data Processing Agreement").await
}

/// Parses the FAQ: `## Category` headings, `### Question` headings and answer paragraphs.
fn parse_faq(content: &str) -> Value {
    let mut categories: Vec<String> = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    let mut question: Option<String> = None;
    let mut answer = String::new();
    let mut numbers: Vec<usize> = Vec::new();

    let finish = |question: &mut Option<String>,
                  answer: &mut String,
                  categories: &[String],
                  numbers: &mut Vec<usize>,
                  items: &mut Vec<Value>| {
        if let (Some(text), Some(category)) = (question.take(), categories.last()) {
            let index = categories.len() - 1;
            numbers[index] += 1;
            items.push(json!({
                "id": format!("{}-{}", super::validate::slugify(category), numbers[index]),
                "question": text,
                "answer": answer.trim(),
                "category": category,
            }));
        }
        answer.clear();
    };
    for line in content.lines() {
        if let Some(category) = line.strip_prefix("## ") {
            finish(&mut question, &mut answer, &categories, &mut numbers, &mut items);
            categories.push(category.trim().to_owned());
            numbers.push(0);
        } else if let Some(text) = line.strip_prefix("### ") {
            finish(&mut question, &mut answer, &categories, &mut numbers, &mut items);
            question = Some(text.trim().to_owned());
        } else if question.is_some() {
            answer.push_str(line);
            answer.push('\n');
        }
    }
    finish(&mut question, &mut answer, &categories, &mut numbers, &mut items);
    json!({ "categories": categories, "items": items })
}

#[utoipa::path(
    get,
    path = "/api/v1/faq",
    tag = "legal",
    operation_id = "get_faq",
    summary = "Get the FAQ",
    responses(
        (status = 200, description = "Questions grouped by category", body = Faq),
        (status = 503, description = "The document is missing from the server's legal directory (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn faq(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let (content, _) = read_document(&state, "faq.md").await?;
    Ok(Json(parse_faq(&content)))
}

#[derive(Deserialize, ToSchema)]
pub struct ContactRequest {
    /// `technical`, `billing`, `account`, `feature_request` or `other`.
    category: String,
    /// `low`, `medium`, `high` or `urgent`.
    priority: String,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    /// 1 to 10000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    message: String,
}

fn check_text(field: &'static str, text: &str, max: usize) -> ApiResult<String> {
    let trimmed = text.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > max {
        return Err(ApiError::validation(field, format!("must be 1 to {max} characters long, got {length}"), None));
    }
    Ok(trimmed.to_owned())
}

/// Builds the notification for support about a new ticket.
fn support_mail(state: &AppState, ticket: &SupportTicket, from: &str) -> OutgoingMail {
    OutgoingMail {
        to: state.config.support_email.clone(),
        reply_to: (!from.is_empty()).then(|| from.to_owned()),
        subject: format!("[{}] [{}/{}] {}", ticket.ticket_number, ticket.category, ticket.priority, ticket.subject),
        body: format!("Organization: {}\r\n\r\n{}\r\n", ticket.org_id, ticket.message),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/support/contact",
    tag = "legal",
    operation_id = "submit_support_request",
    summary = "Submit a support request",
    request_body(content = ContactRequest),
    responses(
        (status = 201, description = "The ticket is stored and e-mailed to support", body = super::openapi::schemas::SupportTicket),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn contact(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(request): ApiJson<ContactRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    if !CATEGORIES.contains(&request.category.as_str()) {
        return Err(ApiError::validation(
            "category",
            format!("unknown category {:?}; expected one of: {}", request.category, CATEGORIES.join(", ")),
            Value::from(request.category.as_str()),
        ));
    }
    if !PRIORITIES.contains(&request.priority.as_str()) {
        return Err(ApiError::validation(
            "priority",
            format!("unknown priority {:?}; expected one of: {}", request.priority, PRIORITIES.join(", ")),
            Value::from(request.priority.as_str()),
        ));
    }
    let subject = check_text("subject", &request.subject, SUBJECT_MAX)?;
    let message = check_text("message", &request.message, MESSAGE_MAX)?;
    let from = state.store.user_by_id(caller.user_id).await?.map(|user| user.email).unwrap_or_default();

    for _ in 0..TICKET_ATTEMPTS {
        let ticket = SupportTicket {
            id: Uuid::new_v4(),
            ticket_number: format!("TKT-{:06}", rand::thread_rng().gen_range(0..1_000_000)),
            org_id: caller.org.id,
            user_id: Some(caller.user_id),
            category: request.category.clone(),
            priority: request.priority.clone(),
            subject: subject.clone(),
            message: message.clone(),
            created_at: now(),
        };
        let entry = audit::entry(
            &caller,
            &meta,
            "support_ticket_created",
            format!("Support request {} submitted", ticket.ticket_number),
            json!({ "ticket_id": ticket.ticket_number, "category": ticket.category, "priority": ticket.priority }),
        );
        if !state.store.support().insert_ticket(&ticket, &entry).await? {
            continue;
        }
        // The ticket is stored, so a failed notification is logged by the mailer and the request
        // still succeeds.
        let mail = support_mail(&state, &ticket, &from);
        if state.mailer.send_logged("support_request", &mail).await.is_err() {
            tracing::error!(ticket = %ticket.ticket_number, "support was not notified of a new ticket");
        }
        let body = json!({ "ticket_id": ticket.ticket_number, "message": "Your support request has been received." });
        return Ok((StatusCode::CREATED, Json(body)));
    }
    Err(ApiError::Internal(anyhow::anyhow!("no free ticket number after {TICKET_ATTEMPTS} attempts")))
}

#[cfg(test)]
mod tests {
    use super::parse_faq;

    #[test]
    fn faq_groups_questions_by_category() {
        let faq = parse_faq("# FAQ\n\nIntro.\n\n## Getting Started\n\n### What is it?\n\nA mock server.\n\n### Second?\n\nYes.\n\n## Billing\n\n### How?\n\nStripe.\n");
        assert_eq!(faq["categories"], serde_json::json!(["Getting Started", "Billing"]));
        assert_eq!(faq["items"][0]["id"], "getting-started-1");
        assert_eq!(faq["items"][0]["answer"], "A mock server.");
        assert_eq!(faq["items"][1]["id"], "getting-started-2");
        assert_eq!(faq["items"][2]["category"], "Billing");
        assert_eq!(faq["items"][2]["id"], "billing-1");
    }
}
