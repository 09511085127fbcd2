//! Reading the memory of a process image: the [`Memory`] trait that every
//! reader in this crate goes through, typed helpers on top of it, and its
//! implementation for a live (stopped) process, [`LiveMemory`], which reads
//! with `process_vm_readv` and keeps the pages it read (the target is
//! stopped while we read, so a page never changes under us).
//!
//! Every read is checked: an address that is not mapped (or not in a core
//! file) gives `None`, never a panic, so garbage pointers in a damaged heap
//! only end the walk of the frame that holds them.

use std::cell::RefCell;
use std::collections::HashMap;

/// Bytes at addresses of a process image.
pub trait Memory {
    /// Fills `buf` with the bytes at `addr`; false if any of them cannot be
    /// read (unmapped, or missing from a core file).
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// Typed reads on any [`Memory`].
pub trait MemoryExt: Memory {
    fn u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b).then(|| u64::from_le_bytes(b))
    }
    fn u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b).then(|| u32::from_le_bytes(b))
    }
    fn i32(&self, addr: u64) -> Option<i32> {
        self.u32(addr).map(|v| v as i32)
    }
    fn u16(&self, addr: u64) -> Option<u16> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b).then(|| u16::from_le_bytes(b))
    }
    fn u8(&self, addr: u64) -> Option<u8> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b).then(|| b[0])
    }
    /// `len` bytes at `addr` (`None` if any is unreadable).
    fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(addr, &mut v).then_some(v)
    }
}

impl<M: Memory + ?Sized> MemoryExt for M {}

const PAGE: u64 = 4096;

/// The memory of a live process, read with `process_vm_readv`, page by page,
/// each page read once. Only valid while the process is stopped.
pub struct LiveMemory {
    pid: u32,
    pages: RefCell<HashMap<u64, Option<Box<[u8]>>>>,
}

impl LiveMemory {
    pub fn new(pid: u32) -> Self {
        LiveMemory { pid, pages: RefCell::new(HashMap::new()) }
    }

    /// Forgets the pages read so far (call after the target ran again).
    pub fn clear(&self) {
        self.pages.borrow_mut().clear();
    }

    /// Number of distinct pages read (for reports and tests).
    pub fn pages_read(&self) -> usize {
        self.pages.borrow().len()
    }

    fn read_page(&self, page: u64) -> Option<Box<[u8]>> {
        let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
        let n = vm_read(self.pid, page, &mut buf);
        (n == PAGE as usize).then_some(buf)
    }
}

impl Memory for LiveMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else { return false };
        // Large reads (script sources) go straight to the target.
        if buf.len() > 4 * PAGE as usize {
            return vm_read(self.pid, addr, buf) == buf.len();
        }
        let mut pages = self.pages.borrow_mut();
        let mut at = addr;
        while at < end {
            let page = at & !(PAGE - 1);
            let data = pages.entry(page).or_insert_with(|| self.read_page(page));
            let Some(data) = data else { return false };
            let from = (at - page) as usize;
            let n = ((page + PAGE).min(end) - at) as usize;
            let to = (at - addr) as usize;
            buf[to..to + n].copy_from_slice(&data[from..from + n]);
            at += n as u64;
        }
        true
    }
}

/// `process_vm_readv` of `buf.len()` bytes at `addr` of `pid`: the number
/// of bytes read (0 on error).
fn vm_read(pid: u32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: one local iovec over `buf`, which the kernel writes at most
    // `buf.len()` bytes into; the remote address is only read, in the target.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        0
    } else {
        n as usize
    }
}

/// Memory made of byte ranges (tests, and stack copies).
#[derive(Default)]
pub struct Ranges {
    pub ranges: Vec<(u64, Vec<u8>)>,
}

impl Memory for Ranges {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.ranges.iter().any(|(start, data)| {
            let off = addr.wrapping_sub(*start);
            if addr >= *start && off + buf.len() as u64 <= data.len() as u64 {
                buf.copy_from_slice(&data[off as usize..off as usize + buf.len()]);
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_memory_reads_own_process() {
        let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
        let mem = LiveMemory::new(std::process::id());
        let addr = data.as_ptr() as u64;
        assert_eq!(mem.bytes(addr + 4090, 10).unwrap(), data[4090..4100].to_vec());
        assert_eq!(mem.bytes(addr, 20000).unwrap(), data);
        assert_eq!(mem.u8(addr + 7), Some(7));
        assert_eq!(mem.u64(8), None, "page 0 is never mapped");
    }

    #[test]
    fn ranges_memory() {
        let m = Ranges { ranges: vec![(0x1000, vec![1, 2, 3, 4, 5, 6, 7, 8, 9])] };
        assert_eq!(m.u64(0x1000), Some(u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])));
        assert_eq!(m.u64(0x1002), None);
        assert_eq!(m.u16(0x1007), Some(u16::from_le_bytes([8, 9])));
    }
}
