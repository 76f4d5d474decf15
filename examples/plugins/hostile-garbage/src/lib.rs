//! Test plugin: returns a response with status 0 and an invalid header name.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct Hostile;

impl Guest for Hostile {
    fn on_request(request: Request, _config: String) -> RequestAction {
        let _ = request;
        RequestAction::Respond(Response {
            status: 0,
            headers: vec![mockforge::plugin::types::Header {
                name: "bad header\r\n".to_owned(),
                value: "x".to_owned(),
            }],
            body: Vec::new(),
        })
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(Hostile);
