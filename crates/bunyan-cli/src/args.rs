//! Command-line parsing with node-bunyan's exact rules: bundled short
//! options (`-jl warn`, `-lwarn`, `-ojson-4`), `--` ends options, later
//! options override earlier ones, several `-c` all apply, several `-p PID`
//! accumulate. (Hand-written rather than clap so that every spelling node
//! accepts, and only those, is accepted.)

use anyhow::{anyhow, bail, Result};
use bunyan_view::level::parse_level_arg;
use bunyan_view::{js, Condition, OutputMode, TimeZone};

/// What `-p` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pids {
    /// PIDs and/or `*`.
    Numbers(Vec<String>),
    /// A process name pattern (the last `-p NAME` wins, as in node).
    Name(String),
}

/// Parsed command line.
#[derive(Debug)]
pub struct Opts {
    pub files: Vec<String>,
    pub help: bool,
    pub version: bool,
    pub color: Option<bool>,
    pub paginate: Option<bool>,
    pub mode: OutputMode,
    pub json_indent: usize,
    pub level: Option<f64>,
    pub conditions: Vec<Condition>,
    pub strict: bool,
    pub pids: Option<Pids>,
    pub time: TimeZone,
}

/// Options that take a value when bundled (`-lwarn`), as in node.
const TAKES_ARG: &[char] = &['d', 'o', 'c', 'l', 'p'];

/// Expands `-abc` into `-a -b -c` (and `-lwarn` into `-l warn`).
fn split_bundles(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_dashdash = false;
    for a in args {
        let chars: Vec<char> = a.chars().collect();
        if a == "--" {
            after_dashdash = true;
        }
        if !after_dashdash && chars.len() > 2 && chars[0] == '-' && chars[1] != '-' {
            for (j, &c) in chars[1..].iter().enumerate() {
                out.push(format!("-{c}"));
                if TAKES_ARG.contains(&c) {
                    let rest: String = chars[j + 2..].iter().collect();
                    if !rest.is_empty() {
                        out.push(rest);
                    }
                    break;
                }
            }
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// `JSON.stringify(x, null, n)` clamps the indent to 0..=10 (truncating fractions).
fn indent_from(n: f64) -> usize {
    if n.is_nan() || n < 1.0 {
        0
    } else {
        n.min(10.0) as usize
    }
}

pub fn parse(argv: &[String]) -> Result<Opts> {
    let mut o = Opts {
        files: Vec::new(),
        help: false,
        version: false,
        color: None,
        paginate: None,
        mode: OutputMode::Long,
        json_indent: 2,
        level: None,
        conditions: Vec::new(),
        strict: false,
        pids: None,
        time: TimeZone::Utc,
    };
    let mut args = split_bundles(argv).into_iter();
    let mut end_of_options = false;
    while let Some(arg) = args.next() {
        if end_of_options {
            o.files.push(arg);
            continue;
        }
        let mut value = |what: &str| args.next().ok_or_else(|| anyhow!("missing argument to \"{what}\""));
        match arg.as_str() {
            "--" => end_of_options = true,
            "-h" | "--help" => o.help = true,
            "--version" => o.version = true,
            "--strict" => o.strict = true,
            "--color" => o.color = Some(true),
            "--no-color" => o.color = Some(false),
            "--pager" => o.paginate = Some(true),
            "--no-pager" => o.paginate = Some(false),
            "-o" | "--output" => {
                let mut name = value(&arg)?;
                if let Some(idx) = name.rfind('-') {
                    let n = js::string_to_number(&name[idx + 1..]);
                    if !n.is_nan() {
                        o.json_indent = indent_from(n);
                        name.truncate(idx);
                    }
                }
                o.mode = OutputMode::from_name(&name).ok_or_else(|| anyhow!("unknown output mode: \"{name}\""))?;
            }
            "-j" => o.mode = OutputMode::Json,
            "-0" => o.mode = OutputMode::Bunyan,
            "-L" => o.time = TimeZone::Local,
            "--time" => {
                let t = value(&arg)?;
                o.time = match t.as_str() {
                    "utc" => TimeZone::Utc,
                    "local" => TimeZone::Local,
                    _ => bail!("invalid time format: \"{t}\""),
                }
            }
            "-p" => {
                let p = value(&arg)?;
                let numeric = !js::string_to_number(&p).is_nan() || p == "*";
                o.pids = Some(match (o.pids.take(), numeric) {
                    (None, true) => Pids::Numbers(vec![p]),
                    (Some(Pids::Numbers(mut v)), true) => {
                        v.push(p);
                        Pids::Numbers(v)
                    }
                    (None | Some(Pids::Name(_)), false) => Pids::Name(p),
                    _ => bail!("cannot mix PID name and number arguments: \"{p}\""),
                });
            }
            "-l" | "--level" => {
                let l = value(&arg)?;
                o.level = Some(parse_level_arg(&l).ok_or_else(|| anyhow!("unknown level value: \"{l}\""))?);
            }
            "-c" | "--condition" => {
                let c = value(&arg)?;
                // node-bunyan's alternative evaluation mode: fields are globals.
                let vm = std::env::var("BUNYAN_EXEC").is_ok_and(|v| v == "vm");
                o.conditions.push(if vm { Condition::compile_vm(&c)? } else { Condition::compile(&c)? });
            }
            _ => {
                if arg.starts_with('-') {
                    bail!("unknown option \"{arg}\"");
                }
                o.files.push(arg);
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Opts> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn node_style_options() {
        let o = p(&["-lwarn", "-ojson-4", "a.log", "--", "-b.log"]).unwrap();
        assert_eq!(o.level, Some(40.0));
        assert_eq!(o.mode, OutputMode::Json);
        assert_eq!(o.json_indent, 4);
        assert_eq!(o.files, ["a.log", "-b.log"]);
        let o = p(&["-jL", "-p", "12", "-p", "*"]).unwrap();
        assert_eq!(o.mode, OutputMode::Json);
        assert_eq!(o.time, TimeZone::Local);
        assert_eq!(o.pids, Some(Pids::Numbers(vec!["12".into(), "*".into()])));
        assert!(p(&["-p", "12", "-p", "node"]).is_err());
        assert!(p(&["-o", "fancy"]).is_err());
        assert!(p(&["--levels"]).is_err());
        assert!(p(&["-l", "loud"]).is_err());
        assert_eq!(p(&["-o", "json-0"]).unwrap().json_indent, 0);
    }
}
