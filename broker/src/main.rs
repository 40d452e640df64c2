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
    let log_filter = nsqd::logging::init(&opts);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async move {
        let running = RunningNsqd::start(opts).await?;
        if let Some(handle) = log_filter {
            nsqd::logging::follow_log_level(&running.nsqd, handle);
        }
        wait_for_signal().await?;
        running.shutdown().await;
        Ok(())
    })
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
