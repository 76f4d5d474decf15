//! Test plugin: recurses without bound in `on-request` until the stack overflows.

wit_bindgen::generate!({ path: "../../../plugins/wit", world: "plugin" });

struct Hostile;

impl Guest for Hostile {
    fn on_request(request: Request, _config: String) -> RequestAction {
        std::hint::black_box(depth(request.body.len() as u64));
        RequestAction::Continue
    }

    fn on_response(_request: Request, _response: Response, _config: String) -> Option<Response> {
        None
    }
}

export!(Hostile);

// The recursion never ends on purpose: the edge must stop it with a stack overflow trap.
#[allow(unconditional_recursion)]
#[inline(never)]
fn depth(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 16]);
    depth(frame[0].wrapping_add(1)).wrapping_add(frame[15])
}
