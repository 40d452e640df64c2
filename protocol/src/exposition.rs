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

/// Writes one exposition document.
pub struct Exposition {
    out: String,
    format: Format,
    /// Base name and kind of the family being written.
    current: Option<(String, Kind)>,
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
        self.current = Some((name.to_string(), kind));
    }

    /// One sample of the current counter or gauge (or the `1` of an info metric).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some((name, kind)) = self.current.clone() else {
            return;
        };
        let suffix = match kind {
            Kind::Counter => "_total",
            Kind::Info => "_info",
            _ => "",
        };
        self.line(&format!("{name}{suffix}"), labels, None, value);
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
        let Some((name, _)) = self.current.clone() else {
            return;
        };
        let bucket = format!("{name}_bucket");
        for (le, n) in buckets {
            self.line(&bucket, labels, Some(&format_value(*le)), *n as f64);
        }
        self.line(&bucket, labels, Some("+Inf"), count as f64);
        self.line(&format!("{name}_sum"), labels, None, sum);
        self.line(&format!("{name}_count"), labels, None, count as f64);
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() || le.is_some() {
            self.out.push('{');
            let mut first = true;
            for (k, v) in labels.iter().copied().chain(le.map(|l| ("le", l))) {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// The finished document (OpenMetrics ends with `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
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
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }
}
