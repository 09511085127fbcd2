//! What `prodtrace catch` matches: the parsed and checked event selection
//! (syscalls, return value, errno, arguments) and narrowing (pid, comm), in
//! the form the BPF program's read-only configuration takes.

use anyhow::{bail, Context, Result};

use super::names;

/// Comparison of `--ret OP VALUE`; the discriminants are the BPF program's
/// `OP_*` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq = 1,
    Ne = 2,
    Lt = 3,
    Le = 4,
    Gt = 5,
    Ge = 6,
}

impl Op {
    const ALL: [(&'static str, Op); 6] =
        [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)];

    fn symbol(self) -> &'static str {
        Op::ALL.iter().find(|(_, op)| *op == self).map(|(s, _)| *s).unwrap_or("?")
    }
}

/// A condition on the return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetCond {
    pub op: Op,
    pub value: i64,
}

/// Everything the BPF program filters on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Syscall numbers; empty means every syscall.
    pub syscalls: Vec<u32>,
    /// Return value condition (`--ret`, or `--errno N` as `== -N`).
    pub ret: Option<RetCond>,
    /// Any error return (`--failed`).
    pub failed: bool,
    /// `(index, value)` conditions on the syscall arguments.
    pub args: Vec<(usize, u64)>,
    /// Only this process (all its threads).
    pub pid: Option<u32>,
    /// Only threads whose own or whose process's comm is this.
    pub comm: Option<String>,
}

/// Parses `--ret` operands: either `OP VALUE` or a single `OPVALUE` (`<0`).
pub fn parse_ret(tokens: &[String]) -> Result<RetCond> {
    let shown = tokens.join(" ");
    let joined = tokens.join("");
    let text = joined.trim();
    for (sym, op) in Op::ALL {
        if let Some(rest) = text.strip_prefix(sym) {
            let value =
                parse_int(rest.trim()).with_context(|| format!("--ret {text}: '{}' is not a number", rest.trim()))?;
            return Ok(RetCond { op, value });
        }
    }
    bail!("--ret {shown}: the operator must be one of ==, !=, <, <=, >, >= (e.g. --ret '<' 0)")
}

/// Parses an `--errno` value into the equivalent return-value condition.
pub fn errno_cond(text: &str) -> Result<RetCond> {
    Ok(RetCond { op: Op::Eq, value: -(names::errno_number(text)? as i64) })
}

/// Parses `--arg N VALUE`.
pub fn parse_arg(index: &str, value: &str) -> Result<(usize, u64)> {
    let i: usize = index
        .parse()
        .ok()
        .filter(|i| *i < 6)
        .with_context(|| format!("--arg {index}: the argument index must be 0 to 5"))?;
    let v = parse_int(value).with_context(|| format!("--arg {index} {value}: '{value}' is not a number"))?;
    Ok((i, v as u64))
}

/// Decimal (optionally negative) or 0x-prefixed hexadecimal.
fn parse_int(text: &str) -> Result<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let v = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|v| v as i64)?,
        None => digits.parse::<i64>()?,
    };
    Ok(if neg { v.wrapping_neg() } else { v })
}

impl Filter {
    /// Human description for the banner, e.g.
    /// `close() == -9 (EBADF) in process 4242`.
    pub fn describe(&self) -> String {
        let calls = if self.syscalls.is_empty() {
            "any system call".to_string()
        } else {
            self.syscalls
                .iter()
                .map(|&n| format!("{}()", names::syscall_name(n as i64)))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let mut parts = vec![calls];
        for (i, v) in &self.args {
            parts.push(format!("with arg{i} == {}", *v as i64));
        }
        let errno = self.ret.filter(|r| r.op == Op::Eq && (-4095..0).contains(&r.value));
        if self.failed && errno.is_none() {
            parts.push("failing".into());
        }
        if let Some(r) = self.ret {
            parts.push(match errno {
                Some(_) => match names::errno_name(-r.value as i32) {
                    Some(name) => format!("failing with {name}"),
                    None => format!("failing with errno {}", -r.value),
                },
                None => format!("returning {} {}", r.op.symbol(), r.value),
            });
        }
        if let Some(pid) = self.pid {
            parts.push(format!("in process {pid}"));
        }
        if let Some(comm) = &self.comm {
            parts.push(format!("in processes named '{comm}'"));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ret_conditions() {
        assert_eq!(parse_ret(&s(&["<", "0"])).unwrap(), RetCond { op: Op::Lt, value: 0 });
        assert_eq!(parse_ret(&s(&["<=", "-1"])).unwrap(), RetCond { op: Op::Le, value: -1 });
        assert_eq!(parse_ret(&s(&[">=0x10"])).unwrap(), RetCond { op: Op::Ge, value: 16 });
        assert_eq!(parse_ret(&s(&["!=", "3"])).unwrap(), RetCond { op: Op::Ne, value: 3 });
        assert!(parse_ret(&s(&["=~", "3"])).unwrap_err().to_string().contains("operator must be"));
        assert!(parse_ret(&s(&["==", "x"])).unwrap_err().to_string().contains("not a number"));
    }

    #[test]
    fn errno_and_args() {
        assert_eq!(errno_cond("EBADF").unwrap(), RetCond { op: Op::Eq, value: -9 });
        assert_eq!(parse_arg("0", "77").unwrap(), (0, 77));
        assert_eq!(parse_arg("2", "-1").unwrap(), (2, u64::MAX));
        assert!(parse_arg("6", "1").is_err());
    }

    #[test]
    fn description() {
        let f = Filter {
            syscalls: vec![3],
            ret: Some(RetCond { op: Op::Eq, value: -9 }),
            pid: Some(42),
            ..Default::default()
        };
        assert_eq!(f.describe(), "close() failing with EBADF in process 42");
        let f = Filter { ret: Some(RetCond { op: Op::Lt, value: 0 }), ..Default::default() };
        assert_eq!(f.describe(), "any system call returning < 0");
        // --errno says failing already: --failed adds nothing.
        let f = Filter {
            syscalls: vec![3],
            ret: Some(RetCond { op: Op::Eq, value: -9 }),
            failed: true,
            ..Default::default()
        };
        assert_eq!(f.describe(), "close() failing with EBADF");
        let f = Filter { failed: true, ret: Some(RetCond { op: Op::Ne, value: -9 }), ..Default::default() };
        assert_eq!(f.describe(), "any system call failing returning != -9");
    }
}
