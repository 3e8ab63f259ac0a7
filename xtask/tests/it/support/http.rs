//! HTTP for the tests, on hyper (the build has it for the SDK): a GET of a loopback
//! service, one request with headers (the registry's API), and a server that answers every
//! request alike (a service that refuses).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response as HyperResponse};
use hyper_util::rt::TokioIo;

/// An answer: status, headers (names lower case) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `METHOD path` on `addr` (`127.0.0.1:PORT`) with `headers`, within 5 s.
pub fn call(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<Response> {
    runtime().block_on(async {
        let within = Duration::from_secs(5);
        let stream = tokio::net::TcpStream::connect(addr);
        let stream = tokio::time::timeout(within, stream).await.ok()?.ok()?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(connection);
        let mut request = Request::builder().method(method).uri(path).header("Host", addr);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::<Bytes>::new()).ok()?;
        let response =
            tokio::time::timeout(within, sender.send_request(request)).await.ok()?.ok()?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = if method == "HEAD" {
            Bytes::new()
        } else {
            response.into_body().collect().await.ok()?.to_bytes()
        };
        Some(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    })
}

/// `GET path` on `addr`.
pub fn get(addr: &str, path: &str) -> Option<Response> {
    call(addr, "GET", path, &[])
}

/// A server on 127.0.0.1 that answers every request with `status` (`"400 Bad Request"`), a
/// body of `content_type` and `body`: a service that refuses. Returns its address.
pub fn stub_server(status: &str, content_type: &'static str, body: &'static str) -> String {
    stub_server_but(None, &[], status, content_type, body)
}

/// As [`stub_server`], but the requests whose path holds one of `forwarded` go to the
/// server on 127.0.0.1:`upstream`: a service that refuses all requests but those.
pub fn stub_server_but(
    upstream: Option<u16>,
    forwarded: &'static [&'static str],
    status: &str,
    content_type: &'static str,
    body: &'static str,
) -> String {
    let status: u16 = status.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        runtime().block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| async move {
                        let path = request.uri().path();
                        if forwarded.iter().any(|f| path.contains(f)) {
                            return forward(upstream, request).await;
                        }
                        let stub = hyper::Response::builder()
                            .status(status)
                            .header("Content-Type", content_type)
                            .body(Full::new(Bytes::from_static(body.as_bytes())));
                        Ok(stub.expect("a response of known parts"))
                    });
                    let connection = hyper::server::conn::http1::Builder::new();
                    let _ = connection.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
    });
    addr
}

/// One request forwarded to the loopback `upstream` port, its answer read whole; 503 when
/// nothing answers there.
pub async fn forward(
    upstream: Option<u16>,
    request: Request<Incoming>,
) -> Result<HyperResponse<Full<Bytes>>, hyper::Error> {
    let unavailable = || {
        let answer = HyperResponse::builder().status(503).body(Full::new(Bytes::new()));
        Ok(answer.expect("a response of known parts"))
    };
    let Some(port) = upstream else { return unavailable() };
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return unavailable();
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let response = sender.send_request(Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = response.into_parts();
    Ok(HyperResponse::from_parts(parts, Full::new(body.collect().await?.to_bytes())))
}
