//! A snapshot keeps a deleted executable readable: a C program whose file
//! is removed while it runs is still named from its own symbol table after
//! it has exited (through the descriptor the snapshot holds on
//! `/proc/PID/map_files`).

use std::process::{Child, Command, Stdio};

use object::{Object, ObjectSymbol};
use symbolize::{Snapshot, Symbolizer};

const PROGRAM: &str = r#"
#include <unistd.h>
__attribute__((noinline)) void deleted_work(void) { for (;;) pause(); }
int main(void) { deleted_work(); return 0; }
"#;

/// Kills the child if the test fails before it does.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deleted_executable_is_named_after_exit() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("deleted_work.c");
    let exe = dir.path().join("deleted_work");
    std::fs::write(&src, PROGRAM).unwrap();
    let cc = Command::new("cc").args(["-O1", "-no-pie", "-o"]).arg(&exe).arg(&src).status().expect("running cc");
    assert!(cc.success(), "cc failed");
    let data = std::fs::read(&exe).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let sym = elf.symbols().find(|s| s.name() == Ok("deleted_work")).expect("deleted_work in the symtab");
    let addr = sym.address() + 1;

    let mut child = Kill(Command::new(&exe).stdin(Stdio::null()).spawn().unwrap());
    let pid = child.0.id();
    let maps = || std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    for _ in 0..200 {
        if maps().contains("libc") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::remove_file(&exe).unwrap();
    assert!(maps().contains("(deleted)"), "{}", maps());
    let snap = Snapshot::take(pid);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let snap = snap.unwrap();
    let module = snap.module_at(addr).expect("the executable's text is mapped");
    assert_eq!(module.mapping.path.as_deref(), Some(exe.as_path()));
    assert!(module.file().is_some_and(|f| f.starts_with("/proc/self/fd/")), "{:?}", module.file());
    let frames = snap.symbolize(&Symbolizer::new(), &[addr]);
    assert_eq!(frames[0].display(), "deleted_work+0x1");
    assert_eq!(frames[0].module.as_deref(), Some(exe.to_str().unwrap()));
}
