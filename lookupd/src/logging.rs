//! Log output on stderr, filtered by `--log-level`: in nsqlookupd's format,
//! `[nsqlookupd] 2024/01/02 15:04:05.123456 INFO: message`, or with `--log-format json`
//! one JSON object per line (`timestamp`, `level`, `fields.message`, ...), the layout
//! nsqd's `--log-format json` writes too.

use std::fmt;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::options::{LogFormat, LogLevel};

/// The format [`init`] installed, for [`fatal`].
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the global subscriber (call once, from the binary).
pub fn init(level: LogLevel, prefix: &str, format: LogFormat) {
    let filter = match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
        // Only the fatal exits (written by `fatal`) remain.
        LogLevel::Fatal => LevelFilter::OFF,
    };
    let _ = FORMAT.set(format);
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder
            .event_format(GoLogFormat {
                prefix: prefix.to_string(),
            })
            .try_init(),
        LogFormat::Json => builder.json().with_target(false).try_init(),
    };
}

/// Writes a FATAL line, as nsqlookupd does right before exiting 1 (a JSON object once
/// [`init`] chose JSON; a fatal error before that is in the text layout).
pub fn fatal(prefix: &str, message: &str) {
    if FORMAT.get() == Some(&LogFormat::Json) {
        eprintln!("{}", fatal_json(message));
    } else {
        eprintln!("{prefix}{} FATAL: {message}", timestamp());
    }
}

/// The JSON FATAL line, shaped like the subscriber's JSON events.
fn fatal_json(message: &str) -> String {
    serde_json::json!({
        "timestamp": utc_timestamp(std::time::SystemTime::now()),
        "level": "FATAL",
        "fields": { "message": message },
    })
    .to_string()
}

/// RFC 3339 UTC with microseconds, as the JSON formatter writes its timestamps.
fn utc_timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Go's `log` layout with nsqlookupd's level names.
struct GoLogFormat {
    prefix: String,
}

impl<S, N> FormatEvent<S, N> for GoLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        write!(writer, "{}{} {level}: ", self.prefix, timestamp())?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "[{fields}] ")?;
                    }
                }
            }
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Local time as Go's `log.Ldate|log.Ltime|log.Lmicroseconds` prints it.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data, fully written by localtime_r on success.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("@{}.{:06}", now.as_secs(), now.subsec_micros());
    }
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_709_164_805_123_456);
        assert_eq!(utc_timestamp(t), "2024-02-29T00:00:05.123456Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(utc_timestamp(t), "2099-12-31T23:59:59.000000Z");
    }

    #[test]
    fn fatal_json_is_one_object() {
        let line = fatal_json("listen (x) failed - \"boom\"");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "FATAL");
        assert_eq!(v["fields"]["message"], "listen (x) failed - \"boom\"");
        assert!(!line.contains('\n'));
    }
}
