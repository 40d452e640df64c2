//! A minimal HTTP/1.1 client for the few outbound requests nsqd and its tools make
//! (lookupd `/channels`, `nsq drain`'s `/channel/import`): one request per connection,
//! `Content-Length`, chunked or read-to-close bodies, 200 only.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_RESPONSE: usize = 5 * 1024 * 1024;

/// Fetches `http://<addr><path>` and returns the body of a 200 response.
pub async fn get(addr: &str, path: &str, deadline: Duration) -> Result<Vec<u8>, String> {
    tokio::time::timeout(deadline, get_inner(addr, path))
        .await
        .map_err(|_| format!("GET http://{addr}{path}: timed out"))?
}

/// POSTs `body` to `http://<addr><path>` and returns the body of a 200 response.
pub async fn post(
    addr: &str,
    path: &str,
    body: &[u8],
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    tokio::time::timeout(deadline, request(addr, "POST", path, body))
        .await
        .map_err(|_| format!("POST http://{addr}{path}: timed out"))?
}

async fn get_inner(addr: &str, path: &str) -> Result<Vec<u8>, String> {
    request(addr, "GET", path, &[]).await
}

async fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let length = if method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/vnd.nsq; version=1.0\r\n\
         User-Agent: nsqd/{}\r\n{length}Connection: close\r\n\r\n",
        nsq_protocol::NSQ_VERSION
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err("response too large".into());
        }
    }
    parse_response(&raw)
}

/// Splits a complete HTTP/1.1 response read until close; returns the body of a 200.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed response")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "malformed headers")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("malformed status line")?;
    let body = &raw[head_end + 4..];
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or("short body")?.to_vec()
    } else {
        body.to_vec()
    };
    if status != "200" {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("short chunk")?);
        b = b.get(size + 2..).ok_or("short chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lengths_chunks_and_errors() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(r).unwrap(), b"hello");
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), b"hello");
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
        assert!(parse_response(r).is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
