//! `ringsource`: the collector binary. Everything lives in the library; this
//! only parses the command line and maps the outcome to an exit code.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ringsource_collector::cli::Cli::parse();
    ringsource_collector::cli::run(cli)
}
