//! Configuration loading: every error reported with its path, environment
//! overrides, and `ringsource check-config` exit codes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ringsource_collector::config::{Config, ConfigError, pbx_secret_env_var};

const BAD: &str = r#"
[server]
listen = "127.0.0.1:8080"

[[sites]]
id = "Demo Site"
allowed_origins = ["ftp://x", "http://ok.example/path"]
originals = ["12345"]

[[sites.static_numbers]]
number = "+7 495 700-00-11"
label = ""
rule = { utm_source = "" }

[[sites.pools]]
id = "p"
numbers = ["+7 495 700-00-11"]
rules = [{}]
heartbeat_secs = 2000

[[sites]]
id = "b"
originals = ["+7 495 123-45-67"]

[[sites]]
id = "b"
originals = ["+7 495 123-45-68"]

[[sites]]
id = "c"
originals = ["+7 495 123-45-69"]
typo_field = 3
"#;

#[test]
fn every_error_is_reported_with_its_path() {
    let err = Config::from_toml_str(BAD, Path::new("bad.toml"), &HashMap::<String, String>::new()).unwrap_err();
    let got: Vec<(String, String)> = err.issues.iter().map(|i| (i.path.clone(), i.reason.clone())).collect();
    let expect_paths = [
        "sites[0].id",
        "sites[0].allowed_origins[0]",
        "sites[0].allowed_origins[1]",
        "sites[0].originals[0]",
        "sites[0].static_numbers[0].label",
        "sites[0].static_numbers[0].rule",
        "sites[0].pools[0].numbers[0]",
        "sites[0].pools[0].rules[0]",
        "sites[0].pools[0].heartbeat_secs",
        "sites[0].pools[0].on_exhaustion",
        "sites[2].id",
        "sites[3] (id \"c\")",
    ];
    for p in expect_paths {
        assert!(got.iter().any(|(path, _)| path == p), "no error at {p}; got {got:#?}");
    }
    assert_eq!(got.len(), expect_paths.len(), "{got:#?}");
    assert!(err.issues.iter().all(|i| i.file == Path::new("bad.toml")));
    let text = err.to_string();
    assert!(text.starts_with("12 configuration errors:"), "{text}");
    assert!(text.contains("unknown field `typo_field`"), "{text}");
    assert!(text.contains("already used at sites[0].static_numbers[0].number"), "{text}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = Config::from_toml_str("[server]\nlisten = \n", Path::new("x.toml"), &HashMap::<String, String>::new())
        .unwrap_err();
    assert_eq!(err.issues.len(), 1);
    assert!(err.issues[0].path.starts_with("line 2"), "{:?}", err.issues[0]);
}

const GOOD: &str = r#"
[server]
admin_token = "from-the-file-0123456789"

[[sites]]
id = "my-shop"
originals = ["+7 495 123-45-67"]
pbx_secrets = { generic = "file-secret", twilio = "file-twilio" }
pbx = { twilio_url = "https://calls.example/v1/sites/my-shop/pbx/twilio" }
"#;

#[test]
fn environment_overrides_secrets() {
    let none = HashMap::<String, String>::new();
    let cfg = Config::from_toml_str(GOOD, Path::new("good.toml"), &none).unwrap();
    assert_eq!(cfg.server.admin_token.as_deref(), Some("from-the-file-0123456789"));
    assert_eq!(cfg.sites[0].pbx_secrets["generic"], "file-secret");
    assert_eq!(pbx_secret_env_var("my-shop", "generic"), "RINGSOURCE_SITE_MY_SHOP_PBX_GENERIC_SECRET");

    let env: HashMap<String, String> = [
        ("RINGSOURCE_ADMIN_TOKEN".to_owned(), "from-the-environment-0123".to_owned()),
        ("RINGSOURCE_SITE_MY_SHOP_PBX_GENERIC_SECRET".to_owned(), "env-secret".to_owned()),
    ]
    .into();
    let cfg = Config::from_toml_str(GOOD, Path::new("good.toml"), &env).unwrap();
    assert_eq!(cfg.server.admin_token.as_deref(), Some("from-the-environment-0123"));
    assert_eq!(cfg.sites[0].pbx_secrets["generic"], "env-secret");
    assert_eq!(cfg.sites[0].pbx_secrets["twilio"], "file-twilio");
}

/// `GOOD` with `line` added to its `[server]` table, loaded without environment.
fn with_server_line(line: &str) -> Result<Config, ConfigError> {
    let text = GOOD.replace("[server]\n", &format!("[server]\n{line}\n"));
    Config::from_toml_str(&text, Path::new("good.toml"), &HashMap::<String, String>::new())
}

/// The one issue `err` reports: its field path and reason.
fn only_issue(err: &ConfigError) -> (&str, &str) {
    assert_eq!(err.issues.len(), 1, "{err}");
    (err.issues[0].path.as_str(), err.issues[0].reason.as_str())
}

#[test]
fn wal_preallocation_defaults_to_64_mib_and_refuses_bytes() {
    assert_eq!(with_server_line("").unwrap().server.wal_preallocate_bytes, 64 << 20);
    assert_eq!(with_server_line("wal_preallocate_mib = 0").unwrap().server.wal_preallocate_bytes, 0);
    let err = with_server_line("wal_preallocate_mib = 67108864").unwrap_err();
    let (path, reason) = only_issue(&err);
    assert_eq!(path, "server.wal_preallocate_mib");
    assert!(reason.contains("in MiB, not bytes"), "{err}");
}

#[test]
fn workers_default_to_one_fewer_than_the_cpus_and_refuse_zero() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(with_server_line("").unwrap().server.workers, (cpus - 1).max(1));
    assert_eq!(with_server_line("workers = 3").unwrap().server.workers, 3);
    let err = with_server_line("workers = 0").unwrap_err();
    let (path, reason) = only_issue(&err);
    assert_eq!(path, "server.workers");
    assert!(reason.contains("must be 1 to 1024"), "{err}");
}

#[test]
fn check_config_command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, BAD).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_ringsource")).args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().filter(|l| l.contains("bad.toml: sites[")).count(), 12, "{stderr}");

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/ringsource.toml");
    let out =
        Command::new(env!("CARGO_BIN_EXE_ringsource")).args(["check-config", "--config"]).arg(&demo).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = Command::new(env!("CARGO_BIN_EXE_ringsource")).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("serve") && help.contains("check-config"), "{help}");
}
