//! A minimal HTTP/1.1 client for the benchmark: one keep-alive connection per task, so
//! the load generator adds as little as possible to what is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_util::io::ReaderStream;

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// One connection to the server.
pub struct Connection {
    sender: SendRequest<Body>,
    authority: String,
    key: String,
}

impl Connection {
    pub async fn open(addr: &str, key: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            authority: addr.to_owned(),
            key: key.to_owned(),
        })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.key));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = self.sender.send_request(request.body(body)?).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Bytes)> {
        let empty = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed();
        self.send(Method::GET, path, None, empty).await
    }

    pub async fn get_json(&mut self, path: &str) -> anyhow::Result<Value> {
        let (status, bytes) = self.get(path).await?;
        if status != 200 {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    pub async fn post_json(&mut self, path: &str, body: &Value) -> anyhow::Result<(u16, Bytes)> {
        let full = Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed();
        self.send(Method::POST, path, Some("application/json"), full)
            .await
    }

    /// Streams a file as the body of a CSV upload.
    pub async fn upload_csv(&mut self, path: &str, file: &Path) -> anyhow::Result<Value> {
        let file = tokio::fs::File::open(file).await?;
        let stream = ReaderStream::with_capacity(file, 256 * 1024);
        let body = StreamBody::new(futures_util::StreamExt::map(stream, |chunk| {
            chunk.map(Frame::data)
        }))
        .boxed();
        let (status, bytes) = self
            .send(Method::POST, path, Some("text/csv"), body)
            .await?;
        if status != 201 {
            bail!("upload: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Latencies of a load run.
pub struct Load {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1000.0
    }
}

/// The `p`th percentile of sorted-or-not microsecond samples.
pub fn percentile(samples: &[u32], p: f64) -> u32 {
    if samples.is_empty() {
        return 0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index]
}

/// GETs paths from `connections` connections for `duration`; path `i` of each connection
/// is `paths[(start + i) % len]`.
pub async fn hammer(
    addr: &str,
    key: &str,
    paths: &[String],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let paths = std::sync::Arc::new(paths.to_vec());
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let paths = paths.clone();
        let mut connection = Connection::open(addr, key).await?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = c * 7919;
            while Instant::now() < deadline {
                let path = &paths[i % paths.len()];
                i += 1;
                let sent = Instant::now();
                match connection.get(path).await {
                    Ok((200, _)) => latencies.push(sent.elapsed().as_micros() as u32),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies_us.extend(l);
        errors += e;
    }
    Ok(Load {
        requests: latencies_us.len(),
        errors,
        elapsed: started.elapsed(),
        latencies_us,
    })
}
