//! The web application: configuration from the environment, the router, logging, and a
//! server that drains in-flight requests on SIGTERM (Elastic Beanstalk stops the old
//! container that way on every deploy).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::{Future, IntoFuture};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Environment names in which the app may run without a `SECRET_KEY`.
const NON_PRODUCTION_ENVS: [&str; 3] = ["local", "development", "test"];

/// The most header bytes (names and values) a request may carry; more is a 431, as from
/// nginx in front of the app on Elastic Beanstalk (hyper alone would accept ~400 KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Longest sleep the test-only `/debug/sleep` route accepts.
const MAX_DEBUG_SLEEP: Duration = Duration::from_secs(60);

/// Settings read from environment variables (see the README, "The web application").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub app_name: String,
    /// `APP_ENV`: the environment name shown on the page; anything other than
    /// `local`, `development` or `test` is production mode.
    pub app_env: String,
    /// `APP_VERSION`: the git commit the image was built from (set by `web/Dockerfile`).
    pub version: String,
    pub secret_key: Option<String>,
    pub log_dir: Option<PathBuf>,
    pub log_level: tracing::Level,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
}

/// A configuration error, written for the person reading the container's log.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration through `var` (the process environment in `main`, a map in
    /// tests), so that nothing here touches global state.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let port = match var("PORT") {
            None => 80,
            Some(raw) => raw.parse().map_err(|_| {
                ConfigError(format!("PORT={raw:?} is not a port number: set PORT to 0..=65535"))
            })?,
        };
        let shutdown_timeout = match var("SHUTDOWN_TIMEOUT_SECS") {
            None => Duration::from_secs(20),
            Some(raw) => Duration::from_secs(raw.parse().map_err(|_| {
                ConfigError(format!(
                    "SHUTDOWN_TIMEOUT_SECS={raw:?} is not a whole number of seconds"
                ))
            })?),
        };
        let log_level = match var("LOG_LEVEL") {
            None => tracing::Level::INFO,
            Some(raw) => raw.parse().map_err(|_| {
                ConfigError(format!(
                    "LOG_LEVEL={raw:?} is not a level: use error, warn, info, debug or trace"
                ))
            })?,
        };
        let app_env = var("APP_ENV").unwrap_or_else(|| "production".to_owned());
        let secret_key = var("SECRET_KEY");
        let config = Config {
            port,
            app_name: var("APP_NAME").unwrap_or_else(|| "web".to_owned()),
            version: var("APP_VERSION").unwrap_or_else(|| "dev".to_owned()),
            log_dir: var("LOG_DIR").map(PathBuf::from),
            log_level,
            shutdown_timeout,
            secret_key,
            app_env,
        };
        if config.is_production() && config.secret_key.is_none() {
            return Err(ConfigError(format!(
                "SECRET_KEY is not set: APP_ENV={} runs in production mode and needs it \
                 (set SECRET_KEY, or APP_ENV=local for a local run)",
                config.app_env
            )));
        }
        Ok(config)
    }

    pub fn is_production(&self) -> bool {
        !NON_PRODUCTION_ENVS.contains(&self.app_env.as_str())
    }
}

/// Sends log lines to stdout and, when `LOG_DIR` is set, appends them to `LOG_DIR/web.log`
/// (the directory Elastic Beanstalk maps from the Dockerrun `Logging` key).
/// An unwritable `LOG_DIR` is reported on stdout and does not stop the app.
pub fn init_logging(config: &Config) {
    use tracing_subscriber::fmt::writer::MakeWriterExt;

    let file = config.log_dir.as_deref().map(open_log_file);
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(config.log_level);
    match &file {
        Some(Ok(file)) => builder.with_writer(io::stdout.and(file.clone())).init(),
        _ => builder.with_writer(io::stdout).init(),
    }
    if let Some(Err(problem)) = file {
        tracing::warn!("{problem}; logging to stdout only");
    }
}

fn open_log_file(dir: &Path) -> Result<Arc<File>, String> {
    let path = dir.join("web.log");
    fs::create_dir_all(dir)
        .and_then(|()| OpenOptions::new().create(true).append(true).open(&path))
        .map(Arc::new)
        .map_err(|err| format!("cannot write log file {}: {err}", path.display()))
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    app: &'a str,
    version: &'a str,
    environment: &'a str,
}

/// The application's routes: `/health`, `/`, and a 404 for everything else.
/// In `APP_ENV=test` only, `/debug/sleep?ms=N` answers after N milliseconds (for the
/// graceful-shutdown test).
pub fn router(config: Arc<Config>) -> Router {
    let mut router = Router::new().route("/health", get(health)).route("/", get(index));
    if config.app_env == "test" {
        router = router.route("/debug/sleep", get(debug_sleep));
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(limit_headers))
        .layer(middleware::from_fn(access_log))
        .with_state(config)
}

async fn health(State(config): State<Arc<Config>>) -> Response {
    let body = Health {
        status: "ok",
        app: &config.app_name,
        version: &config.version,
        environment: &config.app_env,
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn index(State(config): State<Arc<Config>>) -> Html<String> {
    let name = escape_html(&config.app_name);
    let version = escape_html(&config.version);
    let env = escape_html(&config.app_env);
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{name}</title></head>\n\
         <body>\n<h1>{name}</h1>\n<p>Version <code>{version}</code> running in <strong>{env}</strong>.</p>\n\
         </body>\n</html>\n"
    ))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}

#[derive(Deserialize)]
struct SleepParams {
    ms: u64,
}

async fn debug_sleep(Query(params): Query<SleepParams>) -> String {
    let wanted = Duration::from_millis(params.ms).min(MAX_DEBUG_SLEEP);
    tokio::time::sleep(wanted).await;
    format!("slept {}ms\n", wanted.as_millis())
}

async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize =
        request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if size > MAX_HEADER_BYTES {
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large\n")
            .into_response();
    }
    next.run(request).await
}

async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Serves `app` until `shutdown` resolves, then lets in-flight requests finish for at most
/// `drain` before returning.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        })
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        _ = stopping_rx => {}
    }
    tracing::info!("shutting down: finishing in-flight requests (up to {}s)", drain.as_secs());
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("requests still running after {}s: stopping anyway", drain.as_secs());
            Ok(())
        }
    }
}

/// Resolves on SIGTERM (what `docker stop` and Elastic Beanstalk send) or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::error!("cannot listen for SIGTERM: {err}");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn production_without_secret_key_is_refused_with_the_fix() {
        let err = Config::from_vars(vars(&[])).unwrap_err().to_string();
        assert!(err.contains("SECRET_KEY is not set"), "{err}");
        assert!(err.contains("APP_ENV=production"), "{err}");
        let err = Config::from_vars(vars(&[("APP_ENV", "staging"), ("SECRET_KEY", "")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("APP_ENV=staging"), "{err}");
    }

    #[test]
    fn local_runs_need_no_secret_and_defaults_apply() {
        let config = Config::from_vars(vars(&[("APP_ENV", "local")])).unwrap();
        assert_eq!(config.port, 80);
        assert_eq!(config.version, "dev");
        assert_eq!(config.shutdown_timeout, Duration::from_secs(20));
        assert!(!config.is_production());
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let err = Config::from_vars(vars(&[("APP_ENV", "test"), ("PORT", "http")])).unwrap_err();
        assert!(err.to_string().starts_with("PORT=\"http\""), "{err}");
        let err =
            Config::from_vars(vars(&[("APP_ENV", "test"), ("LOG_LEVEL", "loud")])).unwrap_err();
        assert!(err.to_string().starts_with("LOG_LEVEL="), "{err}");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<a href='x'>&\""), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
    }
}
