//! Compiles `src/bpf/*.bpf.c` into libbpf-rs skeletons (see the bpf-build crate).

fn main() {
    bpf_build::compile_all();
}
