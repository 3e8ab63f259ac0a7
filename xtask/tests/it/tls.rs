//! The lean AWS feature set brings no default HTTPS client: `aws::https_client` is the one
//! the clients use. This proves it completes a real TLS handshake with the system's trust
//! store, against crates.io (which this machine kind always reaches; nothing else is).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::SdkError;

#[tokio::test]
async fn the_configured_https_client_completes_a_tls_handshake() {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url("https://index.crates.io")
        .http_client(xtask::aws::https_client())
        .build();
    let answer = aws_sdk_s3::Client::from_conf(config).list_buckets().send().await;
    match answer {
        // crates.io is no S3: any answer it gives means TLS and HTTP worked.
        Ok(_) | Err(SdkError::ServiceError(_)) | Err(SdkError::ResponseError(_)) => {}
        Err(other) => {
            panic!("no HTTP exchange over TLS: {}", aws_sdk_s3::error::DisplayErrorContext(&other))
        }
    }
}
