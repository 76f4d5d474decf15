//! Answers 429 to every Nth request of a deployment, counted on each edge node.
//!
//! Configuration: `{"every": 3}`. `every` defaults to 2; 0 or 1 rejects every request.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

use mockforge::plugin::host::increment_counter;
use mockforge::plugin::types::Header;

struct EveryNth429;

impl Guest for EveryNth429 {
    fn on_request(_request: Request, config: String) -> RequestAction {
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let every = config["every"].as_u64().unwrap_or(2).max(1);
        let count = increment_counter("requests");
        if count % every != 0 {
            return RequestAction::Continue;
        }
        let body = serde_json::json!({
            "error": format!("request {count} is rejected: this mock answers 429 to every request number divisible by {every}"),
            "code": "RATE_LIMIT_EXCEEDED",
            "details": { "every": every, "count": count },
        });
        RequestAction::Respond(Response {
            status: 429,
            headers: vec![
                Header { name: "content-type".to_owned(), value: "application/json".to_owned() },
                Header { name: "retry-after".to_owned(), value: "1".to_owned() },
            ],
            body: body.to_string().into_bytes(),
        })
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(EveryNth429);
