//! The language: lexer, parser, syntax tree, printer. Pure functions of text.
//!
//! # Layout
//! - `lexer.rs`: text to tokens with spans; a newline ends a step, except inside JSON.
//! - `json.rs`: JSON patterns, with `$name` wherever a value goes.
//! - `duration.rs`: `30s`, `5m`, `1h30m`, `500ms`: parsing and printing.
//! - `parser/`: tokens to steps, one file per step family (users, the business,
//!   expectations) around a shared token cursor; see its own `# Layout`.
//! - `ast.rs`: the syntax tree, one [`Step`] per line.
//! - `print.rs`: the syntax tree back to canonical text (parsing it gives the same tree).

pub mod ast;
pub mod duration;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod print;

pub use ast::*;
pub use parser::parse;
pub use print::{print_scenario, print_step};
