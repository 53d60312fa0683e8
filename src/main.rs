//! The `tandem` command line. Everything it runs lives in the library, so the
//! tests can start the same daemon in-process.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tandem::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: per-thread free lists suit the
/// per-worker runtimes, and malloc/free was ~10% of a proxied request's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MySQL read/write-splitting proxy, VRRP router and HTTP load balancer in one binary.
#[derive(Debug, Parser)]
#[command(name = "tandem", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run what the configuration names, until SIGINT or SIGTERM.
    Run {
        /// The TOML configuration file; TANDEM__* variables override its keys.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Load and validate a configuration file, then exit: 0 if valid, 2 if not.
    CheckConfig {
        /// The TOML configuration file; TANDEM__* variables override its keys.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a commented reference configuration with every key and its default.
    PrintExampleConfig,
}

const EXIT_FAILURE: u8 = 1;
/// Like clap's usage errors: the invocation or its configuration is wrong.
const EXIT_BAD_CONFIG: u8 = 2;
/// After `app::run` returns, how long leftover blocking tasks may delay exit.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { config } => run(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::PrintExampleConfig => {
            print!("{}", Config::example());
            ExitCode::SUCCESS
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tandem: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if config.runs_nothing() {
        eprintln!(
            "tandem: {}: nothing to run: add a [mysql], [admin] or [vrrp] section",
            config.origin
        );
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    if let Err(e) = init_tracing(&config) {
        eprintln!("tandem: {e}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    // Each client session costs a socket, and each backend connection
    // another: raise the soft file limit to the hard one, like nginx's
    // worker_rlimit_nofile.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    // The control plane (accept loops, admin, signals) runs on this one
    // thread; client sessions run on `runtime.worker_threads` session
    // workers that `app::run` starts (see `tandem::workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .thread_name("tandem-control")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tandem: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.origin,
        "tandem starting"
    );
    let result = runtime.block_on(tandem::app::run(config));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem: {}", error_chain(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` when set, else by `log.level`
/// (already validated with the config).
fn init_tracing(config: &Config) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| format!("RUST_LOG: {e}"))?
        }
        _ => EnvFilter::try_new(&config.log.level).map_err(|e| format!("log.level: {e}"))?,
    };
    match config.log.format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Colour only for a person at a terminal, not for journald or a file.
            .with_ansi(std::io::stderr().is_terminal())
            // A closed stderr (the log reader went away) must not stop the
            // proxy: tracing-subscriber's default reports a failed write with
            // eprintln!, which panics when stderr itself is gone.
            .log_internal_errors(false)
            .try_init()
            .map_err(|e| format!("cannot set up logging: {e}")),
    }
}

/// `error: cause: cause's cause`, the whole `source()` chain on one line.
/// A cause whose text the message already ends with is not repeated (an
/// error may both show its cause and return it from `source()`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_causes_once() {
        let e = Outer(Middle(std::io::Error::other("disk on fire")));
        assert_eq!(error_chain(&e), "outer: middle: disk on fire");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn cli_parses_the_documented_commands() {
        let cli = Cli::try_parse_from(["tandem", "run", "--config", "/etc/tandem.toml"]).unwrap();
        assert!(
            matches!(cli.command, Command::Run { config } if config == Path::new("/etc/tandem.toml"))
        );
        let cli = Cli::try_parse_from(["tandem", "check-config", "-c", "x.toml"]).unwrap();
        assert!(matches!(cli.command, Command::CheckConfig { .. }));
        let cli = Cli::try_parse_from(["tandem", "print-example-config"]).unwrap();
        assert!(matches!(cli.command, Command::PrintExampleConfig));
        assert!(Cli::try_parse_from(["tandem", "run"]).is_err());
        let version = Cli::try_parse_from(["tandem", "--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
