//! `ringsource migrate`: a SQLite database copied into PostgreSQL, table by
//! table, in one PostgreSQL transaction, then verified against the SQLite
//! file before it commits (docs/postgres.md, "Moving from SQLite").
//!
//! The tables come from the two schemas, not from a list kept here: every
//! table of the SQLite file is copied into the PostgreSQL table of its name,
//! column by column by name, unless [`NOT_COPIED`] says why not; a table on
//! either side that the other lacks, or a column that differs, stops the
//! migration before anything is written. The order of the copy follows the
//! foreign keys PostgreSQL enforces.
//!
//! Each value is converted to its PostgreSQL column's type and checked on
//! the way: an integer that does not fit, a flag that is not 0 or 1, text
//! that is not UTF-8 or holds a NUL is an error naming the table, the row's
//! key and the column, never a truncation.
//!
//! The check reads both sides again: per table, the row count and an
//! order-independent digest of every row's values written out as text
//! (SQLite's values as stored, PostgreSQL's as typed, booleans as 0/1), so
//! it does not rely on the conversion it checks. A difference rolls the
//! transaction back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_core::Stream;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::{ToSql, Type};

use crate::config::server::PostgresSettings;
use crate::storage::StorageError;
use crate::storage::postgres::{SCHEMA_LOCK, client_config, migrate as migrate_schema, tls, with_causes};

/// SQLite tables that are deliberately left behind, with the reason. A table
/// of the file that is neither here nor in PostgreSQL's schema stops the
/// migration: data is never dropped without a line here saying why.
/// (SQLite's own `sqlite_*` tables, such as `sqlite_stat1`, are statistics,
/// not the collector's data, and are never read.)
pub const NOT_COPIED: &[(&str, &str)] = &[];

/// PostgreSQL tables that have no SQLite counterpart and stay empty, with
/// the reason. Besides refinery's own history of the migrations applied.
pub const POSTGRES_ONLY: &[(&str, &str)] = &[("refinery_schema_history", "the PostgreSQL migrations applied")];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{path} does not exist")]
    NoFile { path: PathBuf },
    #[error("cannot read the SQLite database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path} is not a Ringsource database (it has no schema version)")]
    NotRingsource { path: PathBuf },
    #[error(
        "{path} is at schema version {found}, and this ringsource copies version {latest}: start this \
         version's collector on it once (`ringsource serve`), which upgrades it, stop it, then migrate"
    )]
    OldSchema { path: PathBuf, found: i64, latest: i64 },
    #[error(
        "{path} is at schema version {found}, newer than this ringsource's {latest}: migrate with the \
         ringsource that wrote it"
    )]
    NewerSchema { path: PathBuf, found: i64, latest: i64 },
    #[error("SQLite error while {doing}: {source}")]
    Sqlite { doing: String, source: rusqlite::Error },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("PostgreSQL error while {doing}: {message}")]
    Postgres { doing: String, message: String },
    #[error(
        "the PostgreSQL database {target} already holds collector data (in {}); migrate into an empty \
         database, or pass --replace to delete what it holds first",
        tables.join(", ")
    )]
    TargetNotEmpty { target: String, tables: Vec<String> },
    #[error(
        "the SQLite table {table} has no table in PostgreSQL's schema and is not listed as left \
         behind (storage::sqlite::to_postgres::NOT_COPIED); nothing was copied"
    )]
    UnplannedTable { table: String },
    #[error("the PostgreSQL table {table} has no table in the SQLite file to be copied from; nothing was copied")]
    NoSource { table: String },
    #[error(
        "table {table}: the columns differ (only in SQLite: {only_sqlite:?}; only in PostgreSQL: \
         {only_postgres:?}); nothing was copied"
    )]
    Columns { table: String, only_sqlite: Vec<String>, only_postgres: Vec<String> },
    #[error("table {table}, column {column}: PostgreSQL type {type_name} is not one migrate converts to")]
    UnsupportedType { table: String, column: String, type_name: String },
    #[error("table {table}, row {row}, column {column}: {problem}; nothing was committed")]
    Value { table: String, row: String, column: String, problem: String },
    #[error("the foreign keys of PostgreSQL's schema form a cycle among {0:?}")]
    Cycle(Vec<String>),
}

/// A SQLite table not copied, and why.
type LeftBehind = (String, String);

/// What [`migrate`] was asked to do.
pub struct Options {
    /// Empty the target's tables first instead of refusing a target that
    /// holds data.
    pub replace: bool,
}

/// Where the copy is, for a progress display.
pub enum Progress<'a> {
    /// The schema is in place and the copy begins.
    Start { tables: usize, rows: u64 },
    /// Rows of `table` copied so far (at most about once a second), and when
    /// it is done (`done`).
    Copying { table: &'a str, rows: u64, of: u64, elapsed: Duration, done: bool },
    /// The check reads both sides again.
    Verifying { tables: usize },
}

/// One table's figures on both sides.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: String,
    pub sqlite_rows: u64,
    pub postgres_rows: u64,
    /// The order-independent digest of the rows' values (hex).
    pub sqlite_digest: String,
    pub postgres_digest: String,
    pub copy_time: Duration,
}

impl TableReport {
    pub fn matches(&self) -> bool {
        self.sqlite_rows == self.postgres_rows && self.sqlite_digest == self.postgres_digest
    }
}

/// The migration's outcome: committed only when every table matched.
#[derive(Debug)]
pub struct Report {
    pub tables: Vec<TableReport>,
    pub left_behind: Vec<LeftBehind>,
    pub committed: bool,
    /// Whether the target held data that `--replace` deleted.
    pub replaced: bool,
    pub copy_time: Duration,
    pub verify_time: Duration,
}

impl Report {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.sqlite_rows).sum()
    }
}

/// The PostgreSQL type a column's values are converted to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int8,
    Int4,
    Int2,
    Bool,
    Text,
    Float8,
}

impl Kind {
    fn of(ty: &Type) -> Option<Self> {
        Some(match *ty {
            Type::INT8 => Self::Int8,
            Type::INT4 => Self::Int4,
            Type::INT2 => Self::Int2,
            Type::BOOL => Self::Bool,
            Type::TEXT | Type::VARCHAR => Self::Text,
            Type::FLOAT8 => Self::Float8,
            _ => return None,
        })
    }
}

struct Column {
    name: String,
    ty: Type,
    kind: Kind,
    identity: bool,
}

/// A table to copy: PostgreSQL's columns (without generated ones), in the
/// order COPY takes them, and SQLite's primary key to name a row by.
struct Table {
    name: String,
    columns: Vec<Column>,
    /// Indexes into `columns` of SQLite's primary key.
    key: Vec<usize>,
}

/// A converted value, bound to COPY as its column's Rust type.
enum Cell {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Int2(Option<i16>),
    Bool(Option<bool>),
    Text(Option<String>),
    Float8(Option<f64>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Int8(v) => v,
            Self::Int4(v) => v,
            Self::Int2(v) => v,
            Self::Bool(v) => v,
            Self::Text(v) => v,
            Self::Float8(v) => v,
        }
    }
}

/// Converts one SQLite value to `kind`, or says why it cannot be.
fn convert(value: ValueRef<'_>, kind: Kind) -> Result<Cell, String> {
    let shown = |v: ValueRef<'_>| match v {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => format!("integer {i}"),
        ValueRef::Real(f) => format!("real {f}"),
        ValueRef::Text(t) => format!("text {:?}", String::from_utf8_lossy(&t[..t.len().min(40)])),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    };
    let wrong = |v: ValueRef<'_>, want: &str| Err(format!("{} where PostgreSQL's column holds {want}", shown(v)));
    Ok(match (kind, value) {
        (Kind::Int8, ValueRef::Null) => Cell::Int8(None),
        (Kind::Int4, ValueRef::Null) => Cell::Int4(None),
        (Kind::Int2, ValueRef::Null) => Cell::Int2(None),
        (Kind::Bool, ValueRef::Null) => Cell::Bool(None),
        (Kind::Text, ValueRef::Null) => Cell::Text(None),
        (Kind::Float8, ValueRef::Null) => Cell::Float8(None),
        (Kind::Int8, ValueRef::Integer(i)) => Cell::Int8(Some(i)),
        (Kind::Int4, ValueRef::Integer(i)) => {
            Cell::Int4(Some(i32::try_from(i).map_err(|_| format!("{i} does not fit PostgreSQL's integer (32 bits)"))?))
        }
        (Kind::Int2, ValueRef::Integer(i)) => {
            Cell::Int2(Some(i16::try_from(i).map_err(|_| format!("{i} does not fit PostgreSQL's smallint (16 bits)"))?))
        }
        (Kind::Bool, ValueRef::Integer(0)) => Cell::Bool(Some(false)),
        (Kind::Bool, ValueRef::Integer(1)) => Cell::Bool(Some(true)),
        (Kind::Bool, v @ ValueRef::Integer(_)) => return wrong(v, "a boolean (0 or 1 in SQLite)"),
        (Kind::Float8, ValueRef::Real(f)) => Cell::Float8(Some(f)),
        (Kind::Text, ValueRef::Text(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|e| format!("text that is not UTF-8 ({e})"))?;
            if text.contains('\0') {
                return Err("text with a NUL character, which PostgreSQL's text cannot hold".to_owned());
            }
            Cell::Text(Some(text.to_owned()))
        }
        (Kind::Int8 | Kind::Int4 | Kind::Int2, v) => return wrong(v, "integers"),
        (Kind::Float8, v) => return wrong(v, "floating-point numbers"),
        (Kind::Text, v) => return wrong(v, "text"),
        (Kind::Bool, v) => return wrong(v, "a boolean (0 or 1 in SQLite)"),
    })
}

/// The sum of the rows' digests and their count: equal sums over equal
/// counts mean the same rows in any order (each row is distinct by its
/// key, so no two rows cancel out).
#[derive(Default)]
struct Digest128 {
    rows: u64,
    sum: u128,
}

impl Digest128 {
    /// Adds a row given as its values written out as text (`None` = NULL).
    fn add<'a>(&mut self, values: impl Iterator<Item = Option<std::borrow::Cow<'a, str>>>) {
        let mut h = Sha256::new();
        for v in values {
            match v {
                None => h.update([0u8]),
                Some(text) => {
                    h.update([1u8]);
                    h.update((text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
            }
        }
        let d = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// A SQLite value as text, as stored: integers in decimal, reals in the
/// shortest form that reads back the same, text as it is.
fn sqlite_text(v: ValueRef<'_>) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
        ValueRef::Real(f) => Some(Cow::Owned(format!("{f:?}"))),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => Some(Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect())),
    }
}

/// A PostgreSQL value as text, as typed: booleans as SQLite's 0/1.
fn postgres_text(row: &BinaryCopyOutRow, i: usize, kind: Kind) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(match kind {
        Kind::Int8 => row.try_get::<Option<i64>>(i)?.map(|v| v.to_string()),
        Kind::Int4 => row.try_get::<Option<i32>>(i)?.map(|v| v.to_string()),
        Kind::Int2 => row.try_get::<Option<i16>>(i)?.map(|v| v.to_string()),
        Kind::Bool => row.try_get::<Option<bool>>(i)?.map(|v| if v { "1" } else { "0" }.to_owned()),
        Kind::Text => row.try_get::<Option<String>>(i)?,
        Kind::Float8 => row.try_get::<Option<f64>>(i)?.map(|v| format!("{v:?}")),
    })
}

/// An identifier quoted for SQL (both dialects quote alike).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sqlite_err(doing: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> MigrateError {
    let doing = doing.into();
    move |source| MigrateError::Sqlite { doing, source }
}

/// A PostgreSQL error with what the server said in full: its message, the
/// detail (which key a foreign key missed), and where (which COPY line).
fn pg_err(doing: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    let doing = doing.into();
    move |e| {
        let message = match e.as_db_error() {
            Some(db) => {
                let mut m = db.message().to_owned();
                if let Some(detail) = db.detail() {
                    m.push_str(&format!(" ({detail})"));
                }
                if let Some(at) = db.where_() {
                    m.push_str(&format!(" [{at}]"));
                }
                m
            }
            None => with_causes(&e),
        };
        MigrateError::Postgres { doing, message }
    }
}

/// Opens the SQLite file read-only, checks its schema version, and begins
/// the read that the copy and the check share: both see one snapshot.
fn open_source(path: &Path) -> Result<rusqlite::Connection, MigrateError> {
    if !path.exists() {
        return Err(MigrateError::NoFile { path: path.to_owned() });
    }
    let open = |source| MigrateError::Open { path: path.to_owned(), source };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(open)?;
    conn.execute_batch("BEGIN").map_err(open)?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open)?;
    let latest = super::latest_schema_version()?;
    let path = path.to_owned();
    match found {
        0 => Err(MigrateError::NotRingsource { path }),
        f if f < latest => Err(MigrateError::OldSchema { path, found, latest }),
        f if f > latest => Err(MigrateError::NewerSchema { path, found, latest }),
        _ => Ok(conn),
    }
}

/// The SQLite file's tables, each with its columns and whether each is in
/// the primary key.
fn sqlite_tables(conn: &rusqlite::Connection) -> Result<BTreeMap<String, Vec<(String, bool)>>, MigrateError> {
    let mut names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .map_err(sqlite_err("listing the tables"))?;
    let names: Vec<String> = names
        .query_map([], |r| r.get(0))
        .map_err(sqlite_err("listing the tables"))?
        .collect::<Result<_, _>>()
        .map_err(sqlite_err("listing the tables"))?;
    let mut tables = BTreeMap::new();
    for name in names {
        let doing = format!("reading the columns of {name}");
        let mut st =
            conn.prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid").map_err(sqlite_err(&doing))?;
        let columns = st
            .query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? > 0)))
            .map_err(sqlite_err(&doing))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_err(&doing))?;
        tables.insert(name, columns);
    }
    Ok(tables)
}

/// PostgreSQL's tables with their columns (generated ones left out: the
/// database computes them) and the foreign keys between them.
async fn postgres_tables(
    client: &tokio_postgres::Client,
) -> Result<(BTreeMap<String, Vec<Column>>, Vec<(String, String)>), MigrateError> {
    let doing = "reading PostgreSQL's schema";
    let rows = client
        .query(
            "SELECT c.relname, a.attname, a.atttypid, a.attidentity IN ('a', 'd')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attgenerated = ''
             ORDER BY c.relname, a.attnum",
            &[],
        )
        .await
        .map_err(pg_err(doing))?;
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let name: String = row.get(1);
        let oid: u32 = row.get(2);
        let ty = Type::from_oid(oid).unwrap_or(Type::UNKNOWN);
        let Some(kind) = Kind::of(&ty) else {
            if POSTGRES_ONLY.iter().any(|(t, _)| *t == table) {
                tables.entry(table).or_default();
                continue;
            }
            return Err(MigrateError::UnsupportedType { table, column: name, type_name: ty.name().to_owned() });
        };
        tables.entry(table).or_default().push(Column { name, ty, kind, identity: row.get(3) });
    }
    let keys = client
        .query(
            "SELECT child.relname, parent.relname
             FROM pg_constraint k
             JOIN pg_class child ON child.oid = k.conrelid
             JOIN pg_class parent ON parent.oid = k.confrelid
             JOIN pg_namespace n ON n.oid = k.connamespace
             WHERE k.contype = 'f' AND n.nspname = current_schema()",
            &[],
        )
        .await
        .map_err(pg_err(doing))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok((tables, keys))
}

/// The tables to copy, parents before children, checked against both
/// schemas; and the SQLite tables left behind, with why.
fn plan(
    sqlite: BTreeMap<String, Vec<(String, bool)>>,
    mut postgres: BTreeMap<String, Vec<Column>>,
    keys: &[(String, String)],
) -> Result<(Vec<Table>, Vec<LeftBehind>), MigrateError> {
    let mut left_behind = Vec::new();
    let mut tables = BTreeMap::new();
    for (name, sqlite_columns) in sqlite {
        if let Some((_, why)) = NOT_COPIED.iter().find(|(t, _)| *t == name) {
            left_behind.push((name, (*why).to_owned()));
            continue;
        }
        let Some(columns) = postgres.remove(&name) else {
            return Err(MigrateError::UnplannedTable { table: name });
        };
        let in_sqlite: BTreeSet<&str> = sqlite_columns.iter().map(|(c, _)| c.as_str()).collect();
        let in_postgres: BTreeSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        if in_sqlite != in_postgres {
            return Err(MigrateError::Columns {
                only_sqlite: in_sqlite.difference(&in_postgres).map(|s| (*s).to_owned()).collect(),
                only_postgres: in_postgres.difference(&in_sqlite).map(|s| (*s).to_owned()).collect(),
                table: name,
            });
        }
        let key = sqlite_columns
            .iter()
            .filter(|(_, pk)| *pk)
            .filter_map(|(c, _)| columns.iter().position(|col| &col.name == c))
            .collect();
        tables.insert(name.clone(), Table { name, columns, key });
    }
    if let Some(table) = postgres.into_keys().find(|t| !POSTGRES_ONLY.iter().any(|(p, _)| p == t)) {
        return Err(MigrateError::NoSource { table });
    }
    // Parents first: a table goes once every table it refers to has gone.
    let mut ordered = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|t| !keys.iter().any(|(child, parent)| child == *t && parent != *t && tables.contains_key(parent)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(MigrateError::Cycle(tables.into_keys().collect()));
        }
        for t in ready {
            ordered.extend(tables.remove(&t));
        }
    }
    Ok((ordered, left_behind))
}

/// Copies `sqlite` (a `ringsource` SQLite file at the latest schema version)
/// into the PostgreSQL database of `target`: migrates its schema with the
/// adapter's migrations, copies every table in one transaction, sets the
/// identity columns past the copied ids, verifies, and commits only if
/// every table matches. Blocks the calling thread (a command's).
pub fn migrate(
    sqlite: &Path,
    target: &PostgresSettings,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, MigrateError> {
    let source = open_source(sqlite)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MigrateError::Storage(StorageError::Thread(e)))?;
    runtime.block_on(run(&source, target, options, progress))
}

async fn run(
    source: &rusqlite::Connection,
    target: &PostgresSettings,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, MigrateError> {
    let (mut client, connection) = client_config(target)
        .connect(tls(target)?)
        .await
        .map_err(|e| StorageError::Connect { target: target.shown.clone(), source: with_causes(&e).into() })?;
    let driver = tokio::spawn(connection);
    migrate_schema(&mut client).await?;
    let result = copy_and_verify(&mut client, source, target, options, progress).await;
    drop(client);
    let _ = driver.await;
    result
}

async fn copy_and_verify(
    client: &mut tokio_postgres::Client,
    source: &rusqlite::Connection,
    target: &PostgresSettings,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, MigrateError> {
    let (postgres, keys) = postgres_tables(client).await?;
    let (tables, left_behind) = plan(sqlite_tables(source)?, postgres, &keys)?;

    let tx = client.transaction().await.map_err(pg_err("beginning the transaction"))?;
    // Instances of the collector starting meanwhile wait for the copy (they
    // take this lock to sync their sites), and nothing else reads or writes
    // the tables until it commits or rolls back.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(pg_err("taking the schema lock"))?;
    let all: Vec<String> = tables.iter().map(|t| ident(&t.name)).collect();
    let all = all.join(", ");
    tx.batch_execute(&format!("LOCK TABLE {all} IN ACCESS EXCLUSIVE MODE"))
        .await
        .map_err(pg_err("locking the tables"))?;
    let mut holding = Vec::new();
    for t in &tables {
        let row = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", ident(&t.name)), &[])
            .await
            .map_err(pg_err(format!("looking into {}", t.name)))?;
        if row.get::<_, bool>(0) {
            holding.push(t.name.clone());
        }
    }
    let replaced = !holding.is_empty();
    if replaced && !options.replace {
        return Err(MigrateError::TargetNotEmpty { target: target.shown.clone(), tables: holding });
    }
    if replaced {
        tx.batch_execute(&format!("TRUNCATE {all} RESTART IDENTITY"))
            .await
            .map_err(pg_err("emptying the target's tables (--replace)"))?;
    }

    let mut counts = Vec::with_capacity(tables.len());
    for t in &tables {
        let n: i64 = source
            .query_row(&format!("SELECT COUNT(*) FROM {}", ident(&t.name)), [], |r| r.get(0))
            .map_err(sqlite_err(format!("counting the rows of {}", t.name)))?;
        counts.push(u64::try_from(n).unwrap_or(0));
    }
    progress(Progress::Start { tables: tables.len(), rows: counts.iter().sum() });

    let started = Instant::now();
    let mut copy_times = Vec::with_capacity(tables.len());
    for (t, &of) in tables.iter().zip(&counts) {
        let began = Instant::now();
        copy_table(&tx, source, t, of, progress).await?;
        copy_times.push(began.elapsed());
        set_identity(&tx, t).await?;
    }
    let copy_time = started.elapsed();

    progress(Progress::Verifying { tables: tables.len() });
    let started = Instant::now();
    let mut reports = Vec::with_capacity(tables.len());
    for (t, copy_time) in tables.iter().zip(copy_times) {
        let (sqlite_side, postgres_side) = (sqlite_digest(source, t)?, postgres_digest(&tx, t).await?);
        reports.push(TableReport {
            table: t.name.clone(),
            sqlite_rows: sqlite_side.rows,
            postgres_rows: postgres_side.rows,
            sqlite_digest: sqlite_side.hex(),
            postgres_digest: postgres_side.hex(),
            copy_time,
        });
    }
    let verify_time = started.elapsed();
    let committed = reports.iter().all(TableReport::matches);
    if committed {
        tx.commit().await.map_err(pg_err("committing the copy"))?;
    } else {
        tx.rollback().await.map_err(pg_err("rolling the copy back"))?;
    }
    Ok(Report { tables: reports, left_behind, committed, replaced, copy_time, verify_time })
}

/// Streams one table from SQLite into `COPY … FROM STDIN (FORMAT binary)`.
async fn copy_table(
    tx: &tokio_postgres::Transaction<'_>,
    source: &rusqlite::Connection,
    t: &Table,
    of: u64,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(), MigrateError> {
    let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let names = names.join(", ");
    let doing = format!("copying {}", t.name);
    let sink = tx
        .copy_in(&format!("COPY {} ({names}) FROM STDIN (FORMAT binary)", ident(&t.name)))
        .await
        .map_err(pg_err(&doing))?;
    let types: Vec<Type> = t.columns.iter().map(|c| c.ty.clone()).collect();
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let mut st = source.prepare(&format!("SELECT {names} FROM {}", ident(&t.name))).map_err(sqlite_err(&doing))?;
    let mut rows = st.query([]).map_err(sqlite_err(&doing))?;
    let began = Instant::now();
    let mut shown = began;
    let mut copied = 0u64;
    let mut cells: Vec<Cell> = Vec::with_capacity(t.columns.len());
    while let Some(row) = rows.next().map_err(sqlite_err(&doing))? {
        cells.clear();
        for (i, c) in t.columns.iter().enumerate() {
            let value = row.get_ref(i).map_err(sqlite_err(&doing))?;
            let cell = convert(value, c.kind).map_err(|problem| MigrateError::Value {
                table: t.name.clone(),
                row: row_key(row, t),
                column: c.name.clone(),
                problem,
            })?;
            cells.push(cell);
        }
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        writer.as_mut().write(&values).await.map_err(pg_err(&doing))?;
        copied += 1;
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            progress(Progress::Copying { table: &t.name, rows: copied, of, elapsed: began.elapsed(), done: false });
        }
    }
    writer.as_mut().finish().await.map_err(pg_err(&doing))?;
    progress(Progress::Copying { table: &t.name, rows: copied, of, elapsed: began.elapsed(), done: true });
    Ok(())
}

/// A row named by its primary key, as `id=17` or `(call_id=3, seq=1)`.
fn row_key(row: &rusqlite::Row<'_>, t: &Table) -> String {
    let parts: Vec<String> = t
        .key
        .iter()
        .map(|&i| {
            let v = row.get_ref(i).map(sqlite_text).ok().flatten().unwrap_or(std::borrow::Cow::Borrowed("NULL"));
            format!("{}={v}", t.columns[i].name)
        })
        .collect();
    match parts.len() {
        0 => "(no key)".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(", ")),
    }
}

/// The next id an identity column hands out is past the largest copied,
/// as SQLite's next rowid would be.
async fn set_identity(tx: &tokio_postgres::Transaction<'_>, t: &Table) -> Result<(), MigrateError> {
    for c in t.columns.iter().filter(|c| c.identity) {
        let col = ident(&c.name);
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({col}), 1), MAX({col}) IS NOT NULL) FROM {}",
                ident(&t.name)
            ),
            &[&ident(&t.name), &c.name],
        )
        .await
        .map_err(pg_err(format!("setting the next id of {}.{}", t.name, c.name)))?;
    }
    Ok(())
}

fn sqlite_digest(source: &rusqlite::Connection, t: &Table) -> Result<Digest128, MigrateError> {
    let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let doing = format!("reading {} back", t.name);
    let mut st =
        source.prepare(&format!("SELECT {} FROM {}", names.join(", "), ident(&t.name))).map_err(sqlite_err(&doing))?;
    let mut rows = st.query([]).map_err(sqlite_err(&doing))?;
    let mut digest = Digest128::default();
    while let Some(row) = rows.next().map_err(sqlite_err(&doing))? {
        let values: Vec<ValueRef<'_>> =
            (0..t.columns.len()).map(|i| row.get_ref(i)).collect::<Result<_, _>>().map_err(sqlite_err(&doing))?;
        digest.add(values.into_iter().map(sqlite_text));
    }
    Ok(digest)
}

async fn postgres_digest(tx: &tokio_postgres::Transaction<'_>, t: &Table) -> Result<Digest128, MigrateError> {
    let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let doing = format!("reading {} back", t.name);
    let stream = tx
        .copy_out(&format!("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)", names.join(", "), ident(&t.name)))
        .await
        .map_err(pg_err(&doing))?;
    let types: Vec<Type> = t.columns.iter().map(|c| c.ty.clone()).collect();
    let mut rows = pin!(BinaryCopyOutStream::new(stream, &types));
    let mut digest = Digest128::default();
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        let row = row.map_err(pg_err(&doing))?;
        let values = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| postgres_text(&row, i, c.kind))
            .collect::<Result<Vec<_>, _>>()
            .map_err(pg_err(&doing))?;
        digest.add(values.into_iter().map(|v| v.map(std::borrow::Cow::Owned)));
    }
    Ok(digest)
}
