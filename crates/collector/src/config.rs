//! The collector's TOML configuration.
//!
//! The file is parsed in two steps: serde reads the raw shape
//! (`deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored key), then [`RawConfig::validate`] turns it into domain types and
//! collects *every* problem, each with the file, the field path and the reason,
//! so `ringsource check-config` can list them all at once.
//!
//! Relative paths in `[server]` resolve against the current directory of the
//! process, not the directory of the config file, so the demo config works as
//! `cargo run -p ringsource-collector -- serve --config examples/demo/ringsource.toml`
//! from the workspace root.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// `[server]`: where to listen and where the files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_database")]
    pub database: PathBuf,
    #[serde(default = "default_bundle_dir")]
    pub bundle_dir: PathBuf,
    #[serde(default = "default_www_dir")]
    pub www_dir: PathBuf,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_database() -> PathBuf {
    PathBuf::from("ringsource.sqlite")
}
fn default_bundle_dir() -> PathBuf {
    PathBuf::from("target/pkg")
}
fn default_www_dir() -> PathBuf {
    PathBuf::from("www")
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            database: default_database(),
            bundle_dir: default_bundle_dir(),
            www_dir: default_www_dir(),
        }
    }
}

/// The whole file as serde sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
}

/// Validated `[server]` section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub bundle_dir: PathBuf,
    pub www_dir: PathBuf,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            issues: vec![ConfigIssue {
                file: path.to_owned(),
                path: String::new(),
                reason: format!("cannot read the file: {e}"),
            }],
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text; `file` only labels the errors.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            issues: vec![toml_issue(file, text, &e)],
        })?;
        raw.validate(file)
    }
}

/// Turns a TOML/serde error into an issue with `line:column` when known.
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
    ConfigIssue {
        file: file.to_owned(),
        path: at,
        reason: e.message().trim().to_owned(),
    }
}

/// Collects issues during validation.
pub(crate) struct Issues<'a> {
    file: &'a Path,
    list: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    pub(crate) fn new(file: &'a Path) -> Self {
        Self { file, list: Vec::new() }
    }
    pub(crate) fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.list.push(ConfigIssue {
            file: self.file.to_owned(),
            path: path.into(),
            reason: reason.into(),
        });
    }
}

impl RawConfig {
    /// Validates everything and reports every problem found.
    pub fn validate(self, file: &Path) -> Result<Config, ConfigError> {
        let mut issues = Issues::new(file);
        let listen = match self.server.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                issues.push("server.listen", format!("{:?} is not an IP:port address: {e}", self.server.listen));
                None
            }
        };
        if !issues.list.is_empty() {
            return Err(ConfigError { issues: issues.list });
        }
        let listen = listen.expect("listen is Some when there are no issues");
        Ok(Config {
            server: ServerConfig {
                listen,
                database: self.server.database,
                bundle_dir: self.server.bundle_dir,
                www_dir: self.server.www_dir,
            },
        })
    }
}
