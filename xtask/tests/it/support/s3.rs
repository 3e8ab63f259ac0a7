//! moto's S3 started by `.ci/moto`: a signed client for it, and buckets removed when a test
//! ends.

use super::{http, unique};

/// moto's address (`XTASK_TEST_MOTO`, else `127.0.0.1:5100`); panics with the fix when it does
/// not answer.
pub fn moto() -> String {
    let addr = std::env::var("XTASK_TEST_MOTO").unwrap_or_else(|_| "127.0.0.1:5100".to_owned());
    if http::get(&addr, "/moto-api/").is_none() {
        panic!("moto does not answer on {addr}: run `bash .ci/moto` first");
    }
    addr
}

/// A signed S3 client for moto (it refuses anonymous reads of private objects), with a
/// runtime of its own so that synchronous test code can call it.
pub struct S3 {
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

/// An object as read back.
pub struct Object {
    /// The body as text; a zip's is each entry's name and text, one after the other, so that
    /// what a test looks for (an image name, a leaked secret) is found inside a bundle too.
    pub body: String,
    /// The body as stored (a zip is not text).
    pub bytes: Vec<u8>,
    pub encryption: Option<String>,
    pub content_type: Option<String>,
}

impl S3 {
    pub fn new(addr: &str) -> S3 {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .http_client(http)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        S3 { client: aws_sdk_s3::Client::from_conf(config), runtime }
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.runtime.block_on(self.client.create_bucket().bucket(bucket).send()).unwrap();
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        self.runtime.block_on(async {
            let object = self.client.get_object().bucket(bucket).key(key).send().await.ok()?;
            let encryption = object.server_side_encryption().map(|e| e.as_str().to_owned());
            let content_type = object.content_type().map(str::to_owned);
            let bytes = object.body.collect().await.ok()?.into_bytes().to_vec();
            let body = match zip_entries(&bytes) {
                Some(entries) => entries
                    .iter()
                    .map(|(name, _, content)| {
                        format!("== {name}\n{}\n", String::from_utf8_lossy(content))
                    })
                    .collect(),
                None => String::from_utf8_lossy(&bytes).into_owned(),
            };
            Some(Object { body, bytes, encryption, content_type })
        })
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        let body = aws_sdk_s3::primitives::ByteStream::from(bytes);
        self.runtime
            .block_on(self.client.put_object().bucket(bucket).key(key).body(body).send())
            .unwrap();
    }

    /// A presigned GetObject URL of the object, valid `expires` (S3's SigV4 query
    /// signature, as the service hands out for logs).
    pub fn presign_get(&self, bucket: &str, key: &str, expires: std::time::Duration) -> String {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires).unwrap();
        let request = self
            .runtime
            .block_on(self.client.get_object().bucket(bucket).key(key).presigned(config))
            .unwrap();
        request.uri().to_owned()
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let listed = self.runtime.block_on(self.client.list_objects_v2().bucket(bucket).send());
        listed
            .map(|l| l.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn delete_bucket(&self, bucket: &str) {
        for key in self.keys(bucket) {
            let _ =
                self.runtime.block_on(self.client.delete_object().bucket(bucket).key(key).send());
        }
        let _ = self.runtime.block_on(self.client.delete_bucket().bucket(bucket).send());
    }
}

/// A zip's entries in their order (name, unix mode, content); `None` for what is not a zip.
pub fn zip_entries(bytes: &[u8]) -> Option<Vec<(String, u32, Vec<u8>)>> {
    use std::io::Read;
    if !bytes.starts_with(b"PK\x03\x04") {
        return None;
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).ok()?;
        let mut content = Vec::new();
        file.read_to_end(&mut content).ok()?;
        let mode = file.unix_mode().unwrap_or(0) & 0o7777;
        entries.push((file.name().ok()?.into_owned(), mode, content));
    }
    Some(entries)
}

/// A bucket in moto, emptied and removed when the test ends.
pub struct Bucket {
    pub s3: String,
    pub name: String,
    client: S3,
}

impl Bucket {
    pub fn new() -> Bucket {
        let s3 = moto();
        let name = unique("xtask-it").to_lowercase();
        let client = S3::new(&s3);
        client.create_bucket(&name);
        Bucket { s3, name, client }
    }

    pub fn get(&self, key: &str) -> Option<Object> {
        self.client.get(&self.name, key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.client.keys(&self.name)
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        self.client.delete_bucket(&self.name);
    }
}
