//! URL decoding as Go's `net/url` does it for nsqd's and nsqlookupd's handlers: query
//! strings (`url.ParseQuery`: `&`-separated, `;` rejected, `+` is a space, bad `%`
//! escapes rejected, the first value of a repeated key wins) and request paths.

/// A query string Go would refuse (the daemons answer 400 `INVALID_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid query string")]
pub struct BadQuery;

/// Decoded query parameters, in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string; as in Go, one bad pair makes the whole query an error.
    pub fn parse(raw: &str) -> Result<Query, BadQuery> {
        let mut pairs = Vec::new();
        let mut bad = false;
        for part in raw.split('&') {
            if part.contains(';') {
                bad = true;
                continue;
            }
            if part.is_empty() {
                continue;
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match (unescape(k, true), unescape(v, true)) {
                (Some(k), Some(v)) => pairs.push((k, v)),
                _ => bad = true,
            }
        }
        if bad {
            Err(BadQuery)
        } else {
            Ok(Query { pairs })
        }
    }

    /// The first value of `key`, if the key is present at all (an empty value counts).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or the empty string (Go's `reqParams.Get` with the
    /// error ignored).
    pub fn get_or_empty(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }
}

/// Percent-decodes a request path (Go routes on the decoded `URL.Path`); an invalid
/// escape leaves the path as sent.
pub fn decode_path(raw: &str) -> String {
    unescape(raw, false).unwrap_or_else(|| raw.to_string())
}

/// `%XX` decoding, `+` as a space when `plus_is_space`; `None` on a malformed escape.
/// Bytes that are not UTF-8 are replaced (such values never name a valid topic).
fn unescape(s: &str, plus_is_space: bool) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let q = Query::parse("topic=a&topic=b&x&channel=c%23ephemeral&sp=a+b&&").unwrap();
        assert_eq!(q.get("topic"), Some("a"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("channel"), Some("c#ephemeral"));
        assert_eq!(q.get("sp"), Some("a b"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(q.get_or_empty("missing"), "");
        assert_eq!(Query::parse("").unwrap(), Query::default());
        assert_eq!(Query::parse("topic=a;b"), Err(BadQuery));
        assert_eq!(Query::parse("topic=%zz"), Err(BadQuery));
        assert_eq!(Query::parse("topic=%4"), Err(BadQuery));
        assert_eq!(Query::parse("%=a"), Err(BadQuery));
    }

    #[test]
    fn paths() {
        assert_eq!(decode_path("/%70ing"), "/ping");
        assert_eq!(decode_path("/a+b"), "/a+b");
        assert_eq!(decode_path("/%"), "/%");
    }
}
