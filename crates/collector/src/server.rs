//! Builds the actix-web application and runs it.

use std::net::SocketAddr;

use actix_web::{App, HttpServer};

use crate::config::Config;
use crate::static_files::{self, StaticDirs};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the server stopped with an error: {0}")]
    Run(#[source] std::io::Error),
}

/// A bound, not yet running server.
pub struct Bound {
    pub server: actix_web::dev::Server,
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
}

/// Binds the HTTP server described by `config`. Must be called inside an actix
/// system (`actix_web::rt::System`).
pub fn bind(config: &Config, listen: SocketAddr) -> Result<Bound, StartError> {
    let dirs = StaticDirs {
        bundle_dir: config.server.bundle_dir.clone(),
        www_dir: config.server.www_dir.clone(),
    };
    let http = HttpServer::new(move || App::new().configure(|cfg| static_files::configure(&dirs, cfg)))
        .bind(listen)
        .map_err(|source| StartError::Bind { addr: listen, source })?;
    let addrs = http.addrs();
    Ok(Bound { server: http.run(), addrs })
}
