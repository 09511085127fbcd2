//! `bunyan` CLI (not yet implemented).
fn main() {
    eprintln!("bunyan: not implemented yet");
    std::process::exit(1);
}
