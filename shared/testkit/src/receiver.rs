//! A webhook receiver for tests: a tiny hyper HTTP/1.1 server on 127.0.0.1 that records
//! every request it is sent (headers and body) and answers 200 (or the status set with
//! [`Receiver::answer`]). It can be stopped and started again on the same port, so a test
//! can take the receiver down, make changes, and bring it back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// When it arrived (microseconds since the epoch).
    pub at_micros: i64,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    status: u16,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let mut r = Self {
            addr: "127.0.0.1:0".parse().expect("addr"), // ok: test support, a loopback address
            shared: Arc::new(Mutex::new(Shared { received: Vec::new(), status: 200 })),
            stop: None,
        };
        r.listen().await;
        r
    }

    /// `http://127.0.0.1:<port>/hook`
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Stops listening (in-flight connections are dropped); what was received is kept.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // Until the port is closed, a connect may still succeed.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.listen().await;
    }

    /// The status later requests are answered with.
    pub fn answer(&self, status: u16) {
        self.shared.lock().expect("lock").status = status; // ok: test support, no holder panics
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("lock").received.clone() // ok: test support, no holder panics
    }

    async fn listen(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 200 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                Err(e) => panic!("receiver bind {}: {e}", self.addr),
            }
        };
        self.addr = listener.local_addr().expect("local addr"); // ok: test support, a bound listener
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let shared = shared.clone();
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                                let shared = shared.clone();
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                                    let at_micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
                                    let status = {
                                        let mut s = shared.lock().expect("lock"); // ok: test support, no holder panics
                                        if s.status == 200 {
                                            s.received.push(Received { headers: parts.headers, body, at_micros });
                                        }
                                        s.status
                                    };
                                    let mut response = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                                    Ok::<_, std::convert::Infallible>(response)
                                }
                            });
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
                        });
                    }
                }
            }
            // Dropping the set aborts the connections: the receiver is down.
            connections.abort_all();
        });
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
