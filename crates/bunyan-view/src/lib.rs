//! Bunyan log records for the `bunyan` CLI and its `-p` snooper: parsing
//! lines into records ([`record`]), filtering by level and `-c` conditions
//! ([`filter`], [`condition`]), and rendering in every node-bunyan output
//! mode ([`render`]) byte for byte like node-bunyan 1.8's CLI.

pub mod condition;
pub mod filter;
pub mod inspect;
pub mod js;
pub mod json;
pub mod level;
pub mod parse;
pub mod record;
pub mod render;
pub mod skim;
pub mod time;
pub mod value;

pub use condition::Condition;
pub use filter::Filter;
pub use record::{is_valid_record, parse_record};
pub use render::{OutputMode, RenderOptions, Renderer, TimeZone};
pub use value::Value;
