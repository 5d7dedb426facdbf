//! The collector's integration tests, in one binary: each one starts the real
//! app on port 0 with a fresh SQLite file and talks HTTP to it. One binary
//! links the collector once instead of once per file.

mod common;
mod pbx_support;
mod people;

mod call_notes;
mod calls;
mod client_limits;
mod config_check;
mod csv_injection;
mod demo_data;
mod demo_month;
mod deploy;
mod edge_headers;
mod exports;
mod field_limits;
mod http_api;
mod layers;
mod lease_clock;
mod lease_concurrency;
mod lease_writer;
mod logging;
mod migrate;
mod money;
mod multi_instance;
mod openapi_conformance;
mod openapi_responses;
mod pbx_delivery;
mod pbx_freeswitch;
mod pbx_generic;
mod pbx_kamailio;
mod pbx_mango;
mod pbx_routes;
mod pbx_timing;
mod pbx_twilio;
mod pbx_zadarma;
mod pool_drain;
mod pools_report;
mod postgres_backend;
mod power_cut;
mod privacy;
mod recordings;
mod report_days;
mod shutdown;
mod site_display;
mod slow_clients;
mod slowloris;
mod small_disk;
mod static_serving;
mod users;
mod visit_reclassify;
mod visitor_facts;
