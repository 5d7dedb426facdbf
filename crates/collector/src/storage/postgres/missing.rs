//! What the PostgreSQL backend does not have yet (docs/postgres.md): every
//! store of the port is there (and `ringsource migrate` moves a SQLite
//! database in), but the demo data and a run of the whole integration
//! suite on PostgreSQL are not. The server refuses to start on PostgreSQL
//! until they are, unless `RINGSOURCE_EXPERIMENTAL_POSTGRES=1`.

/// What the PostgreSQL backend does not have yet, as the start-up refusal
/// names it.
pub const MISSING: &str = "`ringsource demo-data`, and the whole integration suite run on PostgreSQL";
