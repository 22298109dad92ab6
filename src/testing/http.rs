//! A minimal blocking HTTP/1.1 client, enough for the dev server's plain-HTTP listener: one
//! request per connection (`Connection: close`), the body by `Content-Length` or chunked.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response's status and body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HttpResponse {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// Sends one request to `addr` and reads the whole response. `target` is the request target
/// (`/v1/sys/health`); `headers` go as given, after `Host`, `Connection` and `Content-Length`.
pub(super) fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    // No half-close: Go's server takes EOF on the request side for a client gone away, and
    // cancels the request. It closes the connection itself after the response.
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Splits a whole HTTP/1.x response into its status and body.
fn parse(raw: &[u8]) -> io::Result<HttpResponse> {
    let end =
        find(raw, b"\r\n\r\n").ok_or_else(|| invalid("the response has no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("the headers are not text"))?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("not an HTTP status line: {status_line:?}")))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("a bad Content-Length: {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = content_length {
        rest.get(..length)
            .ok_or_else(|| invalid("the connection closed before the whole body"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

/// Decodes a chunked body (chunk extensions and trailers are skipped).
fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(|| invalid("a chunk size has no end"))?;
        let line =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("a bad chunk size"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("a bad chunk size: {size:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| invalid("the connection closed inside a chunk"))?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|after| after.strip_prefix(b"\r\n"))
            .ok_or_else(|| invalid("a chunk does not end with CRLF"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> HttpResponse {
        parse(raw.as_bytes()).expect("parses")
    }

    #[test]
    fn a_body_is_read_by_its_length_or_to_the_end() {
        let answer = parsed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!((answer.status, answer.body), (200, b"{}".to_vec()));
        let answer = parsed("HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n");
        assert_eq!((answer.status, answer.body), (204, Vec::new()));
        let answer = parsed("HTTP/1.0 404 Not Found\r\n\r\nnope");
        assert_eq!((answer.status, answer.body), (404, b"nope".to_vec()));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }

    #[test]
    fn a_chunked_body_is_decoded() {
        let answer = parsed(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             4\r\n{\"a\"\r\n5;ext=1\r\n: 1}\n\r\n0\r\nTrailer: x\r\n\r\n",
        );
        assert_eq!(answer.body, b"{\"a\": 1}\n".to_vec());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab").is_err());
    }

    #[test]
    fn what_is_not_http_is_an_error() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
