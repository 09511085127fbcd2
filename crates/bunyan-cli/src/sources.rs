//! Input sources: stdin, and files (`.gz` files are decompressed, as in
//! node-bunyan). Several files are merged into one stream ordered by record
//! time, with node-bunyan's rule: each file is assumed sorted, the earliest
//! pending record goes first (ties go to the file named first), and lines
//! that are not records are shown as soon as they are read.

use crate::input::{for_each_line, BlockReader, Input};
use crate::output::Output;
use crate::process::{Kind, Processor};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Set by the signal handler when output should stop (paging case).
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The message node-bunyan prints for a file it cannot read.
pub fn file_error(path: &str, e: &io::Error, op: &str) -> String {
    let (code, text) = match e.raw_os_error() {
        Some(libc::ENOENT) => ("ENOENT", "no such file or directory"),
        Some(libc::EACCES) => ("EACCES", "permission denied"),
        Some(libc::EISDIR) => ("EISDIR", "illegal operation on a directory"),
        _ => return format!("{path}: {e}"),
    };
    if op == "read" {
        format!("{code}: {text}, read")
    } else {
        format!("{code}: {text}, open '{path}'")
    }
}

/// Opens a file for reading (through gunzip for `*.gz`); FIFOs and
/// terminals are polled so that output keeps up with slow writers.
pub fn open(path: &str) -> Result<Input, String> {
    let f = File::open(path).map_err(|e| file_error(path, &e, "open"))?;
    if path.ends_with(".gz") {
        return Ok(Input { reader: Box::new(flate2::read::MultiGzDecoder::new(f)), poll_fd: None });
    }
    let regular = f.metadata().is_ok_and(|m| m.is_file());
    let poll_fd = (!regular).then(|| f.as_raw_fd());
    Ok(Input { reader: Box::new(f), poll_fd })
}

/// Streams one source through the processor, splitting big blocks over
/// several threads (output order is kept). Returns an error message for a
/// read error (the output written so far stays).
pub fn run_single(input: Input, path: &str, p: &mut Processor, out: &mut Output) -> io::Result<Result<(), String>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let mut workers: Vec<Processor> = Vec::new();
    let mut slots: Vec<Mutex<Vec<u8>>> = Vec::new();
    let mut reader = BlockReader::new(input);
    let read_ahead = reader.never_waits();
    let mut spare = Vec::new();
    let mut ahead: Option<io::Result<Option<Vec<u8>>>> = None;
    loop {
        if out.closed || INTERRUPTED.load(Ordering::Relaxed) {
            return Ok(Ok(()));
        }
        let next = match ahead.take() {
            Some(r) => r,
            None => {
                let o = &mut *out;
                reader.next_owned(std::mem::take(&mut spare), &mut || o.flush())
            }
        };
        let block = match next {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Ok(())),
            Err(e) => return Ok(Err(file_error(path, &e, "read"))),
        };
        if threads > 1 && block.len() >= PARALLEL_MIN {
            while workers.len() < threads - 1 {
                workers.push(p.fork());
            }
            // More parts than threads, taken in turn: a thread that gets
            // less CPU (a busy machine) simply processes fewer parts.
            let parts = split_at_lines(&block, threads * PARTS_PER_THREAD);
            while slots.len() < parts.len() {
                slots.push(Mutex::new(Vec::new()));
            }
            let next = AtomicUsize::new(0);
            let work = |proc: &mut Processor| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(part) = parts.get(i) else { break };
                let mut buf = slots[i].lock().unwrap_or_else(|e| e.into_inner());
                for_each_line(part, |l| proc.handle_line(l, &mut buf));
            };
            std::thread::scope(|scope| {
                for w in workers.iter_mut() {
                    scope.spawn(|| work(w));
                }
                // Files never wait: read the next block meanwhile.
                if read_ahead {
                    ahead = Some(reader.next_owned(std::mem::take(&mut spare), &mut || Ok(())));
                }
                work(p);
            });
            for slot in &mut slots[..parts.len()] {
                let buf = slot.get_mut().unwrap_or_else(|e| e.into_inner());
                out.write_direct(buf)?;
                buf.clear();
            }
        } else {
            for_each_line(&block, |l| p.handle_line(l, &mut out.buf));
        }
        spare = block;
        out.maybe_flush()?;
    }
}

/// Parts a block is cut into per thread (for balance on a busy machine).
const PARTS_PER_THREAD: usize = 16;

/// Blocks smaller than this are not worth splitting over threads.
const PARALLEL_MIN: usize = 128 * 1024;

/// Splits a block into `n` parts at line boundaries (some may be empty).
fn split_at_lines(block: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (block.len() * k / n).max(start);
        let cut = memchr::memchr(b'\n', &block[target..]).map_or(block.len(), |p| target + p + 1);
        parts.push(&block[start..cut]);
        start = cut;
    }
    parts.push(&block[start..]);
    parts
}

/// node reads files in chunks of this size (`fs.createReadStream`'s default).
const NODE_CHUNK: usize = 64 * 1024;

/// One file of a merge: read chunk by chunk like node's read stream.
struct Source {
    path: String,
    reader: Option<Box<dyn Read>>,
    /// A partial line carried over from the previous chunk.
    leftover: Vec<u8>,
    /// Records read but not shown yet: line and time.
    queue: VecDeque<(Vec<u8>, f64)>,
}

impl Source {
    fn done(&self) -> bool {
        self.reader.is_none()
    }
}

/// Merges several files by record time, replaying node-bunyan's algorithm:
/// files are read chunk by chunk; within a chunk, non-record lines are shown
/// at once and records are queued; whenever every unfinished file has a
/// queued record, the earliest one is shown (ties and unparseable times go
/// to the file named first). Returns the number of files that could not be
/// read (node-bunyan's exit status), after reporting each.
pub fn run_merged(paths: &[String], p: &mut Processor, out: &mut Output) -> io::Result<i32> {
    let mut failures = 0;
    let mut sources: Vec<Source> = Vec::new();
    for path in paths {
        match open(path) {
            Ok(r) => sources.push(Source {
                path: path.clone(),
                reader: Some(r.reader),
                leftover: Vec::new(),
                queue: VecDeque::new(),
            }),
            Err(msg) => {
                out.flush()?;
                eprintln!("bunyan: {msg}");
                failures += 1;
            }
        }
    }
    let mut chunk = vec![0u8; NODE_CHUNK];
    loop {
        if out.closed || INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        // Read one chunk from every unfinished file that has nothing queued.
        let mut progressed = false;
        for i in 0..sources.len() {
            if sources[i].done() || !sources[i].queue.is_empty() {
                continue;
            }
            progressed = true;
            failures += read_chunk(&mut sources, i, &mut chunk, p, out)?;
        }
        if !progressed {
            break;
        }
    }
    Ok(failures)
}

/// Reads and handles one chunk of source `i`.
fn read_chunk(
    sources: &mut [Source],
    i: usize,
    chunk: &mut [u8],
    p: &mut Processor,
    out: &mut Output,
) -> io::Result<i32> {
    let Some(reader) = sources[i].reader.as_mut() else {
        return Ok(0);
    };
    let n = loop {
        match reader.read(chunk) {
            Ok(n) => break Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            sources[i].reader = None;
            out.flush()?;
            eprintln!("bunyan: {}", file_error(&sources[i].path, &e, "read"));
            emit_ready(sources, p, out)?;
            return Ok(1);
        }
    };
    if n == 0 {
        sources[i].reader = None;
        let last = std::mem::take(&mut sources[i].leftover);
        if !last.is_empty() {
            handle(sources, i, last, p, out)?;
        } else {
            emit_ready(sources, p, out)?;
        }
        return Ok(0);
    }
    let data = &chunk[..n];
    let mut start = 0;
    while let Some(pos) = memchr::memchr(b'\n', &data[start..]) {
        let mut line = std::mem::take(&mut sources[i].leftover);
        line.extend_from_slice(&data[start..start + pos]);
        handle(sources, i, line, p, out)?;
        start += pos + 1;
    }
    sources[i].leftover.extend_from_slice(&data[start..]);
    Ok(0)
}

/// node's `handleLogLine` for a file: show non-records now, queue records.
fn handle(sources: &mut [Source], i: usize, line: Vec<u8>, p: &mut Processor, out: &mut Output) -> io::Result<()> {
    match p.classify(&line) {
        Kind::Other => {
            p.pass_through(&line, &mut out.buf);
            out.maybe_flush()
        }
        Kind::Hidden => Ok(()),
        Kind::Shown(t) => {
            sources[i].queue.push_back((line, t));
            emit_ready(sources, p, out)
        }
    }
}

/// node's `emitNextRecord`: while every unfinished file has a queued
/// record, show the earliest.
fn emit_ready(sources: &mut [Source], p: &mut Processor, out: &mut Output) -> io::Result<()> {
    loop {
        let mut min: Option<usize> = None;
        for (i, s) in sources.iter().enumerate() {
            if !s.done() && s.queue.is_empty() {
                return Ok(());
            }
            if let Some((_, t)) = s.queue.front() {
                let earlier = match min {
                    None => true,
                    Some(m) => sources[m].queue.front().is_some_and(|(_, mt)| mt > t),
                };
                if earlier {
                    min = Some(i);
                }
            }
        }
        let Some(m) = min else { return Ok(()) };
        if let Some((line, _)) = sources[m].queue.pop_front() {
            p.render_shown(&line, &mut out.buf);
            out.maybe_flush()?;
        }
    }
}
