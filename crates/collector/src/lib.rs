//! The Ringsource collector as a library. `main.rs` only parses the command
//! line. The crate is in layers, each importing only the ones below it (a
//! test, `tests/it/layers.rs`, reads the `use` paths and fails on an import
//! cycle or an upward import):
//!
//! - app: [`server`] (puts storage, services and the HTTP edge together and
//!   runs them), [`cli`] (the `ringsource` command line, with dashboard
//!   users), [`demo`] (a seeded demo month through the services),
//!   [`logging`] (the log subscriber the binary installs);
//! - [`http`]: everything about the web edge, once: the app state, the error
//!   type, the extractors, CORS, rate limits, the edge's deadlines and
//!   headers, static files, the one route list, and a module of handlers per
//!   feature;
//! - [`services`]: the workflows: visits, calls and attribution, money,
//!   exports, pools, privacy, readiness;
//! - [`storage`]: the persistence port (traits, with the types they take and
//!   give), with SQL only in its SQLite adapter, [`storage::sqlite`];
//! - [`pbx`]: the PBX adapters, pure functions from a request to a call
//!   event (each PBX's signature and fields), free of actix;
//! - [`config`]: TOML in, validated settings out; the settings of a feature
//!   are its own (`pbx::settings`, `exports::settings`);
//! - below all: [`clock`] (injectable time), [`dates`] (a site's days),
//!   [`mask`] (caller numbers in logs), [`recent`], [`session_id`],
//!   [`outage`] (repeated server errors as one summary line per interval).

pub mod cli;
pub mod clock;
pub mod config;
pub mod dates;
pub mod demo;
pub mod env;
pub mod exports;
pub mod http;
pub mod logging;
pub mod mask;
pub mod outage;
pub mod pbx;
pub mod recent;
pub mod server;
pub mod services;
pub mod session_id;
pub mod storage;
