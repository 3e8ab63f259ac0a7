//! A version's source bundle as uploaded: the rendered Dockerrun alone (JSON), or, when the
//! bundle directory has `.ebextensions/` or `.platform/` files, a zip of the Dockerrun at its
//! root and those files. The zip is reproducible, so that the same inputs always give the
//! same bytes (and the same content-addressed key): entries in name order, every timestamp
//! 1980-01-01, modes 0644 (0755 for hooks and files executable in git), deflate at a fixed
//! level. A changed hook under an existing label is therefore refused like a changed
//! Dockerrun (`publish`).

use std::io::{Cursor, Write as _};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::config::bundle::{Extra, Extras};
use crate::config::dockerrun::Dockerrun;

/// The Dockerrun's name, at the bundle's root.
pub const DOCKERRUN: &str = "Dockerrun.aws.json";
/// Elastic Beanstalk's limit on a source bundle.
const MAX_BUNDLE: usize = 500 << 20;
/// The deflate level: fixed, so that the bytes never depend on a default.
const LEVEL: i64 = 6;

/// The bundle as uploaded: its bytes, their SHA-256, the key carrying it, and its entries
/// (path, mode, size) for `--dry-run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub key: String,
    /// Empty for a Dockerrun alone.
    pub entries: Vec<(String, u32, usize)>,
    /// The rendered Dockerrun (JSON), in it.
    pub dockerrun: Vec<u8>,
}

impl Bundle {
    pub fn new(
        application: &str,
        tag: &str,
        dockerrun: &Dockerrun,
        extras: Option<&Extras>,
    ) -> anyhow::Result<Bundle> {
        let json = dockerrun.to_bytes();
        let Some(extras) = extras else {
            let digest = sha256(&json);
            let key = format!("{application}/deploy/{tag}/{digest}/{DOCKERRUN}");
            return Ok(Bundle {
                bytes: json.clone(),
                digest,
                key,
                entries: Vec::new(),
                dockerrun: json,
            });
        };
        let dockerrun = Extra { path: DOCKERRUN.to_owned(), bytes: json.clone(), mode: 0o644 };
        let mut files: Vec<&Extra> = extras.files.iter().chain([&dockerrun]).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes = zip(&files).context("cannot make the bundle's zip")?;
        if bytes.len() > MAX_BUNDLE {
            bail!(
                "the bundle is {} MiB, over Elastic Beanstalk's 500 MiB: keep large files out of \
                 {}/",
                bytes.len() >> 20,
                extras.dir
            );
        }
        let digest = sha256(&bytes);
        let key = format!("{application}/deploy/{tag}/{digest}/bundle.zip");
        let entries = files.iter().map(|f| (f.path.clone(), f.mode, f.bytes.len())).collect();
        Ok(Bundle { bytes, digest, key, entries, dockerrun: json })
    }

    /// `zip` or `json`, as `versions list` says it.
    pub fn kind_of(key: &str) -> &'static str {
        if key.ends_with(".zip") { "zip" } else { "json" }
    }
}

fn zip(files: &[&Extra]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for file in files {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(LEVEL))
            .last_modified_time(DateTime::default())
            .unix_permissions(file.mode);
        writer.start_file(file.path.as_str(), options)?;
        writer.write_all(&file.bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
