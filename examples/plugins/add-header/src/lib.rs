//! Adds a header to every response.
//!
//! Configuration: `{"name": "x-powered-by", "value": "mockforge"}`. Both fields are optional and
//! default to the values shown.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

use mockforge::plugin::types::Header;

struct AddHeader;

impl Guest for AddHeader {
    fn on_request(_request: Request, _config: String) -> RequestAction {
        RequestAction::Continue
    }

    fn on_response(_request: Request, mut response: Response, config: String) -> Option<Response> {
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let name = config["name"].as_str().unwrap_or("x-powered-by");
        let value = config["value"].as_str().unwrap_or("mockforge");
        response.headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: value.to_owned(),
        });
        Some(response)
    }
}

export!(AddHeader);
