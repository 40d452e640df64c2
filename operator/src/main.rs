//! `nsq-operator`: parses flags, then either prints/writes the CRDs (`crdgen`) or runs the
//! controllers behind leader election, serving `/metrics` and `/healthz`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use nsq_operator::admin::{HttpNsqAdmin, PodEndpoints};
use nsq_operator::controller::{self, Context};
use nsq_operator::leader::{self, Leadership, LeaseElector};
use nsq_operator::metrics::Metrics;
use nsq_operator::resources::DefaultImages;
use nsq_operator::telemetry::{self, LogFormat};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// Runs NSQ clusters, topics and channels on Kubernetes from NsqCluster, NsqTopic and
/// NsqChannel resources (API group nsq.rustnsq.dev/v1alpha1).
#[derive(Parser, Debug)]
#[command(name = "nsq-operator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CRDs as YAML, or write one file per CRD with --out-dir.
    Crdgen {
        /// Directory to write `<plural>.<group>.yaml` files into (e.g. `crds`).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE", value_name = "NS")]
    namespace: Option<String>,

    /// Address serving /metrics and /healthz.
    #[arg(
        long,
        env = "METRICS_ADDRESS",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    metrics_address: SocketAddr,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Log filter when RUST_LOG is unset (tracing EnvFilter syntax).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", value_name = "FILTER")]
    log_level: String,

    /// Compete for a Lease so that only one replica reconciles.
    #[arg(long, env = "LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    leader_elect: bool,

    /// Name of the leader-election Lease.
    #[arg(long, default_value = "nsq-operator", value_name = "NAME")]
    lease_name: String,

    /// Namespace of the Lease (default: POD_NAMESPACE, else the client's default namespace).
    #[arg(long, env = "POD_NAMESPACE", value_name = "NS")]
    lease_namespace: Option<String>,

    /// This replica's identity in the Lease (default: POD_NAME, else the hostname).
    #[arg(long, env = "POD_NAME", value_name = "ID")]
    identity: Option<String>,

    /// Seconds a leader's Lease stays valid without renewal.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    lease_duration: u64,

    /// Seconds between Lease renewals (and acquisition attempts).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    lease_renew_every: u64,

    /// Seconds between re-checks of every NsqTopic/NsqChannel against the nodes.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    resync_seconds: u64,

    /// Timeout of one call to an nsqd or nsqlookupd HTTP API, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    nsq_timeout: u64,

    /// Reconciles run at once per kind (0 = unlimited).
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: u16,

    /// nsqd image for clusters that set none.
    #[arg(long, env = "DEFAULT_NSQD_IMAGE", value_name = "IMAGE")]
    nsqd_image: Option<String>,

    /// nsqlookupd image for clusters that set none.
    #[arg(long, env = "DEFAULT_NSQLOOKUPD_IMAGE", value_name = "IMAGE")]
    nsqlookupd_image: Option<String>,

    /// `nsq` CLI image for the drain Jobs of clusters that set none (spec.nsqd.drain.image).
    #[arg(long, env = "DEFAULT_NSQ_IMAGE", value_name = "IMAGE")]
    nsq_image: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crdgen { out_dir: Some(dir) }) => {
            for path in nsq_operator::crdgen::write_all(&dir)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Some(Command::Crdgen { out_dir: None }) => {
            use std::io::Write;
            let yaml = nsq_operator::crdgen::render_all()?;
            match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                // `crdgen | head` closing the pipe early is not a failure.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        None => run(cli.run).await,
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_level);
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| hostname_or("nsq-operator"));

    let mut registry = Registry::default();
    let metrics = Metrics::default().register(&mut registry);
    let registry = Arc::new(registry);

    // One stop signal for everything: SIGTERM, or losing leadership.
    let (stop_tx, stop_rx) = watch::channel(false);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            termination().await;
            tracing::info!("termination requested");
            stop_tx.send_replace(true);
        });
    }
    let stopped = || controller::stopped(&stop_rx);

    let listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("binding {}", args.metrics_address))?;
    tracing::info!(address = %args.metrics_address, "serving /metrics and /healthz");
    let server = tokio::spawn(
        axum::serve(listener, nsq_operator::server::router(registry.clone()))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );

    let (lead_tx, mut lead_rx) = watch::channel(Leadership::Follower);
    let elector_task = if args.leader_elect {
        let ns = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let elector = LeaseElector::new(
            Api::<Lease>::namespaced(client.clone(), &ns),
            &args.lease_name,
            &identity,
            Duration::from_secs(args.lease_duration),
        );
        tracing::info!(lease = %args.lease_name, namespace = %ns, identity = %identity, "waiting for leadership");
        Some(tokio::spawn(elector.run(
            Duration::from_secs(args.lease_renew_every),
            lead_tx,
            stop_rx.clone(),
        )))
    } else {
        lead_tx.send_replace(Leadership::Leader);
        None
    };

    tokio::select! {
        r = leader::wait_for_leadership(&mut lead_rx) => r?,
        _ = stopped() => {
            return finish(server, elector_task).await;
        }
    }
    metrics.leader.set(1);
    {
        // Losing leadership stops the controllers and then the process.
        let stop_tx = stop_tx.clone();
        let mut lead_rx = lead_rx.clone();
        tokio::spawn(async move {
            if lead_rx.wait_for(|l| *l == Leadership::Lost).await.is_ok() {
                stop_tx.send_replace(true);
            }
        });
    }

    let defaults = DefaultImages::default();
    let images = DefaultImages {
        nsqd: args.nsqd_image.clone().unwrap_or(defaults.nsqd),
        lookupd: args.nsqlookupd_image.clone().unwrap_or(defaults.lookupd),
        cli: args.nsq_image.clone().unwrap_or(defaults.cli),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Reporter {
            controller: "nsq-operator".into(),
            instance: Some(identity.clone()),
        },
        metrics.clone(),
        Arc::new(HttpNsqAdmin::new(Duration::from_secs(args.nsq_timeout))),
        Arc::new(PodEndpoints::new(client)),
        images,
        Duration::from_secs(args.resync_seconds),
    ));
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        "starting controllers"
    );
    controller::run(
        ctx,
        args.namespace.clone(),
        stop_rx.clone(),
        args.concurrency,
    )
    .await;
    metrics.leader.set(0);
    let lost = *lead_rx.borrow() == Leadership::Lost;
    finish(server, elector_task).await?;
    if lost {
        anyhow::bail!("leadership lost; exiting so a fresh replica can compete");
    }
    Ok(())
}

async fn finish(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    elector: Option<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    if let Some(e) = elector {
        let _ = e.await;
    }
    server.await.context("metrics server task")??;
    tracing::info!("stopped");
    Ok(())
}

fn hostname_or(fallback: &str) -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}
