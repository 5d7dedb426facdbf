//! What a role may not see, taken out of the answers it gets: the guard
//! passes every JSON and CSV answer of such a role through here, so no
//! route (present or future) hands a marketer a caller's number by
//! forgetting to mask it.
//!
//! - callers are masked as retention masks them (`+*********67`): every
//!   `caller` field, and the `from` of the PBX events a call detail lists;
//! - recordings are left out: every `recording_url` becomes `null`.

use serde_json::Value;

/// Masks a caller, leaving one retention masked already as it is.
fn mask_phone(text: &str) -> String {
    if text.contains('*') { text.to_owned() } else { crate::mask::mask_phone(text) }
}

/// What to take out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scrub {
    pub mask_callers: bool,
    pub hide_recordings: bool,
}

impl Scrub {
    pub fn needed(self) -> bool {
        self.mask_callers || self.hide_recordings
    }

    /// Scrubs a JSON value in place.
    pub fn json(self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match key.as_str() {
                        "caller" if self.mask_callers => {
                            if let Value::String(s) = value {
                                *s = mask_phone(s);
                            }
                        }
                        "recording_url" if self.hide_recordings => *value = Value::Null,
                        // A call's raw PBX events: `from` is the caller.
                        "events" if self.mask_callers => {
                            if let Value::Array(events) = value {
                                for e in events {
                                    if let Some(Value::String(from)) = e.pointer_mut("/event/from") {
                                        *from = mask_phone(from);
                                    }
                                    self.json(e);
                                }
                            }
                        }
                        _ => self.json(value),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.json(i)),
            _ => {}
        }
    }

    /// Scrubs a JSON body; a body that is not JSON is left as it is.
    pub fn json_bytes(self, body: &[u8]) -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(body).ok()?;
        self.json(&mut v);
        serde_json::to_vec(&v).ok()
    }

    /// Scrubs a CSV body (with or without a UTF-8 byte order mark, `,` or
    /// `;` between cells) by its header's `caller` and `recording_url`
    /// columns. `None` when it cannot be read as CSV.
    pub fn csv_bytes(self, body: &[u8]) -> Option<Vec<u8>> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let (bom, text) = match body.strip_prefix(BOM) {
            Some(rest) => (BOM, rest),
            None => (&b""[..], body),
        };
        let first_line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let delimiter = if first_line.contains(&b';') && !first_line.contains(&b',') { b';' } else { b',' };
        let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).from_reader(text);
        let mut out = csv::WriterBuilder::new().delimiter(delimiter).from_writer(bom.to_vec());
        let mut columns: Option<(Option<usize>, Option<usize>)> = None;
        for record in reader.records() {
            let record = record.ok()?;
            let (caller, recording) = *columns.get_or_insert_with(|| {
                (record.iter().position(|c| c == "caller"), record.iter().position(|c| c == "recording_url"))
            });
            let cells: Vec<String> = record
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if columns_started(&record, caller, i) && self.mask_callers && !cell.is_empty() {
                        mask_phone(cell)
                    } else if Some(i) == recording && self.hide_recordings && cell != "recording_url" {
                        String::new()
                    } else {
                        cell.to_owned()
                    }
                })
                .collect();
            out.write_record(&cells).ok()?;
        }
        out.into_inner().ok()
    }
}

/// Cell `i` is the caller column of a data row (not the header's name).
fn columns_started(record: &csv::StringRecord, caller: Option<usize>, i: usize) -> bool {
    Some(i) == caller && record.get(i) != Some("caller")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn callers_and_recordings_go_from_json() {
        let scrub = Scrub { mask_callers: true, hide_recordings: true };
        let mut v = json!({ "calls": [{ "caller": "+79161234567", "recording_url": "https://pbx/r.mp3", "dialled": "+74951234567" }],
            "events": [{ "received_at_ms": 1, "event": { "from": "+79161234567", "to": "+74951234567" } }],
            "payload": { "data": { "call": { "caller": "+79161234567" } } } });
        scrub.json(&mut v);
        assert_eq!(v["calls"][0]["caller"], "+*********67");
        assert_eq!(v["calls"][0]["recording_url"], Value::Null);
        assert_eq!(v["calls"][0]["dialled"], "+74951234567");
        assert_eq!(v["events"][0]["event"]["from"], "+*********67");
        assert_eq!(v["events"][0]["event"]["to"], "+74951234567");
        assert_eq!(v["payload"]["data"]["call"]["caller"], "+*********67");
    }

    #[test]
    fn csv_keeps_its_shape() {
        let scrub = Scrub { mask_callers: true, hide_recordings: false };
        let body = "\u{feff}id;caller;recording_url\n1;+79161234567;https://pbx/r.mp3\n2;;\n";
        let out = String::from_utf8(scrub.csv_bytes(body.as_bytes()).unwrap()).unwrap();
        assert_eq!(out, "\u{feff}id;caller;recording_url\n1;+*********67;https://pbx/r.mp3\n2;;\n");
        let body = "id,caller\n1,\"+7 916 123-45-67\"\n";
        let out = String::from_utf8(scrub.csv_bytes(body.as_bytes()).unwrap()).unwrap();
        assert!(out.starts_with("id,caller\n1,") && !out.contains("123"), "{out}");
    }
}
