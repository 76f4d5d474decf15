//! Parts of every operation that follow from the API's middleware and extractors rather than
//! from one handler: rate-limit headers and 429, 401 and the organization header for
//! authenticated routes, 413 for routes with a request body, and 500.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::{
    ContentBuilder, KnownFormat, Object, ObjectBuilder, Ref, RefOr, Required, Response, ResponseBuilder, SchemaFormat,
    Type,
};

/// The Stripe webhook is exempt from rate limiting because Stripe signs each delivery.
const UNLIMITED_PATHS: &[&str] = &["/api/v1/billing/webhook"];

/// Adds the shared responses, headers and parameters to every operation of `document`.
pub fn apply(document: &mut Document) {
    for (path, item) in document.paths.paths.iter_mut() {
        let rate_limited = path.starts_with("/api/") && !UNLIMITED_PATHS.contains(&path.as_str());
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            apply_to_operation(operation, rate_limited);
        }
    }
}

fn apply_to_operation(operation: &mut Operation, rate_limited: bool) {
    let authenticated = operation.security.as_ref().is_some_and(|requirements| !requirements.is_empty());
    let responses = &mut operation.responses.responses;
    if authenticated {
        responses.entry("401".to_owned()).or_insert_with(|| {
            error_response("Credentials are missing, invalid, expired or revoked (`UNAUTHORIZED`)").into()
        });
        operation.parameters.get_or_insert_with(Vec::new).push(organization_header());
    }
    if rate_limited {
        responses.entry("429".to_owned()).or_insert_with(|| {
            let mut response = error_response(
                "The organization's or client address's requests per minute are used up \
                 (`RATE_LIMIT_EXCEEDED`); retry after `Retry-After` seconds",
            );
            response.headers.insert("Retry-After".to_owned(), integer_header("Seconds until the request may be retried"));
            response.into()
        });
    }
    if operation.request_body.is_some() {
        responses.entry("413".to_owned()).or_insert_with(|| {
            error_response(
                "The body exceeds the route's size limit; `details.max_bytes` is the limit in bytes (`PAYLOAD_TOO_LARGE`)",
            )
            .into()
        });
    }
    responses
        .entry("500".to_owned())
        .or_insert_with(|| error_response("An unexpected server-side failure (`INTERNAL_ERROR`)").into());
    if rate_limited {
        for response in responses.values_mut() {
            if let RefOr::T(response) = response {
                add_rate_limit_headers(response);
            }
        }
    }
}

/// Returns a response whose JSON body is the shared error schema.
fn error_response(description: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}

fn add_rate_limit_headers(response: &mut Response) {
    let headers = [
        ("X-RateLimit-Limit", "Requests allowed in the current one-minute window"),
        ("X-RateLimit-Remaining", "Requests left in the current window"),
        ("X-RateLimit-Reset", "Unix time in seconds when the window ends"),
    ];
    for (name, description) in headers {
        response.headers.entry(name.to_owned()).or_insert_with(|| integer_header(description));
    }
}

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new().schema(integer_schema()).description(Some(description)).build()
}

fn integer_schema() -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build()
}

fn organization_header() -> Parameter {
    let uuid = ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))).build();
    ParameterBuilder::new()
        .name("X-Organization-Id")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "JWT requests only: the organization to act on, which the user must be a member of \
             (404 otherwise). Without it a JWT request acts on the user's personal organization. \
             An API token always acts on its own organization.",
        ))
        .schema(Some(uuid))
        .build()
}
