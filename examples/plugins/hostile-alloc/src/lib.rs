//! Test plugin: allocates 1 GiB in `on-request`, beyond any plugin memory limit.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct Hostile;

impl Guest for Hostile {
    fn on_request(request: Request, _config: String) -> RequestAction {
        let buffer = vec![1u8; 1 << 30];
        std::hint::black_box(&buffer);
        let _ = request;
        RequestAction::Continue
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(Hostile);
