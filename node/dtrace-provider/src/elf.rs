//! Builds, in memory, the small ELF64 x86-64 shared object that carries one
//! provider's USDT probes, laid out like the output of a linker for a C
//! library using `<sys/sdt.h>` with semaphores:
//!
//! * one probe site per probe in `.text`: `nop; ret` (the kernel emulates a
//!   uprobe on `nop`, so a traced hit stays cheap).  The caller passes the
//!   arguments as a SysV call, so the argument specs are registers (`%rdi`,
//!   `%rsi`, …) then stack slots (`8@8(%rsp)`, …) at the `nop`;
//! * `.note.stapsdt`: one SystemTap SDT v3 note per probe (pc, `.stapsdt.base`
//!   address, semaphore address, provider, probe name as written, arg specs);
//! * `.probes`: one u16 semaphore per probe in a writable, file-backed segment,
//!   so the kernel (uprobe `ref_ctr_offset`) or bcc can count tracers there;
//! * the dynamic section, symbol table and SysV hash that `dlopen`/`dlsym`
//!   need, and `PT_GNU_STACK` so loading it never makes the stack executable.
//!
//! Virtual addresses equal file offsets (one R-X page run, then one RW- run).

use object::elf;
use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, Sym, Writer};
use object::Endianness;

/// Most arguments a probe may have (dtrace-provider's `USDT_ARG_MAX`).
pub const MAX_ARGS: usize = 32;

/// Arguments passed in registers by the SysV x86-64 calling convention.
pub const REGISTER_ARGS: usize = 6;
const ARG_REGISTERS: [&str; REGISTER_ARGS] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];

const PAGE: u64 = 4096;
/// Bytes reserved for each probe site in `.text` (keeps sites 16-aligned).
const SITE_SIZE: u64 = 16;
/// `nop; ret`, padded with `int3`.
const SITE_CODE: [u8; SITE_SIZE as usize] =
    [0x90, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc];
/// `NT_STAPSDT`, the note type of SystemTap SDT v3 probes.
const NT_STAPSDT: u32 = 3;

/// How a probe argument reaches the tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A signed 64-bit integer (`-8@…`).
    Int,
    /// A pointer to a NUL-terminated UTF-8 string (`8@…`).
    Str,
}

/// One probe of a provider.
#[derive(Debug, Clone)]
pub struct ProbeDef {
    pub name: String,
    pub args: Vec<ArgKind>,
}

/// The object file and where its parts will be once loaded (relative to the
/// load base).
#[derive(Debug)]
pub struct Image {
    pub bytes: Vec<u8>,
    /// Dynamic symbol name of each probe's site, in probe order.
    pub site_symbols: Vec<String>,
    /// Dynamic symbol of the semaphore array (`u16` per probe, probe order).
    pub semaphores_symbol: &'static str,
}

/// Name of the dynamic symbol for the site of probe `index`.
fn site_symbol(index: usize) -> String {
    format!("prodtrace_usdt_site_{index}")
}

const SEMAPHORES_SYMBOL: &str = "prodtrace_usdt_semaphores";

/// The SDT argument spec of a probe: `-8@%rdi 8@%rsi … 8@8(%rsp)`.
pub fn arg_spec(args: &[ArgKind]) -> String {
    args.iter()
        .enumerate()
        .map(|(i, kind)| {
            let size = match kind {
                ArgKind::Int => "-8",
                ArgKind::Str => "8",
            };
            match ARG_REGISTERS.get(i) {
                Some(reg) => format!("{size}@%{reg}"),
                // At the site's first instruction %rsp points at the return
                // address; stack arguments follow it.
                None => format!("{size}@{}(%rsp)", 8 * (i - REGISTER_ARGS + 1)),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `.note.stapsdt` entry.
fn push_note(out: &mut Vec<u8>, pc: u64, base: u64, semaphore: u64, provider: &str, probe: &ProbeDef) {
    let mut desc = Vec::new();
    desc.extend_from_slice(&pc.to_le_bytes());
    desc.extend_from_slice(&base.to_le_bytes());
    desc.extend_from_slice(&semaphore.to_le_bytes());
    for s in [provider, probe.name.as_str(), arg_spec(&probe.args).as_str()] {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    let name = b"stapsdt\0";
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&NT_STAPSDT.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn align(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// Builds the shared object for `provider` and its `probes`.
///
/// Names must not contain NUL bytes (checked by the caller's validation).
pub fn build(provider: &str, probes: &[ProbeDef]) -> Result<Image, object::write::Error> {
    let site_symbols: Vec<String> = (0..probes.len()).map(site_symbol).collect();
    let mut bytes = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut bytes);

    // ---- phase 1: reserve names, indices and file ranges ----
    let text_name = w.add_section_name(b".text");
    let base_name = w.add_section_name(b".stapsdt.base");
    let probes_name = w.add_section_name(b".probes");
    let note_name = w.add_section_name(b".note.stapsdt");

    let site_strs: Vec<_> = site_symbols.iter().map(|s| w.add_dynamic_string(s.as_bytes())).collect();
    let sem_str = w.add_dynamic_string(SEMAPHORES_SYMBOL.as_bytes());
    w.reserve_null_dynamic_symbol_index();
    for _ in &site_symbols {
        w.reserve_dynamic_symbol_index();
    }
    w.reserve_dynamic_symbol_index();
    let dynsym_count = w.dynamic_symbol_count();
    // Symbol names for the hash table, by dynamic symbol index.
    let mut hash_names: Vec<Option<Vec<u8>>> = vec![None];
    hash_names.extend(site_symbols.iter().map(|s| Some(s.clone().into_bytes())));
    hash_names.push(Some(SEMAPHORES_SYMBOL.as_bytes().to_vec()));

    w.reserve_null_section_index();
    // Section indices, in the order the headers are written below.
    w.reserve_hash_section_index();
    w.reserve_dynsym_section_index();
    w.reserve_dynstr_section_index();
    let text_index = w.reserve_section_index();
    w.reserve_section_index(); // .stapsdt.base
    w.reserve_dynamic_section_index();
    let probes_index = w.reserve_section_index();
    w.reserve_section_index(); // .note.stapsdt
    w.reserve_shstrtab_section_index();

    const PHDRS: u32 = 4;
    const DYNAMIC_ENTRIES: usize = 6;
    w.reserve_file_header();
    w.reserve_program_headers(PHDRS);
    let bucket_count = dynsym_count.max(1);
    let hash_off = w.reserve_hash(bucket_count, dynsym_count);
    let dynsym_off = w.reserve_dynsym();
    let dynstr_off = w.reserve_dynstr()?;
    let text_len = SITE_SIZE * probes.len() as u64;
    let text_off = w.reserve(text_len, SITE_SIZE);
    let base_off = w.reserve(1, 1);
    let text_end = w.reserved_len();

    let data_off = align(text_end, PAGE);
    w.reserve_until(data_off);
    let dynamic_off = w.reserve_dynamic(DYNAMIC_ENTRIES);
    let sems_len = 2 * probes.len() as u64;
    let sems_off = w.reserve(sems_len, 8);
    let data_end = w.reserved_len();

    let mut note = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let pc = text_off + SITE_SIZE * i as u64;
        push_note(&mut note, pc, base_off, sems_off + 2 * i as u64, provider, probe);
    }
    let note_off = w.reserve(note.len() as u64, 4);
    w.reserve_shstrtab()?;
    w.reserve_section_headers();

    // ---- phase 2: write everything in the same order ----
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_DYN,
        e_machine: elf::EM_X86_64,
        e_entry: 0,
        e_flags: elf::FileFlags(0),
    })?;
    w.write_align_program_headers();
    let load = |flags, off: u64, end: u64| ProgramHeader {
        p_type: elf::PT_LOAD,
        p_flags: flags,
        p_offset: off,
        p_vaddr: off,
        p_paddr: off,
        p_filesz: end - off,
        p_memsz: end - off,
        p_align: PAGE,
    };
    w.write_program_header(&load(elf::PF_R | elf::PF_X, 0, text_end));
    w.write_program_header(&load(elf::PF_R | elf::PF_W, data_off, data_end));
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_DYNAMIC,
        p_flags: elf::PF_R | elf::PF_W,
        p_offset: dynamic_off,
        p_vaddr: dynamic_off,
        p_paddr: dynamic_off,
        p_filesz: DYNAMIC_ENTRIES as u64 * 16,
        p_memsz: DYNAMIC_ENTRIES as u64 * 16,
        p_align: 8,
    });
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_GNU_STACK,
        p_flags: elf::PF_R | elf::PF_W,
        p_offset: 0,
        p_vaddr: 0,
        p_paddr: 0,
        p_filesz: 0,
        p_memsz: 0,
        p_align: 16,
    });

    w.write_hash(bucket_count, dynsym_count, |i| hash_names[i as usize].as_deref().map(elf::hash));

    w.write_null_dynamic_symbol();
    for (i, name) in site_strs.iter().enumerate() {
        w.write_dynamic_symbol(&Sym {
            section: Some(text_index.0),
            st_name: w.dynamic_string_offset(Some(*name)),
            st_info: elf::STT_FUNC | elf::STB_GLOBAL,
            st_other: elf::STV_DEFAULT.into(),
            st_shndx: elf::SHN_UNDEF,
            st_value: text_off + SITE_SIZE * i as u64,
            st_size: 2,
        });
    }
    w.write_dynamic_symbol(&Sym {
        section: Some(probes_index.0),
        st_name: w.dynamic_string_offset(Some(sem_str)),
        st_info: elf::STT_OBJECT | elf::STB_GLOBAL,
        st_other: elf::STV_DEFAULT.into(),
        st_shndx: elf::SHN_UNDEF,
        st_value: sems_off,
        st_size: sems_len,
    });
    w.write_dynstr();

    w.pad_until(text_off);
    for _ in probes {
        w.write(&SITE_CODE);
    }
    w.pad_until(base_off);
    w.write(&[0]);

    w.pad_until(data_off);
    w.write_align_dynamic();
    w.write_dynamic(elf::DT_HASH, hash_off)?;
    w.write_dynamic(elf::DT_STRTAB, dynstr_off)?;
    w.write_dynamic(elf::DT_SYMTAB, dynsym_off)?;
    w.write_dynamic(elf::DT_STRSZ, w.dynstr_len().into())?;
    w.write_dynamic(elf::DT_SYMENT, 24)?;
    w.write_dynamic(elf::DT_NULL, 0)?;
    w.pad_until(sems_off);
    w.write(&vec![0u8; sems_len as usize]);

    w.pad_until(note_off);
    w.write(&note);
    w.write_shstrtab();

    w.write_null_section_header();
    w.write_hash_section_header(hash_off);
    w.write_dynsym_section_header(dynsym_off, 1);
    w.write_dynstr_section_header(dynstr_off);
    let progbits = |name, flags, off, size, align| SectionHeader {
        sh_name: name,
        sh_type: elf::SHT_PROGBITS,
        sh_flags: flags,
        sh_addr: off,
        sh_offset: off,
        sh_size: size,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: align,
        sh_entsize: 0,
    };
    w.write_section_header(&progbits(
        w.section_name_offset(Some(text_name)),
        elf::SHF_ALLOC | elf::SHF_EXECINSTR,
        text_off,
        text_len,
        SITE_SIZE,
    ));
    w.write_section_header(&progbits(w.section_name_offset(Some(base_name)), elf::SHF_ALLOC, base_off, 1, 1));
    w.write_dynamic_section_header(dynamic_off);
    w.write_section_header(&progbits(
        w.section_name_offset(Some(probes_name)),
        elf::SHF_ALLOC | elf::SHF_WRITE,
        sems_off,
        sems_len,
        8,
    ));
    w.write_section_header(&SectionHeader {
        sh_name: w.section_name_offset(Some(note_name)),
        sh_type: elf::SHT_NOTE,
        sh_flags: elf::SectionFlags(0),
        sh_addr: 0,
        sh_offset: note_off,
        sh_size: note.len() as u64,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: 4,
        sh_entsize: 0,
    });
    w.write_shstrtab_section_header();

    Ok(Image { bytes, site_symbols, semaphores_symbol: SEMAPHORES_SYMBOL })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SegmentFlags};

    /// One decoded `.note.stapsdt` entry: pc, base, semaphore, provider,
    /// name, args.
    type Note = (u64, u64, u64, String, String, String);

    fn parse_notes(mut data: &[u8]) -> Vec<Note> {
        let u32_at = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
        let u64_at = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
        let mut notes = Vec::new();
        while !data.is_empty() {
            let (namesz, descsz, kind) = (u32_at(data, 0) as usize, u32_at(data, 4) as usize, u32_at(data, 8));
            assert_eq!((&data[12..12 + namesz], kind), (&b"stapsdt\0"[..], NT_STAPSDT));
            let desc = &data[12 + namesz.next_multiple_of(4)..][..descsz];
            let strings: Vec<String> =
                desc[24..].split(|&b| b == 0).take(3).map(|s| String::from_utf8(s.to_vec()).unwrap()).collect();
            notes.push((
                u64_at(desc, 0),
                u64_at(desc, 8),
                u64_at(desc, 16),
                strings[0].clone(),
                strings[1].clone(),
                strings[2].clone(),
            ));
            data = &data[(12 + namesz.next_multiple_of(4) + descsz).next_multiple_of(4)..];
        }
        notes
    }

    #[test]
    fn object_has_notes_symbols_and_segments_that_agree() {
        use ArgKind::*;
        let probes = vec![
            ProbeDef { name: "log-debug".into(), args: vec![Str] },
            ProbeDef { name: "route_done".into(), args: vec![Str, Int, Int] },
            ProbeDef { name: "bare".into(), args: vec![] },
        ];
        let image = build("restify", &probes).unwrap();
        let file = object::File::parse(&*image.bytes).unwrap();
        assert_eq!(file.kind(), object::ObjectKind::Dynamic);

        let note_data = file.section_by_name(".note.stapsdt").unwrap().data().unwrap();
        let notes = parse_notes(note_data);
        let base = file.section_by_name(".stapsdt.base").unwrap().address();
        let sem_sym = file.dynamic_symbols().find(|s| s.name() == Ok(SEMAPHORES_SYMBOL)).unwrap().address();
        let text = file.section_by_name(".text").unwrap();
        assert_eq!(notes.len(), 3);
        for (i, (note, probe)) in notes.iter().zip(&probes).enumerate() {
            let (pc, nbase, sem, provider, name, args) = note;
            assert_eq!((provider.as_str(), name.as_str()), ("restify", probe.name.as_str()));
            assert_eq!(args, &arg_spec(&probe.args));
            assert_eq!(*nbase, base);
            assert_eq!(*sem, sem_sym + 2 * i as u64);
            let site = file.dynamic_symbols().find(|s| s.name() == Ok(image.site_symbols[i].as_str())).unwrap();
            assert_eq!(site.address(), *pc);
            let at = (pc - text.address()) as usize;
            assert_eq!(&text.data().unwrap()[at..at + 2], &[0x90, 0xc3], "nop; ret");
        }
        assert_eq!(notes[1].5, "8@%rdi -8@%rsi -8@%rdx");

        // Semaphores: zero, in a writable non-executable file-backed segment.
        let seg = file.segments().find(|s| (s.address()..s.address() + s.size()).contains(&sem_sym)).unwrap();
        let SegmentFlags::Elf { p_flags, .. } = seg.flags() else { panic!("not ELF flags") };
        assert_eq!(p_flags, elf::PF_R | elf::PF_W);
        let (off, len) = seg.file_range();
        assert!(sem_sym + 6 <= off + len, "semaphores are file-backed");
        assert_eq!(&image.bytes[sem_sym as usize..sem_sym as usize + 6], &[0; 6]);

        // No executable stack is asked for.
        let elf = ElfFile64::<Endianness>::parse(&*image.bytes).unwrap();
        let stack =
            elf.elf_program_headers().iter().find(|p| p.p_type(Endianness::Little) == elf::PT_GNU_STACK).unwrap();
        assert_eq!(stack.p_flags(Endianness::Little), elf::PF_R | elf::PF_W);
    }

    #[test]
    fn arg_specs_use_registers_then_stack() {
        use ArgKind::*;
        assert_eq!(arg_spec(&[]), "");
        assert_eq!(arg_spec(&[Str, Int]), "8@%rdi -8@%rsi");
        let many = arg_spec(&[Int; 8]);
        assert_eq!(many, "-8@%rdi -8@%rsi -8@%rdx -8@%rcx -8@%r8 -8@%r9 -8@8(%rsp) -8@16(%rsp)");
    }
}
