//! Logs: `tracing` events from the whole library, written by one subscriber
//! that the binary installs at start ([`init`]); the library itself never
//! installs one, so its tests and embedders choose their own.
//!
//! The operator picks which events are written and how:
//! - `--log-level` or `RINGSOURCE_LOG`: a level (`error`, `warn`, `info`,
//!   `debug`, `trace`, `off`) or `tracing` filter directives such as
//!   `info,ringsource_collector::pbx=debug`; default [`DEFAULT_FILTER`];
//! - `--log-format` or `RINGSOURCE_LOG_FORMAT`: `text` (default) or `json`,
//!   one JSON object per line.
//!
//! A flag wins over the environment. Lines go to stderr; what a command
//! prints for the person who ran it (`erase`'s summary, `listening on`)
//! stays on stdout. Every request has a line from [`crate::http::requests`]:
//! at `debug` when it went well (a line per lease at `info` cost too much),
//! `warn` or `error` when it did not.
//!
//! Caller numbers never appear whole: a log line that names a caller writes
//! [`crate::mask::Masked`].

pub mod writer;

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use self::writer::BufferedStderr;

/// The events written when the operator says nothing: call events,
/// retention passes, refused and failed requests, anything that went wrong.
pub const DEFAULT_FILTER: &str = "info";
/// Environment variable with the filter directives.
pub const FILTER_ENV: &str = "RINGSOURCE_LOG";
/// Environment variable with the format.
pub const FORMAT_ENV: &str = "RINGSOURCE_LOG_FORMAT";

/// The command-line half of the settings; the environment fills what the
/// flags leave out ([`Settings::resolve`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Which events to log: a level (error, warn, info, debug, trace, off)
    /// or filter directives, e.g. `info,ringsource_collector::pbx=debug`.
    /// Default: $RINGSOURCE_LOG, else `info`.
    #[arg(long, global = true, value_name = "DIRECTIVES")]
    pub log_level: Option<String>,
    /// How log lines are written to stderr: `text` or `json` (one object
    /// per line). Default: $RINGSOURCE_LOG_FORMAT, else `text`.
    #[arg(long, global = true, value_name = "text|json")]
    pub log_format: Option<String>,
}

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One human-readable line: time, level, target, message, `key=value` fields.
    Text,
    /// One JSON object per line; the event's fields are top-level keys.
    Json,
}

/// Where a setting's value came from, so an error names what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Env(var) => write!(f, "${var}"),
        }
    }
}

/// Why the logs could not be set up; the collector does not start then.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{origin} {value:?}: {reason}")]
    Filter { origin: Origin, value: String, reason: String },
    #[error("{origin} {value:?}: not a log format (text or json)")]
    Format { origin: Origin, value: String },
    #[error("{var} is not valid UTF-8")]
    NotUnicode { var: &'static str },
    #[error("a log subscriber is already installed: {0}")]
    AlreadySet(String),
    #[error("cannot start the thread that writes the log out: {0}")]
    NoThread(#[source] std::io::Error),
}

/// Validated settings: the filter and the format.
#[derive(Debug)]
pub struct Settings {
    pub filter: EnvFilter,
    pub format: Format,
}

impl Settings {
    /// The flags, else the environment (`var` reads it), else the defaults.
    pub fn resolve(args: &LogArgs, var: impl Fn(&'static str) -> Option<String>) -> Result<Self, LogError> {
        let (filter, origin) = match (&args.log_level, var(FILTER_ENV)) {
            (Some(flag), _) => (flag.clone(), Some(Origin::Flag("--log-level"))),
            (None, Some(env)) => (env, Some(Origin::Env(FILTER_ENV))),
            (None, None) => (DEFAULT_FILTER.to_owned(), None),
        };
        let filter = match origin {
            Some(origin) => {
                parse_filter(&filter).map_err(|reason| LogError::Filter { origin, value: filter, reason })?
            }
            None => parse_filter(&filter).expect("the default filter parses"),
        };
        let format = match (&args.log_format, var(FORMAT_ENV)) {
            (Some(flag), _) => parse_format(flag, Origin::Flag("--log-format"))?,
            (None, Some(env)) => parse_format(&env, Origin::Env(FORMAT_ENV))?,
            (None, None) => Format::Text,
        };
        Ok(Settings { filter, format })
    }

    /// [`Self::resolve`] with the process's environment.
    pub fn from_env(args: &LogArgs) -> Result<Self, LogError> {
        for var in [FILTER_ENV, FORMAT_ENV] {
            if let Some(value) = std::env::var_os(var)
                && value.to_str().is_none()
            {
                return Err(LogError::NotUnicode { var });
            }
        }
        Self::resolve(args, |var| std::env::var(var).ok())
    }
}

/// `tracing`'s filter syntax, with one difference: a bare word must be a
/// level. `EnvFilter` reads `verbose` as "everything from target verbose",
/// which would silently turn every other log off; a target takes its level
/// after `=`.
fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    if text.trim().is_empty() {
        return Err("no level or directive; write e.g. info, or warn,ringsource_collector=debug".to_owned());
    }
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '[']) && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "{directive:?} is not a level (error, warn, info, debug, trace, off); a target takes its level as \
                 target=level"
            ));
        }
    }
    EnvFilter::builder().with_regex(false).parse(text).map_err(|e| e.to_string())
}

fn parse_format(text: &str, origin: Origin) -> Result<Format, LogError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        _ => Err(LogError::Format { origin, value: text.to_owned() }),
    }
}

/// Writes out the buffered lines when dropped: keep it until the process
/// ends.
#[must_use = "buffered lines are written out when the guard is dropped"]
pub struct LogGuard(BufferedStderr);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Installs the process's subscriber: lines on stderr through a buffer
/// ([`writer`]), colours only when stderr is a terminal (a file or journald
/// gets plain text). Once per process.
pub fn init(settings: Settings) -> Result<LogGuard, LogError> {
    let out = BufferedStderr::start().map_err(LogError::NoThread)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.filter)
        .with_writer(out.clone())
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match settings.format {
        Format::Text => builder.try_init(),
        // The event's fields as top-level keys, and the request span's id
        // beside them, so a line is read without walking nested objects.
        Format::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
    installed.map_err(|e| LogError::AlreadySet(e.to_string()))?;
    Ok(LogGuard(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flag: Option<&str>, format: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, LogError> {
        let args = LogArgs { log_level: flag.map(str::to_owned), log_format: format.map(str::to_owned) };
        Settings::resolve(&args, |var| env.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_are_info_and_text() {
        let s = resolve(None, None, &[]).unwrap();
        assert_eq!(s.format, Format::Text);
        assert_eq!(s.filter.max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn flags_win_over_the_environment() {
        let env = [(FILTER_ENV, "error"), (FORMAT_ENV, "json")];
        let s = resolve(Some("debug"), Some("text"), &env).unwrap();
        assert_eq!((s.filter.max_level_hint(), s.format), (Some(LevelFilter::DEBUG), Format::Text));
        let s = resolve(None, None, &env).unwrap();
        assert_eq!((s.filter.max_level_hint(), s.format), (Some(LevelFilter::ERROR), Format::Json));
    }

    #[test]
    fn directives_per_target_are_accepted() {
        let s = resolve(Some("warn,ringsource_collector::pbx=debug"), Some("JSON"), &[]).unwrap();
        assert_eq!((s.filter.max_level_hint(), s.format), (Some(LevelFilter::DEBUG), Format::Json));
    }

    #[test]
    fn a_bad_value_is_named_with_where_it_came_from() {
        let e = resolve(Some("verbose"), None, &[]).unwrap_err().to_string();
        assert!(e.starts_with("--log-level \"verbose\": \"verbose\" is not a level"), "{e}");
        let e = resolve(None, None, &[(FILTER_ENV, "info,ringsource_collector=loud")]).unwrap_err().to_string();
        assert!(e.starts_with("$RINGSOURCE_LOG \"info,ringsource_collector=loud\": "), "{e}");
        let e = resolve(None, None, &[(FORMAT_ENV, "xml")]).unwrap_err().to_string();
        assert_eq!(e, "$RINGSOURCE_LOG_FORMAT \"xml\": not a log format (text or json)");
        let e = resolve(Some(" "), None, &[]).unwrap_err().to_string();
        assert!(e.contains("no level or directive"), "{e}");
    }
}
