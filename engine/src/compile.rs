//! Compilation of a loaded document into a [`Mock`]: server base paths, routes and the
//! responses of every operation.

use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::document::{self, diagnostic, join_pointer, kind_name, Document};
use crate::generate::{mix, schema_example};
use crate::mock::{
    render_value, Body, CompiledResponse, HeaderSource, MediaContent, Mock, Operation,
    ResponseHeader,
};
use crate::negotiate::{choose_status, essence};
use crate::paging::Paging;
use crate::router::{parse_template, RouteEntry, RoutePrecedence, Router, SegmentTemplate};
use crate::schema::{SchemaId, SchemaLowerer};
use crate::validate::{Location, ParameterSpec, RequestBodySpec, Style};
use crate::{CompileError, Compiled, Diagnostic, MockOptions, Severity};

const METHODS: &[(&str, Method)] = &[
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// The XML root element name of media type examples that have no schema name at hand.
const XML_ROOT: &str = "root";

/// Response headers that describe the transport and are left to the server.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "content-type",
];

/// Compiles a document (OpenAPI 3.0 or 3.1, or Swagger 2.0; JSON or YAML text) into a mock.
pub fn compile(text: &str, options: MockOptions) -> Result<Compiled, CompileError> {
    let (document, mut warnings) =
        document::load(text).map_err(|diagnostics| CompileError { diagnostics })?;
    let mut compiler = Compiler {
        document: &document,
        lowerer: SchemaLowerer::new(&document.root, document.version),
        router: Router::new(options.ignore_trailing_slash),
        operations: Vec::new(),
        pending: Vec::new(),
        example_checks: Vec::new(),
        warnings: Vec::new(),
    };
    compiler.compile_paths();

    let Compiler {
        lowerer,
        router,
        mut operations,
        pending,
        example_checks,
        warnings: compile_warnings,
        ..
    } = compiler;
    let (mut schemas, schema_warnings, one_of_nodes) = lowerer.finish();
    let contradictions = schemas.flatten_all_of();
    warnings.extend(compile_warnings);
    warnings.extend(schema_warnings);
    for id in contradictions {
        let pointer = schemas.get(id).origin.as_deref().unwrap_or("").to_owned();
        warnings.push(diagnostic(
            Severity::Warning,
            pointer,
            "the `allOf` parts allow no common type, so no value satisfies this schema; no body is generated from it",
        ));
    }
    warnings.extend(crate::checks::required_cycles(&mut schemas));
    warnings.extend(crate::checks::one_of_overlaps(&schemas, &one_of_nodes));
    warnings.extend(crate::checks::example_mismatches(&schemas, &example_checks));

    for operation in &mut operations {
        operation.paging = Paging::detect(&operation.parameters, &schemas);
    }

    // Schemas with an example (their own or inherited) are rendered once here.
    for slot in pending {
        let response = &mut operations[slot.operation].responses[slot.response];
        let example = schema_example(&schemas, slot.schema);
        match slot.target {
            PendingTarget::Body(index) => {
                if let Some(example) = example {
                    let root = schemas.root_name(slot.schema);
                    let media_type = &response.media_types[index];
                    response.content[index].body =
                        Body::Static(render_value(&example, media_type, &root));
                }
            }
            PendingTarget::Header(index) => {
                if let Some(value) = example.as_ref().and_then(crate::mock::header_value) {
                    response.headers[index].value = HeaderSource::Static(value);
                }
            }
        }
    }

    let title = document
        .root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mock = Mock {
        title,
        operations,
        router,
        schemas,
        options,
        generated: Default::default(),
    };
    Ok(Compiled { mock, warnings })
}

enum PendingTarget {
    Body(usize),
    Header(usize),
}

/// A schema-backed body or header whose example can only be looked up once all schemas are
/// lowered.
struct PendingExample {
    operation: usize,
    response: usize,
    schema: SchemaId,
    target: PendingTarget,
}

struct Compiler<'d> {
    document: &'d Document,
    lowerer: SchemaLowerer<'d>,
    router: Router,
    operations: Vec<Operation>,
    pending: Vec<PendingExample>,
    /// Response examples to check against their schemas once all schemas are lowered.
    example_checks: Vec<crate::checks::ExampleCheck<'d>>,
    warnings: Vec<Diagnostic>,
}

impl<'d> Compiler<'d> {
    fn root(&self) -> &'d Value {
        &self.document.root
    }

    fn warn(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.warnings
            .push(diagnostic(Severity::Warning, pointer, message));
    }

    /// Follows a `$ref` chain, turning a failure into a warning.
    fn resolve(&mut self, node: &'d Value, pointer: &str) -> Option<(&'d Value, String)> {
        match document::resolve(self.root(), node, pointer) {
            Ok(found) => Some(found),
            Err(mut problem) => {
                problem.severity = Severity::Warning;
                self.warnings.push(problem);
                None
            }
        }
    }

    fn compile_paths(&mut self) {
        let root = self.root();
        let root_bases = self.base_paths(root.get("servers"), "/servers");
        let Some(Value::Object(paths)) = root.get("paths") else {
            return;
        };

        for (path, item) in paths {
            let item_pointer = join_pointer("/paths", path);
            if !path.starts_with('/') {
                if !path.starts_with("x-") {
                    self.warn(
                        &item_pointer,
                        format!("path {path:?} does not start with `/` and is skipped"),
                    );
                }
                continue;
            }
            let path = match path.split_once('?') {
                Some((before, _)) => {
                    self.warn(
                        &item_pointer,
                        format!("path {path:?} contains `?`; paths must not include a query, so it is served as {before:?}"),
                    );
                    before
                }
                None => path.as_str(),
            };
            let Some((item, _)) = self.resolve(item, &item_pointer) else {
                continue;
            };
            let Value::Object(item_object) = item else {
                if !item.is_null() {
                    self.warn(
                        &item_pointer,
                        format!(
                            "a path item must be an object, found {}; it is skipped",
                            kind_name(item)
                        ),
                    );
                }
                continue;
            };
            let segments = match parse_template(path) {
                Ok(segments) => segments,
                Err(message) => {
                    self.warn(&item_pointer, format!("{message}; the path is skipped"));
                    continue;
                }
            };
            let item_bases = match item_object.get("servers") {
                Some(servers) => {
                    self.base_paths(Some(servers), &join_pointer(&item_pointer, "servers"))
                }
                None => root_bases.clone(),
            };

            for (key, method) in METHODS {
                let Some(operation) = item_object.get(*key) else {
                    continue;
                };
                let operation_pointer = join_pointer(&item_pointer, key);
                let Value::Object(operation) = operation else {
                    self.warn(
                        &operation_pointer,
                        format!(
                            "an operation must be an object, found {}; it is skipped",
                            kind_name(operation)
                        ),
                    );
                    continue;
                };
                let bases = match operation.get("servers") {
                    Some(servers) => {
                        self.base_paths(Some(servers), &join_pointer(&operation_pointer, "servers"))
                    }
                    None => item_bases.clone(),
                };
                let index = self.compile_operation(method, path, operation, &operation_pointer);
                self.compile_request(
                    index,
                    item_object.get("parameters"),
                    &join_pointer(&item_pointer, "parameters"),
                    operation,
                    &operation_pointer,
                );
                self.check_path_parameters(index, path, &operation_pointer);
                self.add_routes(method, &segments, &bases, index);
            }
        }
    }

    /// Registers an operation under each server base path and without any base path.
    fn add_routes(
        &mut self,
        method: &Method,
        segments: &[SegmentTemplate],
        bases: &[Vec<SegmentTemplate>],
        operation: usize,
    ) {
        let path_names = capture_names(segments);
        let is_root = matches!(segments, [SegmentTemplate::Literal(text)] if text.is_empty());
        for base in bases {
            if base.is_empty() {
                continue;
            }
            let mut full = base.clone();
            full.extend_from_slice(segments);
            let mut names = capture_names(base);
            names.extend(path_names.iter().cloned());
            let has_variable = base
                .iter()
                .any(|segment| matches!(segment, SegmentTemplate::Parameter(_)));
            let precedence = if has_variable {
                RoutePrecedence::VariableBasePath
            } else {
                RoutePrecedence::LiteralBasePath
            };
            let entry = RouteEntry {
                method: method.clone(),
                operation,
                capture_names: names.clone(),
                precedence,
            };
            self.router.insert(&full, entry.clone());
            // The root path `/` under a base path is served at the base path itself as well.
            if is_root {
                self.router.insert(base, entry);
            }
        }
        let entry = RouteEntry {
            method: method.clone(),
            operation,
            capture_names: path_names,
            precedence: RoutePrecedence::Bare,
        };
        self.router.insert(segments, entry);
    }

    /// Reads the path part of each server URL. A variable with an `enum` expands to one base
    /// path per value, and one without matches any single segment.
    fn base_paths(
        &mut self,
        servers: Option<&'d Value>,
        pointer: &str,
    ) -> Vec<Vec<SegmentTemplate>> {
        let mut bases: Vec<Vec<SegmentTemplate>> = Vec::new();
        let Some(servers) = servers else { return bases };
        let Value::Array(servers) = servers else {
            self.warn(
                pointer,
                format!(
                    "`servers` must be an array, found {}; it is ignored",
                    kind_name(servers)
                ),
            );
            return bases;
        };
        for (index, server) in servers.iter().enumerate() {
            let server_pointer = format!("{pointer}/{index}");
            let Some(url) = server.get("url").and_then(Value::as_str) else {
                self.warn(
                    &server_pointer,
                    "a server has no `url` string; it is ignored",
                );
                continue;
            };
            let variables = server.get("variables").and_then(Value::as_object);
            for base in expand_server_path(server_path(url), variables) {
                if !bases.contains(&base) {
                    bases.push(base);
                }
            }
        }
        bases
    }

    fn compile_operation(
        &mut self,
        method: &Method,
        path: &str,
        operation: &'d Map<String, Value>,
        pointer: &str,
    ) -> usize {
        let index = self.operations.len();
        self.operations.push(Operation {
            method: method.clone(),
            path: path.to_owned(),
            operation_id: operation
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            seed: mix(0, &format!("{method} {path}")),
            responses: Vec::new(),
            default_response: None,
            parameters: Vec::new(),
            request_body: None,
            paging: Default::default(),
        });

        let responses_pointer = join_pointer(pointer, "responses");
        let responses = match operation.get("responses") {
            Some(Value::Object(responses)) => responses,
            Some(other) => {
                let message = format!(
                    "`responses` must be an object, found {}; an empty 200 response is served",
                    kind_name(other)
                );
                self.warn(&responses_pointer, message);
                return index;
            }
            None => {
                self.warn(
                    &responses_pointer,
                    "the operation has no `responses`; an empty 200 response is served",
                );
                return index;
            }
        };

        let mut compiled_responses = Vec::new();
        for (key, response) in responses {
            let Some(status) = response_status(key) else {
                if !key.starts_with("x-") {
                    let message = format!("response key {key:?} is not a status code, a range such as `4XX` or `default`; it is ignored");
                    self.warn(join_pointer(&responses_pointer, key), message);
                }
                continue;
            };
            let mut compiled = CompiledResponse {
                key: key.clone(),
                status,
                media_types: Vec::new(),
                content: Vec::new(),
                headers: Vec::new(),
            };
            let response_pointer = join_pointer(&responses_pointer, key);
            if let Some((response, response_pointer)) = self.resolve(response, &response_pointer) {
                let position = (index, compiled_responses.len());
                self.compile_response(position, &mut compiled, response, &response_pointer);
            }
            compiled_responses.push(compiled);
        }

        let default_key = choose_status(
            compiled_responses
                .iter()
                .map(|response| response.key.as_str()),
        )
        .map(|(key, _)| key.to_owned());
        let operation = &mut self.operations[index];
        operation.default_response = default_key.and_then(|key| {
            compiled_responses
                .iter()
                .position(|response| response.key == key)
        });
        operation.responses = compiled_responses;
        index
    }

    /// Warns about template names without a declared path parameter and the reverse.
    fn check_path_parameters(&mut self, index: usize, path: &str, pointer: &str) {
        let template_names: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        let declared: Vec<String> = self.operations[index]
            .parameters
            .iter()
            .filter(|parameter| parameter.location == Location::Path)
            .map(|parameter| parameter.name.clone())
            .collect();
        for name in &template_names {
            if !declared.iter().any(|known| known == name) {
                self.warn(
                    pointer,
                    format!("the path template has `{{{name}}}` but the operation declares no path parameter `{name}`; any value is accepted"),
                );
            }
        }
        for name in &declared {
            if !template_names.contains(&name.as_str()) {
                self.warn(
                    join_pointer(pointer, "parameters"),
                    format!("path parameter `{name}` is declared but the path template has no `{{{name}}}`; it is ignored"),
                );
            }
        }
        self.operations[index]
            .parameters
            .retain(|parameter| {
                parameter.location != Location::Path
                    || template_names.contains(&parameter.name.as_str())
            });
    }

    /// Reads the parameters (path-level ones first, replaced by operation-level ones with the
    /// same name and location) and the request body that validation checks.
    fn compile_request(
        &mut self,
        index: usize,
        item_parameters: Option<&'d Value>,
        item_pointer: &str,
        operation: &'d Map<String, Value>,
        pointer: &str,
    ) {
        let mut parameters: Vec<ParameterSpec> = Vec::new();
        let operation_parameters = (
            operation.get("parameters"),
            join_pointer(pointer, "parameters"),
        );
        for (list, list_pointer) in [
            (item_parameters, item_pointer.to_owned()),
            operation_parameters,
        ] {
            let Some(list) = list else { continue };
            let Value::Array(list) = list else {
                self.warn(
                    &list_pointer,
                    format!(
                        "`parameters` must be an array, found {}; it is ignored",
                        kind_name(list)
                    ),
                );
                continue;
            };
            for (position, parameter) in list.iter().enumerate() {
                let parameter_pointer = format!("{list_pointer}/{position}");
                let Some((parameter, parameter_pointer)) =
                    self.resolve(parameter, &parameter_pointer)
                else {
                    continue;
                };
                let Some(spec) = self.compile_parameter(parameter, &parameter_pointer) else {
                    continue;
                };
                parameters
                    .retain(|known| known.name != spec.name || known.location != spec.location);
                parameters.push(spec);
            }
        }

        let body_pointer = join_pointer(pointer, "requestBody");
        let request_body = match operation.get("requestBody") {
            Some(body) => self
                .resolve(body, &body_pointer)
                .and_then(|(body, body_pointer)| self.compile_request_body(body, &body_pointer)),
            None => None,
        };

        let compiled = &mut self.operations[index];
        compiled.parameters = parameters;
        compiled.request_body = request_body;
    }

    fn compile_parameter(&mut self, parameter: &'d Value, pointer: &str) -> Option<ParameterSpec> {
        let Value::Object(object) = parameter else {
            self.warn(
                pointer,
                format!(
                    "a parameter must be an object, found {}; it is ignored",
                    kind_name(parameter)
                ),
            );
            return None;
        };
        let Some(name) = object.get("name").and_then(Value::as_str) else {
            self.warn(pointer, "a parameter has no `name` string; it is ignored");
            return None;
        };
        let location_text = object.get("in").and_then(Value::as_str).unwrap_or_default();
        let Some(location) = Location::parse(location_text) else {
            if location_text != "body" && location_text != "formData" {
                self.warn(pointer, format!("parameter `{name}` has the unknown location {location_text:?}; it is ignored"));
            }
            return None;
        };
        // Header parameters named Accept, Content-Type or Authorization are ignored by OpenAPI.
        if location == Location::Header
            && ["accept", "content-type", "authorization"]
                .contains(&name.to_ascii_lowercase().as_str())
        {
            return None;
        }
        let required = location == Location::Path
            || object
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let schema = object
            .get("schema")
            .map(|_| self.lowerer.lower_at(&join_pointer(pointer, "schema")));
        let style = match object.get("style").and_then(Value::as_str) {
            Some(text) => Style::parse(text).unwrap_or_else(|| {
                self.warn(
                    join_pointer(pointer, "style"),
                    format!("parameter `{name}` has the unknown style {text:?}; the default style is used"),
                );
                Style::default_for(location)
            }),
            None => Style::default_for(location),
        };
        let explode = object
            .get("explode")
            .and_then(Value::as_bool)
            .unwrap_or(style == Style::Form);
        Some(ParameterSpec {
            name: name.to_owned(),
            location,
            required,
            style,
            explode,
            schema,
        })
    }

    fn compile_request_body(&mut self, body: &'d Value, pointer: &str) -> Option<RequestBodySpec> {
        let Value::Object(object) = body else {
            self.warn(
                pointer,
                format!(
                    "a request body must be an object, found {}; it is ignored",
                    kind_name(body)
                ),
            );
            return None;
        };
        let mut spec = RequestBodySpec {
            required: object
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            media: Vec::new(),
        };
        if let Some(Value::Object(content)) = object.get("content") {
            let content_pointer = join_pointer(pointer, "content");
            for (media_type, media) in content {
                let media_pointer = join_pointer(&content_pointer, media_type);
                let schema = media.get("schema").map(|_| {
                    self.lowerer
                        .lower_at(&join_pointer(&media_pointer, "schema"))
                });
                spec.media.push((essence(media_type), schema));
            }
        }
        Some(spec)
    }

    /// Compiles one response; `position` is the operation index and the response index.
    fn compile_response(
        &mut self,
        position: (usize, usize),
        compiled: &mut CompiledResponse,
        response: &'d Value,
        pointer: &str,
    ) {
        let Value::Object(response) = response else {
            self.warn(
                pointer,
                format!(
                    "a response must be an object, found {}; an empty body is served",
                    kind_name(response)
                ),
            );
            return;
        };

        let forbids_body = matches!(compiled.status.as_u16(), 204 | 304) && compiled.key != "default";
        let has_content = response
            .get("content")
            .and_then(Value::as_object)
            .is_some_and(|content| !content.is_empty());
        if forbids_body && has_content {
            self.warn(
                join_pointer(pointer, "content"),
                format!("a {} response has no body, so its declared content is never sent", compiled.status.as_u16()),
            );
        }
        if let Some(content) = response.get("content") {
            let content_pointer = join_pointer(pointer, "content");
            match content {
                Value::Object(content) => {
                    for (media_type, media) in content {
                        let media_pointer = join_pointer(&content_pointer, media_type);
                        let Ok(content_type) = HeaderValue::from_str(media_type) else {
                            self.warn(&media_pointer, format!("media type {media_type:?} is not a valid header value; it is skipped"));
                            continue;
                        };
                        let target = PendingTarget::Body(compiled.content.len());
                        let mut content =
                            self.compile_media(position, target, media_type, media, &media_pointer);
                        content.content_type = content_type;
                        compiled.media_types.push(media_type.clone());
                        compiled.content.push(content);
                    }
                }
                other => self.warn(
                    &content_pointer,
                    format!(
                        "`content` must be an object, found {}; it is ignored",
                        kind_name(other)
                    ),
                ),
            }
        }

        if let Some(headers) = response.get("headers") {
            let headers_pointer = join_pointer(pointer, "headers");
            let Value::Object(headers) = headers else {
                self.warn(
                    &headers_pointer,
                    format!(
                        "`headers` must be an object, found {}; it is ignored",
                        kind_name(headers)
                    ),
                );
                return;
            };
            for (name, header) in headers {
                let header_pointer = join_pointer(&headers_pointer, name);
                if TRANSPORT_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    self.warn(
                        &header_pointer,
                        format!("`{name}` is a transport header that the server sets; the declared header is never sent"),
                    );
                    continue;
                }
                let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
                    self.warn(
                        &header_pointer,
                        format!("{name:?} is not a valid header name; the header is skipped"),
                    );
                    continue;
                };
                let Some((header, header_pointer)) = self.resolve(header, &header_pointer) else {
                    continue;
                };
                let target = PendingTarget::Header(compiled.headers.len());
                if let Some(value) = self.compile_header(position, target, header, &header_pointer)
                {
                    compiled.headers.push(ResponseHeader {
                        name: header_name,
                        value,
                    });
                }
            }
        }
    }

    /// Compiles a media type object: its default body, its named examples (for `Prefer:
    /// example=NAME`) and its schema (for `Prefer: dynamic=true`).
    fn compile_media(
        &mut self,
        position: (usize, usize),
        target: PendingTarget,
        media_type: &str,
        media: &'d Value,
        pointer: &str,
    ) -> MediaContent {
        let mut content = MediaContent {
            content_type: HeaderValue::from_static("application/octet-stream"),
            body: Body::Empty,
            examples: Vec::new(),
            schema: None,
        };
        let Value::Object(media) = media else {
            if !media.is_null() {
                self.warn(pointer, format!("a media type object must be an object, found {}; an empty body is served", kind_name(media)));
            }
            return content;
        };

        for (name, example) in
            self.named_examples(media.get("examples"), &join_pointer(pointer, "examples"))
        {
            content
                .examples
                .push((name.to_owned(), render_value(example, media_type, XML_ROOT)));
        }
        if let Some(schema) = media.get("schema") {
            content.schema = Some(
                self.lowerer
                    .lower_inline(schema, &join_pointer(pointer, "schema")),
            );
        }

        if let Some(schema) = content.schema {
            let named = self.named_example_pointers(media.get("examples"), pointer);
            let own = media
                .get("example")
                .map(|example| (example, join_pointer(pointer, "example")));
            for (value, example_pointer) in own.into_iter().chain(named) {
                self.example_checks.push(crate::checks::ExampleCheck {
                    pointer: example_pointer,
                    schema,
                    value,
                });
            }
        }
        if let Some(example) = media.get("example") {
            content.body = Body::Static(render_value(example, media_type, XML_ROOT));
        } else if let Some((_, first)) = content.examples.first() {
            content.body = Body::Static(first.clone());
        } else if let Some(schema) = content.schema {
            let (operation, response) = position;
            self.pending.push(PendingExample {
                operation,
                response,
                schema,
                target,
            });
            content.body = Body::Schema(schema);
        }
        content
    }

    fn compile_header(
        &mut self,
        position: (usize, usize),
        target: PendingTarget,
        header: &'d Value,
        pointer: &str,
    ) -> Option<HeaderSource> {
        if let Some(example) = header.get("example") {
            return crate::mock::header_value(example).map(HeaderSource::Static);
        }
        let examples =
            self.named_examples(header.get("examples"), &join_pointer(pointer, "examples"));
        if let Some((_, example)) = examples.first() {
            return crate::mock::header_value(example).map(HeaderSource::Static);
        }
        let schema = header.get("schema")?;
        let schema = self
            .lowerer
            .lower_inline(schema, &join_pointer(pointer, "schema"));
        let (operation, response) = position;
        self.pending.push(PendingExample {
            operation,
            response,
            schema,
            target,
        });
        Some(HeaderSource::Schema(schema))
    }

    /// Returns the `value` of each inline Example Object with its pointer, for checks.
    fn named_example_pointers(
        &self,
        examples: Option<&'d Value>,
        pointer: &str,
    ) -> Vec<(&'d Value, String)> {
        let Some(Value::Object(examples)) = examples else {
            return Vec::new();
        };
        let examples_pointer = join_pointer(pointer, "examples");
        examples
            .iter()
            .filter_map(|(name, example)| {
                let value = example.get("value")?;
                let value_pointer = join_pointer(&join_pointer(&examples_pointer, name), "value");
                Some((value, value_pointer))
            })
            .collect()
    }

    /// Returns the name and `value` of each usable Example Object in an `examples` map, in
    /// document order, following references and skipping those with only an `externalValue`.
    fn named_examples(
        &mut self,
        examples: Option<&'d Value>,
        pointer: &str,
    ) -> Vec<(&'d str, &'d Value)> {
        let mut found = Vec::new();
        let Some(examples) = examples else {
            return found;
        };
        let Value::Object(examples) = examples else {
            self.warn(
                pointer,
                "`examples` must be a map of Example Objects; it is ignored",
            );
            return found;
        };
        for (name, example) in examples {
            let Some((example, _)) = self.resolve(example, &join_pointer(pointer, name)) else {
                continue;
            };
            if let Some(value) = example.get("value") {
                found.push((name.as_str(), value));
            }
        }
        found
    }
}

/// Returns the status code sent for a response key: the code itself, `N00` for a range such as
/// `2XX`, and 200 for `default`. Returns `None` for any other key.
fn response_status(key: &str) -> Option<StatusCode> {
    if key == "default" {
        return Some(StatusCode::OK);
    }
    if let Ok(code) = key.parse::<u16>() {
        return StatusCode::from_u16(code)
            .ok()
            .filter(|_| (100..=599).contains(&code));
    }
    let bytes = key.as_bytes();
    if bytes.len() == 3 && (b'1'..=b'5').contains(&bytes[0]) && key[1..].eq_ignore_ascii_case("XX")
    {
        return StatusCode::from_u16(u16::from(bytes[0] - b'0') * 100).ok();
    }
    None
}

/// Returns the path part of a server URL without a trailing slash: `/v1` for
/// `https://api.example.com/v1`, `/v1` for `/v1`, and an empty string for a bare host.
fn server_path(url: &str) -> &str {
    let path = match url.find("://") {
        Some(scheme_end) => {
            let rest = &url[scheme_end + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/')
}

/// Expands server variables in a base path into route segments.
fn expand_server_path(
    path: &str,
    variables: Option<&Map<String, Value>>,
) -> Vec<Vec<SegmentTemplate>> {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path == "." {
        return vec![Vec::new()];
    }
    let mut bases: Vec<Vec<SegmentTemplate>> = vec![Vec::new()];
    for raw in path.split('/') {
        let choices: Vec<SegmentTemplate> = match raw
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name) if !name.contains(['{', '}']) => {
                let variable = variables.and_then(|variables| variables.get(name));
                let values = variable
                    .and_then(|variable| variable.get("enum"))
                    .and_then(Value::as_array);
                match values {
                    Some(values) if !values.is_empty() => values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|value| SegmentTemplate::Literal(value.trim_matches('/').to_owned()))
                        .collect(),
                    _ => vec![SegmentTemplate::Parameter(None)],
                }
            }
            // A segment with text around a variable uses the variable's default value.
            _ if raw.contains('{') => vec![SegmentTemplate::Literal(substitute_defaults(
                raw, variables,
            ))],
            _ => vec![SegmentTemplate::Literal(raw.to_owned())],
        };
        let mut expanded = Vec::with_capacity(bases.len() * choices.len());
        for base in &bases {
            for choice in &choices {
                let mut next = base.clone();
                next.push(choice.clone());
                expanded.push(next);
            }
        }
        bases = expanded;
    }
    bases
}

fn substitute_defaults(raw: &str, variables: Option<&Map<String, Value>>) -> String {
    let mut text = raw.to_owned();
    if let Some(variables) = variables {
        for (name, variable) in variables {
            if let Some(default) = variable.get("default").and_then(Value::as_str) {
                text = text.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    text
}

fn capture_names(segments: &[SegmentTemplate]) -> Vec<Option<String>> {
    let mut names = Vec::new();
    for segment in segments {
        match segment {
            SegmentTemplate::Literal(_) => {}
            SegmentTemplate::Parameter(name) => names.push(name.clone()),
            SegmentTemplate::Pattern(pieces) => {
                for piece in pieces {
                    if let crate::router::PatternPiece::Parameter(name) = piece {
                        names.push(Some(name.clone()));
                    }
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_path_strips_host() {
        assert_eq!(server_path("https://api.example.com/v1"), "/v1");
        assert_eq!(server_path("https://api.example.com"), "");
        assert_eq!(server_path("/v1/"), "/v1");
        assert_eq!(
            server_path("https://{region}.example.com/{version}"),
            "/{version}"
        );
    }
}
