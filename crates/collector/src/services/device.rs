//! The visitor's device, browser and OS from their User-Agent, read with the
//! `ua-parser` crate over uap-core's `regexes.yaml` (vendored in
//! `data/uap-core/` with its licence and provenance). Read when a session
//! begins and stored with it, since retention empties the User-Agent after
//! a week.
//!
//! uap-core names a device's brand and model but not its kind; [`kind`]
//! decides phone, tablet, desktop or bot from what it found and from the
//! User-Agent's own tokens (Android without `Mobile` is a tablet, as
//! Google's guidance for Android browsers has it). An iPad on iPadOS 13 or
//! later sends a Mac's User-Agent and is counted as a desktop: nothing in
//! the header tells them apart.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const REGEXES_YAML: &str = include_str!("../../data/uap-core/regexes.yaml");

/// What kind of device a visitor came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Desktop,
    Phone,
    Tablet,
    Bot,
    Other,
}

impl DeviceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Desktop => "desktop",
            DeviceKind::Phone => "phone",
            DeviceKind::Tablet => "tablet",
            DeviceKind::Bot => "bot",
            DeviceKind::Other => "other",
        }
    }
}

/// A visitor's device, browser and OS, written for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub kind: DeviceKind,
    /// Brand and model (`Samsung SM-S918B`, `Apple iPhone`); `None` when
    /// the User-Agent names none (desktops).
    pub name: Option<String>,
    /// Family and major version (`Chrome Mobile 124`, `Yandex Browser 24`).
    pub browser: Option<String>,
    /// Family and version (`Android 14`, `iOS 17.4`, `Windows 10`).
    pub os: Option<String>,
}

/// What uap-core found in a User-Agent, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub browser: Option<(String, Option<String>)>,
    pub os: Option<(String, Option<String>, Option<String>)>,
    /// Family, brand, model.
    pub device: Option<(String, Option<String>, Option<String>)>,
}

const DESKTOP_OS: &[&str] = &[
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Chrome OS",
    "Fedora",
    "Debian",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Red Hat",
    "SUSE",
    "Mageia",
    "Mint",
    "Gentoo",
    "Arch Linux",
    "Kubuntu",
    "Xubuntu",
    "Solaris",
    "macOS",
];
const MOBILE_OS: &[&str] = &[
    "Android",
    "iOS",
    "Windows Phone",
    "BlackBerry OS",
    "BlackBerry Tablet OS",
    "KaiOS",
    "Firefox OS",
    "Symbian OS",
    "Tizen",
    "HarmonyOS",
    "webOS",
    "Sailfish",
    "Ubuntu Touch",
    "Windows Mobile",
    "Bada",
];

/// Phone, tablet, desktop or bot, from what uap-core found and the
/// User-Agent's own tokens.
pub fn kind(ua: &str, found: &Found) -> DeviceKind {
    let device = found.device.as_ref().map_or("", |d| d.0.as_str());
    let os = found.os.as_ref().map_or("", |o| o.0.as_str());
    let has = |token: &str| ua.contains(token);
    if device == "Spider" || ringsource_core::bots::is_bot(ua) {
        return DeviceKind::Bot;
    }
    if device.contains("iPad") || has("Tablet") || device.contains("Kindle") || has("Silk/") {
        return DeviceKind::Tablet;
    }
    if os == "Android" && !has("Mobile") && !has("TV") {
        return DeviceKind::Tablet;
    }
    if MOBILE_OS.contains(&os) || device.contains("iPhone") || device.contains("iPod") || has("Mobile") || has("Mobi") {
        return DeviceKind::Phone;
    }
    if DESKTOP_OS.contains(&os) || device == "Mac" {
        return DeviceKind::Desktop;
    }
    DeviceKind::Other
}

/// The device as people read it.
pub fn describe(ua: &str, found: &Found) -> Device {
    let known = |s: &str| !s.is_empty() && s != "Other";
    let browser = found.browser.as_ref().filter(|(f, _)| known(f)).map(|(family, major)| match major {
        Some(v) => format!("{family} {v}"),
        None => family.clone(),
    });
    let os = found.os.as_ref().filter(|(f, ..)| known(f)).map(|(family, major, minor)| match (major, minor) {
        (Some(a), Some(b)) => format!("{family} {a}.{b}"),
        (Some(a), None) => format!("{family} {a}"),
        _ => family.clone(),
    });
    // The Yandex app's own browser, which uap-core 0.18 takes for Chrome;
    // in Russia it is among the commonest on phones.
    let browser = match ua.split_once("YaSearchBrowser/") {
        Some((_, rest)) => Some(format!("Yandex App {}", rest.split(['.', ' ']).next().unwrap_or_default())),
        None => browser,
    };
    let name = found.device.as_ref().filter(|(f, ..)| known(f) && f != "Spider").map(|(family, brand, model)| {
        match (brand, model) {
            // uap-core's stand-ins for a brand it does not know.
            (Some(b), Some(m)) if b.starts_with("Generic") => m.clone(),
            (Some(b), Some(m)) if m.starts_with(b.as_str()) => m.clone(),
            (Some(b), Some(m)) => format!("{b} {m}"),
            _ => family.clone(),
        }
    });
    // Chrome's reduced Android User-Agent names no model ("K").
    let name = name.filter(|n| !matches!(n.as_str(), "K" | "Generic Smartphone" | "Generic Tablet"));
    Device { kind: kind(ua, found), name, browser, os }
}

/// uap-core's regexes compiled once, and what recent User-Agents made.
pub struct DeviceParser {
    ua: ua_parser::user_agent::Extractor<'static>,
    os: ua_parser::os::Extractor<'static>,
    dev: ua_parser::device::Extractor<'static>,
    seen: Mutex<HashMap<String, Device>>,
}

/// At most this many User-Agents are remembered; a visitor's browser is
/// one of a few hundred, so most visits are a look-up.
const REMEMBERED: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("uap-core's regexes.yaml does not read: {0}")]
    Yaml(String),
    #[error("uap-core's regexes do not compile: {0}")]
    Regex(String),
}

/// YAML scalars as text, which is what every field of the regexes is.
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Hash(h) => {
            Value::Object(h.iter().filter_map(|(k, v)| Some((k.as_str().map(str::to_owned)?, to_json(v)))).collect())
        }
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::String(i.to_string()),
        Yaml::Boolean(b) => Value::String(b.to_string()),
        _ => Value::Null,
    }
}

impl DeviceParser {
    pub fn new() -> Result<Self, DeviceError> {
        let docs = YamlLoader::load_from_str(REGEXES_YAML).map_err(|e| DeviceError::Yaml(e.to_string()))?;
        let doc = docs.first().ok_or_else(|| DeviceError::Yaml("the file is empty".into()))?;
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_value(to_json(doc)).map_err(|e| DeviceError::Yaml(e.to_string()))?;
        fn regex(e: impl std::fmt::Display) -> DeviceError {
            DeviceError::Regex(e.to_string())
        }
        let ua = regexes
            .user_agent_parsers
            .into_iter()
            .try_fold(ua_parser::user_agent::Builder::new(), |b, p| b.push(p))
            .map_err(regex)?
            .build()
            .map_err(regex)?;
        let os = regexes
            .os_parsers
            .into_iter()
            .try_fold(ua_parser::os::Builder::new(), |b, p| b.push(p))
            .map_err(regex)?
            .build()
            .map_err(regex)?;
        let dev = regexes
            .device_parsers
            .into_iter()
            .try_fold(ua_parser::device::Builder::new(), |b, p| b.push(p))
            .map_err(regex)?
            .build()
            .map_err(regex)?;
        Ok(Self { ua, os, dev, seen: Mutex::new(HashMap::new()) })
    }

    /// The parser of this process, compiled on first use. `None` if the
    /// vendored regexes do not compile (a unit test keeps that from
    /// shipping): visits are then stored without a device.
    pub fn shared() -> Option<&'static DeviceParser> {
        static PARSER: OnceLock<Option<DeviceParser>> = OnceLock::new();
        PARSER.get_or_init(|| DeviceParser::new().ok()).as_ref()
    }

    /// What uap-core finds in `ua`.
    pub fn find(&self, ua: &str) -> Found {
        let owned = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned).filter(|s| !s.is_empty());
        Found {
            browser: self.ua.extract(ua).map(|v| (v.family.into_owned(), v.major.map(str::to_owned))),
            os: self.os.extract(ua).map(|v| (v.os.into_owned(), owned(v.major), owned(v.minor))),
            device: self.dev.extract(ua).map(|v| (v.device.into_owned(), owned(v.brand), owned(v.model))),
        }
    }

    /// The device of a User-Agent; `None` for an empty one.
    pub fn device(&self, ua: &str) -> Option<Device> {
        let ua = ua.trim();
        if ua.is_empty() {
            return None;
        }
        if let Some(d) = self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(ua) {
            return Some(d.clone());
        }
        let device = describe(ua, &self.find(ua));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(ua.to_owned(), device.clone());
        Some(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_regexes_compile() {
        let parser = DeviceParser::new().expect("regexes.yaml compiles");
        let d = parser
            .device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
            .unwrap();
        assert_eq!(d.kind, DeviceKind::Phone);
        assert_eq!(d.os.as_deref(), Some("iOS 17.4"));
        assert!(parser.device("  ").is_none());
    }
}
