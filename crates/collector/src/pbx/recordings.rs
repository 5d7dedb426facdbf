//! `[sites.recordings.<adapter>]`: the credentials the collector fetches a
//! PBX's call recordings with, and the hosts they may be sent to. Pure
//! settings, owned here beside the adapters they are for; the fetching is
//! [`crate::services::recordings`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[sites.recordings.<adapter>]`: how to fetch that PBX's recordings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecordingAuth {
    /// Basic auth user (Twilio: the account SID).
    #[serde(default)]
    pub user: Option<String>,
    /// Basic auth password (Twilio: the auth token).
    /// `RINGSOURCE_SITE_<ID>_RECORDINGS_<ADAPTER>_PASSWORD` overrides it.
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token instead of user and password.
    /// `RINGSOURCE_SITE_<ID>_RECORDINGS_<ADAPTER>_TOKEN` overrides it.
    #[serde(default)]
    pub token: Option<String>,
    /// The hosts the credentials go to (`api.twilio.com`); required.
    #[serde(default)]
    pub hosts: Vec<String>,
}

pub type RawRecordings = BTreeMap<String, RawRecordingAuth>;

/// How to prove who the collector is to a PBX's file server.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <password>)"),
            Credentials::Bearer(_) => write!(f, "Bearer(<token>)"),
        }
    }
}

/// One adapter's recording credentials and where they may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingAuth {
    pub credentials: Credentials,
    /// Lower-case host names.
    pub hosts: Vec<String>,
}

/// A site's recording credentials per PBX adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recordings {
    pub by_adapter: BTreeMap<String, RecordingAuth>,
}

impl Recordings {
    /// The credentials for a recording of `adapter`'s at `url`, if that
    /// host is one they are for.
    pub fn credentials_for(&self, adapter: &str, url: &url::Url) -> Option<&Credentials> {
        let host = url.host_str()?.to_ascii_lowercase();
        let auth = self.by_adapter.get(adapter)?;
        auth.hosts.contains(&host).then_some(&auth.credentials)
    }

    /// Validates `[sites.recordings]`, with secrets from `env` first.
    /// Errors are `(field path under the site, reason)`.
    pub fn from_raw(
        site_id: &str,
        raw: RawRecordings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Recordings, Vec<(String, String)>> {
        let mut issues = Vec::new();
        let mut by_adapter = BTreeMap::new();
        for (adapter, r) in raw {
            let path = format!("recordings.{adapter}");
            let var = |what: &str| {
                let clean = |s: &str| -> String {
                    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
                };
                env(&format!("RINGSOURCE_SITE_{}_RECORDINGS_{}_{what}", clean(site_id), clean(&adapter)))
            };
            let password = var("PASSWORD").or(r.password).filter(|p| !p.is_empty());
            let token = var("TOKEN").or(r.token).filter(|t| !t.is_empty());
            let credentials = match (r.user.filter(|u| !u.is_empty()), password, token) {
                (Some(user), Some(password), None) => Some(Credentials::Basic { user, password }),
                (None, None, Some(token)) => Some(Credentials::Bearer(token)),
                _ => {
                    issues.push((path.clone(), "give user and password, or token (not both)".to_owned()));
                    None
                }
            };
            let mut hosts = Vec::new();
            for (i, h) in r.hosts.iter().enumerate() {
                let host = h.trim().to_ascii_lowercase();
                let ok = !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
                if ok {
                    hosts.push(host);
                } else {
                    issues.push((format!("{path}.hosts[{i}]"), format!("{h:?} is not a host name")));
                }
            }
            if r.hosts.is_empty() {
                issues.push((
                    format!("{path}.hosts"),
                    "name the hosts the credentials may be sent to (e.g. [\"api.twilio.com\"])".to_owned(),
                ));
            }
            if let Some(credentials) = credentials {
                by_adapter.insert(adapter, RecordingAuth { credentials, hosts });
            }
        }
        if issues.is_empty() { Ok(Recordings { by_adapter }) } else { Err(issues) }
    }
}
