//! The collector's TOML configuration: text in, validated settings out.
//! Nothing here touches the network, the database or the HTTP server; the
//! layers above read the settings (see the crate docs for the layers).
//!
//! The file is parsed in two steps: serde reads the raw shape
//! (`deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored key), then each section is validated into domain types,
//! collecting *every* problem, each with the file, the field path and the
//! reason, so `ringsource check-config` can list them all at once.
//!
//! - [`server`]: the `[server]` table;
//! - [`site`]: `[[sites]]`, which hands `[sites.pbx]` with `pbx_secrets` to
//!   the PBX adapters' settings ([`crate::pbx::settings`]) and
//!   `[sites.exports]` to the exports' ([`crate::services::exports`]).
//!
//! Relative paths in `[server]` resolve against the current directory of the
//! process, not the directory of the config file, so the demo config works as
//! `cargo run -p ringsource-collector -- serve --config examples/demo/ringsource.toml`
//! from the workspace root.

pub mod server;
pub mod site;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringsource_core::phone::PhoneNumber;
use serde::de::DeserializeOwned;

pub use server::{ADMIN_TOKEN_ENV, ForwardedHeader, RateLimit, ServerConfig};
pub use site::{
    NOT_SET, Pool, PromoConfig, Retention, Site, StaticNumber, StaticSource, normalise_origin, pbx_secret_env_var,
};

pub use crate::env::{Env, ProcessEnv};

use server::RawServer;
use site::RawSite;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub file: PathBuf,
    /// Dotted path of the offending field, e.g. `sites[0].pools[1].numbers[2]`.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.path, self.reason)
        }
    }
}

/// Everything wrong with a configuration file (never empty).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        writeln!(f, "{n} configuration error{}:", if n == 1 { "" } else { "s" })?;
        for issue in &self.issues {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub sites: Vec<Site>,
}

/// The configured sites by id, shared by whoever serves them.
pub type SiteMap = HashMap<String, Arc<Site>>;

impl Config {
    /// The sites by id.
    pub fn site_map(&self) -> SiteMap {
        self.sites.iter().map(|s| (s.id.clone(), Arc::new(s.clone()))).collect()
    }

    /// Reads and validates `path`, applying overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            issues: vec![ConfigIssue {
                file: path.to_owned(),
                path: String::new(),
                reason: format!("cannot read the file: {e}"),
            }],
        })?;
        Self::from_toml_str(&text, path, &ProcessEnv)
    }

    /// Parses and validates TOML text; `file` only labels the errors.
    pub fn from_toml_str(text: &str, file: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut issues = Issues::new(file);
        // Syntax first: nothing else can be checked in a file that is not TOML.
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError { issues: vec![toml_issue(file, text, &e)] })?;
        // Then each section on its own, so that a mistake in one site does
        // not hide the mistakes in the next.
        let mut server = RawServer::default_shape();
        let mut sites = Vec::new();
        for (key, value) in table {
            match key.as_str() {
                "server" => {
                    if let Some(s) = section::<RawServer>(value, "server", &mut issues) {
                        server = s;
                    }
                }
                "sites" => match value {
                    toml::Value::Array(items) => {
                        for (i, item) in items.into_iter().enumerate() {
                            let path = site_path(i, &item);
                            sites.push(section::<RawSite>(item, &path, &mut issues));
                        }
                    }
                    _ => issues.push("sites", "must be an array of tables ([[sites]])"),
                },
                other => issues.push(other, "unknown section; expected `server` or `sites`"),
            }
        }
        validate(server, sites, env, issues)
    }
}

fn site_path(i: usize, item: &toml::Value) -> String {
    match item.get("id").and_then(|v| v.as_str()) {
        Some(id) => format!("sites[{i}] (id {id:?})"),
        None => format!("sites[{i}]"),
    }
}

fn section<T: DeserializeOwned>(value: toml::Value, path: &str, issues: &mut Issues<'_>) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            issues.push(path, e.message().trim().to_owned());
            None
        }
    }
}

/// Turns a TOML syntax error into an issue with `line:column` when known.
fn toml_issue(file: &Path, text: &str, e: &toml::de::Error) -> ConfigIssue {
    let at = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}")
        })
        .unwrap_or_default();
    ConfigIssue { file: file.to_owned(), path: at, reason: e.message().trim().to_owned() }
}

/// Collects issues during validation.
pub(crate) struct Issues<'a> {
    file: &'a Path,
    pub(crate) list: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    fn new(file: &'a Path) -> Self {
        Self { file, list: Vec::new() }
    }
    pub(crate) fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.list.push(ConfigIssue { file: self.file.to_owned(), path: path.into(), reason: reason.into() });
    }
}

fn validate(
    raw: RawServer,
    raw_sites: Vec<Option<RawSite>>,
    env: &dyn Env,
    mut issues: Issues<'_>,
) -> Result<Config, ConfigError> {
    let server = raw.validate(env, &mut issues);
    let mut sites = Vec::new();
    let mut site_ids = HashSet::new();
    // Every number may appear once across the whole file: a call to it must
    // lead to exactly one site and one meaning.
    let mut seen_numbers: HashMap<PhoneNumber, String> = HashMap::new();
    for (i, raw_site) in raw_sites.into_iter().enumerate() {
        let Some(raw_site) = raw_site else { continue };
        let path = format!("sites[{i}]");
        if !site_ids.insert(raw_site.id.clone()) {
            issues.push(format!("{path}.id"), format!("duplicate site id {:?}", raw_site.id));
        }
        if let Some(site) = site::validate_site(raw_site, &path, env, &mut seen_numbers, &mut issues) {
            sites.push(site);
        }
    }
    match server {
        Some(server) if issues.list.is_empty() => Ok(Config { server, sites }),
        _ => Err(ConfigError { issues: issues.list }),
    }
}
