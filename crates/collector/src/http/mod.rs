//! The web edge: everything HTTP, once.
//!
//! - [`routes`]: the one route list. It registers every API route and is
//!   what `Allow` headers, `openapi.json`'s test and the edge read;
//! - [`state`]: the one app state; [`error`]: the one error type;
//! - [`extract`]: the admin token, the site in the path, bodies and query
//!   strings within limits, the hop to a blocking thread, and the auth
//!   guard with the principal it finds (a user's session or the token);
//! - [`cors`] and [`ratelimit`] (with [`client_addr`]: who sent a request);
//! - [`edge`]: read deadlines, the connection cap, security headers and 405s;
//! - [`static_files`]: the script tag, the bundle and the `www/` pages;
//! - a module of handlers per feature: [`visits`] (the browser's routes),
//!   [`pbx`], [`calls`], [`money`], [`exports`], [`pools`], [`privacy`],
//!   [`call_notes`], [`recordings`], [`visitor_facts`] (the admin API),
//!   [`auth`] (sign-in, users, and the guard of the admin API), [`health`]
//!   (liveness and readiness for a load balancer);
//! - [`requests`]: a request id and a log line per request. Handlers parse and answer; the work is the services'.

pub mod auth;
pub mod call_notes;
pub mod calls;
pub mod client_addr;
pub mod cors;
pub mod edge;
pub mod error;
pub mod exports;
pub mod extract;
pub mod fields;
pub mod health;
pub mod money;
pub mod openapi;
pub mod pbx;
pub mod pools;
pub mod privacy;
pub mod ratelimit;
pub mod recordings;
pub mod requests;
pub mod routes;
pub mod state;
pub mod static_files;
pub mod visitor_facts;
pub mod visits;
