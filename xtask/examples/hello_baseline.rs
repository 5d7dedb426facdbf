//! The baseline for `cargo xtask bench collector`: the smallest actix-web server, built
//! with the same profile and actix features as the collector, measured in the same run.

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    HttpServer::new(|| App::new().route("/", web::get().to(|| async { "Hello world!" }))).bind(addr)?.run().await
}
