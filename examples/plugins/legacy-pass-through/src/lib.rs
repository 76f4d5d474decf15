//! Test plugin built against the first plugin world, `mockforge:plugin@0.1.0`, to prove that
//! the edge still runs components built before 0.2.0.
//!
//! `on-request` passes the request on through `modify` without changing it, so the request
//! goes from the edge to the plugin and back. `on-response` keeps the status and body and adds
//! the header `x-legacy-operation` with the request's `operation` field (the matched
//! `METHOD /template`, or `none`).

wit_bindgen::generate!({ path: "../../../plugins/wit/v0.1.0", world: "plugin" });

use mockforge::plugin::types::Header;

struct LegacyPassThrough;

impl Guest for LegacyPassThrough {
    fn on_request(request: Request, _config: String) -> RequestAction {
        RequestAction::Modify(request)
    }

    fn on_response(request: Request, mut response: Response, _config: String) -> Option<Response> {
        response.headers.push(Header {
            name: "x-legacy-operation".to_owned(),
            value: request.operation.unwrap_or_else(|| "none".to_owned()),
        });
        Some(response)
    }
}

export!(LegacyPassThrough);
