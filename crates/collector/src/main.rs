//! `ringsource`: the collector binary. Everything lives in the library; this
//! only parses the command line, installs the log subscriber and maps the
//! outcome to an exit code.
use clap::Parser;
use ringsource_collector::logging;

fn main() -> std::process::ExitCode {
    let cli = ringsource_collector::cli::Cli::parse();
    let _logs = match logging::Settings::from_env(&cli.log).and_then(logging::init) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("ringsource: cannot set up the logs: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    ringsource_collector::cli::run(cli)
}
