//! Copying target memory with `process_vm_readv`, up to 1024 ranges per
//! call, either into a [`Snapshot`] (an anonymous buffer faulted in before
//! the target is frozen, so the copy is a plain memcpy in the kernel) or
//! straight into the core file when memory is short.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use crate::plan::{Copy, MAX_COPY, PAGE};

/// Remote ranges per `process_vm_readv` call (`IOV_MAX`).
const BATCH: usize = 1024;
/// Copies at least this large are done by two threads.
const PARALLEL_MIN: u64 = 32 << 20;

/// A private anonymous buffer for a copy of the target's memory.
pub struct Snapshot {
    ptr: *mut u8,
    cap: usize,
}

impl Snapshot {
    /// Maps `cap` bytes (transparent huge pages where possible) and faults
    /// them in now, before the target is frozen.
    pub fn new(cap: usize) -> Result<Snapshot> {
        let cap = cap.max(PAGE as usize);
        // SAFETY: a fresh anonymous mapping owned by the Snapshot.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("cannot allocate the memory snapshot buffer");
        }
        // SAFETY: advice on our own mapping; failures only cost speed.
        unsafe {
            libc::madvise(ptr, cap, libc::MADV_HUGEPAGE);
            libc::madvise(ptr, cap, libc::MADV_POPULATE_WRITE);
        }
        Ok(Snapshot { ptr: ptr.cast(), cap })
    }

    /// Grows the buffer to at least `len` bytes (pages added now are faulted
    /// in on first use).
    fn reserve(&mut self, len: usize) -> Result<()> {
        if len > self.cap {
            // SAFETY: resizing our own mapping; the kernel may move it.
            let p = unsafe { libc::mremap(self.ptr.cast(), self.cap, len, libc::MREMAP_MAYMOVE) };
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error()).context("cannot grow the memory snapshot buffer");
            }
            self.ptr = p.cast();
            self.cap = len;
        }
        Ok(())
    }

    /// The first `len` bytes.
    pub fn bytes(&self, len: usize) -> &[u8] {
        assert!(len <= self.cap);
        // SAFETY: within our mapping, which lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr, len) }
    }

    fn bytes_mut(&mut self, len: usize) -> &mut [u8] {
        assert!(len <= self.cap);
        // SAFETY: within our mapping, borrowed mutably through self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len) }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.ptr.cast(), self.cap) };
    }
}

/// Where copied memory goes.
pub enum Sink<'a> {
    /// Into the snapshot, copies back to back in plan order.
    Snapshot(&'a mut Snapshot),
    /// Into the core file at `data_start + copy.data_off`.
    File(&'a File, u64),
}

/// Fails with [`crate::Interrupted`] once `cancel` is set.
fn check(cancel: Option<&AtomicBool>) -> Result<()> {
    match cancel {
        Some(c) if c.load(Ordering::SeqCst) => Err(crate::Interrupted.into()),
        _ => Ok(()),
    }
}

/// Copies every range of `copies` from process `pid` into `sink`; returns
/// the number of pages that could not be read (left as zeros). Stops with
/// [`crate::Interrupted`] between batches once `cancel` is set.
pub fn copy(pid: u32, copies: &[Copy], sink: Sink, cancel: Option<&AtomicBool>) -> Result<u64> {
    let mut unreadable = 0;
    match sink {
        Sink::Snapshot(snap) => {
            let total: u64 = copies.iter().map(|c| c.len).sum();
            snap.reserve(total as usize)?;
            let buf = snap.bytes_mut(total as usize);
            // Large copies are split in two halves read by two threads: the
            // target is frozen meanwhile, so every millisecond counts.
            let split = if total >= PARALLEL_MIN && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
                let mut acc = 0;
                copies
                    .iter()
                    .position(|c| {
                        acc += c.len;
                        acc >= total / 2
                    })
                    .map_or(copies.len(), |i| i + 1)
            } else {
                copies.len()
            };
            let (first, second) = copies.split_at(split);
            let first_len: u64 = first.iter().map(|c| c.len).sum();
            let (buf1, buf2) = buf.split_at_mut(first_len as usize);
            let (r1, r2) = std::thread::scope(|s| {
                let h = s.spawn(|| read_all(pid, buf2, second, cancel));
                (read_all(pid, buf1, first, cancel), h.join().expect("copy thread panicked"))
            });
            unreadable += r1? + r2?;
        }
        Sink::File(file, data_start) => {
            let mut chunk = vec![0u8; MAX_COPY as usize * 2];
            let mut i = 0;
            while i < copies.len() {
                // As many copies as fit the chunk (each is at most MAX_COPY).
                let mut j = i;
                let mut len = 0usize;
                while j < copies.len() && j - i < BATCH && len + copies[j].len as usize <= chunk.len() {
                    len += copies[j].len as usize;
                    j += 1;
                }
                check(cancel)?;
                chunk[..len].fill(0);
                unreadable += read_batch(pid, &mut chunk[..len], &copies[i..j])?;
                let mut pos = 0usize;
                for c in &copies[i..j] {
                    file.write_all_at(&chunk[pos..pos + c.len as usize], data_start + c.data_off)
                        .context("cannot write the core file")?;
                    pos += c.len as usize;
                }
                i = j;
            }
        }
    }
    Ok(unreadable)
}

/// Reads `copies` back to back into `buf`, [`BATCH`] ranges per call.
fn read_all(pid: u32, buf: &mut [u8], copies: &[Copy], cancel: Option<&AtomicBool>) -> Result<u64> {
    let (mut pos, mut skipped) = (0usize, 0);
    for batch in copies.chunks(BATCH) {
        check(cancel)?;
        let len: usize = batch.iter().map(|c| c.len as usize).sum();
        skipped += read_batch(pid, &mut buf[pos..pos + len], batch)?;
        pos += len;
    }
    Ok(skipped)
}

/// Reads `remote` ranges back to back into `local` (whose length is their
/// total), skipping pages that cannot be read; returns how many were skipped.
fn read_batch(pid: u32, local: &mut [u8], remote: &[Copy]) -> Result<u64> {
    let mut skipped = 0;
    let (mut idx, mut within, mut pos) = (0usize, 0u64, 0usize);
    while idx < remote.len() {
        let iov: Vec<libc::iovec> = remote[idx..]
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let off = if k == 0 { within } else { 0 };
                libc::iovec { iov_base: (c.addr + off) as *mut libc::c_void, iov_len: (c.len - off) as usize }
            })
            .collect();
        let want: usize = iov.iter().map(|v| v.iov_len).sum();
        let dst = libc::iovec { iov_base: local[pos..].as_mut_ptr().cast(), iov_len: want };
        // SAFETY: `dst` covers `want` bytes of `local`; remote addresses are
        // only read by the kernel in the target.
        let n =
            unsafe { libc::process_vm_readv(pid as libc::pid_t, &dst, 1, iov.as_ptr(), iov.len() as libc::c_ulong, 0) };
        let mut n = if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                bail!("process {pid} exited during the dump")
            }
            0
        } else {
            n as u64
        };
        let complete = n as usize == want;
        // Advance past what was read.
        pos += n as usize;
        while n > 0 {
            let left = remote[idx].len - within;
            if n >= left {
                n -= left;
                idx += 1;
                within = 0;
            } else {
                within += n;
                n = 0;
            }
        }
        if !complete {
            // The page at the current position cannot be read: skip it.
            let addr = remote[idx].addr + within;
            let step = (PAGE - addr % PAGE).min(remote[idx].len - within);
            pos += step as usize;
            within += step;
            skipped += 1;
            if within == remote[idx].len {
                idx += 1;
                within = 0;
            }
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_own_memory_and_skips_unreadable_pages() {
        // Three pages: readable, PROT_NONE, readable.
        // SAFETY: a fresh mapping we fill and protect.
        let p = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            std::ptr::write_bytes(p, 0xaa, 3 * 4096);
            libc::mprotect(p.add(4096).cast(), 4096, libc::PROT_NONE);
            p
        };
        let base = p as u64;
        let copies =
            [Copy { addr: base + 100, len: 3 * 4096 - 200, data_off: 0 }, Copy { addr: base, len: 50, data_off: 0 }];
        let mut snap = Snapshot::new(4096).unwrap();
        let skipped = copy(std::process::id(), &copies, Sink::Snapshot(&mut snap), None).unwrap();
        assert_eq!(skipped, 1);
        let b = snap.bytes(3 * 4096 - 150);
        assert!(b[..4096 - 100].iter().all(|&x| x == 0xaa));
        assert!(b[4096 - 100..2 * 4096 - 100].iter().all(|&x| x == 0));
        assert!(b[2 * 4096 - 100..].iter().all(|&x| x == 0xaa));
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(p.cast(), 3 * 4096) };
    }

    #[test]
    fn copies_straight_into_a_file() {
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        let base = data.as_ptr() as u64;
        let copies =
            [Copy { addr: base, len: 4096, data_off: 0 }, Copy { addr: base + 8192, len: 4096, data_off: 4096 * 5 }];
        let file = tempfile::tempfile().unwrap();
        let skipped = copy(std::process::id(), &copies, Sink::File(&file, 100), None).unwrap();
        assert_eq!(skipped, 0);
        let mut got = vec![0u8; 4096];
        file.read_exact_at(&mut got, 100).unwrap();
        assert_eq!(got, data[..4096]);
        file.read_exact_at(&mut got, 100 + 4096 * 5).unwrap();
        assert_eq!(got, data[8192..]);
    }

    #[test]
    fn a_missing_process_is_an_error() {
        let copies = [Copy { addr: 0x1000, len: 4096, data_off: 0 }];
        let mut snap = Snapshot::new(4096).unwrap();
        let err = copy(999_999_999, &copies, Sink::Snapshot(&mut snap), None).unwrap_err();
        assert!(err.to_string().contains("exited during the dump"));
    }
}
