//! One compiled deployment: request in, response out.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::generate::{generate, generate_page, mix, PageCut};
use crate::paging::{PageRequest, Paging};
use crate::negotiate::{choose_media_type, essence};
use crate::router::{decode_component, RouteEntry, Router};
use crate::schema::{SchemaArena, SchemaId};
use crate::template::{expand, Escaping, TemplateContext};
use crate::validate::{
    validate_request, ParameterSpec, RequestBodySpec, RequestParts, Violation,
};
use crate::{MockOptions, Validation};

/// The `Access-Control-Max-Age` of preflight responses, in seconds.
const PREFLIGHT_MAX_AGE_SECONDS: &str = "86400";
/// The number of independently locked shards of the generated-body cache, so that requests for
/// different bodies rarely wait on the same lock.
const GENERATED_CACHE_SHARDS: usize = 16;
/// The maximum number of generated bodies kept per shard. A full shard is emptied.
const GENERATED_CACHE_SHARD_ENTRIES: usize = 256;
/// The maximum total body bytes kept per shard, so a mock's cache stores at most 16 MiB.
const GENERATED_CACHE_SHARD_BYTES: usize = 1024 * 1024;
/// Generated bodies larger than this many bytes are not cached.
const GENERATED_CACHE_MAX_BODY: usize = 256 * 1024;
/// The response header that lists validation problems when validation is `warn`.
pub const VALIDATION_WARNING_HEADER: &str = "x-mockforge-validation";
/// The `Prefer` request header (RFC 7240), as a name that lookups do not parse again.
const PREFER: HeaderName = HeaderName::from_static("prefer");

/// One compiled deployment: request in, response out.
pub struct Mock {
    pub(crate) title: String,
    pub(crate) operations: Vec<Operation>,
    pub(crate) router: Router,
    pub(crate) schemas: SchemaArena,
    pub(crate) options: MockOptions,
    /// Generated bodies by request seed and media type. Generation is deterministic, so a cached
    /// body is the body that generation would return again. NOTE: keys are 64-bit hashes, so two
    /// requests whose seeds collide would share a body.
    pub(crate) generated: GeneratedCache,
}

/// Generated bodies in shards, each behind its own lock and bounded in entries and bytes.
/// Response header set when the mock's page limits cut a requested page short, for example
/// `250 of 1000 items`.
pub const PAGE_CUT_HEADER: &str = "x-mockforge-page-truncated";

fn page_cut_value(cut: PageCut) -> HeaderValue {
    HeaderValue::from_str(&format!("{} of {} items", cut.served, cut.requested))
        .expect("digits and ASCII words are a valid header value")
}

#[derive(Default)]
pub(crate) struct GeneratedCache {
    shards: [RwLock<CacheShard>; GENERATED_CACHE_SHARDS],
}

#[derive(Default)]
struct CacheShard {
    bodies: HashMap<u64, GeneratedBody>,
    bytes: usize,
}

/// A generated body, with how the page limits cut its collection short, if they did.
#[derive(Debug, Clone)]
pub(crate) struct GeneratedBody {
    pub(crate) body: Bytes,
    pub(crate) cut: Option<PageCut>,
}

impl GeneratedCache {
    fn shard(&self, seed: u64) -> &RwLock<CacheShard> {
        &self.shards[(seed % GENERATED_CACHE_SHARDS as u64) as usize]
    }

    fn get(&self, seed: u64) -> Option<GeneratedBody> {
        let shard = self.shard(seed).read().ok()?;
        shard.bodies.get(&seed).cloned()
    }

    fn insert(&self, seed: u64, generated: &GeneratedBody) {
        let body = &generated.body;
        if body.len() > GENERATED_CACHE_MAX_BODY {
            return;
        }
        let Ok(mut shard) = self.shard(seed).write() else {
            return;
        };
        let full = shard.bodies.len() >= GENERATED_CACHE_SHARD_ENTRIES
            || shard.bytes + body.len() > GENERATED_CACHE_SHARD_BYTES;
        if full {
            shard.bodies.clear();
            shard.bytes = 0;
        }
        if shard.bodies.insert(seed, generated.clone()).is_none() {
            shard.bytes += body.len();
        }
    }

    /// Returns the number of cached bodies and their total size in bytes.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(count, bytes), shard| {
            let shard = shard.read().unwrap();
            (count + shard.bodies.len(), bytes + shard.bytes)
        })
    }
}

/// A compiled operation with all its declared responses.
pub(crate) struct Operation {
    pub method: Method,
    /// The path template as the document writes it, such as `/pets/{petId}`.
    pub path: String,
    /// The document's `operationId`, if it declares one.
    pub operation_id: Option<String>,
    /// The seed of generated values, from the method and path template.
    pub seed: u64,
    /// Declared responses in document order.
    pub responses: Vec<CompiledResponse>,
    /// The response served without a `Prefer` header; `None` serves an empty 200.
    pub default_response: Option<usize>,
    pub parameters: Vec<ParameterSpec>,
    pub request_body: Option<RequestBodySpec>,
    /// Page-size and page-position query parameters, for generated list bodies.
    pub paging: Paging,
}

/// One declared response of an operation.
pub(crate) struct CompiledResponse {
    /// The key in `responses`: a status code, a range such as `4XX`, or `default`.
    pub key: String,
    pub status: StatusCode,
    /// Declared media types in document order, for negotiation.
    pub media_types: Vec<String>,
    pub content: Vec<MediaContent>,
    pub headers: Vec<ResponseHeader>,
}

pub(crate) struct MediaContent {
    pub content_type: HeaderValue,
    pub body: Body,
    /// Named examples, rendered, for `Prefer: example=NAME`.
    pub examples: Vec<(String, Bytes)>,
    /// The schema, for `Prefer: dynamic=true`.
    pub schema: Option<SchemaId>,
}

/// The preferences a client sets in `Prefer` headers (`code=404`, `example=cat`, `dynamic=true`),
/// the convention of mock servers such as Stoplight Prism.
#[derive(Debug, Default)]
struct Preference<'r> {
    code: Option<u16>,
    example: Option<&'r str>,
    dynamic: bool,
}

impl<'r> Preference<'r> {
    fn parse(headers: &'r HeaderMap) -> Preference<'r> {
        let mut preference = Preference::default();
        for value in headers.get_all(PREFER) {
            let Ok(text) = value.to_str() else { continue };
            for token in text.split([',', ';']) {
                let Some((name, value)) = token.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "code" => preference.code = value.parse().ok(),
                    "example" => preference.example = Some(value),
                    "dynamic" => preference.dynamic = value.eq_ignore_ascii_case("true"),
                    _ => {}
                }
            }
        }
        preference
    }
}

impl Operation {
    /// Picks the response sent with a status: the exact code, else its range, else `default`.
    pub(crate) fn response_for_status(&self, status: StatusCode) -> Option<&CompiledResponse> {
        self.response_for_code(status.as_u16())
            .map(|(response, _)| response)
    }

    /// Picks the response for a preferred status: the exact code, else its range (`4XX`), else
    /// `default`. Returns the response and the status to send.
    fn response_for_code(&self, code: u16) -> Option<(&CompiledResponse, StatusCode)> {
        let status = StatusCode::from_u16(code).ok()?;
        let exact = code.to_string();
        let range = format!("{}XX", code / 100);
        let found = self
            .responses
            .iter()
            .find(|response| response.key == exact)
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|response| response.key.eq_ignore_ascii_case(&range))
            })
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|response| response.key == "default")
            })?;
        Some((found, status))
    }
}

pub(crate) enum Body {
    /// An example rendered at compile time.
    Static(Bytes),
    /// A schema to generate a value from per request.
    Schema(SchemaId),
    Empty,
}

pub(crate) struct ResponseHeader {
    pub name: HeaderName,
    pub value: HeaderSource,
}

pub(crate) enum HeaderSource {
    Static(HeaderValue),
    Schema(SchemaId),
}

/// A request as the engine receives it. `path` is the raw (still percent-encoded) path below the
/// deployment prefix, starting with `/`.
pub struct MockRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A complete response. Transport headers (`Content-Length`, `Date`) are the server's job.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Reason a request got no mock response. The server turns each into its error format.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MockError {
    #[error("no route matches {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("method {method} is not allowed on {path}; allowed: {}", allow.join(", "))]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: Vec<String>,
    },
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// No declared media type satisfies the request's `Accept` header.
    #[error("none of the available media types ({}) is acceptable for Accept: {accept}", available.join(", "))]
    NotAcceptable {
        accept: String,
        available: Vec<String>,
    },
}

impl Mock {
    /// Returns the number of compiled operations.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    /// Returns the document's `info.title`, or an empty string when it has none.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Returns the index of the operation that serves `method` at a raw request path, or `None`
    /// when no route matches. `HEAD` finds the `GET` operation unless one is declared.
    pub fn find_operation(&self, method: &Method, path: &str) -> Option<usize> {
        let (path_match, has_method) = self.router.find(path, |entries| {
            entries.iter().any(|entry| serves(entry, method))
        })?;
        if !has_method {
            return None;
        }
        select_entry(&path_match.entries, method).map(|entry| entry.operation)
    }

    /// Builds the response to one request.
    pub fn respond(&self, request: &MockRequest<'_>) -> Result<MockResponse, MockError> {
        let method = request.method;
        let origin = request.headers.get(header::ORIGIN);

        if method == Method::OPTIONS
            && self.options.cors_enabled
            && request
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return self.preflight(request);
        }

        let found = self.router.find(request.path, |entries| {
            entries.iter().any(|entry| serves(entry, method))
        });
        let Some((path_match, has_method)) = found else {
            return Err(MockError::NoRoute {
                method: method.to_string(),
                path: request.path.to_owned(),
            });
        };
        if !has_method {
            return Err(MockError::MethodNotAllowed {
                method: method.to_string(),
                path: request.path.to_owned(),
                allow: self.allow_list(request.path),
            });
        }
        let entry = select_entry(&path_match.entries, method)
            .expect("the router only returns leaves that serve the method");

        let path_parameters = decode_path_parameters(&path_match.captures, &entry.capture_names)?;
        let operation = &self.operations[entry.operation];
        let violations = self.validate(operation, request, &path_parameters);
        let mut response = if !violations.is_empty()
            && self.options.validation == Validation::Enforce
        {
            self.reject(operation, request, &violations)
        } else {
            let mut response = self.render(operation, request)?;
            if self.options.response_template_expand && !response.body.is_empty() {
                self.expand_templates(&mut response, request, &path_parameters);
            }
            response
        };
        if !violations.is_empty() {
            let summaries: Vec<String> = violations.iter().map(Violation::summary).collect();
            let mut summary = summaries.join("; ");
            summary.truncate(summary.floor_char_boundary(1024));
            if let Ok(value) = HeaderValue::from_str(&summary) {
                response.headers.insert(VALIDATION_WARNING_HEADER, value);
            }
        }
        if method == Method::HEAD {
            // A HEAD response states the length a GET body would have (RFC 9110, section 8.6);
            // the server sends the headers without the body.
            let length = HeaderValue::from(response.body.len());
            response.headers.insert(header::CONTENT_LENGTH, length);
            response.body = Bytes::new();
        }
        if let Some(origin) = origin.filter(|_| self.options.cors_enabled) {
            // Declared headers (all but Content-Type, which browsers always expose) are exposed.
            let exposed: Vec<&str> = response
                .headers
                .keys()
                .filter(|name| **name != header::CONTENT_TYPE)
                .map(|name| name.as_str())
                .collect();
            let exposed = exposed.join(", ");
            add_allow_origin(&mut response.headers, origin);
            if !exposed.is_empty() {
                if let Ok(value) = HeaderValue::from_str(&exposed) {
                    response
                        .headers
                        .insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
                }
            }
        }
        Ok(response)
    }

    /// Builds the response to a request that failed validation: the operation's own 422 or 400
    /// response when it declares one, else a 422 problem document (RFC 9457) that lists each
    /// violation.
    fn reject(
        &self,
        operation: &Operation,
        request: &MockRequest<'_>,
        violations: &[Violation],
    ) -> MockResponse {
        let declared = ["422", "400"].iter().find_map(|key| {
            operation
                .responses
                .iter()
                .find(|response| response.key == *key)
        });
        if let Some(response) = declared {
            let rendered = self.render_response(
                operation,
                request,
                response,
                response.status,
                &Preference::default(),
            );
            if let Ok(rendered) = rendered {
                return rendered;
            }
        }
        problem_response(violations)
    }

    /// Checks a request against the operation unless validation is off.
    fn validate(
        &self,
        operation: &Operation,
        request: &MockRequest<'_>,
        path_parameters: &[(&str, String)],
    ) -> Vec<Violation> {
        let has_declarations = !operation.parameters.is_empty() || operation.request_body.is_some();
        if self.options.validation == Validation::Off || !has_declarations {
            return Vec::new();
        }
        let parts = RequestParts {
            path_parameters,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        validate_request(
            &self.schemas,
            &operation.parameters,
            operation.request_body.as_ref(),
            &parts,
        )
    }

    fn render(
        &self,
        operation: &Operation,
        request: &MockRequest<'_>,
    ) -> Result<MockResponse, MockError> {
        let preference = Preference::parse(request.headers);
        let chosen = match preference
            .code
            .and_then(|code| operation.response_for_code(code))
        {
            Some(chosen) => Some(chosen),
            None => operation.default_response.map(|index| {
                let response = &operation.responses[index];
                (response, response.status)
            }),
        };
        let Some((response, status)) = chosen else {
            return Ok(MockResponse {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            });
        };
        self.render_response(operation, request, response, status, &preference)
    }

    /// Renders one declared response: the media type chosen from `Accept`, its body and the
    /// declared headers.
    fn render_response(
        &self,
        operation: &Operation,
        request: &MockRequest<'_>,
        response: &CompiledResponse,
        status: StatusCode,
        preference: &Preference<'_>,
    ) -> Result<MockResponse, MockError> {
        let seed = mix(mix(operation.seed, request.path), &response.key);
        let mut headers = HeaderMap::new();
        let mut body = Bytes::new();

        let allows_body = !matches!(status.as_u16(), 204 | 304) && !status.is_informational();
        if allows_body && !response.content.is_empty() {
            let accept = request
                .headers
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok());
            let index = match choose_media_type(&response.media_types, accept) {
                Some(index) => index,
                None if !self.options.strict_accept => 0,
                None => {
                    return Err(MockError::NotAcceptable {
                        accept: accept.unwrap_or_default().to_owned(),
                        available: response.media_types.clone(),
                    })
                }
            };
            let content = &response.content[index];
            let media_type = &response.media_types[index];
            let named = preference
                .example
                .and_then(|name| content.examples.iter().find(|(known, _)| known == name));
            let page = operation.paging.request(request.query, mix(seed, media_type));
            body = match (named, content.schema, &content.body) {
                (Some((_, example)), _, _) => example.clone(),
                (None, Some(schema), _) if preference.dynamic => {
                    self.generated_body(schema, page, media_type, &mut headers)
                }
                (None, _, Body::Static(bytes)) => bytes.clone(),
                (None, _, Body::Schema(schema)) => {
                    self.generated_body(*schema, page, media_type, &mut headers)
                }
                (None, _, Body::Empty) => Bytes::new(),
            };
            headers.insert(header::CONTENT_TYPE, content.content_type.clone());
        }

        for declared in &response.headers {
            let value = match &declared.value {
                HeaderSource::Static(value) => Some(value.clone()),
                HeaderSource::Schema(schema) => {
                    generate(&self.schemas, *schema, mix(seed, declared.name.as_str()))
                        .and_then(|value| header_value(&value))
                }
            };
            if let Some(value) = value {
                headers.append(declared.name.clone(), value);
            }
        }

        Ok(MockResponse {
            status,
            headers,
            body,
        })
    }

    /// Replaces request placeholders such as `{{request.path.id}}` in the body.
    fn expand_templates(
        &self,
        response: &mut MockResponse,
        request: &MockRequest<'_>,
        path_parameters: &[(&str, String)],
    ) {
        let media_type = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(essence)
            .unwrap_or_default();
        let escaping = if media_type == "application/json" || media_type.ends_with("+json") {
            Escaping::Json
        } else if crate::xml::is_xml(&media_type) {
            Escaping::Xml
        } else {
            Escaping::None
        };
        let context = TemplateContext {
            method: request.method.as_str(),
            path: request.path,
            path_parameters,
            query: request.query,
            headers: request.headers,
        };
        if let Some(expanded) = expand(&response.body, &context, escaping) {
            response.body = Bytes::from(expanded.into_bytes());
        }
    }

    /// Generates (or takes from the cache) the body for a schema and request seed, and sets
    /// [`PAGE_CUT_HEADER`] in `headers` when the page limits cut the page short. The page's
    /// seed already contains its length, so one cache key never serves two lengths.
    fn generated_body(
        &self,
        schema: SchemaId,
        page: PageRequest,
        media_type: &str,
        headers: &mut HeaderMap,
    ) -> Bytes {
        let generated = self.generated.get(page.seed).unwrap_or_else(|| {
            let (value, cut) = generate_page(&self.schemas, schema, page.seed, page.length);
            let body = match value {
                Some(value) => render_value(&value, media_type, &self.schemas.root_name(schema)),
                None => Bytes::new(),
            };
            let generated = GeneratedBody { body, cut };
            self.generated.insert(page.seed, &generated);
            generated
        });
        if let Some(cut) = generated.cut {
            headers.insert(PAGE_CUT_HEADER, page_cut_value(cut));
        }
        generated.body
    }

    /// Builds the response to a CORS preflight for a known path.
    fn preflight(&self, request: &MockRequest<'_>) -> Result<MockResponse, MockError> {
        let allow = self.allow_list(request.path);
        if allow.is_empty() {
            return Err(MockError::NoRoute {
                method: request.method.to_string(),
                path: request.path.to_owned(),
            });
        }
        let mut headers = HeaderMap::new();
        match request.headers.get(header::ORIGIN) {
            Some(origin) => add_allow_origin(&mut headers, origin),
            None => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
        }
        if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        if let Some(requested) = request.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
        );
        Ok(MockResponse {
            status: StatusCode::NO_CONTENT,
            headers,
            body: Bytes::new(),
        })
    }

    /// Lists the methods served at a path, with `HEAD` added wherever `GET` is served.
    fn allow_list(&self, path: &str) -> Vec<String> {
        let methods = self.router.allowed_methods(path);
        let mut allow: Vec<String> = methods.iter().map(Method::to_string).collect();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            allow.push(Method::HEAD.to_string());
        }
        allow
    }
}

fn serves(entry: &RouteEntry, method: &Method) -> bool {
    entry.method == *method || (*method == Method::HEAD && entry.method == Method::GET)
}

/// Picks the entry for a method, falling back to `GET` for `HEAD`.
fn select_entry<'e>(entries: &'e [RouteEntry], method: &Method) -> Option<&'e RouteEntry> {
    entries
        .iter()
        .find(|entry| entry.method == *method)
        .or_else(|| {
            entries
                .iter()
                .filter(|_| *method == Method::HEAD)
                .find(|entry| entry.method == Method::GET)
        })
}

/// Percent-decodes the captured path values, pairing each with its parameter name. Server
/// variable captures are checked but not returned.
fn decode_path_parameters<'r>(
    captures: &[&str],
    names: &'r [Option<String>],
) -> Result<Vec<(&'r str, String)>, MockError> {
    let mut parameters = Vec::new();
    for (raw, name) in captures.iter().zip(names) {
        let Some(decoded) = decode_component(raw) else {
            let target = name.as_deref().map_or_else(
                || "server variable".to_owned(),
                |name| format!("path parameter `{name}`"),
            );
            return Err(MockError::BadRequest(format!(
                "{target} has the invalid percent-encoding {raw:?}; encode `%` as `%25`"
            )));
        };
        if let Some(name) = name {
            parameters.push((name.as_str(), decoded));
        }
    }
    Ok(parameters)
}

/// Builds the 422 problem document (RFC 9457) for a request that failed validation.
fn problem_response(violations: &[Violation]) -> MockResponse {
    let detail: Vec<String> = violations.iter().map(Violation::summary).collect();
    let listed: Vec<Value> = violations
        .iter()
        .map(|violation| {
            serde_json::json!({
                "location": violation.location_json(),
                "message": violation.message,
                "keyword": violation.keyword,
            })
        })
        .collect();
    let problem = serde_json::json!({
        "type": "about:blank",
        "title": "Request validation failed",
        "status": 422,
        "detail": detail.join("; "),
        "validation": listed,
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    MockResponse {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        headers,
        body: Bytes::from(serde_json::to_vec(&problem).unwrap_or_default()),
    }
}

fn add_allow_origin(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Serialises a value for a media type: the raw text of a string value for non-JSON types, XML
/// (with `root` as the root element) for XML types, and JSON otherwise.
pub(crate) fn render_value(value: &Value, media_type: &str, root: &str) -> Bytes {
    let essence = essence(media_type);
    let is_json =
        essence == "application/json" || essence.ends_with("+json") || essence.ends_with("/json");
    if !is_json {
        if let Value::String(text) = value {
            return Bytes::from(text.clone().into_bytes());
        }
        if crate::xml::is_xml(&essence) {
            return Bytes::from(crate::xml::to_xml(value, root).into_bytes());
        }
    }
    // TODO: form media types (such as `application/x-www-form-urlencoded`) get JSON text.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Converts a generated or example value to a header value. Returns `None` for values that are
/// not valid header text.
pub(crate) fn header_value(value: &Value) -> Option<HeaderValue> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Null => return None,
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cache_stays_bounded() {
        let cache = GeneratedCache::default();
        let generated = GeneratedBody {
            body: Bytes::from(vec![b'x'; 10 * 1024]),
            cut: Some(PageCut { requested: 9, served: 3 }),
        };
        for seed in 0..100_000u64 {
            cache.insert(seed, &generated);
        }
        let (count, bytes) = cache.usage();
        assert!(count <= GENERATED_CACHE_SHARDS * GENERATED_CACHE_SHARD_ENTRIES, "{count}");
        assert!(bytes <= GENERATED_CACHE_SHARDS * GENERATED_CACHE_SHARD_BYTES, "{bytes}");
        let cached = cache.get(99_999).unwrap();
        assert_eq!(cached.body, generated.body);
        assert_eq!(cached.cut, generated.cut);

        let large = GeneratedBody {
            body: Bytes::from(vec![b'x'; GENERATED_CACHE_MAX_BODY + 1]),
            cut: None,
        };
        cache.insert(7, &large);
        assert!(cache.get(7).is_none());
    }
}
