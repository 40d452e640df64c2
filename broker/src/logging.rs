//! nsqd's log output on stderr: `--log-format text|json`, filtered by `--log-level`,
//! and re-filtered live when `PUT /config/log_level` changes [`Nsqd::log_level`].
//!
//! `RUST_LOG`, when set, replaces the initial `--log-level` filter (for per-module
//! directives while debugging); a later `PUT /config/log_level` replaces it in turn.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::nsqd::Nsqd;
use crate::options::Options;

/// Changes the installed subscriber's filter.
pub struct LogFilterHandle(reload::Handle<EnvFilter, Registry>);

/// The tracing directive for one of nsqd's level names (`fatal` keeps errors: the
/// only fatal events are the errors that stop the process).
pub fn directive(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warn" => "warn",
        "error" | "fatal" => "error",
        _ => "info",
    }
}

/// Installs the global subscriber (call once, from the binary). `None` if one was
/// already installed.
pub fn init(opts: &Options) -> Option<LogFilterHandle> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directive(&opts.log_level)));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if opts.log_format == "json" {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    installed.ok().map(|()| LogFilterHandle(handle))
}

/// Applies every later change of `nsqd.log_level` to the filter, until the node is
/// dropped. Call inside the runtime.
pub fn follow_log_level(nsqd: &Nsqd, handle: LogFilterHandle) {
    let mut level = nsqd.log_level.subscribe();
    // A change made before this subscription (the HTTP API is already up) counts too.
    if *level.borrow() != nsqd.opts.log_level.to_ascii_lowercase() {
        level.mark_changed();
    }
    tokio::spawn(async move {
        while level.changed().await.is_ok() {
            let directive = directive(&level.borrow_and_update());
            if let Err(e) = handle.0.reload(EnvFilter::new(directive)) {
                tracing::error!(error = %e, "failed to change the log level");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::directive;

    #[test]
    fn nsqd_levels_map_to_directives() {
        assert_eq!(directive("DEBUG"), "debug");
        assert_eq!(directive("info"), "info");
        assert_eq!(directive("Warn"), "warn");
        assert_eq!(directive("error"), "error");
        assert_eq!(directive("fatal"), "error");
    }
}
