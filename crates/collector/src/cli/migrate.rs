//! `ringsource migrate --from sqlite:FILE --to postgres://…`: moves a
//! deployment's SQLite database into PostgreSQL (the copy and its check are
//! `storage::sqlite::to_postgres`), with progress on stderr and a per-table
//! summary on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::ProcessEnv;
use crate::config::server::{DATABASE_PASSWORD_ENV, postgres_from_url};
use crate::storage::sqlite::to_postgres::{self as migrate, Options, Progress, Report};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy, as `sqlite:FILE` (the collector's
    /// `server.database`). Stop the collector first; the file is only read.
    #[arg(long, value_name = "sqlite:FILE")]
    pub from: String,
    /// The PostgreSQL database to fill, as `postgres://user@host:port/dbname`
    /// (`?sslmode=require` for TLS, as in `server.database`). The password
    /// may be left out of the URL and set in RINGSOURCE_DATABASE_PASSWORD.
    #[arg(long, value_name = "postgres://…")]
    pub to: String,
    /// The CA that signed the PostgreSQL server's certificate (PEM), as
    /// `server.database_ca_file`; without it the system's CAs are trusted.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Delete the collector data the target already holds before copying
    /// (in the same transaction: if the copy fails, the data stays).
    /// Without it, a target that holds any is refused.
    #[arg(long)]
    pub replace: bool,
}

pub fn run(args: MigrateArgs) -> ExitCode {
    let Some(file) = args.from.strip_prefix("sqlite:").filter(|f| !f.is_empty()) else {
        eprintln!("ringsource: --from must be sqlite:FILE (the collector's SQLite database), not {:?}", args.from);
        return ExitCode::FAILURE;
    };
    let file = PathBuf::from(file);
    let target = match postgres_from_url(&args.to, args.ca_file, &ProcessEnv) {
        Ok(t) => t,
        Err(e) => {
            // The URL itself may hold a password: it is not repeated.
            eprintln!("ringsource: --to {e} (the password may come from {DATABASE_PASSWORD_ENV} instead of the URL)");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("migrating {} to PostgreSQL at {}", file.display(), target.shown);
    // A line at a time: the log writer's thread shares stderr, and holding
    // its lock here would stop that thread with the copy waiting on it.
    let mut show = |p: Progress<'_>| match p {
        Progress::Start { tables, rows } => eprintln!("copying {rows} rows of {tables} tables"),
        Progress::Copying { table, rows, of, elapsed, done } => eprintln!(
            "  {table:<18} {rows:>10} of {of:<10} rows {:>8.2} s {:>10.0} rows/s{}",
            elapsed.as_secs_f64(),
            rate(rows, elapsed),
            if done { "" } else { " …" }
        ),
        Progress::Verifying { tables } => eprintln!("verifying {tables} tables: counts and checksums on both sides"),
    };
    let report = migrate::migrate(&file, &target, &Options { replace: args.replace }, &mut show);
    match report {
        Ok(report) => {
            print_summary(&report);
            if report.committed {
                println!(
                    "migrated {} rows of {} tables from {} to {} in {:.2} s (copy {:.2} s, verify {:.2} s): \
                     counts and checksums equal, committed{}",
                    report.rows(),
                    report.tables.len(),
                    file.display(),
                    target.shown,
                    (report.copy_time + report.verify_time).as_secs_f64(),
                    report.copy_time.as_secs_f64(),
                    report.verify_time.as_secs_f64(),
                    if report.replaced { " (the target's earlier data was replaced)" } else { "" }
                );
                println!("next: set server.database = \"postgres://…\" in the configuration, and start the collector");
                ExitCode::SUCCESS
            } else {
                let bad: Vec<&str> = report.tables.iter().filter(|t| !t.matches()).map(|t| t.table.as_str()).collect();
                eprintln!(
                    "ringsource: verification failed for {}: PostgreSQL does not hold what the SQLite file \
                     holds; the copy was rolled back and the target is as it was",
                    bad.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ringsource: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rate(rows: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { rows as f64 / secs } else { 0.0 }
}

/// The per-table figures, one line each: rows on both sides, whether the
/// digests agree, and the copy's time.
fn print_summary(report: &Report) {
    println!(
        "{:<18} {:>11} {:>13}  {:<8} {:>8}  digest (SQLite)",
        "table", "SQLite rows", "PostgreSQL", "check", "copy s"
    );
    for t in &report.tables {
        let check = if t.matches() {
            "ok"
        } else if t.sqlite_rows != t.postgres_rows {
            "COUNT"
        } else {
            "CONTENT"
        };
        println!(
            "{:<18} {:>11} {:>13}  {:<8} {:>8.3}  {}",
            t.table,
            t.sqlite_rows,
            t.postgres_rows,
            check,
            t.copy_time.as_secs_f64(),
            t.sqlite_digest
        );
        if !t.matches() {
            println!("{:<18} {:>11} {:>13}  {:<8} {:>8}  {} (PostgreSQL)", "", "", "", "", "", t.postgres_digest);
        }
    }
    for (table, why) in &report.left_behind {
        println!("{table:<18} not copied: {why}");
    }
}
