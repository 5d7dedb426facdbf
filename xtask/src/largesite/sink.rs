//! Where the generated rows go.
//!
//! The generator hands over one row at a time, each column named, and knows
//! nothing of the database behind [`Sink`]: SQLite here, and a PostgreSQL
//! sink (its own module, `COPY` streams) when the collector has that
//! backend. A sink writes every column it is given and fails on one its
//! schema lacks, so the generator cannot drift from the schema unnoticed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rusqlite::types::{ToSqlOutput, ValueRef};

/// One column's value.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
}

impl<'a> Value<'a> {
    pub fn opt(v: Option<&'a str>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }

    pub fn opt_int(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

/// A database being filled.
pub trait Sink {
    /// Writes one row of `table`. A table always comes with the same
    /// columns in the same order.
    fn row(&mut self, table: &'static str, values: &[(&'static str, Value<'_>)]) -> Result<()>;

    /// Makes the load durable and the database ready for the collector
    /// (its keys checked, its indexes in place). Prints what each step took.
    fn finish(self: Box<Self>) -> Result<()>;
}

// ---------------------------------------------------------------- SQLite

/// Prepared inserts in transactions of [`SqliteSink::ROWS_PER_COMMIT`] rows,
/// without a rollback journal (a load that fails leaves a file to delete).
///
/// With `defer_indexes`, the secondary indexes the migrations made (every
/// `CREATE INDEX` in `sqlite_master`; the keys' own indexes stay) are
/// dropped before the load and made again, with the same SQL, after it;
/// [`Sink::finish`] checks that the same set exists as before.
pub struct SqliteSink {
    conn: rusqlite::Connection,
    /// Each table's insert, and the columns it was prepared for.
    inserts: HashMap<&'static str, (String, Vec<&'static str>)>,
    in_transaction: u64,
    /// (name, sql) of the indexes dropped for the load, in creation order.
    deferred: Vec<(String, String)>,
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Float(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Bool(b) => ValueRef::Integer(i64::from(b)),
        }))
    }
}

/// The secondary indexes of the database: (name, sql), oldest first.
fn secondary_indexes(conn: &rusqlite::Connection) -> Result<Vec<(String, String)>> {
    let mut st =
        conn.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

impl SqliteSink {
    const ROWS_PER_COMMIT: u64 = 1_000_000;

    /// Opens a database the collector created (and so migrated), still
    /// without sessions.
    pub fn open(path: &Path, defer_indexes: bool) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        let sessions: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
        if sessions > 0 {
            bail!("{} already has {sessions} sessions; the generator fills an empty database", path.display());
        }
        // Foreign keys are off, as on the collector's connection; the load
        // checks them once at the end instead.
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             PRAGMA cache_size = -524288;",
        )?;
        let mut deferred = Vec::new();
        if defer_indexes {
            deferred = secondary_indexes(&conn)?;
            for (name, _) in &deferred {
                conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
            }
            eprintln!("  {} secondary indexes dropped for the load", deferred.len());
        }
        conn.execute_batch("BEGIN")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Self { conn, inserts: HashMap::new(), in_transaction: 0, deferred })
    }
}

impl Sink for SqliteSink {
    fn row(&mut self, table: &'static str, values: &[(&'static str, Value<'_>)]) -> Result<()> {
        let (sql, columns) = self.inserts.entry(table).or_insert_with(|| {
            let columns: Vec<&'static str> = values.iter().map(|(c, _)| *c).collect();
            let marks = vec!["?"; columns.len()].join(", ");
            (format!("INSERT INTO {table} ({}) VALUES ({marks})", columns.join(", ")), columns)
        });
        if columns.len() != values.len() || columns.iter().zip(values).any(|(c, (v, _))| c != v) {
            bail!("rows of {table} came with different columns ({columns:?}, then {:?})", values.iter().map(|v| v.0));
        }
        let mut st = self.conn.prepare_cached(sql).with_context(|| format!("preparing {sql}"))?;
        st.execute(rusqlite::params_from_iter(values.iter().map(|(_, v)| v)))
            .with_context(|| format!("inserting into {table}"))?;
        drop(st);
        self.in_transaction += 1;
        if self.in_transaction >= Self::ROWS_PER_COMMIT {
            self.conn.execute_batch("COMMIT; BEGIN")?;
            self.in_transaction = 0;
        }
        Ok(())
    }

    /// Commits, makes the deferred indexes again, checks the foreign keys,
    /// and hands the file back in WAL mode, as the collector keeps it. No
    /// `ANALYZE`: the collector never runs it, so its planner works without
    /// statistics, and so must the measurements.
    fn finish(self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        if !self.deferred.is_empty() {
            let started = Instant::now();
            for (name, sql) in &self.deferred {
                let one = Instant::now();
                self.conn.execute_batch(sql).with_context(|| format!("making index {name} again"))?;
                eprintln!("    index {name}: {:.1} s", one.elapsed().as_secs_f64());
            }
            let now = secondary_indexes(&self.conn)?;
            if now != self.deferred {
                bail!("the indexes after the load differ from the migrations': {now:?} vs {:?}", self.deferred);
            }
            eprintln!("  indexes made in {:.1} s", started.elapsed().as_secs_f64());
        }
        let started = Instant::now();
        let broken: i64 = self.conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if broken > 0 {
            bail!("{broken} rows name a parent row that does not exist (PRAGMA foreign_key_check)");
        }
        eprintln!("  foreign keys checked in {:.1} s", started.elapsed().as_secs_f64());
        let mode: String = self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            bail!("the database stayed in journal mode {mode}");
        }
        Ok(())
    }
}
