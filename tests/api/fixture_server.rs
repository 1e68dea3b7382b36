//! A loopback HTTP server the tests control: the "internet" that yt-dlp downloads from.
//!
//! Each route says what to answer and how: a file (with Range support, as media clients
//! expect), a status, a chunked body without Content-Length, failing the first N requests,
//! a slow drip, a redirect. Every request is logged so tests can count hits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Clone)]
pub struct Route {
    body: Vec<u8>,
    content_type: String,
    status: u16,
    chunked: bool,
    /// Answer 500 to this many requests first.
    fail_first: u32,
    redirect: Option<String>,
    /// Send the body in pieces of this size with this pause between them.
    drip: Option<(usize, Duration)>,
    /// The first full (non-range) request gets only this many bytes, then the connection drops.
    cut_first_after: Option<usize>,
}

impl Route {
    pub fn file(path: impl Into<PathBuf>, content_type: &str) -> Self {
        let path = path.into();
        let body =
            std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
        Self::bytes(body, content_type)
    }

    pub fn bytes(body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        Self {
            body: body.into(),
            content_type: content_type.into(),
            status: 200,
            chunked: false,
            fail_first: 0,
            redirect: None,
            drip: None,
            cut_first_after: None,
        }
    }

    pub fn html(page: &str) -> Self {
        Self::bytes(page.as_bytes().to_vec(), "text/html; charset=utf-8")
    }

    pub fn status(code: u16) -> Self {
        Self {
            status: code,
            ..Self::bytes(format!("status {code}\n"), "text/plain")
        }
    }

    pub fn redirect(to: &str) -> Self {
        Self {
            status: 302,
            redirect: Some(to.into()),
            ..Self::bytes(Vec::new(), "text/plain")
        }
    }

    /// No Content-Length: the body is sent with chunked transfer encoding.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    pub fn failing_first(mut self, n: u32) -> Self {
        self.fail_first = n;
        self
    }

    pub fn drip(mut self, piece: usize, pause: Duration) -> Self {
        self.drip = Some((piece, pause));
        self
    }

    /// The first whole-file request is cut after `bytes` (as by a broken connection).
    pub fn cut_first_after(mut self, bytes: usize) -> Self {
        self.cut_first_after = Some(bytes);
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Path and query.
    pub target: String,
    pub range: Option<String>,
    pub cookie: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    /// Every request received, in order.
    hits: Vec<Hit>,
}

pub struct FixtureServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixtureServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = handle(stream, shared).await;
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `route` at `path` and returns its URL.
    pub fn add(&self, path: &str, route: Route) -> String {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), route);
        self.url(path)
    }

    /// Requests received for `path` (query strings ignored).
    pub fn hits(&self, path: &str) -> usize {
        self.log()
            .iter()
            .filter(|h| h.target.split('?').next() == Some(path))
            .count()
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Serves every file of `dir` under `prefix` (`/hls/a.ts` …), typed by extension.
    pub fn add_dir(&self, prefix: &str, dir: &std::path::Path) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let content_type = match name.rsplit('.').next() {
                Some("m3u8") => "application/vnd.apple.mpegurl",
                Some("ts") => "video/mp2t",
                Some("mp4") => "video/mp4",
                _ => "application/octet-stream",
            };
            self.add(
                &format!("{prefix}/{name}"),
                Route::file(entry.path(), content_type),
            );
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

async fn handle(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    };
    let mut request_line = head.split("\r\n").next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let range = header(&head, "range").map(str::to_string);

    let (index, route, cut) = {
        let mut state = state.lock().unwrap();
        let index = state.hits.len();
        state.hits.push(Hit {
            target: target.clone(),
            range: range.clone(),
            cookie: header(&head, "cookie").map(str::to_string),
            started: Instant::now(),
            ended: None,
        });
        let (route, cut) = match state.routes.get_mut(&path) {
            Some(route) if route.fail_first > 0 => {
                route.fail_first -= 1;
                (Route::status(500), None)
            }
            Some(route) => {
                let cut = if range.is_none() {
                    route.cut_first_after.take()
                } else {
                    None
                };
                (route.clone(), cut)
            }
            None => (Route::status(404), None),
        };
        (index, route, cut)
    };
    let result = respond(&mut stream, &method, &route, range.as_deref(), cut).await;
    state.lock().unwrap().hits[index].ended = Some(Instant::now());
    result
}

async fn respond(
    stream: &mut TcpStream,
    method: &str,
    route: &Route,
    range: Option<&str>,
    cut: Option<usize>,
) -> std::io::Result<()> {
    if let Some(location) = &route.redirect {
        let response = format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return stream.write_all(response.as_bytes()).await;
    }
    let total = route.body.len();
    let (status, body_range) = match range.and_then(|r| parse_single_range(r, total)) {
        Some((start, end)) if route.status == 200 && !route.chunked => (206, start..end + 1),
        _ => (route.status, 0..total),
    };
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {}\r\nConnection: close\r\nAccept-Ranges: bytes\r\n",
        route.content_type
    );
    if status == 206 {
        response.push_str(&format!(
            "Content-Range: bytes {}-{}/{total}\r\n",
            body_range.start,
            body_range.end - 1
        ));
    }
    if route.chunked {
        response.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        response.push_str(&format!("Content-Length: {}\r\n\r\n", body_range.len()));
    }
    stream.write_all(response.as_bytes()).await?;
    if method == "HEAD" {
        return Ok(());
    }
    let mut body = &route.body[body_range];
    if let Some(cut) = cut {
        // Announce everything, send a part, hang up: a broken transfer.
        body = &body[..cut.min(body.len())];
    }
    let (piece, pause) = route.drip.unwrap_or((64 * 1024, Duration::ZERO));
    for part in body.chunks(piece.max(1)) {
        if route.chunked {
            stream
                .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await?;
            stream.write_all(part).await?;
            stream.write_all(b"\r\n").await?;
        } else {
            stream.write_all(part).await?;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    if route.chunked && cut.is_none() {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    stream.shutdown().await
}

fn parse_single_range(header: &str, total: usize) -> Option<(usize, usize)> {
    let spec = header.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    if total == 0 {
        return None;
    }
    match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            Some((total.saturating_sub(n), total - 1))
        }
        (start, "") => {
            let s: usize = start.parse().ok()?;
            (s < total).then_some((s, total - 1))
        }
        (start, end) => {
            let (s, e): (usize, usize) = (start.parse().ok()?, end.parse().ok()?);
            (s <= e && s < total).then_some((s, e.min(total - 1)))
        }
    }
}
