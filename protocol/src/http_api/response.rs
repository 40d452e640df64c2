//! The V1 response conventions of nsqd and nsqlookupd (`http_api.RespondV1`,
//! `http_api.PlainText`), as header names, content types and body encodings.
//!
//! A V1 endpoint always sends `X-NSQ-Content-Type: nsq; version=1.0` (go-nsq picks its
//! parser from it) and answers failure as `{"message":"<CODE>"}` with the JSON content
//! type. JSON is encoded as Go's `encoding/json` does it ([`to_go_json`]).

use serde::Serialize;

/// The header go-nsq looks for.
pub const NSQ_CONTENT_TYPE: &str = "X-NSQ-Content-Type";
/// Its value on every V1 response.
pub const NSQ_CONTENT_TYPE_V1: &str = "nsq; version=1.0";
/// The content type of JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// What Go's `net/http` sniffs for the plain bodies the daemons write without a content
/// type (and what the plain-text decorator sets).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The content type of Go's redirect body.
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Encodes `value` as Go's `json.Marshal` would (see [`go_json_escape`]).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).map(go_json_escape)
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings. Those
/// characters never appear outside strings in JSON, so replacing them anywhere in an
/// encoded document is exact.
pub fn go_json_escape(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The body of a V1 error: `{"message":"<CODE>"}`.
pub fn v1_error_body(message: &str) -> String {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        message: &'a str,
    }
    // A struct with one string field always serializes.
    to_go_json(&ErrorBody { message }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            go_json_escape(r#"{"a":"<b>&"}"#.into()),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
        assert_eq!(go_json_escape("\"\u{2028}\"".into()), "\"\\u2028\"");
        assert_eq!(go_json_escape("{}".into()), "{}");
    }

    #[test]
    fn go_json_escapes_html() {
        let v = crate::lookup::ErrorResponse {
            message: "<a&b>\u{2028}".into(),
        };
        assert_eq!(
            to_go_json(&v).unwrap(),
            r#"{"message":"\u003ca\u0026b\u003e\u2028"}"#
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(v1_error_body("NOT_FOUND"), r#"{"message":"NOT_FOUND"}"#);
        assert_eq!(v1_error_body("A\"<"), r#"{"message":"A\"\u003c"}"#);
    }
}
