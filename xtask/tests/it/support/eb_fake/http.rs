//! The fake's wire, on hyper: the HTTP/1.1 server that hands each form-encoded request to
//! the `World` and answers its XML with the service's `Date` (the EB CLI needs one on every
//! answer; the SDK reads the clock from it) and `x-amzn-RequestId` headers, or loses the
//! answer as a fault asks; each environment's load balancer (an HTTP proxy on its port); and
//! the health checks of the containers (hyper's client).

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::query::{Form, http_date};
use super::state::World;
use super::xml::Loss;

/// The answer was carried out and the connection is cut: the client sees no answer.
#[derive(Debug)]
struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut after the request was carried out")
    }
}

impl std::error::Error for Cut {}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves HTTP/1.1 on `listener`, each request answered by `answer`, until `stop`.
fn serve_http<F, Fut, E>(listener: TcpListener, stop: Arc<AtomicBool>, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    thread::spawn(move || {
        runtime().block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = stopped(&stop) => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new();
                    let service = service_fn(answer);
                    let _ = connection.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
    });
}

/// Serves the Query API on `listener` until the world stops.
pub fn serve(listener: TcpListener, world: World) {
    let stop = Arc::clone(&world.stop);
    serve_http(listener, stop, move |request| handle(world.clone(), request));
}

async fn handle(world: World, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Cut> {
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let form: Form = form_urlencoded::parse(&body).into_owned().collect();
    let action = form.get("Action").cloned().unwrap_or_default();
    let answering = world.clone();
    let answer = tokio::task::spawn_blocking(move || answering.answer(&action, &form))
        .await
        .expect("the fake's answer does not panic");
    match answer.loss {
        Some(Loss::Late(after)) => tokio::time::sleep(after).await,
        Some(Loss::Cut) => return Err(Cut),
        None => {}
    }
    Ok(Response::builder()
        .status(answer.status)
        .header("Content-Type", "text/xml")
        .header("x-amzn-RequestId", &answer.request_id)
        .header("Date", http_date(world.now()))
        .body(Full::new(Bytes::from(answer.body)))
        .expect("a response of known parts"))
}

/// The status of `GET path` on the loopback `port`, if it answers within 2 s.
pub fn get_status(port: u16, path: &str) -> Option<u16> {
    runtime().block_on(async {
        let within = Duration::from_secs(2);
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port));
        let stream = tokio::time::timeout(within, stream).await.ok()?.ok()?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(connection);
        let request = Request::get(path)
            .header("Host", format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = tokio::time::timeout(within, sender.send_request(request)).await.ok()?;
        Some(response.ok()?.status().as_u16())
    })
}

/// The environment's load balancer on `port`: each request forwarded to the container the
/// environment serves from, or 503 while there is none (as an ELB answers with no healthy
/// target).
pub fn load_balancer(port: u16, name: String, world: World) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let stop = Arc::clone(&world.stop);
    serve_http(listener, stop, move |request| {
        let upstream = world.lock().environments.get(&name).and_then(|e| e.serving.clone());
        crate::support::http::forward(upstream.map(|(_, port)| port), request)
    });
}
