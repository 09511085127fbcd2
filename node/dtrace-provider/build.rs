//! Build script: napi-build sets the linker flags a Node.js add-on needs.
fn main() {
    napi_build::setup();
}
