//! Record format, levels, streams, child loggers, errors and values that
//! cannot be serialized, checked on the JSON lines the logger writes.

mod common;

use std::{collections::HashMap, fmt};

use bunyan_log::{child, debug, error, info, trace, warn, Level, Logger, Stream};
use common::Sink;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

fn logger(level: Level) -> (Logger, Sink) {
    let sink = Sink::default();
    let log = Logger::builder("test-app").stream(Stream::writer("sink", sink.clone(), level)).build();
    (log, sink)
}

fn keys(rec: &serde_json::Map<String, Value>) -> Vec<&str> {
    rec.keys().map(String::as_str).collect()
}

#[test]
fn core_fields_in_node_bunyan_order() {
    let (log, sink) = logger(Level::Info);
    let c = child!(log, component = "db");
    info!(c, k = 1, "hello {}", "world");
    let recs = sink.records();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(keys(r), ["name", "hostname", "pid", "component", "level", "k", "msg", "time", "v"]);
    assert_eq!(r["name"], "test-app");
    assert_eq!(r["pid"], std::process::id());
    let mut host = [0u8; 256];
    unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) };
    let host = String::from_utf8_lossy(&host[..host.iter().position(|&b| b == 0).unwrap()]).into_owned();
    assert_eq!(r["hostname"], host.as_str());
    assert_eq!(r["level"], 30);
    assert_eq!(r["msg"], "hello world");
    assert_eq!(r["v"], 0);
    // 2026-11-28T08:00:00.123Z, and close to now.
    let t = r["time"].as_str().unwrap();
    assert_eq!(t.len(), 24, "{t}");
    let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(age >= time::Duration::ZERO && age < time::Duration::seconds(5), "{t}");
}

#[test]
fn levels_are_numbers_and_filter_per_stream() {
    let info_sink = Sink::default();
    let debug_sink = Sink::default();
    let log = Logger::builder("lv")
        .stream(Stream::writer("info", info_sink.clone(), Level::Info))
        .stream(Stream::writer("debug", debug_sink.clone(), Level::Debug))
        .build();
    trace!(log, "t");
    debug!(log, "d");
    info!(log, "i");
    warn!(log, "w");
    error!(log, "e");
    bunyan_log::fatal!(log, "f");
    let lv = |s: &Sink| s.records().iter().map(|r| r["level"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(lv(&info_sink), [30, 40, 50, 60]);
    assert_eq!(lv(&debug_sink), [20, 30, 40, 50, 60]);
    assert_eq!(log.level(), Level::Debug);
    log.set_level(Level::Error);
    info!(log, "dropped now");
    error!(log, "kept");
    assert_eq!(lv(&info_sink), [30, 40, 50, 60, 50]);
    assert_eq!(lv(&debug_sink), [20, 30, 40, 50, 60, 50]);
}

#[test]
fn arguments_are_not_evaluated_when_suppressed() {
    let (log, sink) = logger(Level::Info);
    let evaluated = std::cell::Cell::new(0);
    let costly = || {
        evaluated.set(evaluated.get() + 1);
        42
    };
    debug!(log, value = costly(), "never {}", 1);
    assert_eq!(evaluated.get(), 0);
    info!(log, value = costly(), "once");
    assert_eq!(evaluated.get(), 1);
    assert_eq!(sink.records()[0]["value"], 42);
}

#[test]
fn child_loggers_bind_and_override_fields() {
    let (log, sink) = logger(Level::Info);
    let a = child!(log, component = "a", shard = 1);
    let b = a.child().field("shard", &2).field("req", &json!({"id": 7})).build();
    info!(b, "x");
    info!(a, "y");
    let recs = sink.records();
    assert_eq!(keys(&recs[0]), ["name", "hostname", "pid", "component", "shard", "req", "level", "msg", "time", "v"]);
    assert_eq!(recs[0]["shard"], 2);
    assert_eq!(recs[0]["req"], json!({"id": 7}));
    assert_eq!(recs[1]["shard"], 1);
    assert!(recs[1].get("req").is_none());
}

#[test]
fn display_debug_and_serde_fields() {
    #[derive(Debug, Serialize)]
    struct Req {
        method: &'static str,
        url: String,
    }
    let (log, sink) = logger(Level::Info);
    let req = Req { method: "GET", url: "/a".into() };
    let addr: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
    info!(log, req = req, peer = %addr, dbg = ?Some(3), list = [1, 2], "done");
    let r = &sink.records()[0];
    assert_eq!(r["req"], json!({"method": "GET", "url": "/a"}));
    assert_eq!(r["peer"], "10.0.0.1:80");
    assert_eq!(r["dbg"], "Some(3)");
    assert_eq!(r["list"], json!([1, 2]));
}

#[derive(Debug)]
struct Inner;
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("disk full")
    }
}
impl std::error::Error for Inner {}

#[derive(Debug)]
struct SaveError(Inner);
impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("saving the order failed")
    }
}
impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn errors_render_as_message_name_stack() {
    let (log, sink) = logger(Level::Info);
    let e = SaveError(Inner);
    error!(log, err = e, "request failed");
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    error!(log, err = io, "open failed");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(SaveError(Inner));
    error!(log, err = *boxed, "boxed");
    let recs = sink.records();
    assert_eq!(
        recs[0]["err"],
        json!({"message": "saving the order failed", "name": "SaveError",
               "stack": "SaveError: saving the order failed\nCaused by: disk full"})
    );
    assert_eq!(recs[1]["err"]["name"], "Error");
    assert_eq!(recs[1]["err"]["message"], "no such file");
    assert_eq!(recs[2]["err"]["stack"], "Error: saving the order failed\nCaused by: disk full");
}

/// A value whose Serialize impl always fails.
struct Broken;
impl Serialize for Broken {
    fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("broken on purpose"))
    }
}

/// Fails halfway through a struct, after writing part of it.
struct HalfBroken;
impl Serialize for HalfBroken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("HalfBroken", 2)?;
        st.serialize_field("ok", &1)?;
        st.serialize_field("bad", &Broken)?;
        st.end()
    }
}

#[test]
fn unserializable_fields_never_panic_or_break_the_line() {
    let (log, sink) = logger(Level::Info);
    let mut tuple_keys = HashMap::new();
    tuple_keys.insert((1, 2), "x");
    let mut int_keys = HashMap::new();
    int_keys.insert(7, "y");
    info!(
        log,
        a = Broken,
        b = HalfBroken,
        nan = f64::NAN,
        inf = f64::INFINITY,
        tuple_keys = tuple_keys,
        int_keys = int_keys,
        after = "still here",
        "line {}",
        1
    );
    let recs = sink.records();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["a"], "[unserializable: broken on purpose]");
    assert_eq!(r["b"], "[unserializable: broken on purpose]");
    assert_eq!(r["nan"], Value::Null);
    assert_eq!(r["inf"], Value::Null);
    assert!(
        r["tuple_keys"].as_str().unwrap().starts_with("[unserializable: key must be a string"),
        "{:?}",
        r["tuple_keys"]
    );
    assert_eq!(r["int_keys"], json!({"7": "y"}));
    assert_eq!(r["after"], "still here");
    assert_eq!(r["msg"], "line 1");
}

#[test]
fn messages_and_keys_are_escaped() {
    let (log, sink) = logger(Level::Info);
    let nasty = "quote \" backslash \\ newline \n tab \t nul \0 bell \u{7} é 🦀";
    info!(log, text = nasty, "{}", nasty);
    log.record(Level::Info).unwrap().field("we\"ird\nkey", &1).msg(format_args!("k"));
    let recs = sink.records();
    assert_eq!(recs[0]["msg"], nasty);
    assert_eq!(recs[0]["text"], nasty);
    assert_eq!(recs[1]["we\"ird\nkey"], 1);
}

#[test]
fn failing_display_keeps_the_record() {
    struct Bad;
    impl fmt::Display for Bad {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("partial")?;
            Err(fmt::Error)
        }
    }
    let (log, sink) = logger(Level::Info);
    info!(log, d = %Bad, "m {}", Bad);
    let r = &sink.records()[0];
    assert_eq!(r["d"], "partial[formatting failed]");
    assert_eq!(r["msg"], "m partial[formatting failed]");
}

#[test]
fn file_streams_append_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "existing line\n").unwrap();
    let log = Logger::builder("f").stream(Stream::file(&path, Level::Warn).unwrap()).build();
    info!(log, "no");
    warn!(log, "yes");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], "existing line");
    assert_eq!(serde_json::from_str::<Value>(lines[1]).unwrap()["msg"], "yes");
    let err = Stream::file(dir.path().join("missing/dir/x.log"), Level::Info).err().unwrap();
    assert!(err.to_string().contains("opening log file"), "{err}");
}

#[test]
fn levels_parse_by_name_and_number() {
    assert_eq!("debug".parse::<Level>().unwrap(), Level::Debug);
    assert_eq!("WARN".parse::<Level>().unwrap(), Level::Warn);
    assert_eq!("60".parse::<Level>().unwrap(), Level::Fatal);
    assert!("35".parse::<Level>().is_err());
    assert!("verbose".parse::<Level>().is_err());
}

/// Random strings (ASCII controls, quotes, backslashes, multi-byte and
/// astral characters) as keys, values and messages: every line parses and
/// gives back exactly what was logged.
#[test]
fn random_strings_round_trip() {
    let (log, sink) = logger(Level::Info);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pool: Vec<char> = (0u32..0x80)
        .chain([0xa0, 0xe9, 0x2028, 0x2029, 0xfeff, 0xfffd, 0x1f980, 0x10ffff])
        .filter_map(char::from_u32)
        .collect();
    let mut random = |len: u64| -> String { (0..len).map(|_| pool[(next() % pool.len() as u64) as usize]).collect() };
    let mut expected = Vec::new();
    for i in 0..2000 {
        let (k, v, m) = (format!("k{i}{}", random(4)), random(i % 40), random(i % 60));
        log.record(Level::Info).unwrap().field(&k, &v).msg(format_args!("{m}"));
        expected.push((k, v, m));
    }
    let recs = sink.records();
    assert_eq!(recs.len(), expected.len());
    for (r, (k, v, m)) in recs.iter().zip(&expected) {
        assert_eq!(r[k.as_str()], v.as_str());
        assert_eq!(r["msg"], m.as_str());
    }
}

#[test]
fn loggers_and_streams_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Logger>();
    assert_send_sync::<Stream>();
    let (log, sink) = logger(Level::Info);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    info!(log, t = t, i = i, "from thread {}", t);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every line whole: 1000 records, 250 per thread, in order per thread.
    let recs = sink.records();
    assert_eq!(recs.len(), 1000);
    for t in 0..4 {
        let is: Vec<u64> = recs.iter().filter(|r| r["t"] == t).map(|r| r["i"].as_u64().unwrap()).collect();
        assert_eq!(is, (0..250).collect::<Vec<_>>());
    }
}
