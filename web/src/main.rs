//! Starts the web application: configuration, logging, listener, graceful shutdown.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match web::Config::from_vars(|name| std::env::var(name).ok()) {
        Ok(config) => Arc::new(config),
        Err(err) => {
            eprintln!("web: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    web::init_logging(&config);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("cannot listen on {addr}: {err} (choose another PORT)");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        "{} {} ({}) listening on {local}",
        config.app_name,
        config.version,
        config.app_env
    );
    let app = web::router(Arc::clone(&config));
    match web::serve(listener, app, web::shutdown_signal(), config.shutdown_timeout).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("server failed: {err}");
            ExitCode::FAILURE
        }
    }
}
