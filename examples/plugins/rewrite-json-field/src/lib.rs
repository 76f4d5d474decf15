//! Sets one field of a JSON response body.
//!
//! Configuration: `{"pointer": "/status", "value": "available"}`, where `pointer` is a JSON
//! pointer (RFC 6901) to an existing field. A body that is not JSON, or has no such field, is
//! left unchanged.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct RewriteJsonField;

impl Guest for RewriteJsonField {
    fn on_request(_request: Request, _config: String) -> RequestAction {
        RequestAction::Continue
    }

    fn on_response(_request: Request, mut response: Response, config: String) -> Option<Response> {
        let config: serde_json::Value = serde_json::from_str(&config).ok()?;
        let pointer = config["pointer"].as_str()?;
        let mut body: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        *body.pointer_mut(pointer)? = config["value"].clone();
        response.body = serde_json::to_vec(&body).ok()?;
        // The body changed length, so any content-length the mock set is stale.
        response.headers.retain(|header| header.name != "content-length");
        Some(response)
    }
}

export!(RewriteJsonField);
