//! Each call's `place` and `device` as the calls API answers them, from the
//! facts stored with the session the call was credited to.

use serde::Serialize;
use utoipa::ToSchema;

use crate::services::visitor_facts::Facts;

/// Where the visitor was, from the IP address database; `null` when the
/// address was not in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Place {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

impl Place {
    pub fn of(f: &Facts) -> Option<Self> {
        (f.country.is_some() || f.region.is_some() || f.city.is_some()).then(|| Self {
            country: f.country.clone(),
            region: f.region.clone(),
            city: f.city.clone(),
        })
    }
}

/// What the visitor came on, from the User-Agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    /// `desktop`, `phone`, `tablet`, `bot` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The device's brand and model, when the User-Agent names them.
    pub name: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}

impl Device {
    pub fn of(f: &Facts) -> Option<Self> {
        Some(Self {
            kind: f.device_type.clone()?,
            name: f.device.clone(),
            browser: f.browser.clone(),
            os: f.os.clone(),
        })
    }
}
