//! Answers 401 unless the request carries one of the configured API keys.
//!
//! Configuration: `{"header": "x-api-key", "keys": ["key-1", "key-2"]}`. `header` defaults to
//! `x-api-key`; with no `keys`, every request is rejected.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

use mockforge::plugin::types::Header;

struct RequireApiKey;

impl Guest for RequireApiKey {
    fn on_request(request: Request, config: String) -> RequestAction {
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let header = config["header"].as_str().unwrap_or("x-api-key").to_ascii_lowercase();
        let keys = config["keys"].as_array().cloned().unwrap_or_default();

        let presented = request
            .headers
            .iter()
            .find(|candidate| candidate.name == header)
            .map(|candidate| candidate.value.as_str());
        let accepted = presented.is_some_and(|key| keys.iter().any(|allowed| allowed.as_str() == Some(key)));
        if accepted {
            return RequestAction::Continue;
        }

        let message = match presented {
            Some(_) => format!("the API key in header {header} is not valid"),
            None => format!("missing API key; send it in header {header}"),
        };
        let body = serde_json::json!({
            "error": message,
            "code": "UNAUTHORIZED",
            "details": { "header": header },
        });
        RequestAction::Respond(Response {
            status: 401,
            headers: vec![Header {
                name: "content-type".to_owned(),
                value: "application/json".to_owned(),
            }],
            body: body.to_string().into_bytes(),
        })
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(RequireApiKey);
