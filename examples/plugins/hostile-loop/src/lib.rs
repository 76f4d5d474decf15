//! Test plugin: never returns from `on-request`, so the edge must interrupt it.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct Hostile;

impl Guest for Hostile {
    fn on_request(request: Request, _config: String) -> RequestAction {
        let mut spins = request.body.len() as u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(Hostile);
