//! A fault-injecting HTTP proxy on 127.0.0.1 between hbcp and Azurite (hyper server, reqwest
//! client). It forwards every request, counts the request body bytes it received, and on a
//! chosen share of requests answers 503 ServerBusy or 500 OperationTimedOut, resets the
//! connection in the middle of a body, or stalls before answering; or answers every request
//! with 403; or answers every ranged read 503, or every LIST 500. A hook may run once, before
//! the first LIST that follows a read of an object (a copy's verification listing the source
//! again), or before the n-th server-side copy: a test changes the source there.
//!
//! The draws are deterministic (a seeded xorshift), so a failing run can be replayed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

/// What the proxy does to requests.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Inject a fault on `per_mille` of the requests, cycling through the kinds.
    Faults { per_mille: u64, seed: u64 },
    /// Answer every request 403 AuthenticationFailed.
    Deny,
    /// Answer GCS JSON API uploads (POSTs to /upload/…) 403, pass everything else.
    DenyUploads,
    /// Answer every ranged GET (a read of an object's bytes) 503 ServerBusy, pass the rest.
    BusyReads,
    /// Answer every LIST 500 OperationTimedOut (a service failure), pass the rest.
    FailLists,
    /// Answer every server-side copy request (one with an `x-ms-copy-source` or
    /// `x-amz-copy-source` header) 501 Not Implemented, pass the rest.
    NoCopies,
    /// Forward the first `n` server-side copy requests; hold every later one unanswered (never
    /// forwarded) until the proxy stops: a copy caught in the middle, for a kill -9.
    HoldCopiesAfter(u64),
    /// Forward the first `n` server-side copy requests; before any later one is forwarded, run
    /// the hook once (every later copy waits for it): a source changed between two copies.
    HookBeforeCopy(u64),
    /// Answer the first N ranged GETs 503 ServerBusy, pass everything else.
    BusyFirstReads(u64),
    /// Forward the first `n` Put Block requests (Azure's `comp=block` PUTs); hold every later
    /// one unanswered (never forwarded) until [`Counters::hold_off`] is set: a file caught
    /// between two staged blocks, for a kill -9. Requests held stay held.
    HoldBlocksAfter(u64),
    /// Answer a share (`per_mille`) of the ranged GETs 503 ServerBusy, drawn as `Faults` draws.
    BusyReadsShare { per_mille: u64, seed: u64 },
    /// Answer S3's bulk delete (`POST /BUCKET?delete`, DeleteObjects) 501 Not Implemented, as
    /// S3-compatible servers that lack it do; pass the rest.
    NoBulkDelete,
    /// Pass requests until `after` requests carrying file data (uploads outside `.hbcp/`,
    /// ranged GETs) were answered, then answer every request `status` (403 or 500).
    FailAfter { status: u16, after: u64 },
}

/// Counters, readable while the proxy runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    /// HEAD requests (properties of one object).
    pub heads: AtomicU64,
    /// LIST requests (Azure's `comp=list` GETs).
    pub lists: AtomicU64,
    /// GETs of one GCS object's metadata (`GET /storage/v1/b/BUCKET/o/NAME`, the JSON API's
    /// per-file request for `md5Hash`).
    pub gcs_object_gets: AtomicU64,
    /// GETs of a range of an object (a copy reading its source).
    pub range_gets: AtomicU64,
    /// Request body bytes received on uploads (PUTs of blocks, blobs and S3 parts; GCS's
    /// POSTs to /upload/), whole or cut off.
    pub put_body_bytes: AtomicU64,
    /// Of those, bytes of uploads outside hbcp's own `.hbcp/` folder (file content).
    pub put_data_bytes: AtomicU64,
    /// Response body bytes of GETs (object reads and listings) sent back to the client.
    pub get_body_bytes: AtomicU64,
    /// S3 bulk deletes seen (`POST ?delete`).
    pub bulk_deletes: AtomicU64,
    /// Single-object deletes seen (`DELETE` requests).
    pub deletes: AtomicU64,
    /// Server-side copy requests seen (`x-ms-copy-source` / `x-amz-copy-source`, GCS rewrites).
    pub copies: AtomicU64,
    /// Of those, copies that name the source version they must read (`x-amz-copy-source-if-
    /// match`, `x-ms-source-if-match`, GCS's `ifSourceGenerationMatch`).
    pub copies_pinned: AtomicU64,
    pub busy_503: AtomicU64,
    pub timeout_500: AtomicU64,
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
    pub denied: AtomicU64,
    /// Requests carrying file data passed on (for `FailAfter`).
    pub data_passed: AtomicU64,
    /// Requests answered with `FailAfter`'s status.
    pub failed_after: AtomicU64,
    /// Put Block requests seen (`comp=block` PUTs: one staged block each).
    pub put_blocks: AtomicU64,
    /// Of those, the ones `HoldBlocksAfter` holds.
    pub put_blocks_held: AtomicU64,
    /// Set by a test: `HoldBlocksAfter` holds no further request.
    pub hold_off: std::sync::atomic::AtomicBool,
    /// Path and block id of every Put Block the service staged, in the order answered.
    pub staged_blocks: Mutex<Vec<String>>,
    /// When set, every request carrying an `x-ms-content-crc64` header is kept in `crc64s`.
    pub keep_crc64: std::sync::atomic::AtomicBool,
    /// The `x-ms-content-crc64` header and the body of each such request (with `keep_crc64`).
    pub crc64s: Mutex<Vec<(String, Bytes)>>,
}

impl Counters {
    pub fn faults(&self) -> u64 {
        self.busy_503.load(Relaxed)
            + self.timeout_500.load(Relaxed)
            + self.resets.load(Relaxed)
            + self.stalls.load(Relaxed)
    }
}

struct State {
    upstream: String,
    client: reqwest::Client,
    mode: Mode,
    rng: Mutex<u64>,
    counters: Arc<Counters>,
    hook: Arc<Mutex<Option<Hook>>>,
    /// Held by the copy that runs the hook of `HookBeforeCopy`, so that later copies wait.
    copy_gate: tokio::sync::Mutex<()>,
}

/// What to run once, before the first LIST request that comes after a ranged GET (or, with
/// `HookBeforeCopy`, before a server-side copy).
pub type Hook = Box<dyn FnOnce() + Send>;

/// A running proxy; stopped when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, to use in place of the upstream's base URL.
    pub url: String,
    pub counters: Arc<Counters>,
    /// The hook, if it has not run: dropped here, not on the proxy's runtime (a hook may own
    /// a runtime of its own, which cannot be dropped there).
    hook: Arc<Mutex<Option<Hook>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.hook.lock().unwrap().take());
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn azure_error(status: u16, code: &str, msg: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-ms-error-code", code)
        .header("x-ms-request-id", "00000000-fault-proxy-0000-000000000000")
        .body(full(body))
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Busy,
    Timeout,
    Reset,
    Stall,
}

impl State {
    /// One draw of the seeded generator.
    fn next(&self) -> u64 {
        let mut g = self.rng.lock().unwrap();
        let mut x = *g;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *g = x;
        x
    }

    fn draw(&self) -> Fault {
        let Mode::Faults { per_mille, .. } = self.mode else {
            return Fault::None;
        };
        let mut g = self.rng.lock().unwrap();
        let mut x = *g;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *g = x;
        if x % 1000 >= per_mille {
            return Fault::None;
        }
        match (x / 1000) % 4 {
            0 => Fault::Busy,
            1 => Fault::Timeout,
            2 => Fault::Reset,
            _ => Fault::Stall,
        }
    }

    /// Run `hook`, if any, on a thread of its own (it may block on a runtime of its own).
    async fn run_hook(&self, hook: Option<Hook>) -> Result<(), std::io::Error> {
        if let Some(h) = hook {
            tokio::task::spawn_blocking(move || std::thread::spawn(h).join())
                .await
                .map_err(std::io::Error::other)?
                .map_err(|_| std::io::Error::other("fault proxy: the hook panicked"))?;
        }
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, std::io::Error> {
        let c = &self.counters;
        c.requests.fetch_add(1, Relaxed);
        if req.method() == hyper::Method::HEAD {
            c.heads.fetch_add(1, Relaxed);
        }
        if req.method() == hyper::Method::GET
            && req.uri().path().starts_with("/storage/v1/b/")
            && req.uri().path().contains("/o/")
        {
            c.gcs_object_gets.fetch_add(1, Relaxed);
        }
        if req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "comp=list"))
        {
            c.lists.fetch_add(1, Relaxed);
            if matches!(self.mode, Mode::FailLists) {
                c.timeout_500.fetch_add(1, Relaxed);
                return Ok(azure_error(
                    500,
                    "OperationTimedOut",
                    "The operation could not be completed within the permitted time.",
                ));
            }
            let hook = match c.range_gets.load(Relaxed) {
                _ if matches!(self.mode, Mode::HookBeforeCopy(_)) => None,
                0 => None,
                _ => self.hook.lock().unwrap().take(),
            };
            self.run_hook(hook).await?;
        }
        if let Mode::FailAfter { status, after } = self.mode {
            if c.data_passed.load(Relaxed) >= after {
                c.failed_after.fetch_add(1, Relaxed);
                let (code, msg) = match status {
                    403 => (
                        "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this permission.",
                    ),
                    _ => (
                        "InternalError",
                        "The server encountered an internal error. Please retry the request.",
                    ),
                };
                return Ok(azure_error(status, code, msg));
            }
        }
        let ranged = req.method() == hyper::Method::GET
            && (req.headers().contains_key("range") || req.headers().contains_key("x-ms-range"));
        if ranged {
            let n = c.range_gets.fetch_add(1, Relaxed);
            let busy = match self.mode {
                Mode::BusyFirstReads(first) => n < first,
                Mode::BusyReadsShare { per_mille, .. } => self.next() % 1000 < per_mille,
                _ => false,
            };
            if busy {
                c.busy_503.fetch_add(1, Relaxed);
                return Ok(azure_error(
                    503,
                    "ServerBusy",
                    "The server is currently unable to receive requests. Please retry your request.",
                ));
            }
            if matches!(self.mode, Mode::BusyReads) {
                c.busy_503.fetch_add(1, Relaxed);
                return Ok(azure_error(
                    503,
                    "ServerBusy",
                    "The server is currently unable to receive requests. Please retry your request.",
                ));
            }
        }
        if req.method() == hyper::Method::DELETE {
            c.deletes.fetch_add(1, Relaxed);
        }
        let bulk_delete = req.method() == hyper::Method::POST
            && req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "delete" || p == "delete="));
        if bulk_delete {
            c.bulk_deletes.fetch_add(1, Relaxed);
            if matches!(self.mode, Mode::NoBulkDelete) {
                return Ok(azure_error(
                    501,
                    "NotImplemented",
                    "A header you provided implies functionality that is not implemented.",
                ));
            }
        }
        let copy = req.headers().contains_key("x-ms-copy-source")
            || req.headers().contains_key("x-amz-copy-source")
            || req.uri().path().contains("/rewriteTo/");
        if copy {
            let seen = c.copies.fetch_add(1, Relaxed);
            let pinned = req.headers().contains_key("x-amz-copy-source-if-match")
                || req.headers().contains_key("x-ms-source-if-match")
                || req
                    .uri()
                    .query()
                    .is_some_and(|q| q.contains("ifSourceGenerationMatch="));
            if pinned {
                c.copies_pinned.fetch_add(1, Relaxed);
            }
            if let Mode::HookBeforeCopy(n) = self.mode
                && seen >= n
            {
                let _gate = self.copy_gate.lock().await;
                let hook = self.hook.lock().unwrap().take();
                self.run_hook(hook).await?;
            }
            if let Mode::HoldCopiesAfter(n) = self.mode
                && seen >= n
            {
                std::future::pending::<()>().await;
            }
            if matches!(self.mode, Mode::NoCopies) {
                return Ok(azure_error(
                    501,
                    "NotImplemented",
                    "Current API is not implemented yet.",
                ));
            }
        }
        let put_block = req.method() == hyper::Method::PUT
            && req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "comp=block"));
        if put_block {
            let seen = c.put_blocks.fetch_add(1, Relaxed);
            if let Mode::HoldBlocksAfter(n) = self.mode
                && seen >= n
                && !c.hold_off.load(Relaxed)
            {
                c.put_blocks_held.fetch_add(1, Relaxed);
                std::future::pending::<()>().await;
            }
        }
        let upload =
            req.method() == hyper::Method::POST && req.uri().path().starts_with("/upload/");
        if matches!(self.mode, Mode::DenyUploads) && upload {
            c.denied.fetch_add(1, Relaxed);
            return Ok(Response::builder()
                .status(403)
                .header("content-type", "application/json")
                .body(full(
                    r#"{"error":{"code":403,"message":"caller does not have storage.objects.create access"}}"#,
                ))
                .unwrap());
        }
        if matches!(self.mode, Mode::Deny) {
            c.denied.fetch_add(1, Relaxed);
            return Ok(azure_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request.",
            ));
        }
        let fault = self.draw();
        let (parts, mut body) = req.into_parts();
        let is_get = parts.method == hyper::Method::GET;
        // hbcp's own objects (lock, manifests, staging of GCS parts is not ours: it is data).
        let ours = parts.uri.path().contains("/.hbcp/") && !parts.uri.path().contains("gcs-parts")
            || parts
                .uri
                .query()
                .is_some_and(|q| q.contains("name=") && q.contains(".hbcp%2F"));
        // GCS JSON API uploads are POSTs to /upload/….
        let is_put = parts.method == hyper::Method::PUT
            || parts.method == hyper::Method::POST && parts.uri.path().starts_with("/upload/");
        // Read the request body frame by frame, counting what arrives (a client killed in the
        // middle of a body has still sent what was counted).
        let mut data = Vec::new();
        let declared: Option<usize> = parts
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(std::io::Error::other)?;
            if let Ok(d) = frame.into_data() {
                if is_put {
                    c.put_body_bytes.fetch_add(d.len() as u64, Relaxed);
                    if !ours {
                        c.put_data_bytes.fetch_add(d.len() as u64, Relaxed);
                    }
                }
                data.extend_from_slice(&d);
                if fault == Fault::Reset && declared.is_some_and(|n| n > 0 && data.len() * 2 >= n) {
                    // Drop the connection half-way through the upload.
                    c.resets.fetch_add(1, Relaxed);
                    return Err(std::io::Error::other(
                        "fault proxy: connection reset mid-body",
                    ));
                }
            }
        }
        if c.keep_crc64.load(Relaxed)
            && let Some(v) = parts.headers.get("x-ms-content-crc64")
        {
            let v = v.to_str().unwrap_or("").to_string();
            c.crc64s
                .lock()
                .unwrap()
                .push((v, Bytes::copy_from_slice(&data)));
        }
        match fault {
            Fault::Busy => {
                c.busy_503.fetch_add(1, Relaxed);
                return Ok(azure_error(
                    503,
                    "ServerBusy",
                    "The server is currently unable to receive requests. Please retry your request.",
                ));
            }
            Fault::Timeout => {
                c.timeout_500.fetch_add(1, Relaxed);
                return Ok(azure_error(
                    500,
                    "OperationTimedOut",
                    "The operation could not be completed within the permitted time.",
                ));
            }
            Fault::Stall => {
                c.stalls.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            _ => {}
        }
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut fwd = self
            .client
            .request(parts.method.clone(), format!("{}{pq}", self.upstream));
        for (k, v) in parts.headers.iter() {
            let name = k.as_str();
            if matches!(
                name,
                "host" | "connection" | "transfer-encoding" | "content-length"
            ) {
                continue;
            }
            fwd = fwd.header(k, v);
        }
        if data.is_empty() && declared == Some(0) {
            // An empty body is sent without a length unless told (Azurite answers such a Put
            // Blob of an empty file 400).
            fwd = fwd.header("content-length", "0");
        }
        let resp = match fwd.body(data).send().await {
            Ok(r) => r,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        if resp.status().is_success() && (ranged || is_put && !ours && declared.unwrap_or(0) > 0) {
            c.data_passed.fetch_add(1, Relaxed);
        }
        if resp.status().is_success() && put_block {
            let id = parts
                .uri
                .query()
                .and_then(|q| q.split('&').find(|p| p.starts_with("blockid=")))
                .unwrap_or("");
            c.staged_blocks
                .lock()
                .unwrap()
                .push(format!("{} {id}", parts.uri.path()));
        }
        let mut out = Response::builder().status(resp.status().as_u16());
        for (k, v) in resp.headers().iter() {
            if matches!(k.as_str(), "connection" | "transfer-encoding") {
                continue;
            }
            out = out.header(k, v);
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if is_get {
            c.get_body_bytes.fetch_add(bytes.len() as u64, Relaxed);
        }
        if fault == Fault::Reset && bytes.len() >= 2 {
            // A download cut off half-way: the declared length is kept, the body ends early.
            c.resets.fetch_add(1, Relaxed);
            let half = bytes.slice(..bytes.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::other(
                    "fault proxy: connection reset mid-body",
                )),
            ];
            let body = StreamBody::new(futures::stream::iter(frames)).boxed();
            return Ok(out.body(body).unwrap());
        }
        Ok(out.body(full(bytes)).unwrap())
    }
}

/// Start a proxy to `upstream` (`http://127.0.0.1:PORT` of Azurite) on 127.0.0.1.
pub fn start(upstream: &str, mode: Mode) -> Proxy {
    start_with_hook(upstream, mode, None)
}

/// [`start`], with a hook to run once, before the first LIST after a ranged GET.
pub fn start_with_hook(upstream: &str, mode: Mode, hook: Option<Hook>) -> Proxy {
    let hook = Arc::new(Mutex::new(hook));
    let counters = Arc::new(Counters::default());
    let seed = match mode {
        Mode::Faults { seed, .. } | Mode::BusyReadsShare { seed, .. } => seed | 1,
        _ => 1,
    };
    let state = Arc::new(State {
        upstream: upstream.trim_end_matches('/').to_string(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        mode,
        rng: Mutex::new(seed),
        counters: counters.clone(),
        hook: hook.clone(),
        copy_gate: tokio::sync::Mutex::new(()),
    });
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    acc = listener.accept() => {
                        let Ok((stream, _)) = acc else { continue };
                        let st = state.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let st = st.clone();
                                async move { st.handle(req).await }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                }
            }
        });
    });
    let addr = addr_rx.recv().unwrap();
    Proxy {
        url: format!("http://{addr}"),
        counters,
        hook,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}
