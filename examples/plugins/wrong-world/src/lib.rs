//! Test plugin: a valid WebAssembly component that implements the world `filter` of
//! `wit/world.wit` instead of a MockForge plugin world, so publishing it must fail.

wit_bindgen::generate!({ path: "wit", world: "filter" });

struct WrongWorld;

impl Guest for WrongWorld {
    fn handle(body: Vec<u8>) -> Vec<u8> {
        body
    }
}

export!(WrongWorld);
