//! `front`: the local stand-in for the nginx proxy that Elastic Beanstalk runs in front of
//! the application container. `cargo xtask deploy --local` runs it on the published port.
//!
//! Each connection is forwarded to the first address of `FRONT_UPSTREAM` (a Docker network
//! alias that every running release carries) that accepts it. A release that is draining
//! after SIGTERM has closed its listener, so new connections go to the release that
//! replaces it: a switch leaves no moment where nothing answers.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, lookup_host};

/// How long a connection waits for some release to accept it before a 502.
const UPSTREAM_PATIENCE: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_millis(25);
const BAD_GATEWAY: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\
content-length: 28\r\nconnection: close\r\n\r\nno release is answering yet\n";

#[tokio::main]
async fn main() -> ExitCode {
    let listen = std::env::var("FRONT_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".to_owned());
    let Ok(upstream) = std::env::var("FRONT_UPSTREAM") else {
        eprintln!("front: FRONT_UPSTREAM is not set: give it the releases' HOST:PORT");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("front: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("front: forwarding {listen} to {upstream}");
    let stop = web::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(forward(client, upstream.clone()));
                }
                Err(err) => eprintln!("front: accept failed: {err}"),
            },
            () = &mut stop => return ExitCode::SUCCESS,
        }
    }
}

async fn forward(mut client: TcpStream, upstream: String) {
    let deadline = Instant::now() + UPSTREAM_PATIENCE;
    loop {
        if let Some(mut server) = connect_any(&upstream).await {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            return;
        }
        if Instant::now() >= deadline {
            let _ = client.write_all(BAD_GATEWAY).await;
            return;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// Resolves `upstream` afresh (releases come and go) and connects to the first that accepts.
async fn connect_any(upstream: &str) -> Option<TcpStream> {
    for addr in lookup_host(upstream).await.ok()? {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            return Some(stream);
        }
    }
    None
}
