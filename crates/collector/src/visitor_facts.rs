//! Where a visitor was and what they came on, decided when their session
//! begins ([`crate::geo`] from the IP address, [`crate::device`] from the
//! User-Agent), stored with the session (`sessions.country` … `os`), and
//! added to the calls API's answers as each call's `place` and `device`.
//!
//! Sections: the facts and how a visit gets them; their SQL; the calls
//! API's decoration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{HttpRequest, web};
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::device::DeviceParser;
use crate::geo::{Geo, Place};
use crate::storage::StorageError;

// ------------------------------------------------------------------ facts

/// What is stored with a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// `desktop`, `phone`, `tablet`, `bot` or `other`.
    pub device_type: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}

impl Facts {
    pub fn new(place: Option<Place>, device: Option<crate::device::Device>) -> Facts {
        let place = place.unwrap_or_default();
        let (device_type, name, browser, os) = match device {
            Some(d) => (Some(d.kind.as_str().to_owned()), d.name, d.browser, d.os),
            None => (None, None, None, None),
        };
        Facts { country: place.country, region: place.region, city: place.city, device_type, device: name, browser, os }
    }

    fn place_json(&self) -> Value {
        if self.country.is_none() && self.region.is_none() && self.city.is_none() {
            return Value::Null;
        }
        json!({ "country": self.country, "region": self.region, "city": self.city })
    }

    fn device_json(&self) -> Value {
        if self.device_type.is_none() {
            return Value::Null;
        }
        json!({ "type": self.device_type, "name": self.device, "browser": self.browser, "os": self.os })
    }
}

/// What the visit handler asks for each new visit.
pub struct VisitorFacts {
    geo: Option<Geo>,
    store: Mutex<Connection>,
}

impl VisitorFacts {
    /// With the IP database at `geoip` (none: no places).
    pub fn open(database: &Path, geoip: Option<&Path>) -> Result<Self, crate::server::StartError> {
        let geo = geoip.map(Geo::open).transpose()?;
        // Compiled now rather than on the first visit, which would wait for it.
        let _ = DeviceParser::shared();
        Ok(Self { geo, store: Mutex::new(crate::storage::sqlite::side_connection(database)?) })
    }

    /// The facts of a visit from `ip` with `user_agent`.
    pub fn of_visit(&self, ip: Option<IpAddr>, user_agent: &str) -> Facts {
        let place = self.geo.as_ref().zip(ip).and_then(|(geo, ip)| geo.place(ip));
        let device = DeviceParser::shared().and_then(|p| p.device(user_agent));
        Facts::new(place, device)
    }

    pub fn has_geo(&self) -> bool {
        self.geo.is_some()
    }

    // -------------------------------------------------------------- SQL

    /// The stored facts of each of `sessions` that has any.
    pub fn of_sessions(&self, sessions: &[String]) -> Result<HashMap<String, Facts>, StorageError> {
        let conn = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let sql = |source| StorageError::Sql { doing: "reading visitor facts", source };
        let mut st = conn
            .prepare_cached(
                "SELECT id, country, region, city, device_type, device, browser, os FROM sessions
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(sql)?;
        let rows = st
            .query_map([Value::from(sessions).to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Facts {
                        country: r.get(1)?,
                        region: r.get(2)?,
                        city: r.get(3)?,
                        device_type: r.get(4)?,
                        device: r.get(5)?,
                        browser: r.get(6)?,
                        os: r.get(7)?,
                    },
                ))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}

// --------------------------------------------------------------- the API

/// Adds `place` and `device` to each call of a calls API answer (a list or
/// a detail), from the session the call was credited to; `null` for calls
/// without one and sessions stored without them.
pub async fn add_facts(req: &HttpRequest, body: &mut Value) -> Result<(), String> {
    let Some(facts) = req.app_data::<web::Data<Arc<VisitorFacts>>>() else { return Ok(()) };
    let session = |call: &Value| call["session_id"].as_str().map(str::to_owned);
    let sessions: Vec<String> = match body.get("calls").and_then(Value::as_array) {
        Some(calls) => calls.iter().filter_map(session).collect(),
        None => session(body).into_iter().collect(),
    };
    let facts = Arc::clone(facts.get_ref());
    let found = web::block(move || facts.of_sessions(&sessions))
        .await
        .map_err(|e| format!("the blocking pool failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let put = |call: &mut Value| {
        let f = session(call).and_then(|s| found.get(&s));
        call["place"] = f.map_or(Value::Null, Facts::place_json);
        call["device"] = f.map_or(Value::Null, Facts::device_json);
    };
    match body.get_mut("calls").and_then(Value::as_array_mut) {
        Some(calls) => calls.iter_mut().for_each(put),
        None => put(body),
    }
    Ok(())
}
