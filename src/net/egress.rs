//! The egress guard: a small HTTP proxy on loopback that every yt-dlp connection goes through.
//!
//! Checking the submitted URL is not enough, because yt-dlp follows redirects, playlists and
//! fragment URLs to anywhere (THREATS fact 1, SSRF-03). yt-dlp runs with `--proxy` pointing
//! here; each connection (plain HTTP requests and CONNECT tunnels alike) is resolved once,
//! checked against the same policy as submissions, and dialed at the checked address.
//!
//! Each job gets its own proxy credentials (the job id as user name, a per-boot secret as
//! password), so the guard can tell the downloader which job hit a refused address, and no
//! other local process can use the guard as an open proxy.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use super::resolve::{ResolveError, resolve_checked};
use crate::domain::ssrf::EgressPolicy;

/// Largest request head accepted from yt-dlp.
const MAX_HEAD: usize = 32 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A running guard. Dropping it stops the listener and every connection through it.
pub struct EgressGuard {
    addr: SocketAddr,
    secret: String,
    denials: Arc<Mutex<HashMap<String, String>>>,
    _task: AbortOnDropHandle<()>,
}

impl EgressGuard {
    /// Starts the guard on an ephemeral loopback port, enforcing `policy` (plus a refusal of
    /// its own port).
    pub async fn start(policy: &EgressPolicy) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut policy = policy.clone();
        policy.deny_own_port(addr.port());
        let secret = hex::encode(rand::random::<[u8; 16]>());
        let denials = Arc::new(Mutex::new(HashMap::new()));
        let shared = Arc::new(Shared {
            policy,
            secret: secret.clone(),
            denials: Arc::clone(&denials),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self {
            addr,
            secret,
            denials,
            _task: AbortOnDropHandle::new(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `--proxy` value for one job.
    pub fn proxy_url(&self, job: &str) -> String {
        format!("http://{job}:{}@{}", self.secret, self.addr)
    }

    /// Why the guard refused a connection of `job`, if it did (consumed).
    pub fn take_denial(&self, job: &str) -> Option<String> {
        self.denials.lock().expect("denials lock").remove(job)
    }
}

struct Shared {
    policy: EgressPolicy,
    secret: String,
    denials: Arc<Mutex<HashMap<String, String>>>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        if let Err(e) = serve(stream, &shared).await {
                            tracing::debug!(error = %e, "egress guard connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "egress guard cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A parsed proxy request head.
#[derive(Debug)]
struct ProxyRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

fn parse_head(head: &str) -> Option<ProxyRequest> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(ProxyRequest {
        method,
        target,
        headers,
    })
}

impl ProxyRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The job named by valid proxy credentials.
    fn authorized_job(&self, secret: &str) -> Option<String> {
        let encoded = self.header("Proxy-Authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        bool::from(password.as_bytes().ct_eq(secret.as_bytes())).then(|| user.to_string())
    }
}

/// Reads up to the end of the request head; returns the head and any bytes after it.
async fn read_head(stream: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
    }
}

async fn reply(stream: &mut TcpStream, status: &str, extra: &str, body: &str) -> io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    let (head, rest) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request head"))??;
    let Some(request) = parse_head(&head) else {
        return reply(&mut client, "400 Bad Request", "", "malformed request\n").await;
    };
    let Some(job) = request.authorized_job(&shared.secret) else {
        return reply(
            &mut client,
            "407 Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"prsnl\"\r\n",
            "proxy credentials required\n",
        )
        .await;
    };
    let tunnel = request.method.eq_ignore_ascii_case("CONNECT");
    let target = if tunnel {
        url::Url::parse(&format!("https://{}/", request.target)).ok()
    } else {
        url::Url::parse(&request.target)
            .ok()
            .filter(|u| u.scheme() == "http")
    };
    let Some(target) = target else {
        return reply(
            &mut client,
            "400 Bad Request",
            "",
            "unsupported proxy target\n",
        )
        .await;
    };
    let (Some(host), Some(port)) = (target.host_str(), target.port_or_known_default()) else {
        return reply(
            &mut client,
            "400 Bad Request",
            "",
            "proxy target has no host\n",
        )
        .await;
    };
    let addrs = match resolve_checked(&shared.policy, host, port).await {
        Ok(addrs) => addrs,
        Err(ResolveError::Denied(denied)) => {
            tracing::warn!(job = %job, target = %denied.addr, reason = denied.reason, "egress guard refused a connection");
            shared
                .denials
                .lock()
                .expect("denials lock")
                .insert(job, denied.to_string());
            return reply(
                &mut client,
                "403 Forbidden",
                "",
                "refused by the prsnl egress guard\n",
            )
            .await;
        }
        Err(e @ ResolveError::Lookup { .. }) => {
            return reply(&mut client, "502 Bad Gateway", "", &format!("{e}\n")).await;
        }
    };
    let Some(mut upstream) = dial(&addrs).await else {
        return reply(
            &mut client,
            "502 Bad Gateway",
            "",
            "cannot connect to the target\n",
        )
        .await;
    };
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
    } else {
        upstream
            .write_all(forwarded_head(&request, &target).as_bytes())
            .await?;
    }
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// The request rewritten for the origin server: origin-form target, no proxy headers, and
/// `Connection: close`, so that each upstream connection carries exactly one checked request.
fn forwarded_head(request: &ProxyRequest, target: &url::Url) -> String {
    let mut path = target.path().to_string();
    if let Some(query) = target.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut head = format!("{} {path} HTTP/1.1\r\n", request.method);
    for (name, value) in &request.headers {
        let hop_by_hop = [
            "proxy-authorization",
            "proxy-connection",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
        if !hop_by_hop {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

async fn dial(addrs: &[SocketAddr]) -> Option<TcpStream> {
    for addr in addrs {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            return Some(stream);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_absolute_form_requests_for_the_origin() {
        let request = parse_head(
            "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\
             Proxy-Authorization: Basic eDp5\r\nConnection: keep-alive\r\nAccept: */*",
        )
        .unwrap();
        let target = url::Url::parse(&request.target).unwrap();
        let head = forwarded_head(&request, &target);
        assert!(head.starts_with("GET /a/b?c=d HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Host: example.com:8080\r\n"));
        assert!(head.contains("Accept: */*\r\n"));
        assert!(!head.contains("Proxy-Authorization"));
        assert!(!head.contains("keep-alive"));
        assert!(head.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn credentials_name_the_job_only_with_the_right_secret() {
        let auth = |user_pass: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
            parse_head(&format!(
                "CONNECT a:443 HTTP/1.1\r\nProxy-Authorization: Basic {encoded}"
            ))
            .unwrap()
        };
        assert_eq!(
            auth("job1:s3cret").authorized_job("s3cret").as_deref(),
            Some("job1")
        );
        assert_eq!(auth("job1:wrong").authorized_job("s3cret"), None);
        assert_eq!(
            parse_head("CONNECT a:443 HTTP/1.1")
                .unwrap()
                .authorized_job("s3cret"),
            None
        );
    }

    #[tokio::test]
    async fn refuses_loopback_targets_and_records_the_job() {
        let guard = EgressGuard::start(&EgressPolicy::default()).await.unwrap();
        let mut stream = TcpStream::connect(guard.addr()).await.unwrap();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("job7:{}", guard.secret));
        stream
            .write_all(format!("GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic {credentials}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(guard.take_denial("job7").unwrap().contains("127.0.0.1:9"));
        assert!(guard.take_denial("job7").is_none());
    }

    #[tokio::test]
    async fn forwards_allowed_requests_through_a_fresh_connection() {
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr = origin.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = origin.accept().await.unwrap();
            let (head, _) = read_head(&mut s).await.unwrap();
            assert!(head.starts_with("GET /clip HTTP/1.1"), "{head}");
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await
                .unwrap();
        });
        let policy = EgressPolicy::new(vec![
            format!("127.0.0.1:{}", origin_addr.port()).parse().unwrap(),
        ]);
        let guard = EgressGuard::start(&policy).await.unwrap();
        let mut stream = TcpStream::connect(guard.addr()).await.unwrap();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("j:{}", guard.secret));
        stream
            .write_all(format!("GET http://{origin_addr}/clip HTTP/1.1\r\nHost: {origin_addr}\r\nProxy-Authorization: Basic {credentials}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"),
            "{answer}"
        );
        assert!(guard.take_denial("j").is_none());
    }

    #[tokio::test]
    async fn strangers_without_credentials_get_407() {
        let guard = EgressGuard::start(&EgressPolicy::default()).await.unwrap();
        let mut stream = TcpStream::connect(guard.addr()).await.unwrap();
        stream
            .write_all(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 407"), "{answer}");
    }
}
