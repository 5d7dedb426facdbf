//! A site's PBX settings: `pbx_secrets` (overridable from the environment)
//! and `[sites.pbx]`, validated into the credentials each adapter checks
//! requests with. An adapter without its credentials is off for the site.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Adapter, adapter_names, freeswitch, generic, mango, twilio, zadarma};

/// Key material that must not end up in logs: `Debug` prints no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Box<[u8]>>) -> Self {
        Self(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.0.as_ref().ct_eq(given))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// `[sites.pbx]`: the non-secret halves of adapters that need more than one
/// value. The secrets themselves stay in `pbx_secrets` so that the
/// environment can override them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPbxSettings {
    /// The public URL configured in Twilio for the status callback, exactly
    /// as entered there: Twilio signs it, and the collector may sit behind a
    /// proxy that changes scheme, host or port.
    #[serde(default)]
    pub twilio_url: Option<String>,
    /// The time zone of the Zadarma account (`call_start` is local time in
    /// it), as `+03:00`; UTC when absent.
    #[serde(default)]
    pub zadarma_utc_offset: Option<String>,
    /// Mango's `vpbx_api_key` (the "unique code" of the API integration); its
    /// salt is `pbx_secrets.mango`.
    #[serde(default)]
    pub mango_api_key: Option<String>,
    /// The basic-auth user in `mod_json_cdr`'s `cred`; the password is
    /// `pbx_secrets.freeswitch`.
    #[serde(default)]
    pub freeswitch_user: Option<String>,
}

/// A site's validated PBX credentials; an adapter without them is off.
#[derive(Debug, Clone, Default)]
pub struct PbxAuth {
    pub generic: Option<Secret>,
    pub twilio: Option<twilio::TwilioAuth>,
    pub zadarma: Option<zadarma::ZadarmaAuth>,
    pub mango: Option<mango::MangoAuth>,
    pub freeswitch: Option<freeswitch::BasicAuth>,
    pub kamailio: Option<Secret>,
}

/// A problem in a site's PBX settings: field path relative to the site, reason.
pub type SettingIssue = (String, String);

impl PbxAuth {
    /// Validates `pbx_secrets` (after environment overrides) with `[sites.pbx]`.
    /// Every problem is reported, with the field to fix.
    pub fn from_config(secrets: &BTreeMap<String, String>, raw: RawPbxSettings) -> Result<PbxAuth, Vec<SettingIssue>> {
        let mut issues: Vec<SettingIssue> = Vec::new();
        for name in secrets.keys() {
            if Adapter::from_name(name).is_none() {
                issues.push((
                    format!("pbx_secrets.{name}"),
                    format!("unknown PBX adapter; expected one of {}", adapter_names()),
                ));
            }
        }
        let secret = |a: Adapter| secrets.get(a.name()).filter(|s| !s.is_empty());
        let mut auth = PbxAuth::default();

        if let Some(s) = secret(Adapter::Generic) {
            match generic::decode_secret(s) {
                Ok(key) => auth.generic = Some(key),
                Err(reason) => issues.push(("pbx_secrets.generic".to_owned(), reason)),
            }
        }

        match (secret(Adapter::Twilio), raw.twilio_url) {
            (Some(token), Some(url)) => match twilio::check_url(&url) {
                Ok(()) => auth.twilio = Some(twilio::TwilioAuth { auth_token: Secret::new(token.as_bytes()), url }),
                Err(reason) => issues.push(("pbx.twilio_url".to_owned(), reason)),
            },
            (Some(_), None) => issues.push((
                "pbx.twilio_url".to_owned(),
                "needed with pbx_secrets.twilio: the public URL of the status callback as configured in Twilio, which its signature covers".to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.twilio_url", Adapter::Twilio)),
            (None, None) => {}
        }

        let offset = raw.zadarma_utc_offset.as_deref().map(zadarma::parse_offset);
        match (secret(Adapter::Zadarma), offset) {
            (Some(_), Some(Err(reason))) => issues.push(("pbx.zadarma_utc_offset".to_owned(), reason)),
            (Some(s), offset) => {
                let utc_offset = offset.and_then(Result::ok).unwrap_or(time::UtcOffset::UTC);
                auth.zadarma = Some(zadarma::ZadarmaAuth { secret: Secret::new(s.as_bytes()), utc_offset });
            }
            (None, Some(_)) => issues.push(needs_secret("pbx.zadarma_utc_offset", Adapter::Zadarma)),
            (None, None) => {}
        }

        match (secret(Adapter::Mango), raw.mango_api_key) {
            (Some(salt), Some(key)) if !key.is_empty() => {
                auth.mango = Some(mango::MangoAuth { api_key: key, api_salt: Secret::new(salt.as_bytes()) });
            }
            (Some(_), _) => issues.push((
                "pbx.mango_api_key".to_owned(),
                "needed with pbx_secrets.mango (the API salt): Mango's vpbx_api_key, which its sign covers".to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.mango_api_key", Adapter::Mango)),
            (None, None) => {}
        }

        match (secret(Adapter::FreeSwitch), raw.freeswitch_user) {
            (Some(password), Some(user)) if !user.is_empty() && !user.contains(':') => {
                auth.freeswitch = Some(freeswitch::BasicAuth { user, password: Secret::new(password.as_bytes()) });
            }
            (Some(_), Some(_)) => {
                issues.push(("pbx.freeswitch_user".to_owned(), "must be non-empty and contain no ':'".to_owned()));
            }
            (Some(_), None) => issues.push((
                "pbx.freeswitch_user".to_owned(),
                "needed with pbx_secrets.freeswitch (the password): the basic-auth user of mod_json_cdr's cred"
                    .to_owned(),
            )),
            (None, Some(_)) => issues.push(needs_secret("pbx.freeswitch_user", Adapter::FreeSwitch)),
            (None, None) => {}
        }

        if let Some(token) = secret(Adapter::Kamailio) {
            // The token travels in every request; a short one can be guessed.
            if token.len() < 16 {
                issues.push(("pbx_secrets.kamailio".to_owned(), "must be at least 16 characters".to_owned()));
            } else {
                auth.kamailio = Some(Secret::new(token.as_bytes()));
            }
        }

        if issues.is_empty() { Ok(auth) } else { Err(issues) }
    }
}

fn needs_secret(field: &str, adapter: Adapter) -> SettingIssue {
    (field.to_owned(), format!("set pbx_secrets.{} too, or remove this", adapter.name()))
}
