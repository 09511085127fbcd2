//! USDT probes `bunyan:log-trace` … `bunyan:log-fatal` (Linux SystemTap SDT).
//!
//! Each probe is written out by hand with `asm!` because the names carry a
//! dash, which Rust identifiers (and so the `probe` crate) cannot express.
//! Per probe this emits, like `<sys/sdt.h>` does:
//!
//! * a probe site: `nop` followed by a 5-byte `nopl` (the kernel can turn a
//!   uprobe on that `nop5` into a cheap call instead of a trap; older tools
//!   put their breakpoint on the first `nop`);
//! * a `.note.stapsdt` ELF note (type 3, owner `stapsdt`) holding the site's
//!   address, the address of `.stapsdt.base` (for prelink compensation), the
//!   semaphore's address, the provider `bunyan`, the probe name and the
//!   argument spec `8@%rdi` (one 8-byte argument in `%rdi`: a pointer to the
//!   record's NUL-terminated JSON text);
//! * a 16-bit semaphore in the `.probes` section, which a tracer (the kernel,
//!   through uprobe `ref_ctr_offset`) increments while the probe is enabled.
//!
//! [`enabled`] reads the semaphore: one load and a branch.  The JSON text is
//! only built when the level passes the logger's filter or the probe is on.
//! On targets other than x86_64 Linux the probes do not exist and
//! [`enabled`] is constant `false`.

use crate::Level;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use crate::Level;

    // The `.stapsdt.base` marker (one byte, in a COMDAT group so a link has
    // exactly one) and one semaphore per probe.  Semaphores are hidden so a
    // read is a single RIP-relative load.
    core::arch::global_asm!(
        ".ifndef _.stapsdt.base",
        ".pushsection .stapsdt.base,\"aG\",@progbits,.stapsdt.base,comdat",
        ".weak _.stapsdt.base",
        ".hidden _.stapsdt.base",
        "_.stapsdt.base: .space 1",
        ".size _.stapsdt.base, 1",
        ".popsection",
        ".endif",
        ".pushsection .probes,\"aw\",@progbits",
        ".balign 2",
        ".globl bunyan_log_trace_semaphore, bunyan_log_debug_semaphore, bunyan_log_info_semaphore",
        ".globl bunyan_log_warn_semaphore, bunyan_log_error_semaphore, bunyan_log_fatal_semaphore",
        ".hidden bunyan_log_trace_semaphore, bunyan_log_debug_semaphore, bunyan_log_info_semaphore",
        ".hidden bunyan_log_warn_semaphore, bunyan_log_error_semaphore, bunyan_log_fatal_semaphore",
        "bunyan_log_trace_semaphore: .2byte 0",
        "bunyan_log_debug_semaphore: .2byte 0",
        "bunyan_log_info_semaphore: .2byte 0",
        "bunyan_log_warn_semaphore: .2byte 0",
        "bunyan_log_error_semaphore: .2byte 0",
        "bunyan_log_fatal_semaphore: .2byte 0",
        ".popsection",
    );

    extern "C" {
        static bunyan_log_trace_semaphore: u16;
        static bunyan_log_debug_semaphore: u16;
        static bunyan_log_info_semaphore: u16;
        static bunyan_log_warn_semaphore: u16;
        static bunyan_log_error_semaphore: u16;
        static bunyan_log_fatal_semaphore: u16;
    }

    #[inline(always)]
    pub fn enabled(level: Level) -> bool {
        // SAFETY: the semaphores are plain u16 statics defined above; the
        // kernel changes them behind our back, hence the volatile read.
        unsafe {
            let sema = match level {
                Level::Trace => core::ptr::addr_of!(bunyan_log_trace_semaphore),
                Level::Debug => core::ptr::addr_of!(bunyan_log_debug_semaphore),
                Level::Info => core::ptr::addr_of!(bunyan_log_info_semaphore),
                Level::Warn => core::ptr::addr_of!(bunyan_log_warn_semaphore),
                Level::Error => core::ptr::addr_of!(bunyan_log_error_semaphore),
                Level::Fatal => core::ptr::addr_of!(bunyan_log_fatal_semaphore),
            };
            core::ptr::read_volatile(sema) != 0
        }
    }

    /// Emits one probe site + note for `$name`, guarded by `$sema`.
    macro_rules! probe_site {
        ($fn:ident, $name:literal, $sema:literal) => {
            #[inline(never)]
            pub fn $fn(json: *const u8) {
                // SAFETY: the site is two nops; the note only describes it.
                unsafe {
                    core::arch::asm!(
                        "990: nop",
                        // nopl 0x0(%rax,%rax,1), spelled out: the
                        // assembler would pick the 4-byte form.
                        ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
                        ".pushsection .note.stapsdt,\"\",@note",
                        ".balign 4",
                        ".4byte 992f-991f, 994f-993f, 3",
                        "991: .asciz \"stapsdt\"",
                        "992: .balign 4",
                        "993: .8byte 990b",
                        ".8byte _.stapsdt.base",
                        concat!(".8byte ", $sema),
                        ".asciz \"bunyan\"",
                        concat!(".asciz \"", $name, "\""),
                        ".asciz \"8@%rdi\"",
                        "994: .balign 4",
                        ".popsection",
                        in("rdi") json,
                        options(att_syntax, nostack, preserves_flags, readonly),
                    );
                }
            }
        };
    }

    probe_site!(fire_trace, "log-trace", "bunyan_log_trace_semaphore");
    probe_site!(fire_debug, "log-debug", "bunyan_log_debug_semaphore");
    probe_site!(fire_info, "log-info", "bunyan_log_info_semaphore");
    probe_site!(fire_warn, "log-warn", "bunyan_log_warn_semaphore");
    probe_site!(fire_error, "log-error", "bunyan_log_error_semaphore");
    probe_site!(fire_fatal, "log-fatal", "bunyan_log_fatal_semaphore");

    pub fn fire(level: Level, json: *const u8) {
        match level {
            Level::Trace => fire_trace(json),
            Level::Debug => fire_debug(json),
            Level::Info => fire_info(json),
            Level::Warn => fire_warn(json),
            Level::Error => fire_error(json),
            Level::Fatal => fire_fatal(json),
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    use crate::Level;

    #[inline(always)]
    pub fn enabled(_level: Level) -> bool {
        false
    }

    pub fn fire(_level: Level, _json: *const u8) {}
}

/// Whether a tracer has enabled the `bunyan:log-<level>` probe right now
/// (reads the probe's semaphore: one load and a branch).
#[inline(always)]
pub fn enabled(level: Level) -> bool {
    imp::enabled(level)
}

/// Fires `bunyan:log-<level>` with `json`, which must end with a NUL byte
/// (the probe's argument is a C string).  Does nothing when `json` lacks the
/// terminator.
pub fn fire(level: Level, json: &[u8]) {
    if json.last() == Some(&0) {
        imp::fire(level, json.as_ptr());
    }
}
