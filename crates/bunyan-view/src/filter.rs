//! Record filtering: `-l LEVEL` and any number of `-c CONDITION`s (all must pass).

use crate::condition::Condition;
use crate::js;
use crate::value::Value;

/// What records to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `-l`: records whose level is below this are hidden (0 disables it, like node).
    pub level: Option<f64>,
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// The `-l` minimum when it is the only filter: then a line can be
    /// parsed with [`crate::parse::parse_record_above`], which skips building
    /// records that will be hidden.
    pub fn level_only(&self) -> Option<f64> {
        self.level.filter(|l| *l != 0.0 && !l.is_nan() && self.conditions.is_empty())
    }

    /// Whether a valid record passes every filter.
    pub fn matches(&self, rec: &Value) -> bool {
        if let Some(min) = self.level.filter(|l| *l != 0.0 && !l.is_nan()) {
            // `rec.level < opts.level` with JavaScript coercion.
            let level = js::to_number(rec.get("level").unwrap_or(&Value::Null));
            if level < min {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.matches(rec))
    }
}
