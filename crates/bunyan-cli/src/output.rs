//! Where rendered output goes: stdout or a pager's stdin, through one big
//! buffer. A closed pipe (`bunyan ... | head`, quitting the pager) is not an
//! error: it ends the run quietly, like node-bunyan.

use std::io::{self, Write};

/// Output is written out once this much is buffered.
const FLUSH_AT: usize = 64 * 1024;

/// Buffered output.
pub struct Output {
    pub buf: Vec<u8>,
    sink: Box<dyn Write>,
    /// Set once the reader went away (EPIPE).
    pub closed: bool,
}

impl Output {
    pub fn new(sink: Box<dyn Write>) -> Output {
        Output { buf: Vec::with_capacity(FLUSH_AT * 2), sink, closed: false }
    }

    /// Writes the buffer out if it is large.
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything buffered. A broken pipe marks the output closed.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            self.buf.clear();
            return Ok(());
        }
        let r = self.sink.write_all(&self.buf).and_then(|()| self.sink.flush());
        self.buf.clear();
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }

    /// Writes what is buffered, then `data` straight from where it is
    /// (large rendered parts are not copied into the buffer first).
    pub fn write_direct(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed || self.buf.len() + data.len() < FLUSH_AT {
            self.buf.extend_from_slice(data);
            return self.maybe_flush();
        }
        self.flush()?;
        if self.closed {
            return Ok(());
        }
        match self.sink.write_all(data) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }

    /// Replaces the sink with a sink that discards (closing a pager's stdin).
    pub fn close_sink(&mut self) {
        self.sink = Box::new(io::sink());
    }
}
