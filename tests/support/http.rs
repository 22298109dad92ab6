//! The test tree's one HTTP/1.1 client, for a server's plain-HTTP listener on loopback: the
//! suites' requests ([`crate::common::DevServer::http`], the cluster's), the soak's and the
//! benchmark's keep-alive load. Blocking std sockets and nothing else, so it adds no
//! dependency and no runtime to a test that does not already have one.
//!
//! * [`request_once`]: one request on a connection of its own (`Connection: close`).
//! * [`Connection`]: one keep-alive connection for many requests, one after the other.
//!
//! A response's body is read by its `Content-Length`, chunked, or (with neither) up to the end
//! of the connection. Every connection has a connect timeout, a timeout on each read and write,
//! and a deadline for the whole of each response, so a wedged server fails a test instead of
//! hanging it.
//!
//! The SDK's test kit has a client of its own (`src/testing/http.rs`): it is part of the
//! published crate, which cannot depend on this one.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest a connect may take: on loopback a server answers at once, or refuses, or its
/// listener is wedged.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How much a read asks the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A response: status, headers (in order, names as sent) and the decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection may carry another request: the server did not say `Connection: close`
    /// and the body did not run to the end of the connection.
    pub keep_alive: bool,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON: `Null` when blank, a `String` when it is not JSON.
    pub fn json(&self) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
        }
    }
}

/// A request that got no whole response.
#[derive(Debug)]
pub struct HttpError {
    message: String,
    unsent: bool,
}

impl HttpError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unsent: false,
        }
    }

    fn unsent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unsent: true,
        }
    }

    /// The server cannot have acted on the request: writing it failed, or the connection
    /// closed before any byte of an answer (a keep-alive connection the server had just let
    /// go). Such a request may be sent again on a new connection.
    pub fn is_unsent(&self) -> bool {
        self.unsent
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// The bytes of one request to `host`. `Content-Length` goes with a body, and with every
/// method but those a server expects without one (GET, HEAD, DELETE, LIST), which Go's server
/// would otherwise read as an empty body anyway. `close` asks the server to close the
/// connection after its answer.
pub fn encode(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE" | "LIST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}

/// One request to `addr` (`127.0.0.1:PORT`) on a connection of its own, which the server
/// closes after its answer. `timeout` bounds each read and write and the whole response; the
/// connect gets at most [`CONNECT_TIMEOUT`].
pub fn request_once(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut connection = Connection::open(addr, timeout.min(CONNECT_TIMEOUT), timeout)?;
    connection.send(&encode(method, target, addr, headers, body, true))
}

/// One HTTP/1.1 connection for many requests, each answered before the next is sent. It does
/// not reconnect by itself: a caller that measures (the benchmark) keeps the connect out of a
/// request's time, and one that retries (the soak) decides what may be sent twice.
pub struct Connection {
    addr: String,
    stream: TcpStream,
    timeout: Duration,
    /// What was read and not used yet: the start of the next response, if anything.
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` within `connect_timeout`; `timeout` bounds each read and write, and
    /// each response as a whole. Small requests go out at once (`TCP_NODELAY`), as a load
    /// generator needs.
    pub fn open(
        addr: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let failed = |e: io::Error| HttpError::new(format!("connect {addr}: {e}"));
        let socket: SocketAddr = addr
            .to_socket_addrs()
            .map_err(failed)?
            .next()
            .ok_or_else(|| HttpError::new(format!("{addr} names no address")))?;
        let stream = TcpStream::connect_timeout(&socket, connect_timeout).map_err(failed)?;
        let configure = |e: io::Error| HttpError::new(format!("configure the socket: {e}"));
        stream.set_nodelay(true).map_err(configure)?;
        stream.set_read_timeout(Some(timeout)).map_err(configure)?;
        stream.set_write_timeout(Some(timeout)).map_err(configure)?;
        Ok(Self {
            addr: addr.to_owned(),
            stream,
            timeout,
            buffer: Vec::with_capacity(READ_CHUNK),
        })
    }

    /// `127.0.0.1:PORT`, as given to [`Connection::open`].
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A request made with [`encode`], keeping the connection open.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let request = encode(method, target, &self.addr, headers, body, false);
        self.send(&request)
    }

    /// Sends the bytes of one request (from [`encode`]) and reads its response. After an
    /// error, or a response without [`Response::keep_alive`], the connection is done.
    pub fn send(&mut self, request: &[u8]) -> Result<Response, HttpError> {
        // No half-close after the request: Go's server takes EOF on the request side for a
        // client gone away, and cancels the request.
        self.stream
            .write_all(request)
            .map_err(|e| HttpError::unsent(format!("write to {}: {e}", self.addr)))?;
        let deadline = Instant::now() + self.timeout;
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill(deadline)? {
                return Err(if self.buffer.is_empty() {
                    HttpError::unsent(format!("{} closed the connection unanswered", self.addr))
                } else {
                    HttpError::new(format!(
                        "{} closed the connection inside the headers: {:?}",
                        self.addr,
                        String::from_utf8_lossy(&self.buffer)
                    ))
                });
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end);
        let mut lines = head.trim_end().split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| HttpError::new(format!("bad status line: {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            keep_alive: true,
        };
        if response
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
        {
            response.keep_alive = false;
        }
        let chunked = response.header("transfer-encoding").is_some_and(|value| {
            value
                .rsplit(',')
                .next()
                .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
        });
        let length = match response.header("content-length") {
            Some(value) => Some(
                value
                    .parse::<usize>()
                    .map_err(|_| HttpError::new(format!("bad Content-Length: {value:?}")))?,
            ),
            None => None,
        };
        // A HEAD answer announces a length it does not send; 1xx, 204 and 304 have no body.
        let bodiless =
            request.starts_with(b"HEAD ") || status < 200 || status == 204 || status == 304;
        response.body = if bodiless {
            Vec::new()
        } else if chunked {
            self.chunked_body(deadline)?
        } else if let Some(length) = length {
            self.exactly(length, deadline)?
        } else {
            response.keep_alive = false;
            while self.fill(deadline)? {}
            std::mem::take(&mut self.buffer)
        };
        Ok(response)
    }

    /// Reads more into the buffer; `false` at the end of the connection.
    fn fill(&mut self, deadline: Instant) -> Result<bool, HttpError> {
        if Instant::now() >= deadline {
            return Err(HttpError::new(format!(
                "no whole answer from {} within {:?}",
                self.addr, self.timeout
            )));
        }
        let len = self.buffer.len();
        self.buffer.resize(len + READ_CHUNK, 0);
        let read = self.stream.read(&mut self.buffer[len..]);
        let n = *read.as_ref().unwrap_or(&0);
        self.buffer.truncate(len + n);
        read.map(|n| n > 0)
            .map_err(|e| HttpError::new(format!("read from {}: {e}", self.addr)))
    }

    /// The next `n` bytes.
    fn exactly(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, HttpError> {
        while self.buffer.len() < n {
            if !self.fill(deadline)? {
                return Err(HttpError::new(format!(
                    "{} closed the connection inside a body",
                    self.addr
                )));
            }
        }
        Ok(self.buffer.drain(..n).collect())
    }

    /// The next line, without its CRLF.
    fn line(&mut self, deadline: Instant) -> Result<String, HttpError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if !self.fill(deadline)? {
                return Err(HttpError::new(format!(
                    "{} closed the connection inside a chunked body",
                    self.addr
                )));
            }
        }
    }

    /// A chunked body, decoded; chunk extensions and trailers are skipped.
    fn chunked_body(&mut self, deadline: Instant) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(deadline)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|e| HttpError::new(format!("bad chunk size {line:?}: {e}")))?;
            if size == 0 {
                while !self.line(deadline)?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.exactly(size, deadline)?);
            if !self.line(deadline)?.is_empty() {
                return Err(HttpError::new("a chunk does not end with CRLF"));
            }
        }
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
    use std::net::TcpListener;

    /// A server on loopback that answers each request it reads with the next of `answers`
    /// (an empty one: closes instead), then closes. It reads a request as far as its blank
    /// line (no request here has a body).
    fn serve(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut requests = Vec::new();
            let mut pending = Vec::new();
            for answer in answers {
                while find(&pending, b"\r\n\r\n").is_none() {
                    let mut chunk = [0u8; 1024];
                    let n = socket.read(&mut chunk).unwrap();
                    assert!(n > 0, "the client closed early");
                    pending.extend_from_slice(&chunk[..n]);
                }
                let end = find(&pending, b"\r\n\r\n").unwrap() + 4;
                requests.push(String::from_utf8_lossy(&pending[..end]).into_owned());
                pending.drain(..end);
                if answer.is_empty() {
                    break;
                }
                socket.write_all(answer.as_bytes()).unwrap();
            }
            requests
        });
        (addr, server)
    }

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn answers_by_length_chunks_and_end_of_connection_on_one_connection() {
        let (addr, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             4\r\n{\"a\"\r\n5;ext=1\r\n: 1}\n\r\n0\r\nTrailer: x\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n",
            "HTTP/1.0 404 Not Found\r\n\r\nnope",
        ]);
        let mut connection = Connection::open(&addr, CONNECT_TIMEOUT, TIMEOUT).unwrap();
        let first = connection
            .request("GET", "/v1/a", &[("X-Vault-Token", "root")], b"")
            .unwrap();
        assert_eq!((first.status, first.json()), (200, serde_json::json!({})));
        assert_eq!(first.header("content-type"), Some("application/json"));
        assert!(first.keep_alive);
        let second = connection.request("GET", "/v1/b", &[], b"").unwrap();
        assert_eq!(second.body, b"{\"a\": 1}\n");
        assert!(second.keep_alive);
        let third = connection.request("DELETE", "/v1/c", &[], b"").unwrap();
        assert_eq!((third.status, third.json()), (204, Value::Null));
        let fourth = connection.request("PUT", "/v1/d", &[], b"").unwrap();
        assert_eq!((fourth.status, fourth.body), (404, b"nope".to_vec()));
        assert!(
            !fourth.keep_alive,
            "a body to the end closes the connection"
        );

        let requests = server.join().unwrap();
        assert_eq!(
            requests[0],
            format!("GET /v1/a HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: root\r\n\r\n")
        );
        assert!(
            requests[3].contains("Content-Length: 0\r\n"),
            "{}",
            requests[3]
        );
    }

    #[test]
    fn a_request_of_its_own_asks_for_the_connection_to_close() {
        let (addr, server) = serve(vec![
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /v1/x\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n",
        ]);
        let answer = request_once(&addr, "GET", "/v1/x/.", &[], b"", TIMEOUT).unwrap();
        assert_eq!(
            (answer.status, answer.header("location")),
            (307, Some("/v1/x"))
        );
        assert!(!answer.keep_alive);
        assert!(server.join().unwrap()[0].contains("Connection: close\r\n"));
    }

    #[test]
    fn a_connection_closed_unanswered_is_an_unsent_request() {
        let (addr, server) = serve(vec![""]);
        let mut connection = Connection::open(&addr, CONNECT_TIMEOUT, TIMEOUT).unwrap();
        let error = connection.request("GET", "/v1/a", &[], b"").unwrap_err();
        assert!(error.is_unsent(), "{error}");
        server.join().unwrap();
    }

    #[test]
    fn what_is_not_http_is_an_error() {
        let (addr, _server) = serve(vec!["SSH-2.0-OpenSSH\r\n\r\n"]);
        let error = request_once(&addr, "GET", "/", &[], b"", TIMEOUT).unwrap_err();
        assert!(!error.is_unsent());
        assert!(error.to_string().contains("bad status line"), "{error}");
    }
}
