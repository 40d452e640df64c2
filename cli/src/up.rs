//! `nsq up`: an nsqlookupd and an nsqd in one process, with local defaults, for
//! development — the nsqd registered with the lookupd, both advertising 127.0.0.1.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use nsqd::RunningNsqd;
use nsqlookupd::server::Server as Lookupd;

/// `nsq up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// directory for nsqd's queues and metadata (created if missing)
    #[arg(long, default_value = "./nsq-data", value_name = "DIR")]
    pub data_path: PathBuf,
    /// <addr>:<port> for nsqd's TCP clients
    #[arg(long, default_value = "127.0.0.1:4150", value_name = "ADDR")]
    pub tcp_address: String,
    /// <addr>:<port> for nsqd's HTTP API
    #[arg(long, default_value = "127.0.0.1:4151", value_name = "ADDR")]
    pub http_address: String,
    /// <addr>:<port> for nsqlookupd's TCP listener (where nsqd registers)
    #[arg(long, default_value = "127.0.0.1:4160", value_name = "ADDR")]
    pub lookupd_tcp_address: String,
    /// <addr>:<port> for nsqlookupd's HTTP API (what consumers query)
    #[arg(long, default_value = "127.0.0.1:4161", value_name = "ADDR")]
    pub lookupd_http_address: String,
    /// address both daemons advertise to clients
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub broadcast_address: String,
    /// more nsqd flags, after `--` (e.g. `nsq up -- --mem-queue-size 100000`)
    #[arg(last = true, value_name = "NSQD FLAGS")]
    pub nsqd_flags: Vec<String>,
}

/// Why `up` could not start.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("creating data path {path}: {source}")]
    DataPath {
        path: String,
        source: std::io::Error,
    },
    #[error("nsqlookupd: {0}")]
    Lookupd(#[from] nsqlookupd::server::BindError),
    #[error("nsqd options: {0}")]
    NsqdOptions(#[from] nsqd::options::OptionsError),
    #[error("nsqd: {0}")]
    Nsqd(#[from] nsqd::server::StartError),
}

/// Both daemons, running.
pub struct Up {
    pub lookupd: Lookupd,
    pub nsqd: RunningNsqd,
}

impl Up {
    /// Starts the lookupd, then an nsqd registered with it.
    pub async fn start(args: &UpArgs) -> Result<Up, UpError> {
        std::fs::create_dir_all(&args.data_path).map_err(|source| UpError::DataPath {
            path: args.data_path.display().to_string(),
            source,
        })?;
        let lookupd = Lookupd::bind(nsqlookupd::options::Options {
            tcp_address: args.lookupd_tcp_address.clone(),
            http_address: args.lookupd_http_address.clone(),
            broadcast_address: args.broadcast_address.clone(),
            ..Default::default()
        })
        .await?;
        let opts = match nsqd::Options::parse_from_args(nsqd_argv(args, lookupd.tcp_addr())) {
            Ok(opts) => opts,
            Err(e) => {
                lookupd.shutdown().await;
                return Err(e.into());
            }
        };
        let nsqd = match RunningNsqd::start(opts).await {
            Ok(n) => n,
            Err(e) => {
                lookupd.shutdown().await;
                return Err(e.into());
            }
        };
        Ok(Up { lookupd, nsqd })
    }

    /// Where everything listens, one line each.
    pub fn describe(&self) -> String {
        let nsqd_http = self
            .nsqd
            .http_addr
            .map_or_else(|| "disabled".to_string(), |a| a.to_string());
        let data = self.nsqd.nsqd.opts.effective_data_path();
        format!(
            "nsqd        TCP  {}   (producers and consumers)\n\
             nsqd        HTTP {}   (/pub, /stats, /ping)\n\
             nsqlookupd  TCP  {}   (nsqd registers here)\n\
             nsqlookupd  HTTP {}   (/lookup, /topics, /nodes)\n\
             data        {}",
            self.nsqd.tcp_addr,
            nsqd_http,
            self.lookupd.tcp_addr(),
            self.lookupd.http_addr(),
            data.display()
        )
    }

    /// Stops nsqd first (it persists its queues and unregisters), then the lookupd.
    pub async fn shutdown(self) {
        self.nsqd.shutdown().await;
        self.lookupd.shutdown().await;
    }
}

/// nsqd's command line: our settings first, so flags after `--` can override them.
fn nsqd_argv(args: &UpArgs, lookupd_tcp: SocketAddr) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        "nsqd".into(),
        format!("--tcp-address={}", args.tcp_address).into(),
        format!("--http-address={}", args.http_address).into(),
        format!("--broadcast-address={}", args.broadcast_address).into(),
        format!("--lookupd-tcp-address={lookupd_tcp}").into(),
        "--data-path".into(),
        args.data_path.clone().into_os_string(),
    ];
    argv.extend(args.nsqd_flags.iter().map(OsString::from));
    argv
}
