//! N-API add-on behind `prodtrace-dtrace-provider`, the Linux implementation
//! of dtrace-provider's JavaScript API (the API itself lives in `index.js`).
//!
//! The JavaScript side calls, per provider:
//! * `load(provider, probes)` at `enable()`: generates the ELF object with
//!   `.note.stapsdt` probes (see `elf.rs`), loads it (`provider.rs`) and
//!   returns an opaque handle;
//! * `semaphores(handle)`: an ArrayBuffer over the object's u16 semaphores,
//!   so `fire()` tests "is a tracer attached?" without leaving JavaScript;
//! * `fire(handle, index, args)`: calls the probe site with the converted
//!   arguments (strings truncated at [`STR_MAX`] bytes);
//! * `unload(handle, semaphores)` at `disable()`: detaches the ArrayBuffer,
//!   unloads the object and removes its file.

mod elf;
mod files;
mod provider;

use std::cell::RefCell;
use std::ffi::c_char;

use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

use elf::{ArgKind, ProbeDef};
use provider::Loaded;

/// Longest string argument passed to a probe, in bytes (without the NUL);
/// longer ones are cut at a UTF-8 character boundary.
pub const STR_MAX: usize = 65535;

/// A provider handle: `None` once unloaded.
type Handle = External<Option<Loaded>>;

/// One probe as the JavaScript side declares it.
#[napi(object)]
pub struct ProbeSpec {
    pub name: String,
    /// Each `"int"` or `"char *"` (JSON arguments arrive as strings).
    pub types: Vec<String>,
}

/// Generates and loads the USDT object of `provider`.
#[napi]
pub fn load(provider: String, probes: Vec<ProbeSpec>) -> Result<Handle> {
    let defs = probes
        .into_iter()
        .map(|p| {
            let args = p.types.iter().map(|t| if t == "int" { ArgKind::Int } else { ArgKind::Str }).collect::<Vec<_>>();
            if args.len() > elf::MAX_ARGS || p.name.contains('\0') {
                return Err(Error::from_reason(format!("invalid probe {:?}", p.name)));
            }
            Ok(ProbeDef { name: p.name, args })
        })
        .collect::<Result<Vec<_>>>()?;
    if provider.contains('\0') {
        return Err(Error::from_reason("invalid provider name"));
    }
    let loaded = Loaded::load(&provider, defs).map_err(Error::from_reason)?;
    Ok(External::new(Some(loaded)))
}

fn loaded(handle: &Handle) -> Result<&Loaded> {
    handle.as_ref().as_ref().ok_or_else(|| Error::from_reason("provider is not enabled"))
}

/// Path of the loaded object.
#[napi]
pub fn path(handle: &Handle) -> Result<String> {
    Ok(loaded(handle)?.path().display().to_string())
}

/// An ArrayBuffer over the semaphores (u16 per probe).
#[napi]
pub fn semaphores(env: Env, handle: &Handle) -> Result<Unknown<'_>> {
    let (ptr, count) = loaded(handle)?.semaphores();
    let mut value = std::ptr::null_mut();
    // SAFETY: the memory stays mapped until `unload`, which detaches this
    // buffer first; no finalizer is needed since we do not own it.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(env.raw(), ptr.cast(), count * 2, None, std::ptr::null_mut(), &mut value)
    };
    if status != sys::Status::napi_ok {
        // Runtimes built with V8's sandbox (Electron) refuse these.
        return Err(Error::from_reason(
            "this JavaScript runtime refuses external ArrayBuffers, which the probes' \
             semaphores need",
        ));
    }
    // SAFETY: `value` is the ArrayBuffer just created.
    unsafe { Unknown::from_napi_value(env.raw(), value) }
}

/// Unloads the object: detaches `semaphores` (so JavaScript can never read
/// unmapped memory), `dlclose`s and removes the file.
#[napi]
pub fn unload(env: Env, handle: &mut Handle, semaphores: Unknown) -> Result<()> {
    if semaphores.get_type()? == ValueType::Object {
        // SAFETY: `semaphores` is the external ArrayBuffer made above.
        let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), semaphores.raw()) };
        if status != sys::Status::napi_ok {
            return Err(Error::from_reason("cannot detach the semaphore buffer"));
        }
    }
    drop(handle.take());
    Ok(())
}

thread_local! {
    /// One string buffer per argument position, reused by every `fire`.
    static SCRATCH: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// First capacity of a scratch buffer; strings that may not fit are read
/// again into a buffer of the full limit.
const SCRATCH_START: usize = 4096;

/// Reads a JavaScript string into `buf`, NUL-terminated, cut at [`STR_MAX`]
/// bytes on a character boundary (N-API never splits a character).
fn read_string(env: sys::napi_env, value: sys::napi_value, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    if buf.capacity() < SCRATCH_START {
        buf.reserve(SCRATCH_START);
    }
    loop {
        let cap = buf.capacity().min(STR_MAX + 1);
        let mut written = 0usize;
        // SAFETY: `buf` has `cap` writable bytes; N-API writes at most
        // `cap - 1` bytes plus a NUL.
        let status =
            unsafe { sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr() as *mut c_char, cap, &mut written) };
        if status != sys::Status::napi_ok {
            return Err(Error::from_reason("probe string argument is not a string"));
        }
        // Fewer than 4 bytes to spare: the next character (up to 4 bytes)
        // may have been left out, so read again into a full-size buffer.
        if cap - 1 - written >= 4 || cap == STR_MAX + 1 {
            // SAFETY: N-API initialised `written` bytes and the NUL.
            unsafe { buf.set_len(written + 1) };
            return Ok(());
        }
        buf.reserve_exact(STR_MAX + 1);
    }
}

/// Fires probe `index` with `args`, already normalised by index.js: a
/// number for each `int`, a string for each `char *`.
#[napi]
pub fn fire(env: Env, handle: &Handle, index: u32, args: Array) -> Result<bool> {
    let loaded = loaded(handle)?;
    let index = index as usize;
    let Some(kinds) = loaded.args(index) else {
        return Ok(false);
    };
    let mut own = Vec::new();
    SCRATCH.with(|cell| {
        // `fire` never re-enters itself (nothing here runs JavaScript), but
        // should it, it would use buffers of its own.
        let mut shared = cell.try_borrow_mut();
        let scratch = match shared.as_deref_mut() {
            Ok(s) => s,
            Err(_) => &mut own,
        };
        if scratch.len() < kinds.len() {
            scratch.resize_with(kinds.len(), Vec::new);
        }
        let mut regs = [0u64; elf::MAX_ARGS];
        for (i, kind) in kinds.iter().enumerate() {
            let value: Unknown = args.get(i as u32)?.ok_or_else(|| Error::from_reason("missing argument"))?;
            regs[i] = match kind {
                ArgKind::Int => {
                    let mut v = 0i64;
                    // A non-number leaves 0, like dtrace-provider's NaN.
                    // SAFETY: plain N-API call on a live value.
                    unsafe { sys::napi_get_value_int64(env.raw(), value.raw(), &mut v) };
                    v as u64
                }
                ArgKind::Str => {
                    read_string(env.raw(), value.raw(), &mut scratch[i])?;
                    scratch[i].as_ptr() as u64
                }
            };
        }
        // SAFETY: the string words point into `scratch`, untouched until
        // the call returns.
        unsafe { loaded.fire(index, &regs, kinds.len()) };
        Ok(true)
    })
}
