//! `nsqd` binary: parse options, start the node, stop cleanly on SIGINT/SIGTERM.

use anyhow::Context;
use nsqd::{Options, RunningNsqd};

fn main() -> anyhow::Result<()> {
    let opts = match Options::parse_from_args(std::env::args_os()) {
        Ok(o) => o,
        Err(nsqd::options::OptionsError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("nsqd: {e}");
            std::process::exit(1);
        }
    };
    if opts.version {
        println!("nsqd v{} (built w/rust)", nsq_protocol::NSQ_VERSION);
        return Ok(());
    }
    init_logging(&opts);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async move {
        let running = RunningNsqd::start(opts).await?;
        wait_for_signal().await?;
        running.shutdown().await;
        Ok(())
    })
}

fn init_logging(opts: &Options) {
    let level = match opts.log_level.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warn" => "warn",
        "error" | "fatal" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if opts.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
    Ok(())
}
