//! Names for the addresses of a caught stack.
//!
//! While the process lives, the shared `symbolize` crate does it (ELF
//! symbols of every mapping, JIT'd code from `/tmp/perf-PID.map`).  A short
//! command may exit before that — its stack was captured at the syscall but
//! `/proc/PID/maps` is gone — so then the module snapshot taken when the
//! stack was unwound is used: each address is looked up in its ELF file
//! (blazesym's ELF source), and JIT addresses in the perf map, which the
//! runtime leaves behind.

use blazesym::symbolize::{source, Input, Symbolized, Symbolizer as Blaze};

use super::unwind::{LoadedModule, Stack};

/// One named frame.
pub struct Named {
    pub addr: u64,
    /// `name+0xoff`, or `None` when nothing covers the address.
    pub name: Option<String>,
    pub module: Option<String>,
}

/// Symbolizers kept for the whole session (they cache parsed files).
pub struct Symbols {
    live: symbolize::Symbolizer,
    files: Blaze,
}

impl Symbols {
    pub fn new() -> Self {
        Symbols { live: symbolize::Symbolizer::new(), files: Blaze::builder().enable_demangling(true).build() }
    }

    /// Names the frames of `stack` in process `pid`; the bool says whether
    /// the process was gone and the snapshot was used.
    pub fn name(&self, pid: u32, stack: &Stack) -> (Vec<Named>, bool) {
        // Return addresses point after their call: look up the call itself.
        let lookup: Vec<u64> =
            stack.addrs.iter().enumerate().map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) }).collect();
        let back = |i: usize| u64::from(i > 0);
        if let Ok(frames) = self.live.symbolize(pid, &lookup) {
            let named = frames
                .into_iter()
                .zip(lookup.iter().zip(&stack.addrs))
                .enumerate()
                .map(|(i, (f, (&look, &addr)))| {
                    // blazesym's DWARF path reports functions with split
                    // address ranges at address 0 (offset == address): ask
                    // the ELF symbol table instead.
                    if f.name.is_some() && f.offset == look && look != 0 {
                        if let Some(m) = stack.modules.iter().find(|m| m.range.contains(&look)) {
                            if let Some((name, off)) = self.file_lookup(m, look) {
                                return Named { addr, name: Some(with_offset(&name, off + back(i))), module: f.module };
                            }
                        }
                    }
                    let f = symbolize::Frame { addr, offset: f.offset + back(i), ..f };
                    Named { addr, name: f.name.is_some().then(|| f.display()), module: f.module }
                })
                .collect();
            return (named, false);
        }
        let perf_map = std::fs::read_to_string(format!("/tmp/perf-{pid}.map")).unwrap_or_default();
        let named = lookup
            .iter()
            .zip(&stack.addrs)
            .enumerate()
            .map(|(i, (&look, &addr))| {
                if let Some(m) = stack.modules.iter().find(|m| m.range.contains(&look)) {
                    let name = self.file_lookup(m, look).map(|(n, off)| with_offset(&n, off + back(i)));
                    Named { addr, name, module: Some(m.path.clone()) }
                } else {
                    let name = perf_map_lookup(&perf_map, look).map(|(n, off)| with_offset(n, off + back(i)));
                    Named { addr, name, module: None }
                }
            })
            .collect();
        (named, true)
    }
}

impl Symbols {
    /// `(function, offset)` of `addr` in module `m`'s file: DWARF first,
    /// then the ELF symbol table when DWARF gives no usable start address.
    fn file_lookup(&self, m: &LoadedModule, addr: u64) -> Option<(String, u64)> {
        let svma = addr.wrapping_sub(m.bias);
        for debug_syms in [true, false] {
            let mut elf = source::Elf::new(&m.path);
            elf.debug_syms = debug_syms;
            if let Ok(Symbolized::Sym(sym)) =
                self.files.symbolize_single(&source::Source::Elf(elf), Input::VirtOffset(svma))
            {
                if sym.addr != 0 {
                    return Some((sym.name.to_string(), sym.offset as u64));
                }
            }
        }
        None
    }
}

fn with_offset(name: &str, off: u64) -> String {
    if off == 0 {
        name.to_string()
    } else {
        format!("{name}+{off:#x}")
    }
}

/// The `START SIZE NAME` line of a perf map covering `addr`, with the offset.
fn perf_map_lookup(map: &str, addr: u64) -> Option<(&str, u64)> {
    map.lines().rev().find_map(|line| {
        let mut f = line.splitn(3, ' ');
        let start = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
        let size = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
        let name = f.next()?;
        (addr >= start && addr < start + size).then_some((name, addr - start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_map_lines() {
        let map = "7f00 10 JS:~a file.js:1\n7f10 20 JS:*b file.js:2\n";
        assert_eq!(perf_map_lookup(map, 0x7f14), Some(("JS:*b file.js:2", 4)));
        assert_eq!(perf_map_lookup(map, 0x7f00), Some(("JS:~a file.js:1", 0)));
        assert_eq!(perf_map_lookup(map, 0x8000), None);
    }
}
