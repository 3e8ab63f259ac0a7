//! The test-image cache tarball that CI keeps between runs (`docker save` / `docker load`).
//!
//! The image ID and layers inside a tarball are read from its `manifest.json` and image
//! config by seeking over the layers (milliseconds, even for gigabytes), so the cache is
//! loaded only when the daemon lacks those layers and saved only when the build produced
//! other ones. Layers, not IDs: BuildKit may give the very same layers a new image ID (their
//! history's times come from whichever build cached them), and saving 1.4 GB again for that
//! would make every such run pay a save, and the next a load. A save goes to a temporary
//! file renamed into place, so an interrupted save never harms the previous cache.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::docker::{self, docker};
use crate::run::Context;
use crate::run::cmd::last_lines;
use crate::run::interrupt::Interrupted;
use crate::run::pipe;

/// What a cache path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cached {
    Missing,
    /// A `docker save` tarball of one image.
    Image {
        id: String,
        tags: Vec<String>,
        /// The image's layers (`rootfs.diff_ids` of its config), bottom first.
        layers: Vec<String>,
    },
    /// Something that cannot be used: truncated, not a tar, unreadable. The reason says which.
    Unusable(String),
}

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

/// The part of an image config we read.
#[derive(Deserialize)]
struct ImageConfig {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// Reads which image a tarball holds, without reading its layers.
pub fn inspect(path: &Path) -> Cached {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Cached::Missing,
        Err(err) => return Cached::Unusable(format!("cannot open it: {err}")),
    };
    let read = read_manifest(file).and_then(|(id, tags, config)| {
        let layers = read_layers(path, &config)?;
        Ok(Cached::Image { id, tags, layers })
    });
    read.unwrap_or_else(|err| Cached::Unusable(format!("{err:#}")))
}

/// The image's ID, tags, and the path of its config in the tarball.
fn read_manifest(file: File) -> anyhow::Result<(String, Vec<String>, String)> {
    let size = file.metadata()?.len();
    let mut archive = tar::Archive::new(file);
    let mut end_of_entries = 0;
    for entry in archive.entries_with_seek().context("not a tar archive")? {
        let mut entry = entry.context("not a valid tar archive")?;
        end_of_entries = entry.raw_file_position() + entry.size();
        if entry.path().ok().as_deref() != Some(Path::new("manifest.json")) {
            continue;
        }
        let mut json = String::new();
        entry.read_to_string(&mut json).context("cannot read manifest.json")?;
        let manifest: Vec<ManifestEntry> =
            serde_json::from_str(&json).context("manifest.json is not a docker save manifest")?;
        let [only] = manifest.as_slice() else {
            bail!("it holds {} images, expected 1", manifest.len());
        };
        let hex = only.config.trim_start_matches("blobs/sha256/").trim_end_matches(".json");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("manifest.json names config {:?}, not an image ID", only.config);
        }
        if end_of_entries > size {
            bail!("it is truncated ({size} bytes)");
        }
        let tags = only.repo_tags.clone().unwrap_or_default();
        return Ok((format!("sha256:{hex}"), tags, only.config.clone()));
    }
    if end_of_entries > size {
        bail!("it is truncated ({size} bytes)");
    }
    bail!("it has no manifest.json (not a `docker save` tarball, or truncated)")
}

/// The `rootfs.diff_ids` of the image config at `config` in the tarball at `path`.
fn read_layers(path: &Path, config: &str) -> anyhow::Result<Vec<String>> {
    let mut archive = tar::Archive::new(File::open(path)?);
    for entry in archive.entries_with_seek().context("not a tar archive")? {
        let mut entry = entry.context("not a valid tar archive")?;
        if entry.path().ok().as_deref() != Some(Path::new(config)) {
            continue;
        }
        let mut json = String::new();
        entry.read_to_string(&mut json).with_context(|| format!("cannot read {config}"))?;
        let config: ImageConfig =
            serde_json::from_str(&json).with_context(|| format!("{config} is no image config"))?;
        return Ok(config.rootfs.diff_ids);
    }
    bail!("it has no {config}, which its manifest.json names (truncated?)")
}

/// `docker load` from `path`, fed through a pipe so that progress can be shown.
pub fn load(ctx: &Context, path: &Path) -> anyhow::Result<()> {
    let output = pipe::feed(ctx, &docker().args(["load", "--quiet"]), path, "docker load")?;
    if !output.status.success() {
        bail!("docker load failed: {}", last_lines(&output.stderr, 2));
    }
    let loaded = String::from_utf8_lossy(&output.stdout);
    for line in loaded.lines().filter(|l| !l.trim().is_empty()) {
        ctx.ui.info(line.trim());
    }
    Ok(())
}

/// `docker save image` into `path` via `path.partial`, renamed into place only once the
/// whole tarball is written, synced and readable. Any failure or Ctrl-C removes the
/// partial file and leaves the previous cache as it was.
pub fn save(ctx: &Context, image: &str, path: &Path, size_hint: Option<u64>) -> anyhow::Result<()> {
    let kept = || format!("cache {} left as it was", path.display());
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .with_context(|| format!("create the cache directory {}", dir.display()))?;
    let partial = Partial(partial_path(path));
    let mut file =
        File::create(&partial.0).with_context(|| format!("create {}", partial.0.display()))?;
    let save = docker().args(["save", image]);
    let output = pipe::drain(ctx, &save, &mut file, &partial.0, "docker save", size_hint)
        .with_context(kept)?;
    if !output.status.success() {
        bail!("docker save {image} failed: {} ({})", last_lines(&output.stderr, 2), kept());
    }
    file.sync_all().with_context(|| format!("sync {}", partial.0.display()))?;
    drop(file);
    if let Cached::Unusable(why) = inspect(&partial.0) {
        bail!("docker save wrote an unusable tarball ({why}); {}", kept());
    }
    fs::rename(&partial.0, path)
        .with_context(|| format!("move {} to {}", partial.0.display(), path.display()))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Removes the partial file unless it was renamed into place.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Makes the daemon hold the layers the cache tarball holds, loading it only when the
/// daemon's `image` has other ones, and returns those layers. A missing or unusable cache is
/// never an error: it is reported, the image is built from scratch, and the next save
/// replaces the file.
pub fn restore(ctx: &Context, path: &Path, image: &str) -> anyhow::Result<Option<Vec<String>>> {
    ctx.ui.step(format_args!("restore the test image cache {}", path.display()));
    let (id, tags, layers) = match inspect(path) {
        Cached::Missing => {
            ctx.ui.info("no cache file yet: building without it");
            return Ok(None);
        }
        Cached::Unusable(why) => {
            ctx.ui.warn(format_args!(
                "cache {} is unusable ({why}): rebuilding; it will be replaced",
                path.display()
            ));
            return Ok(None);
        }
        Cached::Image { id, tags, layers } => (id, tags, layers),
    };
    if !tags.iter().any(|tag| tag == image) {
        ctx.ui.warn(format_args!(
            "cache {} holds {}, not {image}: rebuilding; it will be replaced",
            path.display(),
            if tags.is_empty() { "an untagged image".to_owned() } else { tags.join(", ") }
        ));
        return Ok(None);
    }
    if docker::image_layers(ctx, image)?.as_ref() == Some(&layers) {
        ctx.ui.info(format_args!(
            "the daemon already holds {image} with these layers (cache {}): not loaded",
            docker::short_id(&id)
        ));
        return Ok(Some(layers));
    }
    match load(ctx, path) {
        Ok(()) => Ok(Some(layers)),
        Err(err) if err.is::<Interrupted>() => Err(err),
        Err(err) => {
            ctx.ui.warn(format_args!(
                "cannot load cache {} ({err:#}): rebuilding; it will be replaced",
                path.display()
            ));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("xtask-cache-{}-{name}", std::process::id()));
        fs::write(&path, bytes).unwrap();
        path
    }

    const ID: &str = "e0fa757d059452c74806b41b84dd322ab21fafe5e6f1c4a50a532091707da360";

    #[test]
    fn reads_the_image_id_and_layers_of_a_docker_save_tarball() {
        let manifest =
            format!(r#"[{{"Config":"{ID}.json","RepoTags":["web-test:latest"],"Layers":[]}}]"#);
        let config = r#"{"architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:aa","sha256:bb"]}}"#;
        let bytes = tarball(&[
            ("abc/layer.tar", &[0; 4096]),
            (&format!("{ID}.json"), config.as_bytes()),
            ("manifest.json", manifest.as_bytes()),
        ]);
        let path = write_temp("good.tar", &bytes);
        assert_eq!(
            inspect(&path),
            Cached::Image {
                id: format!("sha256:{ID}"),
                tags: vec!["web-test:latest".into()],
                layers: vec!["sha256:aa".into(), "sha256:bb".into()],
            }
        );
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn reads_the_oci_layout_of_newer_docker() {
        let manifest = format!(r#"[{{"Config":"blobs/sha256/{ID}","RepoTags":null,"Layers":[]}}]"#);
        let config = r#"{"rootfs":{"type":"layers","diff_ids":["sha256:cc"]}}"#;
        let blob = format!("blobs/sha256/{ID}");
        let files = [(blob.as_str(), config.as_bytes()), ("manifest.json", manifest.as_bytes())];
        let path = write_temp("oci.tar", &tarball(&files));
        assert!(matches!(
            inspect(&path),
            Cached::Image { id, tags, layers } if id.ends_with(ID) && tags.is_empty() && layers == ["sha256:cc"]
        ));
        let without_config =
            write_temp("no-config.tar", &tarball(&[("manifest.json", manifest.as_bytes())]));
        assert!(
            matches!(inspect(&without_config), Cached::Unusable(why) if why.contains("no blobs/sha256/"))
        );
        fs::remove_file(without_config).unwrap();
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn truncated_garbage_and_missing_files_are_told_apart() {
        let manifest = format!(r#"[{{"Config":"{ID}.json","RepoTags":[],"Layers":[]}}]"#);
        let bytes =
            tarball(&[("abc/layer.tar", &[7; 8192]), ("manifest.json", manifest.as_bytes())]);
        let truncated = write_temp("trunc.tar", &bytes[..5000]);
        assert!(matches!(inspect(&truncated), Cached::Unusable(why) if why.contains("truncated")));
        let garbage = write_temp("garbage.tar", b"this is not a tarball at all, not even close");
        assert!(matches!(inspect(&garbage), Cached::Unusable(_)));
        assert_eq!(inspect(Path::new("/nonexistent/xtask/image.tar")), Cached::Missing);
        fs::remove_file(truncated).unwrap();
        fs::remove_file(garbage).unwrap();
    }

    #[test]
    fn the_partial_file_sits_beside_the_cache() {
        assert_eq!(partial_path(Path::new("/c/image.tar")), Path::new("/c/image.tar.partial"));
    }
}
