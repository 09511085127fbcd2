//! Symbolization against a real node process (/usr/bin/node, which links
//! libuv statically and has DWARF plus a full symbol table): names and
//! offsets must match the ELF symbol table, live and from a snapshot after
//! the process has exited — including `uv__fs_work`, whose code is split
//! into several address ranges (blazesym's DWARF reader puts it at 0).

use std::process::{Child, Command, Stdio};

use blazesym::symbolize::{source, Input, Symbolized, Symbolizer as Blaze};
use object::{Object, ObjectSymbol};
use symbolize::{Snapshot, Symbolizer};

const NODE: &str = "/usr/bin/node";

/// Addresses inside three node functions, with the expected `name+0xoff`.
fn probes() -> Vec<(u64, String)> {
    let data = std::fs::read(NODE).expect("reading /usr/bin/node");
    let elf = object::File::parse(&*data).expect("parsing /usr/bin/node");
    assert_eq!(elf.kind(), object::ObjectKind::Executable, "node is non-PIE here: symtab addresses are runtime ones");
    let cases = [
        ("uv__fs_work", "uv__fs_work", 0xe39),
        ("_ZN4node2fs5CloseERKN2v820FunctionCallbackInfoINS1_5ValueEEE", "node::fs::Close", 0x20),
        ("uv_fs_close", "uv_fs_close", 0x10),
    ];
    cases
        .iter()
        .map(|&(raw, name, off)| {
            let sym = elf.symbols().find(|s| s.name() == Ok(raw)).unwrap_or_else(|| panic!("{raw} in node's symtab"));
            assert!(sym.size() > off, "{raw} is longer than {off:#x}");
            (sym.address() + off, format!("{name}+{off:#x}"))
        })
        .collect()
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node() -> Node {
    let child = Command::new(NODE)
        .args(["-e", "setTimeout(() => {}, 30000)"])
        .stdin(Stdio::null())
        .spawn()
        .expect("starting /usr/bin/node");
    let node = Node(child);
    // Wait until node's own mappings are in place (its executable is mapped at exec).
    let pid = node.0.id();
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains("/usr/bin/node")) {
            return node;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("node {pid} never mapped /usr/bin/node");
}

fn short(f: &symbolize::Frame) -> String {
    // node::fs::Close's demangled name carries its parameter list.
    let name = f.display();
    match name.split_once('(') {
        Some((head, tail)) => format!("{head}{}", &tail[tail.rfind('+').unwrap_or(tail.len())..]),
        None => name,
    }
}

#[test]
fn split_range_functions_get_symtab_offsets_live() {
    let probes = probes();
    let node = start_node();
    let pid = node.0.id();
    // The case is real: blazesym's DWARF path puts uv__fs_work at 0.
    let raw = Blaze::builder().build();
    match raw.symbolize_single(&source::Source::Elf(source::Elf::new(NODE)), Input::VirtOffset(probes[0].0)).unwrap() {
        Symbolized::Sym(s) => {
            assert_eq!((s.name.as_ref(), s.addr), ("uv__fs_work", 0), "blazesym's split-range report")
        }
        other => panic!("blazesym knows nothing at uv__fs_work: {other:?}"),
    }
    let addrs: Vec<u64> = probes.iter().map(|p| p.0).collect();
    let frames = Symbolizer::new().symbolize(pid, &addrs).unwrap();
    let got: Vec<String> = frames.iter().map(short).collect();
    let want: Vec<String> = probes.iter().map(|p| p.1.clone()).collect();
    assert_eq!(got, want);
    assert!(frames.iter().all(|f| f.module.as_deref() == Some(NODE)), "{frames:?}");
}

#[test]
fn snapshot_names_addresses_after_exit() {
    let probes = probes();
    let mut node = start_node();
    let pid = node.0.id();
    let snap = Snapshot::take(pid).unwrap();
    assert!(snap.module_at(probes[0].0).is_some_and(|m| m.mapping.exec && m.file().is_some()));
    node.0.kill().unwrap();
    node.0.wait().unwrap();
    assert!(Snapshot::take(pid).is_err(), "process {pid} is gone");
    let addrs: Vec<u64> = probes.iter().map(|p| p.0).chain([8]).collect();
    let frames = snap.symbolize(&Symbolizer::new(), &addrs);
    let got: Vec<String> = frames.iter().map(short).collect();
    let want: Vec<String> = probes.iter().map(|p| p.1.clone()).chain(["0x8".to_string()]).collect();
    assert_eq!(got, want);
    assert_eq!(frames[0].module.as_deref(), Some(NODE));
    assert_eq!((frames[3].name.as_deref(), frames[3].module.as_deref()), (None, None));
}
