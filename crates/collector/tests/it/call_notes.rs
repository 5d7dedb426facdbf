//! Managers tag calls and write notes over real HTTP; tags filter the call
//! list, its CSV and the source report; marketers see tags but neither
//! write them nor read notes; an erased caller's notes and tags go too.

use serde_json::{Value, json};

use crate::common::*;
use crate::people::*;

const PW: &str = "long enough password 1";

crate::on_both_backends! {
    tags_filter_calls_and_reports_and_notes_keep_their_author => tags_filter_calls_and_reports_and_notes_keep_their_author_on;
}

fn tags_filter_calls_and_reports_and_notes_keep_their_author_on(backend: Backend) {
    let Some(h) = start_people_on(backend, "tags_filter_calls_and_reports_and_notes_keep_their_author", "", "") else {
        return;
    };
    let first = kamailio_call(&h, "shop", "notes-1@test", POOL[0], json!({}));
    let second = kamailio_call(&h, "shop", "notes-2@test", POOL[1], json!({ "from": "79035550000" }));
    add_user(&h, "anna", "admin", None, PW);
    add_user(&h, "maria", "manager", None, PW);
    add_user(&h, "pavel", "manager", None, PW);
    add_user(&h, "mark", "marketer", None, PW);
    let (anna, maria, pavel, mark) =
        (login(&h, "anna", PW), login(&h, "maria", PW), login(&h, "pavel", PW), login(&h, "mark", PW));

    // Tags are folded: "Lead " and "lead" are one.
    let tag = |s: &Session, call: i64, tag: &str| {
        s.send(&h, "POST", &format!("/v1/calls/{call}/tags"), Some(json!({ "tag": tag })))
    };
    assert_eq!(tag(&maria, first, "Lead "), (200, json!({ "call_id": first, "tags": ["lead"] })));
    assert_eq!(tag(&maria, first, "lead").1["tags"], json!(["lead"]));
    assert_eq!(tag(&pavel, first, "Wrong   number").1["tags"], json!(["lead", "wrong number"]));
    assert_eq!(tag(&maria, second, "спам").1["tags"], json!(["спам"]));
    let (status, body) = tag(&maria, first, "<b>");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
    let (status, body) = tag(&maria, 987_654, "lead");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_call")), "{body}");
    // Who tagged is kept.
    let by = h.rows(&format!("SELECT tagged_by FROM call_tags WHERE call_id = {first} AND tag = 'wrong number'"))[0][0]
        .clone()
        .unwrap();
    assert_eq!(by, "pavel");

    // The list carries each call's tags, and tag= keeps the tagged calls.
    let (_, list) = mark.get(&h, "/v1/calls?site=shop");
    let tags_of = |list: &Value, id: i64| {
        list["calls"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["tags"].clone()
    };
    assert_eq!(tags_of(&list, first), json!(["lead", "wrong number"]));
    assert_eq!(tags_of(&list, second), json!(["спам"]));
    let (_, list) = mark.get(&h, "/v1/calls?site=shop&tag=LEAD");
    assert_eq!(list["total"], 1);
    assert_eq!(list["calls"][0]["id"], first);
    let (_, list) = mark.get(&h, "/v1/calls?site=shop&tag=%D0%A1%D0%BF%D0%B0%D0%BC");
    assert_eq!((list["total"].as_u64(), list["calls"][0]["id"].as_i64()), (Some(1), Some(second)));
    let (_, detail) = maria.get(&h, &format!("/v1/calls/{first}"));
    assert_eq!(detail["tags"], json!(["lead", "wrong number"]));
    // The source report counts the tagged calls only (the calls ring a
    // second from now: the window reaches past it).
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let report =
        |q: &str| format!("/v1/reports/calls?site=shop&from={}&to={}{q}", now_ms - 86_400_000, now_ms + 86_400_000);
    let (_, all) = mark.get(&h, &report(""));
    let (_, leads) = mark.get(&h, &report("&tag=lead"));
    assert_eq!(all["totals"]["calls"], 2.0);
    assert_eq!((leads["totals"]["calls"].as_f64(), leads["tag"].as_str()), (Some(1.0), Some("lead")), "{leads}");
    let (_, none) = mark.get(&h, &report("&tag=sale"));
    assert_eq!(none["totals"]["calls"], 0.0);
    // The CSV too; with excel=1 its cells are split by ';'.
    let csv = |q: &str| {
        let resp =
            h.client.get(h.url(&format!("/v1/calls.csv?site=shop{q}"))).header("cookie", &mark.cookie).send().unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().unwrap()
    };
    let leads_csv = csv("&tag=lead");
    assert_eq!(leads_csv.lines().count(), 2, "{leads_csv}");
    assert!(leads_csv.contains("notes-1@test") && !leads_csv.contains("notes-2@test"));
    let excel = csv("&excel=1");
    assert!(excel.starts_with("\u{feff}id;site;ring_at;"), "{excel}");
    assert_eq!(excel.lines().nth(1).unwrap().split(';').count(), 26, "{excel}");
    let (status, body) = mark.get(&h, "/v1/calls?site=shop&excel=1");
    assert_eq!(status, 400, "{body}");
    // The site's tags, most used first, after the built-in ones.
    let (_, tags) = mark.get(&h, "/v1/tags?site=shop");
    assert_eq!(tags["built_in"], json!(["lead", "sale", "spam"]));
    assert_eq!(
        tags["tags"],
        json!([{ "tag": "lead", "calls": 1 }, { "tag": "wrong number", "calls": 1 }, { "tag": "спам", "calls": 1 }])
    );

    // Marketers read tags but write none, and read no notes.
    let (status, body) = tag(&mark, first, "sale");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert_eq!(mark.get(&h, &format!("/v1/calls/{first}/notes")).0, 403);

    // Notes: the author's name and time; only they or an admin remove one.
    let (status, note) = maria.send(
        &h,
        "POST",
        &format!("/v1/calls/{first}/notes"),
        Some(json!({ "body": "  Wants a quote for a boiler.\nCall back Monday. " })),
    );
    assert_eq!(status, 201, "{note}");
    assert_eq!(
        (note["author"].as_str(), note["body"].as_str()),
        (Some("maria"), Some("Wants a quote for a boiler.\nCall back Monday."))
    );
    let (_, notes) = pavel.get(&h, &format!("/v1/calls/{first}/notes"));
    assert_eq!(notes["notes"][0]["id"], note["id"]);
    let note_path = format!("/v1/calls/{first}/notes/{}", note["id"]);
    let (status, body) = pavel.send(&h, "DELETE", &note_path, None);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = maria.send(&h, "POST", &format!("/v1/calls/{first}/notes"), Some(json!({ "body": " " })));
    assert_eq!(status, 400, "{body}");
    assert_eq!(anna.send(&h, "DELETE", &note_path, None).0, 204);
    assert_eq!(pavel.get(&h, &format!("/v1/calls/{first}/notes")).1["notes"], json!([]));
    maria.send(
        &h,
        "POST",
        &format!("/v1/calls/{first}/notes"),
        Some(json!({ "body": "Caller is Ivan, +7 916 123-45-67" })),
    );

    // Untagging.
    let (status, body) = maria.send(&h, "DELETE", &format!("/v1/calls/{first}/tags/wrong%20number"), None);
    assert_eq!((status, &body["tags"]), (200, &json!(["lead"])), "{body}");

    // Erasing the caller takes the notes and tags of their calls with them
    // (the harness then checks that nothing names a missing call).
    let resp = h
        .client
        .post(h.url("/v1/privacy/erase"))
        .bearer_auth(TOKEN)
        .json(&json!({ "site": "shop", "phone": CALLER }))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    let left = (h.scalar("SELECT COUNT(*) FROM call_notes"), h.scalar("SELECT COUNT(*) FROM call_tags"));
    assert_eq!(left, (0, 1), "the other caller's tag stays");
}
