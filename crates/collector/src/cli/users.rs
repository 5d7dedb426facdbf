//! `ringsource user add|list|remove|passwd`: the dashboard's users from the
//! command line, on the configured database (safe while the collector runs).
//!
//! A password comes from standard input with `--password-stdin` (one line);
//! otherwise one is made up and printed once.

use std::io::BufRead;
use std::sync::Arc;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::services::auth::{Sites, User, UserError, secrets};
use crate::storage::sqlite::users::SqliteUsers;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: `--role admin|marketer|manager`, `--sites a,b` (left out:
    /// every site; admins always see every site).
    Add {
        username: String,
        #[arg(long)]
        role: String,
        /// Comma-separated site ids.
        #[arg(long, value_delimiter = ',')]
        sites: Option<Vec<String>>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users: name, role, sites.
    List,
    /// Remove a user and end their sessions.
    Remove { username: String },
    /// Set a user's password and end their sessions.
    Passwd {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn password(from_stdin: bool) -> Result<(String, bool), String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((secrets::generated_password().map_err(|e| e.to_string())?, true))
    }
}

fn describe(u: &User) -> String {
    let sites = match &u.sites {
        Sites::All => "every site".to_owned(),
        Sites::Only(s) => s.iter().cloned().collect::<Vec<_>>().join(","),
    };
    format!("{}\t{}\t{}{}", u.username, u.role.as_str(), sites, if u.demo { "\t(demo)" } else { "" })
}

/// Runs one user command against `cfg`'s database.
pub fn run(cfg: &Config, command: UserCommand) -> Result<(), String> {
    let store: Arc<dyn crate::storage::users::UserStore> = match &cfg.server.postgres {
        Some(pg) => Arc::new(crate::storage::postgres::PostgresStorage::open(pg).map_err(|e| e.to_string())?),
        None => Arc::new(SqliteUsers::open(&cfg.server.database).map_err(|e| e.to_string())?),
    };
    let now_ms = SystemClock.now_ms();
    let known = |s: &str| cfg.sites.iter().any(|site| site.id == s);
    let find = |name: &str| -> Result<User, String> {
        let name = crate::services::auth::user_name(name).map_err(|e| e.to_string())?;
        store.user_by_name(&name).map_err(|e| e.to_string())?.ok_or_else(|| UserError::Unknown(name).to_string())
    };
    match command {
        UserCommand::Add { username, role, sites, password_stdin } => {
            let name = crate::services::auth::user_name(&username).map_err(|e| e.to_string())?;
            let (role, sites) =
                crate::services::auth::role_and_sites(&role, sites.as_deref(), &known).map_err(|e| e.to_string())?;
            let (password, made_up) = password(password_stdin)?;
            let hash = secrets::hash_password(&password).map_err(|e| e.to_string())?;
            let user = store.add_user(&name, role, &sites, &hash, false, now_ms).map_err(|e| e.to_string())?;
            println!("added {}", describe(&user));
            if made_up {
                println!("password: {password}");
            }
        }
        UserCommand::List => {
            let users = store.list_users().map_err(|e| e.to_string())?;
            if users.is_empty() {
                println!("no users; add one with `ringsource user add NAME --role admin --config FILE`");
            }
            for u in users {
                println!("{}", describe(&u));
            }
        }
        UserCommand::Remove { username } => {
            let user = find(&username)?;
            let gone = store.remove_user(user.id).map_err(|e| e.to_string())?;
            println!("removed {}", describe(&gone));
        }
        UserCommand::Passwd { username, password_stdin } => {
            let user = find(&username)?;
            let (password, made_up) = password(password_stdin)?;
            let hash = secrets::hash_password(&password).map_err(|e| e.to_string())?;
            store.update_user(user.id, None, Some(&hash), now_ms).map_err(|e| e.to_string())?;
            println!("password changed for {}; their sessions ended", user.username);
            if made_up {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}
