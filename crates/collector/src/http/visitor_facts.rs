//! Each call's `place` and `device` in the calls API's answers.

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use crate::http::state::AppState;
use crate::services::visitor_facts::Facts;

fn place_json(f: &Facts) -> Value {
    if f.country.is_none() && f.region.is_none() && f.city.is_none() {
        return Value::Null;
    }
    json!({ "country": f.country, "region": f.region, "city": f.city })
}

fn device_json(f: &Facts) -> Value {
    if f.device_type.is_none() {
        return Value::Null;
    }
    json!({ "type": f.device_type, "name": f.device, "browser": f.browser, "os": f.os })
}

/// Adds `place` and `device` to each call of a calls API answer (a list or
/// a detail), from the session the call was credited to; `null` for calls
/// without one and sessions stored without them.
pub async fn add_facts(req: &HttpRequest, body: &mut Value) -> Result<(), String> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return Ok(()) };
    let session = |call: &Value| call["session_id"].as_str().map(str::to_owned);
    let sessions: Vec<String> = match body.get("calls").and_then(Value::as_array) {
        Some(calls) => calls.iter().filter_map(session).collect(),
        None => session(body).into_iter().collect(),
    };
    let facts = Arc::clone(&state.visitor_facts);
    let found = web::block(move || facts.of_sessions(&sessions))
        .await
        .map_err(|e| format!("the blocking pool failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let put = |call: &mut Value| {
        let f = session(call).and_then(|s| found.get(&s));
        call["place"] = f.map_or(Value::Null, place_json);
        call["device"] = f.map_or(Value::Null, device_json);
    };
    match body.get_mut("calls").and_then(Value::as_array_mut) {
        Some(calls) => calls.iter_mut().for_each(put),
        None => put(body),
    }
    Ok(())
}
