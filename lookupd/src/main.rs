//! The `nsqlookupd` binary: parse options, serve until SIGINT/SIGTERM, exit 0.

use std::process::ExitCode;

use nsqlookupd::options::{self, Invocation, OptionsError, DEFAULT_LOG_PREFIX};
use nsqlookupd::{logging, server, Server};

fn main() -> ExitCode {
    let opts = match options::parse(std::env::args_os()) {
        Ok(Invocation::Run(opts)) => opts,
        Ok(Invocation::Version) => {
            println!("{}", options::version_string());
            return ExitCode::SUCCESS;
        }
        Err(OptionsError::Usage(e)) => e.exit(),
        Err(e) => {
            logging::fatal(DEFAULT_LOG_PREFIX, &e.to_string());
            return ExitCode::FAILURE;
        }
    };
    logging::init(opts.log_level, &opts.log_prefix, opts.log_format);
    let prefix = opts.log_prefix.clone();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::fatal(&prefix, &format!("failed to start runtime - {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut signals = match server::ShutdownSignal::install() {
            Ok(signals) => signals,
            Err(e) => {
                logging::fatal(&prefix, &format!("failed to watch signals - {e}"));
                return ExitCode::FAILURE;
            }
        };
        let server = match Server::bind(opts).await {
            Ok(server) => server,
            Err(e) => {
                logging::fatal(&prefix, &format!("failed to instantiate nsqlookupd - {e}"));
                return ExitCode::FAILURE;
            }
        };
        signals.recv().await;
        if tokio::time::timeout(server::SHUTDOWN_GRACE, server.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown took longer than {:?}", server::SHUTDOWN_GRACE);
        }
        ExitCode::SUCCESS
    })
}
