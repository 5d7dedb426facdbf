//! PBX routing and configuration: unknown sites and adapters, adapters
//! without credentials, JSON errors for wrong methods, and check-config
//! reporting every missing piece of a PBX's credentials.
//!
//! These run on SQLite only: no request here reaches the sink or any other
//! store (each is refused or answered from the configuration), and the
//! configuration checks start no server.

use std::collections::HashMap;
use std::path::Path;

use crate::pbx_support::*;
use ringsource_collector::config::Config;

#[test]
fn unknown_site_adapter_and_unconfigured_adapters_are_404() {
    let h = start(r#"pbx_secrets = { kamailio = "kamailio-token-0123456789" }"#);
    let r = h.post("/v1/sites/nope/pbx/kamailio", "application/json", "{}", &[]);
    assert_eq!((r.status, r.code()), (404, "unknown_site"));
    let r = h.post("/v1/sites/shop/pbx/asterisk", "application/json", "{}", &[]);
    assert_eq!((r.status, r.code()), (404, "unknown_adapter"));
    assert!(r.message().contains("generic, twilio, zadarma, mango, freeswitch, kamailio"), "{}", r.message());
    for adapter in ["generic", "twilio", "zadarma", "freeswitch"] {
        let r = h.post(&format!("/v1/sites/shop/pbx/{adapter}"), "application/json", "{}", &[]);
        assert_eq!((r.status, r.code()), (404, "pbx_not_configured"), "{adapter}");
        assert!(r.message().contains(&format!("pbx_secrets.{adapter}")), "{}", r.message());
    }
    let r = h.post("/v1/sites/shop/pbx/mango/events/call", "application/x-www-form-urlencoded", "", &[]);
    assert_eq!((r.status, r.code()), (404, "pbx_not_configured"));
}

#[test]
fn a_wrong_method_is_a_json_405() {
    let h = start(&all_adapters());
    let r = h.get("/v1/sites/shop/pbx/generic");
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
}

#[test]
fn the_browser_api_still_answers_beside_the_pbx_routes() {
    let h = start(&all_adapters());
    assert_eq!(h.get("/v1/sites/shop/config").status, 200);
}

fn issues(site_extra: &str) -> Vec<String> {
    let text = format!("[[sites]]\nid = \"shop\"\noriginals = [\"+7 495 123-45-67\"]\n{site_extra}\n");
    match Config::from_toml_str(&text, Path::new("pbx.toml"), &HashMap::<String, String>::new()) {
        Ok(_) => Vec::new(),
        Err(e) => e.issues.iter().map(|i| format!("{}: {}", i.path, i.reason)).collect(),
    }
}

#[test]
fn check_config_reports_every_missing_or_bad_pbx_setting() {
    let found = issues(
        r#"pbx_secrets = { twilio = "t", mango = "salt", freeswitch = "pw", kamailio = "short", generic = "whsec_***", asterisk = "x" }
pbx = { zadarma_utc_offset = "+03:00" }"#,
    );
    let expect = [
        "sites[0].pbx.twilio_url: needed with pbx_secrets.twilio",
        "sites[0].pbx.mango_api_key: needed with pbx_secrets.mango",
        "sites[0].pbx.freeswitch_user: needed with pbx_secrets.freeswitch",
        "sites[0].pbx_secrets.kamailio: must be at least 16 characters",
        "sites[0].pbx_secrets.generic: a whsec_ secret must be base64",
        "sites[0].pbx_secrets.asterisk: unknown PBX adapter",
        "sites[0].pbx.zadarma_utc_offset: set pbx_secrets.zadarma too",
    ];
    for e in expect {
        assert!(found.iter().any(|f| f.starts_with(e)), "missing {e:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");

    let bad_values = issues(
        r#"pbx_secrets = { twilio = "t", zadarma = "z" }
pbx = { twilio_url = "mycompany.com/hook", zadarma_utc_offset = "Moscow" }"#,
    );
    assert!(bad_values.iter().any(|f| f.starts_with("sites[0].pbx.twilio_url: ")), "{bad_values:#?}");
    assert!(bad_values.iter().any(|f| f.starts_with("sites[0].pbx.zadarma_utc_offset: ")), "{bad_values:#?}");

    assert!(issues(&all_adapters()).is_empty());
    assert!(issues(r#"pbx = { twitter_url = "x" }"#).iter().any(|f| f.contains("twitter_url")));
}

#[test]
fn environment_overrides_a_pbx_secret() {
    let text = format!("[[sites]]\nid = \"shop\"\noriginals = [\"+7 495 123-45-67\"]\n{}\n", all_adapters());
    let env: HashMap<String, String> =
        [("RINGSOURCE_SITE_SHOP_PBX_KAMAILIO_SECRET".to_owned(), "from-the-environment-0123".to_owned())].into();
    let cfg = Config::from_toml_str(&text, Path::new("pbx.toml"), &env).unwrap();
    let token = cfg.sites[0].pbx.kamailio.as_ref().unwrap();
    assert!(token.matches(b"from-the-environment-0123"));
    assert!(!token.matches(KAMAILIO_TOKEN.as_bytes()));
}
