//! `[sites.exports]`: where a site's ended calls are exported (GA4, a CRM
//! webhook) and how failed deliveries are retried; the secrets may come from
//! the environment.

use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::pbx::Secret;

/// GA4's own collection endpoint.
pub const GA4_DEFAULT_ENDPOINT: &str = "https://www.google-analytics.com/mp/collect";

/// What an outbox row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    Ga4,
    Crm,
}

impl ExportKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExportKind::Ga4 => "ga4",
            ExportKind::Crm => "crm",
        }
    }
    pub fn from_name(s: &str) -> Option<ExportKind> {
        match s {
            "ga4" => Some(ExportKind::Ga4),
            "crm" => Some(ExportKind::Crm),
            _ => None,
        }
    }
}

/// `[sites.exports]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExports {
    #[serde(default)]
    pub ga4: Option<RawGa4>,
    #[serde(default)]
    pub crm: Option<RawCrm>,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for RawExports {
    fn default() -> Self {
        RawExports {
            ga4: None,
            crm: None,
            max_attempts: default_max_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base_ms() -> u64 {
    30_000
}
fn default_timeout_secs() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGa4 {
    pub measurement_id: String,
    /// May come from the environment instead ([`secret_env_var`]).
    #[serde(default)]
    pub api_secret: String,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrm {
    pub url: String,
    /// May come from the environment instead ([`secret_env_var`]).
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub scenario: Scenario,
}

/// What the CRM receiver is asked to make of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Find or create the contact by the caller's number, then a deal.
    #[default]
    ContactDeal,
    /// Create a lead to qualify.
    Lead,
}

/// The GA4 target: the collection URL with the stream's ids in the query.
#[derive(Debug, Clone)]
pub struct Ga4Target {
    pub url: url::Url,
}

#[derive(Debug, Clone)]
pub struct CrmTarget {
    pub url: url::Url,
    pub key: Secret,
    pub scenario: Scenario,
}

/// Retries of a site's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub timeout_secs: u64,
}

/// A site's validated exports.
#[derive(Debug, Clone)]
pub struct Exports {
    pub ga4: Option<Ga4Target>,
    pub crm: Option<CrmTarget>,
    pub retry: RetryPolicy,
}

impl Default for Exports {
    fn default() -> Self {
        let raw = RawExports::default();
        Exports {
            ga4: None,
            crm: None,
            retry: RetryPolicy {
                max_attempts: raw.max_attempts,
                backoff_base_ms: raw.backoff_base_ms,
                timeout_secs: raw.timeout_secs,
            },
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

impl RetryPolicy {
    /// The wait after failed attempt number `attempts` (1-based):
    /// base, 2×base, 4×base, … capped at one hour.
    pub fn backoff_ms(&self, attempts: u32) -> i64 {
        let factor = 1u64 << attempts.saturating_sub(1).min(30);
        i64::try_from(self.backoff_base_ms.saturating_mul(factor).min(MAX_BACKOFF_MS)).unwrap_or(i64::MAX)
    }
}

/// The environment variable that overrides a site's export secret:
/// `RINGSOURCE_SITE_<ID>_GA4_API_SECRET` or `RINGSOURCE_SITE_<ID>_CRM_SECRET`,
/// the site id upper-cased with anything but A–Z and 0–9 turned into `_`
/// (as for PBX secrets), so secrets can stay out of the file.
pub fn secret_env_var(site_id: &str, export: ExportKind) -> String {
    let id: String =
        site_id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    match export {
        ExportKind::Ga4 => format!("RINGSOURCE_SITE_{id}_GA4_API_SECRET"),
        ExportKind::Crm => format!("RINGSOURCE_SITE_{id}_CRM_SECRET"),
    }
}

impl RawExports {
    /// Replaces the secrets the environment provides.
    pub fn with_env_secrets(mut self, site_id: &str, env: &dyn Env) -> Self {
        if let Some(g) = self.ga4.as_mut()
            && let Some(v) = env.var(&secret_env_var(site_id, ExportKind::Ga4))
        {
            g.api_secret = v;
        }
        if let Some(c) = self.crm.as_mut()
            && let Some(v) = env.var(&secret_env_var(site_id, ExportKind::Crm))
        {
            c.secret = v;
        }
        self
    }
}

fn http_url(field: &str, text: &str) -> Result<url::Url, (String, String)> {
    let url = url::Url::parse(text).map_err(|e| (field.to_owned(), format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err((field.to_owned(), format!("{text:?} must be an http:// or https:// URL")));
    }
    Ok(url)
}

/// A GA4 measurement id: `G-` and letters/digits.
fn valid_measurement_id(id: &str) -> bool {
    id.strip_prefix("G-").is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Exports {
    /// Validates `[sites.exports]`; every problem with its field path
    /// relative to the site.
    pub fn from_raw(raw: RawExports) -> Result<Exports, Vec<(String, String)>> {
        let mut issues = Vec::new();
        if raw.max_attempts == 0 || raw.max_attempts > 100 {
            issues.push(("exports.max_attempts".to_owned(), "must be between 1 and 100".to_owned()));
        }
        if raw.backoff_base_ms == 0 || raw.backoff_base_ms > MAX_BACKOFF_MS {
            issues.push(("exports.backoff_base_ms".to_owned(), format!("must be between 1 and {MAX_BACKOFF_MS}")));
        }
        if raw.timeout_secs == 0 || raw.timeout_secs > 300 {
            issues.push(("exports.timeout_secs".to_owned(), "must be between 1 and 300".to_owned()));
        }
        let ga4 = raw.ga4.and_then(|g| {
            if !valid_measurement_id(&g.measurement_id) {
                issues.push((
                    "exports.ga4.measurement_id".to_owned(),
                    format!("{:?} is not a GA4 measurement id (G-XXXXXXX)", g.measurement_id),
                ));
            }
            if g.api_secret.trim().is_empty() {
                issues.push((
                    "exports.ga4.api_secret".to_owned(),
                    "must not be empty (or set RINGSOURCE_SITE_<ID>_GA4_API_SECRET)".to_owned(),
                ));
            }
            let endpoint = g.endpoint.as_deref().unwrap_or(GA4_DEFAULT_ENDPOINT);
            match http_url("exports.ga4.endpoint", endpoint) {
                Ok(mut url) => {
                    url.query_pairs_mut()
                        .append_pair("measurement_id", &g.measurement_id)
                        .append_pair("api_secret", &g.api_secret);
                    Some(Ga4Target { url })
                }
                Err(issue) => {
                    issues.push(issue);
                    None
                }
            }
        });
        let crm = raw.crm.and_then(|c| {
            let url = http_url("exports.crm.url", &c.url).map_err(|i| issues.push(i)).ok();
            let key = match crate::pbx::generic::decode_secret(&c.secret) {
                Ok(_) if c.secret.is_empty() => {
                    issues.push((
                        "exports.crm.secret".to_owned(),
                        "must not be empty (or set RINGSOURCE_SITE_<ID>_CRM_SECRET)".to_owned(),
                    ));
                    None
                }
                // The receiver verifies with this key; a short one can be guessed.
                Ok(k) if k.expose().len() >= 16 => Some(k),
                Ok(_) => {
                    issues.push(("exports.crm.secret".to_owned(), "must be at least 16 bytes".to_owned()));
                    None
                }
                Err(reason) => {
                    issues.push(("exports.crm.secret".to_owned(), reason));
                    None
                }
            };
            Some(CrmTarget { url: url?, key: key?, scenario: c.scenario })
        });
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Exports {
            ga4,
            crm,
            retry: RetryPolicy {
                max_attempts: raw.max_attempts,
                backoff_base_ms: raw.backoff_base_ms,
                timeout_secs: raw.timeout_secs,
            },
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ga4.is_none() && self.crm.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy { max_attempts: 8, backoff_base_ms: 1000, timeout_secs: 10 };
        assert_eq!([1, 2, 3, 4].map(|a| p.backoff_ms(a)), [1000, 2000, 4000, 8000]);
        assert_eq!(p.backoff_ms(40), MAX_BACKOFF_MS as i64);
    }

    #[test]
    fn config_errors_name_the_field() {
        let raw: RawExports = toml::from_str(
            "max_attempts = 0\nga4 = { measurement_id = \"UA-1\", api_secret = \"\" }\ncrm = { url = \"ftp://x\", secret = \"short\" }",
        )
        .unwrap();
        let fields: Vec<String> = Exports::from_raw(raw).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "exports.max_attempts",
                "exports.ga4.measurement_id",
                "exports.ga4.api_secret",
                "exports.crm.url",
                "exports.crm.secret"
            ]
        );
        let raw: RawExports =
            toml::from_str("ga4 = { measurement_id = \"G-ABC123\", api_secret = \"s3cr3t\" }").unwrap();
        let url = Exports::from_raw(raw).unwrap().ga4.unwrap().url;
        assert_eq!(
            url.as_str(),
            "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC123&api_secret=s3cr3t"
        );
    }

    #[test]
    fn secrets_can_come_from_the_environment() {
        let raw: RawExports =
            toml::from_str("ga4 = { measurement_id = \"G-ABC123\" }\ncrm = { url = \"https://crm.example/hook\" }")
                .unwrap();
        assert_eq!(Exports::from_raw(raw.clone()).unwrap_err().len(), 2, "both secrets missing");
        let env: std::collections::HashMap<String, String> = [
            ("RINGSOURCE_SITE_MY_SHOP_GA4_API_SECRET", "from-env"),
            ("RINGSOURCE_SITE_MY_SHOP_CRM_SECRET", "a-crm-secret-from-the-env"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let exports = Exports::from_raw(raw.with_env_secrets("my-shop", &env)).unwrap();
        assert!(exports.ga4.unwrap().url.as_str().ends_with("api_secret=from-env"));
        assert_eq!(exports.crm.unwrap().key.expose(), b"a-crm-secret-from-the-env");
    }
}
