//! Where a visitor was and what they came on, decided when their session
//! begins ([`crate::services::geo`] from the IP address,
//! [`crate::services::device`] from the User-Agent), stored with the session
//! (`sessions.country` … `os`), and added to the calls API's answers as each
//! call's `place` and `device` (by [`crate::http::calls`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::services::device::{Device, DeviceParser};
use crate::services::geo::{Geo, GeoError, Place};
pub use crate::storage::Facts;
use crate::storage::StorageError;
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::visitor_facts::SqliteVisitorFacts;

/// The facts of a new session from what was found of its place and device.
pub fn facts(place: Option<Place>, device: Option<Device>) -> Facts {
    let place = place.unwrap_or_default();
    let (device_type, name, browser, os) = match device {
        Some(d) => (Some(d.kind.as_str().to_owned()), d.name, d.browser, d.os),
        None => (None, None, None, None),
    };
    Facts { country: place.country, region: place.region, city: place.city, device_type, device: name, browser, os }
}

/// Why the visitor facts could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VisitorFactsError {
    #[error(transparent)]
    Geo(#[from] GeoError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the visit handler asks for each new visit.
pub struct VisitorFacts {
    geo: Option<Geo>,
    store: FactsStore,
}

/// Where the stored facts are read.
enum FactsStore {
    Sqlite(SqliteVisitorFacts),
    Postgres(Arc<PostgresStorage>),
}

impl VisitorFacts {
    /// With the IP database at `geoip` (none: no places).
    pub fn open(database: &Path, geoip: Option<&Path>) -> Result<Self, VisitorFactsError> {
        let geo = geoip.map(Geo::open).transpose()?;
        // Compiled now rather than on the first visit, which would wait for it.
        let _ = DeviceParser::shared();
        Ok(Self { geo, store: FactsStore::Sqlite(SqliteVisitorFacts::open(database)?) })
    }

    /// With the stored facts read from PostgreSQL.
    pub fn on_postgres(storage: Arc<PostgresStorage>, geoip: Option<&Path>) -> Result<Self, VisitorFactsError> {
        let geo = geoip.map(Geo::open).transpose()?;
        let _ = DeviceParser::shared();
        Ok(Self { geo, store: FactsStore::Postgres(storage) })
    }

    /// The facts of a visit from `ip` with `user_agent`.
    pub fn of_visit(&self, ip: Option<IpAddr>, user_agent: &str) -> Facts {
        let place = self.geo.as_ref().zip(ip).and_then(|(geo, ip)| geo.place(ip));
        let device = DeviceParser::shared().and_then(|p| p.device(user_agent));
        facts(place, device)
    }

    pub fn has_geo(&self) -> bool {
        self.geo.is_some()
    }

    /// The stored facts of each of `sessions` that has any.
    pub fn of_sessions(&self, sessions: &[String]) -> Result<HashMap<String, Facts>, StorageError> {
        match &self.store {
            FactsStore::Sqlite(store) => store.of_sessions(sessions),
            FactsStore::Postgres(store) => store.visitor_facts(sessions),
        }
    }
}
