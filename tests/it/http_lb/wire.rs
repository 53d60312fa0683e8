//! `WireServer`: a small hand-written HTTP/1.1 server on loopback, for what
//! nginx and `php -S` cannot be told to do on demand: answer chunked or
//! close-delimited, close idle connections after a chosen time, and hold a
//! request until the test lets it go, telling the test when it arrived (so
//! tests await a request in flight instead of polling for it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Mutex};

/// Answers by path: `/chunked` (chunked, with an extension and a trailer),
/// `/close` (HTTP/1.0, no length, then closes), `/hold` (held until
/// [`WireServer::release`]), anything else at once. Every answer that is
/// not chunked or close-delimited is `<name> <method>` with a length.
/// Closes a connection idle for `idle_close`.
pub struct WireServer {
    pub addr: String,
    pub requests: Arc<AtomicUsize>,
    pub posts: Arc<AtomicUsize>,
    /// Connections the server closed because they sat idle.
    pub idle_closed: watch::Receiver<usize>,
    /// One message per `/hold` request as it arrives.
    held: Mutex<mpsc::UnboundedReceiver<()>>,
    /// Set once: held requests (and later ones) are answered.
    released: watch::Sender<bool>,
}

/// What one connection task shares with the server.
#[derive(Clone)]
struct Shared {
    name: String,
    idle_close: Duration,
    requests: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
    idle_closed: Arc<watch::Sender<usize>>,
    held: mpsc::UnboundedSender<()>,
    released: watch::Receiver<bool>,
}

impl WireServer {
    pub async fn start(name: &str, idle_close: Duration) -> WireServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (closed_tx, idle_closed) = watch::channel(0);
        let (held_tx, held) = mpsc::unbounded_channel();
        let (released, released_rx) = watch::channel(false);
        let shared = Shared {
            name: name.to_owned(),
            idle_close,
            requests: Arc::new(AtomicUsize::new(0)),
            posts: Arc::new(AtomicUsize::new(0)),
            idle_closed: Arc::new(closed_tx),
            held: held_tx,
            released: released_rx,
        };
        let server = WireServer {
            addr,
            requests: shared.requests.clone(),
            posts: shared.posts.clone(),
            idle_closed,
            held: Mutex::new(held),
            released,
        };
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if shared.connection(s).await {
                        shared.idle_closed.send_modify(|n| *n += 1);
                    }
                });
            }
        });
        server
    }

    /// Waits (at most 10 s) until a `/hold` request has arrived.
    pub async fn held_request(&self) {
        let mut held = self.held.lock().await;
        tokio::time::timeout(Duration::from_secs(10), held.recv())
            .await
            .expect("a /hold request arrives within 10 s")
            .expect("the server runs");
    }

    /// Answers the held requests (and any later `/hold` at once).
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

impl Shared {
    /// Serves one connection; true when it closed it for idleness.
    async fn connection(&self, mut s: TcpStream) -> bool {
        let mut buf = Vec::new();
        loop {
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                match tokio::time::timeout(self.idle_close, s.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    Ok(_) => return false,
                    Err(_) => return true,
                }
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + length {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "body cut short");
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + length);
            self.requests.fetch_add(1, Ordering::SeqCst);
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap(), words.next().unwrap());
            if method == "POST" {
                self.posts.fetch_add(1, Ordering::SeqCst);
            }
            if path == "/hold" {
                let _ = self.held.send(());
                let mut released = self.released.clone();
                let _ = released.wait_for(|r| *r).await;
            }
            let (answer, close) = self.answer(method, path);
            if s.write_all(answer.as_bytes()).await.is_err() || close {
                return false;
            }
        }
    }

    /// The answer to `path`, and whether the connection closes after it.
    fn answer(&self, method: &str, path: &str) -> (String, bool) {
        match path {
            "/chunked" => (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                    .to_owned(),
                false,
            ),
            "/close" => ("HTTP/1.0 200 OK\r\n\r\nuntil close".to_owned(), true),
            _ => {
                let body = format!("{} {method}", self.name);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                (head + &body, false)
            }
        }
    }
}
