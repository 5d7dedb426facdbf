//! The collector as a library; `main.rs` only parses the command line and calls in.
