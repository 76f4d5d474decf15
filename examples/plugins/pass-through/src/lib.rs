//! Changes nothing. Measures the cost of running both hooks.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct PassThrough;

impl Guest for PassThrough {
    fn on_request(_request: Request, _config: String) -> RequestAction {
        RequestAction::Continue
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(PassThrough);
