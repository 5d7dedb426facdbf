//! The visitor's country, region and city from their IP address, read in an
//! IP database of the MaxMind DB format that the operator points
//! `server.geoip_database` at: MaxMind's GeoLite2-City or GeoIP2-City, or
//! DB-IP's IP-to-City Lite in that format (what the demo and the tests use;
//! `cargo xtask geoip` fetches it). The `maxminddb` crate reads it.
//!
//! The address is looked up when a visit is stored and dropped: only the
//! place is kept (see the collector's README, "Privacy").

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Reader, geoip2};

/// Where a visitor was, as the database says; names in English.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// ISO 3166-1 alpha-2 (`RU`).
    pub country: Option<String>,
    /// The first subdivision: a region, state or federal city (`Moscow Oblast`).
    pub region: Option<String>,
    pub city: Option<String>,
}

impl Place {
    pub fn is_empty(&self) -> bool {
        self.country.is_none() && self.region.is_none() && self.city.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the IP database {path} (server.geoip_database): {reason}")]
pub struct GeoError {
    pub path: PathBuf,
    pub reason: String,
}

/// An open IP database, read into memory once.
pub struct Geo {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

/// Longest name kept (a database is data from outside).
const MAX_NAME_CHARS: usize = 100;

fn name(text: Option<&str>) -> Option<String> {
    let text = text?.trim();
    // DB-IP names a big city's district after it ("Moscow (Tsentralnyy
    // administrativnyy okrug)"): the city is what a report groups by.
    let text = match text.split_once(" (") {
        Some((city, rest)) if rest.ends_with(')') && !city.is_empty() => city,
        _ => text,
    };
    (!text.is_empty()).then(|| text.chars().take(MAX_NAME_CHARS).collect())
}

impl Geo {
    /// Opens a city database. A country-only database (no `city` records)
    /// opens too: its places have a country only.
    pub fn open(path: &Path) -> Result<Geo, GeoError> {
        let err = |reason: String| GeoError { path: path.to_owned(), reason };
        let reader = Reader::open_readfile(path).map_err(|e| err(e.to_string()))?;
        let kind = &reader.metadata().database_type;
        if !(kind.contains("City") || kind.contains("Country") || kind.contains("city") || kind.contains("country")) {
            return Err(err(format!("it is a {kind:?} database; a City (or Country) database is needed")));
        }
        Ok(Geo { reader })
    }

    /// The database's type and build time, for the start-up line.
    pub fn describe(&self) -> String {
        format!("{} built {}", self.reader.metadata().database_type, self.reader.metadata().build_epoch)
    }

    /// The place of `ip`; `None` for an address the database does not
    /// know (private, loopback, unallocated) or a record it cannot read.
    pub fn place(&self, ip: IpAddr) -> Option<Place> {
        // An IPv4 address that came in on an IPv6 socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let found = self.reader.lookup(ip).ok()?;
        let city: geoip2::City<'_> = found.decode().ok()??;
        let place = Place {
            country: name(city.country.iso_code),
            region: city.subdivisions.first().and_then(|s| name(s.names.english)),
            city: name(city.city.names.english),
        };
        (!place.is_empty()).then_some(place)
    }
}
