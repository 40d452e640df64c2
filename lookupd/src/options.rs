//! Command-line flags and the `--config` TOML file (conformance §5.3), resolved with
//! nsqlookupd's precedence: a flag given on the command line, else the config file, else
//! the default.
//!
//! Flags are spelled as Go's `flag` package accepts them: `--name value`, `--name=value`,
//! `-name value`; boolean flags take an optional `=true|false`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use nsq_protocol::duration;

/// Everything the daemon needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub log_level: LogLevel,
    pub log_prefix: String,
    pub log_format: LogFormat,
    pub tcp_address: String,
    pub http_address: String,
    pub broadcast_address: String,
    pub inactive_producer_timeout: Duration,
    pub tombstone_lifetime: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_level: LogLevel::Info,
            log_prefix: DEFAULT_LOG_PREFIX.to_string(),
            log_format: LogFormat::Text,
            tcp_address: DEFAULT_TCP_ADDRESS.to_string(),
            http_address: DEFAULT_HTTP_ADDRESS.to_string(),
            broadcast_address: os_hostname(),
            inactive_producer_timeout: DEFAULT_INACTIVE_PRODUCER_TIMEOUT,
            tombstone_lifetime: DEFAULT_TOMBSTONE_LIFETIME,
        }
    }
}

pub const DEFAULT_LOG_PREFIX: &str = "[nsqlookupd] ";
pub const DEFAULT_TCP_ADDRESS: &str = "0.0.0.0:4160";
pub const DEFAULT_HTTP_ADDRESS: &str = "0.0.0.0:4161";
pub const DEFAULT_INACTIVE_PRODUCER_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_TOMBSTONE_LIFETIME: Duration = Duration::from_secs(45);

/// What `--version` prints.
pub fn version_string() -> String {
    format!("nsqlookupd v{} (built w/rust)", nsq_protocol::NSQ_VERSION)
}

/// nsqlookupd's `--log-level` values (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" => Ok(LogLevel::Fatal),
            _ => Err(format!(
                "invalid log level '{s}' (debug, info, warn, error, fatal)"
            )),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        })
    }
}

/// `--log-format`: nsqlookupd's own line layout, or one JSON object per line for log
/// collectors (not an nsqlookupd flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("invalid log format '{s}' (text, json)")),
        }
    }
}

/// The command line, with the help texts nsqlookupd prints.
#[derive(Parser, Debug)]
#[command(
    name = "nsqlookupd",
    about = "nsqlookupd: the NSQ discovery daemon",
    disable_version_flag = true,
    args_override_self = true,
    override_usage = "nsqlookupd [OPTIONS]"
)]
struct Cli {
    /// path to config file
    #[arg(long, value_name = "string")]
    config: Option<PathBuf>,

    /// print version string
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = parse_go_bool,
          value_name = "bool", hide_default_value = true)]
    version: bool,

    /// set log verbosity: debug, info, warn, error, or fatal
    #[arg(long, default_value = "info", value_parser = LogLevel::from_str, value_name = "value")]
    log_level: LogLevel,

    /// log message prefix
    #[arg(long, default_value = DEFAULT_LOG_PREFIX, value_name = "string")]
    log_prefix: String,

    /// log output format: text, or json (one object per line, for log collectors)
    #[arg(long, default_value = "text", value_parser = LogFormat::from_str, value_name = "string")]
    log_format: LogFormat,

    /// [deprecated] has no effect, use --log-level
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = parse_go_bool,
          value_name = "bool", hide_default_value = true)]
    verbose: bool,

    /// <addr>:<port> to listen on for TCP clients
    #[arg(long, default_value = DEFAULT_TCP_ADDRESS, value_name = "string")]
    tcp_address: String,

    /// <addr>:<port> to listen on for HTTP clients
    #[arg(long, default_value = DEFAULT_HTTP_ADDRESS, value_name = "string")]
    http_address: String,

    /// address of this lookupd node, (default to the OS hostname)
    #[arg(long, default_value_t = os_hostname(), value_name = "string")]
    broadcast_address: String,

    /// duration of time a producer will remain in the active list since its last ping
    #[arg(long, default_value = "5m0s", value_parser = parse_duration, value_name = "duration")]
    inactive_producer_timeout: Duration,

    /// duration of time a producer will remain tombstoned if registration remains
    #[arg(long, default_value = "45s", value_parser = parse_duration, value_name = "duration")]
    tombstone_lifetime: Duration,
}

/// Long flag names, for accepting Go's single-dash spelling.
const FLAG_NAMES: &[&str] = &[
    "config",
    "version",
    "log-level",
    "log-prefix",
    "log-format",
    "verbose",
    "tcp-address",
    "http-address",
    "broadcast-address",
    "inactive-producer-timeout",
    "tombstone-lifetime",
    "help",
];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `--version`: print [`version_string`] and exit 0.
    Version,
    Run(Options),
}

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A usage error, or `--help` (clap prints it and picks the exit code).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error("failed to load config file {path} - {reason}")]
    ConfigFile { path: String, reason: String },
    #[error("failed parsing log_level {0}")]
    ConfigLogLevel(String),
    #[error("option resolution failed to coerce {value} for {key} - {reason}")]
    ConfigValue {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// Parses `args` (program name first) and the config file it names.
pub fn parse<I, T>(args: I) -> Result<Invocation, OptionsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = go_style_args(args.into_iter().map(Into::into));
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    if cli.version {
        return Ok(Invocation::Version);
    }
    let config = match &cli.config {
        Some(path) if !path.as_os_str().is_empty() => load_config(path)?,
        _ => toml::Table::new(),
    };
    resolve(cli, &matches, &config).map(Invocation::Run)
}

/// Rewrites Go's `-flag` spelling of our long flags to `--flag`.
fn go_style_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    args.enumerate()
        .map(|(i, arg)| {
            let Some(s) = arg.to_str() else { return arg };
            if i == 0 || s.starts_with("--") || !s.starts_with('-') {
                return arg;
            }
            let name = s[1..].split('=').next().unwrap_or_default();
            if FLAG_NAMES.contains(&name) {
                OsString::from(format!("-{s}"))
            } else {
                arg
            }
        })
        .collect()
}

fn load_config(path: &std::path::Path) -> Result<toml::Table, OptionsError> {
    let err = |reason: String| OptionsError::ConfigFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    text.parse::<toml::Table>().map_err(|e| err(e.to_string()))
}

/// Applies the precedence rule field by field.
fn resolve(cli: Cli, m: &ArgMatches, cfg: &toml::Table) -> Result<Options, OptionsError> {
    let from_cli = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let mut opts = Options {
        log_level: cli.log_level,
        log_prefix: cli.log_prefix,
        log_format: cli.log_format,
        tcp_address: cli.tcp_address,
        http_address: cli.http_address,
        broadcast_address: cli.broadcast_address,
        inactive_producer_timeout: cli.inactive_producer_timeout,
        tombstone_lifetime: cli.tombstone_lifetime,
    };
    if !from_cli("log_level") {
        if let Some(v) = cfg.get("log_level") {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            opts.log_level = text
                .parse()
                .map_err(|_| OptionsError::ConfigLogLevel(text.clone()))?;
        }
    }
    if !from_cli("log_format") {
        if let Some(v) = cfg.get("log_format") {
            let text = config_string("log_format", v)?;
            opts.log_format = text.parse().map_err(|reason| OptionsError::ConfigValue {
                key: "log_format",
                value: text.clone(),
                reason,
            })?;
        }
    }
    let strings: [(&'static str, &mut String); 4] = [
        ("log_prefix", &mut opts.log_prefix),
        ("tcp_address", &mut opts.tcp_address),
        ("http_address", &mut opts.http_address),
        ("broadcast_address", &mut opts.broadcast_address),
    ];
    for (key, field) in strings {
        if from_cli(key) {
            continue;
        }
        if let Some(v) = cfg.get(key) {
            *field = config_string(key, v)?;
        }
    }
    let durations: [(&'static str, &mut Duration); 2] = [
        (
            "inactive_producer_timeout",
            &mut opts.inactive_producer_timeout,
        ),
        ("tombstone_lifetime", &mut opts.tombstone_lifetime),
    ];
    for (key, field) in durations {
        if from_cli(key) {
            continue;
        }
        if let Some(v) = cfg.get(key) {
            *field = config_duration(key, v)?;
        }
    }
    Ok(opts)
}

fn config_string(key: &'static str, v: &toml::Value) -> Result<String, OptionsError> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        other => Err(OptionsError::ConfigValue {
            key,
            value: other.to_string(),
            reason: "not a string".to_string(),
        }),
    }
}

/// Go's option resolution reads a duration from a string (`"45s"`) or from an integer
/// taken as milliseconds.
fn config_duration(key: &'static str, v: &toml::Value) -> Result<Duration, OptionsError> {
    let bad = |reason: String| OptionsError::ConfigValue {
        key,
        value: v.to_string(),
        reason,
    };
    match v {
        toml::Value::String(s) => duration::parse(s).map_err(|e| bad(e.to_string())),
        toml::Value::Integer(ms) => u64::try_from(*ms)
            .map(Duration::from_millis)
            .map_err(|_| bad("negative duration".to_string())),
        _ => Err(bad("not a duration".to_string())),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("parse error: invalid boolean value {s:?}")),
    }
}

/// The OS hostname (nsqlookupd's default `--broadcast-address` and its IDENTIFY reply).
pub fn os_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        let mut all = vec!["nsqlookupd"];
        all.extend_from_slice(args);
        match parse(all) {
            Ok(Invocation::Run(o)) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert_eq!(o.tcp_address, "0.0.0.0:4160");
        assert_eq!(o.http_address, "0.0.0.0:4161");
        assert_eq!(o.broadcast_address, os_hostname());
        assert_eq!(o.inactive_producer_timeout, Duration::from_secs(300));
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(45));
        assert_eq!(o.log_level, LogLevel::Info);
        assert_eq!(o.log_prefix, "[nsqlookupd] ");
        assert_eq!(o.log_format, LogFormat::Text);
    }

    #[test]
    fn log_format_flag_and_config() {
        assert_eq!(run(&["--log-format=json"]).log_format, LogFormat::Json);
        assert_eq!(run(&["-log-format", "text"]).log_format, LogFormat::Text);
        assert!(parse(["x", "--log-format", "xml"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookupd.cfg");
        std::fs::write(&path, "log_format = \"json\"\n").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(run(&["--config", p]).log_format, LogFormat::Json);
        assert_eq!(
            run(&["--config", p, "--log-format", "text"]).log_format,
            LogFormat::Text
        );
        std::fs::write(&path, "log_format = \"xml\"\n").unwrap();
        assert!(matches!(
            parse(["x", "--config", p]),
            Err(OptionsError::ConfigValue {
                key: "log_format",
                ..
            })
        ));
    }

    #[test]
    fn go_spellings() {
        let o = run(&[
            "-tcp-address=127.0.0.1:1",
            "--http-address",
            "127.0.0.1:2",
            "-tombstone-lifetime",
            "1m30s",
            "--log-level=WARN",
            "-verbose",
            "--verbose=false",
        ]);
        assert_eq!(o.tcp_address, "127.0.0.1:1");
        assert_eq!(o.http_address, "127.0.0.1:2");
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(90));
        assert_eq!(o.log_level, LogLevel::Warn);
        assert_eq!(parse(["x", "-version"]).unwrap(), Invocation::Version);
        assert_eq!(parse(["x", "--version=true"]).unwrap(), Invocation::Version);
        assert!(matches!(
            parse(["x", "--version=false"]).unwrap(),
            Invocation::Run(_)
        ));
        assert!(parse(["x", "--tombstone-lifetime", "45"]).is_err());
        assert!(parse(["x", "--log-level", "loud"]).is_err());
        assert!(parse(["x", "--no-such-flag"]).is_err());
    }

    #[test]
    fn config_file_sits_between_flags_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookupd.cfg");
        std::fs::write(
            &path,
            "tcp_address = \"127.0.0.1:7\"\nhttp_address = \"127.0.0.1:8\"\n\
             tombstone_lifetime = \"10s\"\ninactive_producer_timeout = 1500\n\
             log_level = \"debug\"\nunknown_key = 1\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let o = run(&["--config", p, "--http-address", "127.0.0.1:9"]);
        assert_eq!(o.tcp_address, "127.0.0.1:7");
        assert_eq!(o.http_address, "127.0.0.1:9");
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(10));
        assert_eq!(o.inactive_producer_timeout, Duration::from_millis(1500));
        assert_eq!(o.log_level, LogLevel::Debug);

        std::fs::write(&path, "tombstone_lifetime = \"soon\"\n").unwrap();
        assert!(matches!(
            parse(["x", "--config", p]),
            Err(OptionsError::ConfigValue { .. })
        ));
        std::fs::write(&path, "log_level = \"loud\"\n").unwrap();
        assert!(matches!(
            parse(["x", "--config", p]),
            Err(OptionsError::ConfigLogLevel(_))
        ));
        std::fs::write(&path, "not toml [").unwrap();
        assert!(matches!(
            parse(["x", "--config", p]),
            Err(OptionsError::ConfigFile { .. })
        ));
        assert!(matches!(
            parse(["x", "--config", "/nonexistent/lookupd.cfg"]),
            Err(OptionsError::ConfigFile { .. })
        ));
    }
}
