//! The router in-process: every route, its status, content type and body.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

fn config(app_env: &str) -> Arc<web::Config> {
    let app_env = app_env.to_owned();
    Arc::new(
        web::Config::from_vars(move |name| match name {
            "APP_ENV" => Some(app_env.clone()),
            "APP_NAME" => Some("acme <web>".to_owned()),
            "APP_VERSION" => Some("0123abc".to_owned()),
            "SECRET_KEY" => Some("s3cr3t".to_owned()),
            _ => None,
        })
        .expect("valid config"),
    )
}

async fn get(app_env: &str, uri: &str) -> (StatusCode, Option<String>, String) {
    let response = web::router(config(app_env))
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_reports_status_and_version_as_json() {
    let (status, content_type, body) = get("staging", "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], "0123abc");
    assert_eq!(json["environment"], "staging");
}

#[tokio::test]
async fn index_shows_name_version_and_environment_escaped() {
    let (status, content_type, body) = get("production", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/html"));
    assert!(body.contains("<h1>acme &lt;web&gt;</h1>"), "{body}");
    assert!(body.contains("0123abc"), "{body}");
    assert!(body.contains("production"), "{body}");
    assert!(!body.contains("s3cr3t"), "the secret key must never be rendered");
}

#[tokio::test]
async fn unknown_paths_are_404() {
    for uri in ["/nope", "/health/extra", "/debug/sleep?ms=1"] {
        let (status, _, _) = get("production", uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn debug_route_exists_only_in_test_env() {
    let (status, _, body) = get("test", "/debug/sleep?ms=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "slept 5ms\n");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let response = web::router(config("local"))
        .oneshot(Request::post("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let big = "a".repeat(web::MAX_HEADER_BYTES + 1);
    let response = web::router(config("local"))
        .oneshot(Request::get("/health").header("x-big", big).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}
