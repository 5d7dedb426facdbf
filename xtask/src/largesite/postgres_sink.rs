//! The generator's rows into a PostgreSQL database the collector made
//! (migrated), through `COPY … FROM STDIN` in text format.
//!
//! The generator interleaves its tables (a session, its touches, its lease,
//! a call, its events…), and one connection carries one `COPY` at a time, so
//! each table streams on a connection of its own, all at once. Rows of a
//! child table then arrive before their parents' `COPY` has committed, so
//! the foreign keys are dropped for the load and added again after it, which
//! checks every row once (as SQLite's `PRAGMA foreign_key_check` does after
//! its load). The secondary indexes (every index that backs no key) are
//! dropped and made again the same way unless the load keeps them.
//!
//! Values are written as PostgreSQL reads them in text format, after a check
//! against the column's type in the collector's schema: a flag only into a
//! `boolean`, an integer into `bigint`/`integer`/`smallint` within its range,
//! a float into `double precision`, text into `text`. A generated column
//! (`call_events.event_md5`) or a column the table lacks fails the load.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, CopyInSink, NoTls};

use super::sink::{Sink, Value};

/// A column's type, as far as the generator's values go.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ColumnType {
    Boolean,
    Integer { min: i64, max: i64 },
    Double,
    Text,
}

impl ColumnType {
    fn of(data_type: &str) -> Option<Self> {
        Some(match data_type {
            "boolean" => Self::Boolean,
            "bigint" => Self::Integer { min: i64::MIN, max: i64::MAX },
            "integer" => Self::Integer { min: i32::MIN.into(), max: i32::MAX.into() },
            "smallint" => Self::Integer { min: i16::MIN.into(), max: i16::MAX.into() },
            "double precision" => Self::Double,
            "text" => Self::Text,
            _ => return None,
        })
    }
}

/// One table's stream: its own connection, the `COPY` open on it, and the
/// text not yet sent.
struct TableCopy {
    /// Held so the connection stays open while the `COPY` runs.
    _client: Client,
    copy: Pin<Box<CopyInSink<Bytes>>>,
    columns: Vec<(&'static str, ColumnType)>,
    pending: BytesMut,
    rows: u64,
}

/// What the load dropped and makes again: (table, name, definition).
type Deferred = Vec<(String, String, String)>;

pub struct PostgresSink {
    runtime: tokio::runtime::Runtime,
    url: String,
    control: Client,
    copies: HashMap<&'static str, TableCopy>,
    foreign_keys: Deferred,
    indexes: Deferred,
}

/// Bytes of text a table collects before they go to the server.
const CHUNK: usize = 1 << 20;

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("  PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

/// The current schema's foreign keys: (table, name, definition).
async fn foreign_keys(client: &Client) -> Result<Deferred> {
    let rows = client
        .query(
            "SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)
             FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
             WHERE c.contype = 'f' AND n.nspname = current_schema()
             ORDER BY 1, 2",
            &[],
        )
        .await
        .context("reading the foreign keys")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The current schema's indexes that back no key (primary, unique or
/// exclusion constraint): (table, name, `CREATE INDEX` statement).
async fn secondary_indexes(client: &Client) -> Result<Deferred> {
    let rows = client
        .query(
            "SELECT t.relname::text, ix.relname::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i
             JOIN pg_class ix ON ix.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema()
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                               WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
             ORDER BY 1, 2",
            &[],
        )
        .await
        .context("reading the indexes")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

impl PostgresSink {
    /// Opens a database the collector created (and so migrated), still
    /// without sessions.
    pub fn open(url: &str, defer_indexes: bool) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (control, foreign_keys, indexes) = runtime.block_on(async {
            let control = connect(url).await?;
            let sessions: i64 = control.query_one("SELECT count(*) FROM sessions", &[]).await?.get(0);
            if sessions > 0 {
                bail!("the database already has {sessions} sessions; the generator fills an empty database");
            }
            let foreign_keys = foreign_keys(&control).await?;
            for (table, name, _) in &foreign_keys {
                control
                    .batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                    .await
                    .with_context(|| format!("dropping {table}.{name}"))?;
            }
            eprintln!("  {} foreign keys dropped for the load", foreign_keys.len());
            let mut indexes = Vec::new();
            if defer_indexes {
                indexes = secondary_indexes(&control).await?;
                for (_, name, _) in &indexes {
                    control.batch_execute(&format!("DROP INDEX {name}")).await?;
                }
                eprintln!("  {} secondary indexes dropped for the load", indexes.len());
            }
            Ok((control, foreign_keys, indexes))
        })?;
        Ok(Self { runtime, url: url.to_owned(), control, copies: HashMap::new(), foreign_keys, indexes })
    }

    /// Opens `table`'s stream for these columns, checked against the schema.
    fn start_copy(&self, table: &'static str, names: &[&'static str]) -> Result<TableCopy> {
        self.runtime.block_on(async {
            let client = connect(&self.url).await?;
            let rows = client
                .query(
                    "SELECT column_name::text, data_type::text, is_generated::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[&table],
                )
                .await?;
            if rows.is_empty() {
                bail!("the collector's schema has no table {table}");
            }
            let mut columns = Vec::new();
            for name in names {
                let row = rows
                    .iter()
                    .find(|r| r.get::<_, &str>(0) == *name)
                    .with_context(|| format!("{table} has no column {name} in the collector's schema"))?;
                if row.get::<_, &str>(2) != "NEVER" {
                    bail!("{table}.{name} is a generated column; PostgreSQL computes it");
                }
                let data_type: &str = row.get(1);
                let kind = ColumnType::of(data_type)
                    .with_context(|| format!("{table}.{name} is {data_type}, which the generator does not write"))?;
                columns.push((*name, kind));
            }
            let statement = format!("COPY {table} ({}) FROM STDIN", names.join(", "));
            let copy = client.copy_in(&statement).await.with_context(|| statement.clone())?;
            Ok(TableCopy {
                _client: client,
                copy: Box::pin(copy),
                columns,
                pending: BytesMut::with_capacity(CHUNK),
                rows: 0,
            })
        })
    }
}

/// `s` as a field of `COPY`'s text format: backslash, tab, newline and
/// carriage return escaped (UTF-8 never uses these bytes inside a character).
fn put_text(out: &mut BytesMut, s: &str) -> Result<()> {
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => bail!("text with a NUL character, which PostgreSQL's text cannot hold: {s:?}"),
            _ => continue,
        };
        out.put_slice(&bytes[from..i]);
        out.put_slice(escaped);
        from = i + 1;
    }
    out.put_slice(&bytes[from..]);
    Ok(())
}

/// One value in the text format, checked against its column's type.
fn put_value(out: &mut BytesMut, kind: ColumnType, value: Value<'_>) -> Result<()> {
    use std::fmt::Write as _;
    match (kind, value) {
        (_, Value::Null) => out.put_slice(b"\\N"),
        (ColumnType::Boolean, Value::Bool(b)) => out.put_u8(if b { b't' } else { b'f' }),
        (ColumnType::Integer { min, max }, Value::Int(i)) => {
            if i < min || i > max {
                bail!("{i} is out of the column's range {min}..={max}");
            }
            write!(out, "{i}")?;
        }
        // Rust writes the shortest decimal that reads back as the same f64,
        // which PostgreSQL's float8 input reads exactly.
        (ColumnType::Double, Value::Float(f)) if f.is_finite() => write!(out, "{f}")?,
        (ColumnType::Text, Value::Text(s)) => put_text(out, s)?,
        (kind, value) => bail!("{value:?} does not go into a column of type {kind:?}"),
    }
    Ok(())
}

impl Sink for PostgresSink {
    fn row(&mut self, table: &'static str, values: &[(&'static str, Value<'_>)]) -> Result<()> {
        if !self.copies.contains_key(table) {
            let names: Vec<&'static str> = values.iter().map(|(c, _)| *c).collect();
            let copy = self.start_copy(table, &names)?;
            self.copies.insert(table, copy);
        }
        let copy = self.copies.get_mut(table).expect("inserted above");
        if copy.columns.len() != values.len() || copy.columns.iter().zip(values).any(|((c, _), (v, _))| c != v) {
            bail!(
                "rows of {table} came with different columns ({:?}, then {:?})",
                copy.columns.iter().map(|c| c.0).collect::<Vec<_>>(),
                values.iter().map(|v| v.0).collect::<Vec<_>>()
            );
        }
        for (i, ((column, kind), (_, value))) in copy.columns.iter().zip(values).enumerate() {
            if i > 0 {
                copy.pending.put_u8(b'\t');
            }
            put_value(&mut copy.pending, *kind, *value).with_context(|| format!("{table}.{column}"))?;
        }
        copy.pending.put_u8(b'\n');
        copy.rows += 1;
        if copy.pending.len() >= CHUNK {
            let chunk = copy.pending.split().freeze();
            self.runtime.block_on(copy.copy.send(chunk)).with_context(|| format!("COPY {table}"))?;
        }
        Ok(())
    }

    /// Ends every `COPY`, makes the dropped indexes and foreign keys again
    /// (checking every row's parent), puts each identity's sequence at its
    /// table's largest id, and runs `VACUUM ANALYZE`: a production database
    /// that received these rows over a year would have been vacuumed and
    /// analysed by autovacuum (which, since PostgreSQL 13, also vacuums
    /// tables that only receive inserts), so its planner has statistics and
    /// its visibility map is set; the measurements are made in that state.
    fn finish(mut self: Box<Self>) -> Result<()> {
        let copies = std::mem::take(&mut self.copies);
        let control = &self.control;
        self.runtime.block_on(async {
            let started = Instant::now();
            for (table, mut copy) in copies {
                if !copy.pending.is_empty() {
                    let chunk = copy.pending.split().freeze();
                    copy.copy.send(chunk).await.with_context(|| format!("COPY {table}"))?;
                }
                let stored = copy.copy.as_mut().finish().await.with_context(|| format!("ending COPY {table}"))?;
                if stored != copy.rows {
                    bail!("COPY {table} stored {stored} rows of {}", copy.rows);
                }
            }
            eprintln!("  streams ended in {:.1} s", started.elapsed().as_secs_f64());
            if !self.indexes.is_empty() {
                let started = Instant::now();
                for (_, name, sql) in &self.indexes {
                    let one = Instant::now();
                    control.batch_execute(sql).await.with_context(|| format!("making index {name} again"))?;
                    eprintln!("    index {name}: {:.1} s", one.elapsed().as_secs_f64());
                }
                let now = secondary_indexes(control).await?;
                if now != self.indexes {
                    bail!("the indexes after the load differ from the migrations': {now:?} vs {:?}", self.indexes);
                }
                eprintln!("  indexes made in {:.1} s", started.elapsed().as_secs_f64());
            }
            let started = Instant::now();
            for (table, name, definition) in &self.foreign_keys {
                control
                    .batch_execute(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
                    .await
                    .with_context(|| format!("adding {table}.{name} again ({definition}): a row has no parent"))?;
            }
            let now = foreign_keys(control).await?;
            if now != self.foreign_keys {
                bail!(
                    "the foreign keys after the load differ from the migrations': {now:?} vs {:?}",
                    self.foreign_keys
                );
            }
            eprintln!("  foreign keys added and checked in {:.1} s", started.elapsed().as_secs_f64());
            let identities = control
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY 1",
                    &[],
                )
                .await?;
            for row in identities {
                let (table, column): (String, String) = (row.get(0), row.get(1));
                // An empty table keeps its sequence at its start.
                control
                    .batch_execute(&format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max({column})) FROM {table} \
                         HAVING max({column}) IS NOT NULL"
                    ))
                    .await
                    .with_context(|| format!("moving {table}.{column}'s sequence"))?;
            }
            let started = Instant::now();
            control.batch_execute("VACUUM ANALYZE").await.context("VACUUM ANALYZE")?;
            eprintln!("  VACUUM ANALYZE in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: ColumnType, value: Value<'_>) -> Result<String> {
        let mut out = BytesMut::new();
        put_value(&mut out, kind, value)?;
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn values_are_written_as_copy_text_reads_them_and_refused_in_the_wrong_column() {
        assert_eq!(text(ColumnType::Text, Value::Text("a\\b\tc\nd\re ё")).unwrap(), "a\\\\b\\tc\\nd\\re ё");
        assert_eq!(text(ColumnType::Boolean, Value::Null).unwrap(), "\\N");
        assert_eq!(text(ColumnType::Boolean, Value::Bool(true)).unwrap(), "t");
        assert_eq!(text(ColumnType::Double, Value::Float(0.1)).unwrap(), "0.1");
        assert_eq!(text(ColumnType::Double, Value::Float(1.0 / 3.0)).unwrap().parse::<f64>().unwrap(), 1.0 / 3.0);
        let int = ColumnType::of("integer").unwrap();
        assert_eq!(text(int, Value::Int(-5)).unwrap(), "-5");
        assert!(text(int, Value::Int(1 << 40)).is_err());
        assert!(text(ColumnType::Boolean, Value::Int(1)).is_err());
        assert!(text(ColumnType::Double, Value::Float(f64::NAN)).is_err());
        assert!(text(ColumnType::Text, Value::Text("a\0b")).is_err());
        assert!(ColumnType::of("bytea").is_none());
    }
}
