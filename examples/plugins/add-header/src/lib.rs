//! Adds a header to every response, or to the responses of the listed operations.
//!
//! Configuration: `{"name": "x-powered-by", "value": "mockforge", "operations": ["getPet"]}`.
//! `name` and `value` default to the values shown. In `value`, `{operationId}` expands to the
//! matched operation's `operationId` and `{route}` to its `METHOD /template`, each to an empty
//! string when the request has none. `operations`, when present, is a list of `operationId`s:
//! only requests that match one of them get the header.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

use mockforge::plugin::types::Header;

struct AddHeader;

impl Guest for AddHeader {
    fn on_request(_request: Request, _config: String) -> RequestAction {
        RequestAction::Continue
    }

    fn on_response(request: Request, mut response: Response, config: String) -> Option<Response> {
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let operation_id = request.operation_id.as_deref().unwrap_or_default();
        if let Some(operations) = config["operations"].as_array() {
            let listed = operations.iter().any(|listed| listed.as_str() == Some(operation_id));
            if request.operation_id.is_none() || !listed {
                return None;
            }
        }

        let name = config["name"].as_str().unwrap_or("x-powered-by");
        let template = config["value"].as_str().unwrap_or("mockforge");
        let route = request.route.as_deref().unwrap_or_default();
        response.headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: expand(template, operation_id, route),
        });
        Some(response)
    }
}

/// Replaces `{operationId}` and `{route}` in `template` in one pass, so braces inside the
/// inserted route (such as `{petId}`) are not expanded again.
fn expand(template: &str, operation_id: &str, route: &str) -> String {
    let mut value = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        value.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{operationId}") {
            value.push_str(operation_id);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{route}") {
            value.push_str(route);
            rest = after;
        } else {
            value.push('{');
            rest = &tail[1..];
        }
    }
    value.push_str(rest);
    value
}

export!(AddHeader);
