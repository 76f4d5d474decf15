//! Test plugin: panics in `on-request`, which aborts the instance.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct Hostile;

impl Guest for Hostile {
    fn on_request(request: Request, _config: String) -> RequestAction {
        let _ = request;
        panic!("this plugin always fails")
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(Hostile);
