//! nsqd's command-line flags and `--config` TOML file, with nsqd's names and defaults.
//!
//! Precedence matches nsqd: an explicit command-line flag beats the config file, which
//! beats the default. Go-style single-dash flags (`-mem-queue-size=0`) are accepted too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use nsq_protocol::duration;

fn go_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

fn percentile(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "invalid E2E processing latency percentile: {s} (must be in (0, 1.0])"
        )),
    }
}

/// All nsqd settings, resolved.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nsqd",
    about = "nsqd receives, queues, and delivers messages to clients (a Rust re-implementation of NSQ v1.3.0)",
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Options {
    /// path to config file
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// print version string
    #[arg(long)]
    pub version: bool,

    /// set log level: debug, info, warn, error, or fatal
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// log message prefix
    #[arg(long, default_value = "[nsqd] ", value_name = "PREFIX")]
    pub log_prefix: String,

    /// log format: text (default) or json (one object per line, for log collectors)
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub log_format: String,

    /// [deprecated] has no effect, use --log-level
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub verbose: Option<bool>,

    /// unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)
    #[arg(long, value_name = "ID")]
    pub node_id: Option<i64>,

    /// <addr>:<port> to listen on for TCP clients
    #[arg(long, default_value = "0.0.0.0:4150", value_name = "ADDR")]
    pub tcp_address: String,

    /// <addr>:<port> to listen on for HTTP clients (empty disables HTTP)
    #[arg(long, default_value = "0.0.0.0:4151", value_name = "ADDR")]
    pub http_address: String,

    /// address that will be registered with lookupd (defaults to the OS hostname)
    #[arg(long, value_name = "HOST")]
    pub broadcast_address: Option<String>,

    /// TCP port that will be registered with lookupd (defaults to the TCP port that this nsqd is listening on)
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub broadcast_tcp_port: u16,

    /// HTTP port that will be registered with lookupd (defaults to the HTTP port that this nsqd is listening on)
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub broadcast_http_port: u16,

    /// lookupd TCP address (may be given multiple times)
    #[arg(long = "lookupd-tcp-address", value_name = "ADDR", action = ArgAction::Append)]
    pub lookupd_tcp_addresses: Vec<String>,

    /// path to store disk-backed messages (defaults to the working directory)
    #[arg(long, value_name = "DIR")]
    pub data_path: Option<PathBuf>,

    /// number of messages to keep in memory (per topic/channel)
    #[arg(long, default_value_t = 10000, value_name = "N")]
    pub mem_queue_size: i64,

    /// number of bytes per diskqueue file before rolling
    #[arg(long, default_value_t = 104857600, value_name = "BYTES")]
    pub max_bytes_per_file: i64,

    /// number of messages per diskqueue fsync
    #[arg(long, default_value_t = 2500, value_name = "N")]
    pub sync_every: i64,

    /// duration of time per diskqueue fsync
    #[arg(long, default_value = "2s", value_parser = go_duration, value_name = "DURATION")]
    pub sync_timeout: Duration,

    /// max concurrency for checking in-flight and deferred message timeouts (accepted for compatibility: this nsqd checks every channel every 25ms)
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub queue_scan_worker_pool_max: i64,

    /// number of channels to check per cycle (every 100ms) for in-flight and deferred timeouts (accepted for compatibility: this nsqd checks every channel every 25ms)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub queue_scan_selection_count: i64,

    /// default duration to wait before auto-requeing a message
    #[arg(long, default_value = "1m0s", value_parser = go_duration, value_name = "DURATION")]
    pub msg_timeout: Duration,

    /// maximum duration before a message will timeout
    #[arg(long, default_value = "15m0s", value_parser = go_duration, value_name = "DURATION")]
    pub max_msg_timeout: Duration,

    /// maximum size of a single message in bytes
    #[arg(long, default_value_t = 1048576, value_name = "BYTES")]
    pub max_msg_size: i64,

    /// maximum requeuing timeout for a message
    #[arg(long, default_value = "1h0m0s", value_parser = go_duration, value_name = "DURATION")]
    pub max_req_timeout: Duration,

    /// maximum size of a single command body
    #[arg(long, default_value_t = 5242880, value_name = "BYTES")]
    pub max_body_size: i64,

    /// maximum client configurable duration of time between client heartbeats
    #[arg(long, default_value = "1m0s", value_parser = go_duration, value_name = "DURATION")]
    pub max_heartbeat_interval: Duration,

    /// maximum RDY count for a client
    #[arg(long, default_value_t = 2500, value_name = "N")]
    pub max_rdy_count: i64,

    /// maximum client configurable size (in bytes) for a client output buffer
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub max_output_buffer_size: i64,

    /// maximum client configurable duration of time between flushing to a client
    #[arg(long, default_value = "30s", value_parser = go_duration, value_name = "DURATION")]
    pub max_output_buffer_timeout: Duration,

    /// minimum client configurable duration of time between flushing to a client
    #[arg(long, default_value = "25ms", value_parser = go_duration, value_name = "DURATION")]
    pub min_output_buffer_timeout: Duration,

    /// default duration of time between flushing data to clients
    #[arg(long, default_value = "250ms", value_parser = go_duration, value_name = "DURATION")]
    pub output_buffer_timeout: Duration,

    /// maximum channel consumer connection count per nsqd instance (default 0, i.e., unlimited)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_channel_consumers: i64,

    /// message processing time percentiles (as float (0, 1.0]) to track (can be specified multiple times or comma separated '1.0,0.99,0.95', default none)
    #[arg(long = "e2e-processing-latency-percentile", value_name = "FLOAT", value_delimiter = ',', action = ArgAction::Append, value_parser = percentile)]
    pub e2e_processing_latency_percentiles: Vec<f64>,

    /// calculate end to end latency quantiles for this duration of time (ie: 60s would only show quantile calculations from the past 60 seconds)
    #[arg(long, default_value = "10m0s", value_parser = go_duration, value_name = "DURATION")]
    pub e2e_processing_latency_window_time: Duration,

    /// UDP <addr>:<port> of a statsd daemon for pushing stats
    #[arg(long, value_name = "ADDR")]
    pub statsd_address: Option<String>,

    /// duration between pushing to statsd
    #[arg(long, default_value = "1m0s", value_parser = go_duration, value_name = "DURATION")]
    pub statsd_interval: Duration,

    /// toggle sending memory and GC stats to statsd
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub statsd_mem_stats: bool,

    /// prefix used for keys sent to statsd (%s for host replacement)
    #[arg(long, default_value = "nsq.%s", value_name = "PREFIX")]
    pub statsd_prefix: String,

    /// the size in bytes of statsd UDP packets
    #[arg(long, default_value_t = 508, value_name = "BYTES")]
    pub statsd_udp_packet_size: i64,

    /// don't send ephemeral topics/channels to statsd
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub statsd_exclude_ephemeral: bool,

    /// enable deflate feature negotiation (client compression)
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub deflate: bool,

    /// max deflate compression level a client can negotiate (> values == > nsqd CPU usage)
    #[arg(long, default_value_t = 6, value_name = "LEVEL")]
    pub max_deflate_level: i64,

    /// enable snappy feature negotiation (client compression)
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub snappy: bool,
}

/// Options that cannot start an nsqd.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("{0}")]
    Clap(#[from] clap::Error),
    #[error("failed to load config file {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("--node-id {0} must be >= 0 and < 1024")]
    NodeId(i64),
    #[error("--max-deflate-level {0} must be in [1,9]")]
    DeflateLevel(i64),
    #[error("--log-level {0:?} is not one of debug, info, warn, error, fatal")]
    LogLevel(String),
    #[error("--log-format {0:?} is not one of text, json")]
    LogFormat(String),
}

/// Config-file keys whose flag name differs from the key (`cfg` tags in nsqd).
const CONFIG_ALIASES: &[(&str, &str)] = &[
    ("id", "node-id"),
    ("nsqlookupd_tcp_addresses", "lookupd-tcp-address"),
    (
        "e2e_processing_latency_percentiles",
        "e2e-processing-latency-percentile",
    ),
];

impl Options {
    /// Parses command-line arguments (program name first) and the `--config` file.
    pub fn parse_from_args<I, T>(args: I) -> Result<Options, OptionsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).map(go_flag).collect();
        let cli = Options::try_parse_from(&args)?;
        let Some(path) = cli.config.clone() else {
            return cli.validated();
        };
        let config_args = config_to_args(&path, &args)?;
        let mut merged = Vec::with_capacity(args.len() + config_args.len());
        merged.push(args.first().cloned().unwrap_or_else(|| "nsqd".into()));
        merged.extend(config_args);
        merged.extend(args.into_iter().skip(1));
        Options::try_parse_from(merged)?.validated()
    }

    fn validated(mut self) -> Result<Options, OptionsError> {
        if let Some(id) = self.node_id {
            if !(0..1024).contains(&id) {
                return Err(OptionsError::NodeId(id));
            }
        }
        if !(1..=9).contains(&self.max_deflate_level) {
            return Err(OptionsError::DeflateLevel(self.max_deflate_level));
        }
        if log_level_number(&self.log_level).is_none() {
            return Err(OptionsError::LogLevel(self.log_level.clone()));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(OptionsError::LogFormat(self.log_format.clone()));
        }
        // nsqd's flag type keeps the percentiles sorted, largest first, without repeats.
        let mut p = std::mem::take(&mut self.e2e_processing_latency_percentiles);
        p.sort_by(|a, b| b.total_cmp(a));
        p.dedup();
        self.e2e_processing_latency_percentiles = p;
        Ok(self)
    }

    /// The node id used in message IDs: the flag, else crc32(md5(hostname)) % 1024 in
    /// spirit (a stable hash of the hostname).
    pub fn effective_node_id(&self) -> u16 {
        match self.node_id {
            Some(id) => id as u16,
            None => {
                let host = hostname();
                let mut h: u32 = 2166136261;
                for b in host.bytes() {
                    h = (h ^ u32::from(b)).wrapping_mul(16777619);
                }
                (h % 1024) as u16
            }
        }
    }

    /// The end-to-end latency settings, when any percentile is configured.
    pub fn e2e_config(&self) -> Option<crate::quantile::E2eConfig> {
        (!self.e2e_processing_latency_percentiles.is_empty()).then(|| crate::quantile::E2eConfig {
            percentiles: self.e2e_processing_latency_percentiles.clone(),
            window: self.e2e_processing_latency_window_time,
        })
    }

    /// `--broadcast-address`, defaulting to the OS hostname.
    pub fn effective_broadcast_address(&self) -> String {
        self.broadcast_address.clone().unwrap_or_else(hostname)
    }

    /// `--data-path`, defaulting to the working directory.
    pub fn effective_data_path(&self) -> PathBuf {
        self.data_path
            .clone()
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
    }

    /// Options as nsqd would have them with no flags at all (tests start from here).
    pub fn defaults() -> Options {
        // The empty command line always parses: every field has a default.
        Options::try_parse_from(["nsqd"]).unwrap_or_else(|e| panic!("defaults: {e}"))
    }
}

/// nsqd's numeric log levels (1 debug .. 5 fatal), as `/config/log_level` reports them.
pub fn log_level_number(level: &str) -> Option<i64> {
    match level.to_ascii_lowercase().as_str() {
        "debug" => Some(1),
        "info" => Some(2),
        "warn" => Some(3),
        "error" => Some(4),
        "fatal" => Some(5),
        _ => None,
    }
}

/// The machine's hostname, as Go's `os.Hostname()` reports it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Rewrites Go's single-dash long flags (`-mem-queue-size=0`) to `--mem-queue-size=0`.
fn go_flag(arg: OsString) -> OsString {
    match arg.to_str() {
        Some(s) if s.len() > 2 && s.starts_with('-') && !s.starts_with("--") => {
            format!("-{s}").into()
        }
        _ => arg,
    }
}

/// Turns the TOML config file into flags, skipping any flag the command line sets.
fn config_to_args(path: &PathBuf, cli: &[OsString]) -> Result<Vec<OsString>, OptionsError> {
    let err = |reason: String| OptionsError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    let on_cli = |flag: &str| {
        let long = format!("--{flag}");
        let long_eq = format!("--{flag}=");
        cli.iter().skip(1).any(|a| {
            a.to_str()
                .is_some_and(|s| s == long || s.starts_with(&long_eq))
        })
    };
    let known: Vec<String> = <Options as clap::CommandFactory>::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = CONFIG_ALIASES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| f.to_string())
            .unwrap_or_else(|| key.replace('_', "-"));
        if flag == "config" || !known.contains(&flag) {
            tracing::warn!(key = %key, "ignoring unknown config file option");
            continue;
        }
        if on_cli(&flag) {
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items,
            other => vec![other],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(err(format!("unsupported value for {key}: {other}"))),
            };
            out.push(format!("--{flag}={text}").into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_nsqd() {
        let o = Options::defaults();
        assert_eq!(o.tcp_address, "0.0.0.0:4150");
        assert_eq!(o.http_address, "0.0.0.0:4151");
        assert_eq!(o.mem_queue_size, 10000);
        assert_eq!(o.msg_timeout, Duration::from_secs(60));
        assert_eq!(o.max_msg_timeout, Duration::from_secs(900));
        assert_eq!(o.max_req_timeout, Duration::from_secs(3600));
        assert_eq!(o.max_msg_size, 1048576);
        assert_eq!(o.max_body_size, 5242880);
        assert_eq!(o.max_rdy_count, 2500);
        assert_eq!(o.output_buffer_timeout, Duration::from_millis(250));
        assert_eq!(o.min_output_buffer_timeout, Duration::from_millis(25));
        assert!(o.snappy && o.deflate);
        assert_eq!(o.max_deflate_level, 6);
    }

    #[test]
    fn go_style_flags_and_bools() {
        let o = Options::parse_from_args([
            "nsqd",
            "-mem-queue-size=5",
            "--snappy=false",
            "--deflate",
            "--msg-timeout",
            "2s",
            "--lookupd-tcp-address=a:1",
            "--lookupd-tcp-address=b:2",
        ])
        .unwrap();
        assert_eq!(o.mem_queue_size, 5);
        assert!(!o.snappy);
        assert!(o.deflate);
        assert_eq!(o.msg_timeout, Duration::from_secs(2));
        assert_eq!(o.lookupd_tcp_addresses, vec!["a:1", "b:2"]);
    }

    #[test]
    fn config_file_below_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsqd.cfg");
        std::fs::write(
            &path,
            "mem_queue_size = 7\nmax_rdy_count = 9\nmsg_timeout = \"3s\"\nid = 12\n\
             nsqlookupd_tcp_addresses = [\"x:1\", \"y:2\"]\nsnappy = false\n",
        )
        .unwrap();
        let o = Options::parse_from_args([
            "nsqd",
            "--config",
            path.to_str().unwrap(),
            "--max-rdy-count=100",
        ])
        .unwrap();
        assert_eq!(o.mem_queue_size, 7);
        assert_eq!(o.max_rdy_count, 100);
        assert_eq!(o.msg_timeout, Duration::from_secs(3));
        assert_eq!(o.node_id, Some(12));
        assert_eq!(o.lookupd_tcp_addresses, vec!["x:1", "y:2"]);
        assert!(!o.snappy);
    }

    #[test]
    fn e2e_percentiles_sorted_descending() {
        let o = Options::parse_from_args([
            "nsqd",
            "--e2e-processing-latency-percentile=0.5,1.0",
            "--e2e-processing-latency-percentile=0.99",
        ])
        .unwrap();
        assert_eq!(o.e2e_processing_latency_percentiles, vec![1.0, 0.99, 0.5]);
        assert!(
            Options::parse_from_args(["nsqd", "--e2e-processing-latency-percentile=0"]).is_err()
        );
        assert!(
            Options::parse_from_args(["nsqd", "--e2e-processing-latency-percentile=1.5"]).is_err()
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Options::parse_from_args(["nsqd", "--node-id=1024"]).is_err());
        assert!(Options::parse_from_args(["nsqd", "--max-deflate-level=0"]).is_err());
        assert!(Options::parse_from_args(["nsqd", "--msg-timeout=5"]).is_err());
        assert!(Options::parse_from_args(["nsqd", "--config=/nonexistent"]).is_err());
    }
}
