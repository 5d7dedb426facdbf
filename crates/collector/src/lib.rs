//! The Ringsource collector as a library: configuration, storage, HTTP routes
//! and the visit/lease domain. `main.rs` only parses the command line.
//!
//! Layout:
//! - [`config`]: the TOML file, validated once at load time into domain types;
//! - [`storage`]: persistence behind a trait, SQLite today;
//! - [`domain`]: the visit flow (routing, crawlers, show-number) over storage;
//! - [`api`]: the `/v1/` HTTP API, CORS, rate limiting, JSON errors;
//! - [`pbx`]: PBX webhooks: each PBX's signature, its fields to a `CallEvent`;
//! - [`calls`]: calls from PBX events: storage, attribution, the admin calls API;
//! - [`pools_report`]: pool health for the dashboard (`GET /v1/reports/pools`);
//! - [`money`]: advertising cost and CRM revenue; [`exports`]: GA4 and CRM
//!   exports of ended calls through the outbox; [`admin`]: their shared errors;
//! - [`demo`]: `ringsource demo-data`, a seeded demo month;
//! - [`privacy`]: retention, erasure and export of a caller's data, masked
//!   caller numbers in logs (backups are [`storage::sqlite::backup`]);
//! - [`static_files`]: the script tag, the wasm bundle and the `www/` pages;
//! - [`server`]: builds the actix-web app and runs it; [`edge`]: read
//!   deadlines, the connection cap, security headers and 405s in front of it;
//! - [`clock`]: injectable time; [`ratelimit`]: per-IP token buckets;
//!   [`outage`]: repeated server errors as one summary line per interval;
//! - [`cli`]: the `ringsource` command line;
//! - [`auth`]: dashboard users, roles, sessions and the guard of the admin
//!   API; [`call_notes`]: managers' tags and notes on calls; [`geo`] and
//!   [`device`]: where and on what a visitor came, read once per session;
//!   [`recordings`]: call recordings streamed to the dashboard;
//! - [`logging`]: the log subscriber (text or JSON, the operator's levels)
//!   and the request id and line of every request.

pub mod admin;
pub mod api;
pub mod auth;
pub mod call_notes;
pub mod calls;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod demo;
pub mod device;
pub mod domain;
pub mod edge;
pub mod exports;
pub mod geo;
pub mod logging;
pub mod money;
pub mod outage;
pub mod pbx;
pub mod pools_report;
pub mod privacy;
pub mod ratelimit;
pub mod recent;
pub mod recordings;
pub mod server;
pub mod session_id;
pub mod static_files;
pub mod storage;
pub mod visitor_facts;
