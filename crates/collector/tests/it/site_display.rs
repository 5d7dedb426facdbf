//! A site's `currency` and `locale`: checked when the config is read, and
//! carried, beside `time_zone`, by each admin answer the dashboard reads a
//! site's settings from (call list, calls report, pools report, promo
//! look-up), over real HTTP, on both backends. The configuration test
//! starts no server, so it runs once, on no backend.

use std::collections::HashMap;
use std::path::Path;

use ringsource_collector::config::Config;
use serde_json::Value;

use crate::common::{Backend, start_on};

const TOKEN: &str = "site-display-token-0123456789";

fn get(h: &crate::common::Harness, path: &str) -> (u16, Value) {
    let resp = h.client.get(h.url(path)).bearer_auth(TOKEN).send().unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

crate::on_both_backends! {
    the_admin_answers_carry_the_sites_currency_and_locale => the_admin_answers_carry_the_sites_currency_and_locale_on;
    without_them_the_answers_say_null => without_them_the_answers_say_null_on;
}

fn the_admin_answers_carry_the_sites_currency_and_locale_on(backend: Backend) {
    let Some(h) = start_on(
        backend,
        "the_admin_answers_carry_the_sites_currency_and_locale",
        &format!("admin_token = \"{TOKEN}\""),
        "time_zone = \"Europe/Moscow\"\ncurrency = \"RUB\"\nlocale = \"ru-RU\"\npromo = { rules = [{ utm_source = \"flyer\" }] }",
        "",
    ) else {
        return;
    };
    let code = h.visit(None, crate::common::touch("Referral", "flyer", "referral"))["promo_code"]
        .as_str()
        .expect("a promo code")
        .to_owned();
    for path in [
        "/v1/calls?site=shop".to_owned(),
        "/v1/reports/calls?site=shop".to_owned(),
        "/v1/reports/pools?site=shop".to_owned(),
        format!("/v1/promo/{code}?site=shop"),
    ] {
        let (status, body) = get(&h, &path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            (&body["time_zone"], &body["currency"], &body["locale"]),
            (&"Europe/Moscow".into(), &"RUB".into(), &"ru-RU".into()),
            "{path}"
        );
    }
    // Across sites there is no one currency.
    let (_, all) = get(&h, "/v1/calls");
    assert_eq!((&all["currency"], &all["locale"]), (&Value::Null, &Value::Null));
}

fn without_them_the_answers_say_null_on(backend: Backend) {
    let server = format!("admin_token = \"{TOKEN}\"");
    let Some(h) = start_on(backend, "without_them_the_answers_say_null", &server, "", "") else { return };
    let (_, body) = get(&h, "/v1/reports/calls?site=shop");
    assert_eq!((&body["time_zone"], &body["currency"], &body["locale"]), (&"UTC".into(), &Value::Null, &Value::Null));
}

#[test]
fn a_bad_currency_or_locale_is_named_in_the_config_errors() {
    let text = r#"
[[sites]]
id = "shop"
originals = ["+7 495 123-45-67"]
currency = "rub"
locale = "ru_RU"

[[sites]]
id = "other"
originals = ["+7 495 123-45-68"]
currency = "RUBLES"
locale = "en-GB"
"#;
    let err = Config::from_toml_str(text, Path::new("bad.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let got: Vec<(&str, &str)> = err.issues.iter().map(|i| (i.path.as_str(), i.reason.as_str())).collect();
    let paths: Vec<&str> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, ["sites[0].currency", "sites[0].locale", "sites[1].currency"], "{got:#?}");
    assert!(got[0].1.contains("\"rub\" is not an ISO 4217 code"), "{}", got[0].1);
    assert!(got[1].1.contains("\"ru_RU\" is not a BCP 47 locale"), "{}", got[1].1);
    assert!(got[2].1.contains("\"RUBLES\""), "{}", got[2].1);
}
