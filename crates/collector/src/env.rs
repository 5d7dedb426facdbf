//! Where settings' environment overrides come from: the process, or a map
//! in tests. Secrets (the admin token, PBX and export secrets) can stay out
//! of the configuration file this way.

use std::collections::HashMap;

/// Where environment overrides come from (the process environment, or a map in tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
