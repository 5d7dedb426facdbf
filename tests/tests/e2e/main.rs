//! End-to-end tests across processes, in one binary: the collector, the built
//! bundle, headless Chromium over WebDriver, and Kamailio with sipp.

mod dashboard;
mod dashboard_roles;
mod dashboard_views;
mod script_tag;
mod sip_call;
mod vite_app;
