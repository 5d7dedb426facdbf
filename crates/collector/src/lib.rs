//! The Ringsource collector as a library: configuration, storage, HTTP routes
//! and the visit/lease domain. `main.rs` only parses the command line.
//!
//! Layout:
//! - [`config`]: the TOML file, validated once at load time into domain types;
//! - [`static_files`]: the script tag, the wasm bundle and the `www/` pages;
//! - [`server`]: builds the actix-web app and runs it;
//! - [`cli`]: the `ringsource` command line.

pub mod cli;
pub mod config;
pub mod server;
pub mod static_files;
