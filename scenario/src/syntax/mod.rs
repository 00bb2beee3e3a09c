//! The language: lexer, parser, syntax tree, printer. Pure functions of text.

pub mod ast;
pub mod duration;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod print;

pub use ast::*;
pub use parser::parse;
pub use print::{print_scenario, print_step};
