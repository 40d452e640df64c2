//! Prometheus exposition text, in the classic format (`text/plain; version=0.0.4`) or in
//! OpenMetrics (`application/openmetrics-text; version=1.0.0`) when a scraper asks for
//! it. Pure formatting: callers walk their state and write families and samples.

use std::fmt::Write;

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics if the `Accept` header offers it, else the classic text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Info,
}

/// Writes one exposition document. Samples are written straight into one buffer, with
/// no allocation per sample (a node with thousands of channels has ~100k of them).
pub struct Exposition {
    out: String,
    format: Format,
    /// The family being written: its base name, and the name its counter, gauge or info
    /// samples carry (`_total` and `_info` added).
    current: Option<(String, String)>,
}

impl Exposition {
    pub fn new(format: Format) -> Exposition {
        Exposition {
            out: String::with_capacity(64 * 1024),
            format,
            current: None,
        }
    }

    /// Starts a family. `name` is the base name: counters get `_total` on their samples
    /// (and on the TYPE line in the classic format), info metrics `_info`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (type_name, type_word) = match (self.format, kind) {
            (Format::Prometheus, Kind::Counter) => (format!("{name}_total"), "counter"),
            (Format::OpenMetrics, Kind::Counter) => (name.to_string(), "counter"),
            (_, Kind::Gauge) => (name.to_string(), "gauge"),
            (_, Kind::Histogram) => (name.to_string(), "histogram"),
            (Format::Prometheus, Kind::Info) => (format!("{name}_info"), "gauge"),
            (Format::OpenMetrics, Kind::Info) => (name.to_string(), "info"),
        };
        let _ = writeln!(self.out, "# HELP {type_name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {type_name} {type_word}");
        let suffix = match kind {
            Kind::Counter => "_total",
            Kind::Info => "_info",
            Kind::Gauge | Kind::Histogram => "",
        };
        self.current = Some((name.to_string(), format!("{name}{suffix}")));
    }

    /// One sample of the current counter or gauge (or the `1` of an info metric).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some((_, sample_name)) = &self.current else {
            return;
        };
        write_line(
            &mut self.out,
            self.format,
            sample_name,
            "",
            labels,
            None,
            value,
        );
    }

    /// One histogram series: cumulative `buckets` as (upper bound, count), plus sum and
    /// count. The `+Inf` bucket is added from `count`.
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let Some((name, _)) = &self.current else {
            return;
        };
        let (out, format) = (&mut self.out, self.format);
        for (le, n) in buckets {
            write_line(out, format, name, "_bucket", labels, Some(*le), *n as f64);
        }
        let inf = Some(f64::INFINITY);
        write_line(out, format, name, "_bucket", labels, inf, count as f64);
        write_line(out, format, name, "_sum", labels, None, sum);
        write_line(out, format, name, "_count", labels, None, count as f64);
    }

    /// The finished document (OpenMetrics ends with `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// The standard `process_*` metrics of the calling process, read from `/proc/self`
/// (nothing is written where `/proc` is missing): resident and virtual memory, CPU
/// seconds, start time, open and maximum file descriptors.
///
/// CPU times in `/proc/<pid>/stat` are in `USER_HZ` ticks, which Linux fixes at 100 on
/// every architecture Rust targets here; like Prometheus' own `procfs` package, this
/// assumes 100 rather than asking `sysconf`.
pub fn process_metrics(e: &mut Exposition) {
    const USER_HZ: f64 = 100.0;
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // `VmRSS:     1234 kB`
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            e.family(
                "process_resident_memory_bytes",
                Kind::Gauge,
                "Resident memory size in bytes.",
            );
            e.sample(&[], rss * 1024.0);
        }
        if let Some(virt) = kib("VmSize:") {
            e.family(
                "process_virtual_memory_bytes",
                Kind::Gauge,
                "Virtual memory size in bytes.",
            );
            e.sample(&[], virt * 1024.0);
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name, which may contain spaces: utime
        // and stime are fields 14 and 15, starttime 22 (1-based, the pid being field 1).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (num(11), num(12)) {
                e.family(
                    "process_cpu_seconds",
                    Kind::Counter,
                    "Total user and system CPU time spent in seconds.",
                );
                e.sample(&[], (utime + stime) / USER_HZ);
            }
            if let (Some(boot), Some(start)) = (boot_time(), num(19)) {
                e.family(
                    "process_start_time_seconds",
                    Kind::Gauge,
                    "Start time of the process since unix epoch in seconds.",
                );
                e.sample(&[], boot + start / USER_HZ);
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        e.family(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        );
        e.sample(&[], fds.count() as f64);
    }
    if let Some(max) = max_open_files() {
        e.family(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
        );
        e.sample(&[], max);
    }
}

/// System boot time, Unix seconds (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit on open files (`Max open files  1024  4096  files`); `unlimited`
/// is left out.
fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `name` + `suffix`, the labels (and `le`), the value, a newline.
fn write_line(
    out: &mut String,
    format: Format,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<f64>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            match format {
                // OpenMetrics wants `le` as a canonical float: `1.0`, not `1`.
                Format::OpenMetrics if le.is_finite() && le.fract() == 0.0 => {
                    let _ = write!(out, "{le:.1}");
                }
                _ => push_value(out, le),
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

fn push_value(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_format() {
        let mut e = Exposition::new(Format::Prometheus);
        e.family("nsq_topic_messages", Kind::Counter, "Messages published.");
        e.sample(&[("topic", "a\"b")], 3.0);
        e.family("nsq_latency_seconds", Kind::Histogram, "Latency.");
        e.histogram(&[("topic", "t")], &[(0.5, 1), (1.0, 2)], 1.25, 3);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP nsq_topic_messages_total Messages published.\n\
             # TYPE nsq_topic_messages_total counter\n\
             nsq_topic_messages_total{topic=\"a\\\"b\"} 3\n\
             # HELP nsq_latency_seconds Latency.\n\
             # TYPE nsq_latency_seconds histogram\n\
             nsq_latency_seconds_bucket{topic=\"t\",le=\"0.5\"} 1\n\
             nsq_latency_seconds_bucket{topic=\"t\",le=\"1\"} 2\n\
             nsq_latency_seconds_bucket{topic=\"t\",le=\"+Inf\"} 3\n\
             nsq_latency_seconds_sum{topic=\"t\"} 1.25\n\
             nsq_latency_seconds_count{topic=\"t\"} 3\n"
        );
    }

    #[test]
    fn process_metrics_from_proc() {
        let mut e = Exposition::new(Format::Prometheus);
        process_metrics(&mut e);
        let text = e.finish();
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e5);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }

    #[test]
    fn openmetrics_format() {
        let mut e = Exposition::new(Format::OpenMetrics);
        e.family("nsq_topic_messages", Kind::Counter, "Messages.");
        e.sample(&[], 1.0);
        e.family("nsq_build", Kind::Info, "Build.");
        e.sample(&[("version", "1.3.0")], 1.0);
        let text = e.finish();
        assert!(text.contains("# TYPE nsq_topic_messages counter\nnsq_topic_messages_total 1\n"));
        assert!(text.contains("# TYPE nsq_build info\nnsq_build_info{version=\"1.3.0\"} 1\n"));
        assert!(text.ends_with("# EOF\n"));
        let mut e = Exposition::new(Format::OpenMetrics);
        e.family("nsq_latency_seconds", Kind::Histogram, "Latency.");
        e.histogram(&[], &[(0.5, 1), (1.0, 2)], 1.25, 3);
        let text = e.finish();
        assert!(text.contains("nsq_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("nsq_latency_seconds_bucket{le=\"1.0\"} 2\n"));
        assert!(text.contains("nsq_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }
}
