//! Reading input in large blocks of whole lines: any bytes (invalid UTF-8
//! included), any line length (the buffer grows for megabyte lines).
//! Before a read that would block (a pipe with nothing ready, checked with
//! poll), the caller flushes its output and gets the complete lines read so
//! far, so `tail -f app.log | bunyan` shows records as they come while big
//! files and fast pipes are processed in big blocks.

use std::io::{self, Read};
use std::os::fd::RawFd;

/// Blocks are handed out once this much is buffered (or input pauses).
pub const BLOCK: usize = 1 << 20;
const READ_SIZE: usize = 256 * 1024;

/// An input stream.
pub struct Input {
    pub reader: Box<dyn Read>,
    /// Descriptor to poll before reading (pipes, terminals); `None` for
    /// regular files and decompressors, which never block for long.
    pub poll_fd: Option<RawFd>,
}

/// Whether `fd` has data (or EOF) ready right now.
fn ready(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
}

/// Splits input into blocks that end at a line boundary.
pub struct BlockReader {
    input: Input,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out (dropped at the next fill).
    consumed: usize,
    eof: bool,
}

impl BlockReader {
    pub fn new(input: Input) -> BlockReader {
        BlockReader { input, buf: Vec::with_capacity(BLOCK + READ_SIZE), consumed: 0, eof: false }
    }

    /// The next block of complete lines (the last block may end without a
    /// newline), or `None` at end of input. `before_block` runs before a
    /// read that may wait.
    pub fn next_block(&mut self, before_block: &mut dyn FnMut() -> io::Result<()>) -> io::Result<Option<&[u8]>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        loop {
            let complete = memchr::memrchr(b'\n', &self.buf).map_or(0, |p| p + 1);
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                self.consumed = self.buf.len();
                return Ok(Some(&self.buf));
            }
            if complete >= BLOCK {
                self.consumed = complete;
                return Ok(Some(&self.buf[..complete]));
            }
            if let Some(fd) = self.input.poll_fd {
                if !ready(fd) {
                    if complete > 0 {
                        self.consumed = complete;
                        return Ok(Some(&self.buf[..complete]));
                    }
                    before_block()?;
                }
            }
            let len = self.buf.len();
            self.buf.resize(len + READ_SIZE, 0);
            let n = loop {
                match self.input.reader.read(&mut self.buf[len..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(len);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(len + n);
            if n == 0 {
                self.eof = true;
            }
        }
    }

    /// Whether reading never waits for a writer (regular files,
    /// decompressors): then the next block can be read ahead while the
    /// current one is processed.
    pub fn never_waits(&self) -> bool {
        self.input.poll_fd.is_none()
    }

    /// Like [`BlockReader::next_block`], but the block is handed out as an
    /// owned buffer, so that the next one can be read meanwhile; `spare` is
    /// a buffer handed out before, reused to avoid fresh allocations.
    pub fn next_owned(
        &mut self,
        mut spare: Vec<u8>,
        before_block: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<Option<Vec<u8>>> {
        let Some(len) = self.next_block(before_block)?.map(<[u8]>::len) else {
            return Ok(None);
        };
        // Keep the incomplete last line in `spare`, which becomes `buf`.
        spare.clear();
        spare.extend_from_slice(&self.buf[len..]);
        self.buf.truncate(len);
        std::mem::swap(&mut self.buf, &mut spare);
        self.consumed = 0;
        Ok(Some(spare))
    }
}

/// Calls `f` for each line of a block (without its `\n`).
pub fn for_each_line(block: &[u8], mut f: impl FnMut(&[u8])) {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', block) {
        f(&block[start..nl]);
        start = nl + 1;
    }
    if start < block.len() {
        f(&block[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_end_at_lines_and_keep_everything() {
        let long = vec![b'x'; 3 * BLOCK + 17];
        let mut data = long.clone();
        data.extend_from_slice(b"\n\nlast");
        let mut r = BlockReader::new(Input { reader: Box::new(io::Cursor::new(data.clone())), poll_fd: None });
        let mut lines: Vec<Vec<u8>> = Vec::new();
        while let Some(b) = r.next_block(&mut || Ok(())).unwrap() {
            assert!(b.ends_with(b"\n") || b.ends_with(b"last"));
            for_each_line(b, |l| lines.push(l.to_vec()));
        }
        assert_eq!(lines, vec![long, Vec::new(), b"last".to_vec()]);
    }

    #[test]
    fn owned_blocks_keep_everything() {
        let mut data = Vec::new();
        for i in 0..300_000 {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        data.extend_from_slice(b"tail");
        let mut r = BlockReader::new(Input { reader: Box::new(io::Cursor::new(data.clone())), poll_fd: None });
        assert!(r.never_waits());
        let (mut all, mut spare, mut blocks) = (Vec::new(), Vec::new(), 0);
        while let Some(b) = r.next_owned(spare, &mut || Ok(())).unwrap() {
            assert!(b.ends_with(b"\n") || b.ends_with(b"tail"));
            all.extend_from_slice(&b);
            spare = b;
            blocks += 1;
        }
        assert!(blocks > 1);
        assert_eq!(all, data);
    }
}
