//! The private registry: image references, and a login session in a docker config
//! directory of its own (the user's `~/.docker/config.json` is never touched, nor an OS
//! keychain), with the password fed through stdin; the run's scrubber (`ui`) masks it in
//! anything docker says back.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};

use crate::docker::docker;
use crate::run::cmd::{Cmd, CommandFailed};
use crate::run::secret::Secret;
use crate::{Context, Env};

/// `repository:tag`, both validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    pub fn new(repository: &str, tag: &str) -> anyhow::Result<ImageRef> {
        validate_repository(repository)?;
        validate_tag(tag)?;
        Ok(ImageRef { repository: repository.to_owned(), tag: tag.to_owned() })
    }

    /// The registry host (`quay.io`, `127.0.0.1:5000`), `docker.io` when the name has none.
    pub fn registry(&self) -> &str {
        registry_of(&self.repository)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

pub fn registry_of(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> anyhow::Result<()> {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok || tag.len() > 128 {
        bail!(
            "invalid image tag {tag:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', \
             not starting with '.' or '-' (pass --tag with such a value)"
        );
    }
    Ok(())
}

/// A repository without tag: an optional `host[:port]/`, then lowercase path components of
/// letters, digits and single separators (`.`, `_`, `__`, `-`).
pub fn validate_repository(repository: &str) -> anyhow::Result<()> {
    let invalid = |why: &str| {
        anyhow!(
            "invalid image repository {repository:?}: {why} \
             (set `image` in [workspace.metadata.deploy] or DEPLOY_IMAGE, e.g. quay.io/acme/web)"
        )
    };
    let path = match registry_of(repository) {
        "docker.io" if !repository.starts_with("docker.io/") => repository,
        host => {
            let rest = &repository[host.len()..];
            rest.strip_prefix('/').ok_or_else(|| invalid("no repository after the host"))?
        }
    };
    if path.contains('@') || path.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        return Err(invalid("give the repository without a tag or digest"));
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && !component.contains("..");
        if !ok {
            return Err(invalid(&format!(
                "path component {component:?} is not lowercase letters, digits and separators"
            )));
        }
    }
    Ok(())
}

/// `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`, both required to push.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    pub fn from_env(env: &Env, registry: &str) -> anyhow::Result<Credentials> {
        let missing: Vec<&str> = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
            .into_iter()
            .filter(|name| env.get(name).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} not set: pushing to {registry} needs REGISTRY_USERNAME and REGISTRY_PASSWORD \
                 (in CI, from a context; never in a file)",
                missing.join(" and ")
            );
        }
        Ok(Credentials {
            username: env.get("REGISTRY_USERNAME").unwrap_or_default().to_owned(),
            password: Secret::new(env.get("REGISTRY_PASSWORD").unwrap_or_default()),
        })
    }
}

impl Credentials {
    /// `base64(user:password)`, as a docker config carries it: as secret as the password.
    pub fn token(&self) -> Secret {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.username, self.password.expose());
        Secret::new(base64::engine::general_purpose::STANDARD.encode(pair))
    }

    /// The docker config (`{"auths": …}`, what `docker login` writes) with these
    /// credentials for `registry`: what Elastic Beanstalk reads to pull from it.
    pub fn docker_config(&self, registry: &str) -> Secret {
        let auths = serde_json::json!({ "auths": { server_key(registry): { "auth": self.token().expose() } } });
        Secret::new(auths.to_string())
    }
}

/// A docker CLI talking to one registry with its own config directory.
#[derive(Debug)]
pub struct Session {
    pub registry: String,
    pub config_dir: PathBuf,
    pub credentials: Credentials,
    /// Remove `config_dir` (and the login it holds) when the session ends.
    owns_dir: bool,
}

impl Session {
    /// A session as planned: nothing is created until [`Session::login`].
    pub fn planned(registry: &str, credentials: Credentials) -> Session {
        let config_dir =
            std::env::temp_dir().join(format!("xtask-docker-config-{}", std::process::id()));
        Session { registry: registry.to_owned(), config_dir, credentials, owns_dir: false }
    }

    fn docker(&self) -> Cmd {
        docker().arg("--config").arg(&self.config_dir)
    }

    pub fn login_cmd(&self) -> Cmd {
        self.docker()
            .args(["login", "--username", &self.credentials.username, "--password-stdin"])
            .arg(&self.registry)
            .stdin_secret(self.credentials.password.expose().as_bytes())
    }

    pub fn manifest_cmd(&self, image: &ImageRef) -> Cmd {
        let insecure = is_loopback(&self.registry).then_some("--insecure");
        self.docker().args(["manifest", "inspect"]).args(insecure).arg(image.to_string())
    }

    pub fn push_cmd(&self, image: &ImageRef) -> Cmd {
        self.docker().arg("push").arg(image.to_string())
    }

    /// Creates the private config directory (mode 0700) and logs in. The password stays in
    /// that directory's `config.json` and goes with it: the config names no credential
    /// helper for this registry, so docker never hands the password to an OS keychain.
    /// (`"credsStore": ""` would not do: a docker CLI whose config holds no auth entry
    /// picks the platform's default helper when one is on PATH.)
    pub fn login(mut self, ctx: &Context) -> anyhow::Result<Session> {
        create_private_dir(&self.config_dir)?;
        self.owns_dir = true;
        let config = serde_json::json!({ "credHelpers": { server_key(&self.registry): "" } });
        let path = self.config_dir.join("config.json");
        fs::write(&path, config.to_string())
            .with_context(|| format!("write the docker config {}", path.display()))?;
        let login = self.login_cmd();
        login.assert_no_secret_in_args(self.credentials.password.expose())?;
        if let Err(err) = login.run_quiet(ctx) {
            bail!("{}", self.explain(&said(err)?, "log in"));
        }
        Ok(self)
    }

    /// Whether `image` is already in the registry (a manifest check; nothing is pulled).
    pub fn has(&self, ctx: &Context, image: &ImageRef) -> anyhow::Result<bool> {
        let Err(err) = self.manifest_cmd(image).run_quiet(ctx) else { return Ok(true) };
        let said = said(err)?;
        // The docker CLI reports a missing tag or repository only in words.
        if said.contains("no such manifest") || said.contains("manifest unknown") {
            return Ok(false);
        }
        bail!("{}", self.explain(&said, &format!("look up {image}")))
    }

    pub fn push(&self, ctx: &Context, image: &ImageRef) -> anyhow::Result<()> {
        if let Err(err) = self.push_cmd(image).keep_stderr().run(ctx) {
            bail!("{}", self.explain(&said(err)?, &format!("push {image}")));
        }
        Ok(())
    }

    /// One line naming the registry, what failed, and the fix.
    fn explain(&self, said: &str, doing: &str) -> String {
        let registry = &self.registry;
        let lower = said.to_lowercase();
        if lower.contains("unauthorized")
            || lower.contains("incorrect username or password")
            || lower.contains("401")
        {
            format!(
                "registry {registry} refused the credentials of {:?} (cannot {doing}): check \
                 REGISTRY_USERNAME and REGISTRY_PASSWORD [{said}]",
                self.credentials.username
            )
        } else if lower.contains("denied") || lower.contains("403") {
            format!(
                "registry {registry} denied {:?} permission to {doing}: give the account write \
                 access to the repository [{said}]",
                self.credentials.username
            )
        } else if [
            "connection refused",
            "no such host",
            "timeout",
            "dial tcp",
            "network is unreachable",
            "eof",
        ]
        .iter()
        .any(|s| lower.contains(s))
        {
            format!(
                "registry {registry} is unreachable (cannot {doing}): is it up, and is the image \
                 setting right? [{said}]"
            )
        } else {
            format!("registry {registry}: cannot {doing} [{said}]")
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = fs::remove_dir_all(&self.config_dir);
        }
    }
}

/// The key docker's config uses for `registry` (Docker Hub keeps its historical URL).
pub fn server_key(registry: &str) -> &str {
    if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry }
}

/// The last line docker wrote to stderr when it failed; any other error (Ctrl-C, docker
/// missing) as it is.
fn said(err: anyhow::Error) -> anyhow::Result<String> {
    match err.downcast_ref::<CommandFailed>() {
        Some(failed) => Ok(failed.stderr.rsplit(" | ").next().unwrap_or_default().to_owned()),
        None => Err(err),
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, _)| host);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let _ = fs::remove_dir_all(dir);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create the docker config directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_found_as_docker_finds_them() {
        assert_eq!(registry_of("quay.io/acme/web"), "quay.io");
        assert_eq!(registry_of("127.0.0.1:5000/web"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/web"), "localhost");
        assert_eq!(registry_of("acme/web"), "docker.io");
        assert_eq!(registry_of("web"), "docker.io");
    }

    #[test]
    fn tags_follow_docker_grammar() {
        for good in ["0123abc", "v1.2.3", "_x", "a".repeat(128).as_str()] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a b", "sha:sha", "ü", "a".repeat(129).as_str()] {
            let err = validate_tag(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid image tag"), "{bad}: {err}");
        }
    }

    #[test]
    fn repositories_are_validated_with_the_fix() {
        for good in [
            "quay.io/acme/web",
            "127.0.0.1:5000/xtask-it/web-1",
            "acme/web",
            "web",
            "docker.io/library/web",
        ] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
        for bad in ["quay.io/Acme/web", "quay.io/acme/web:tag", "quay.io/", "web/", "a//b", "-web"]
        {
            let err = validate_repository(bad).unwrap_err().to_string();
            assert!(err.contains("DEPLOY_IMAGE"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_password_goes_through_stdin_only() {
        let creds = Credentials { username: "robot".into(), password: Secret::new("hunter2") };
        let session = Session::planned("quay.io", creds);
        let login = session.login_cmd();
        assert!(
            login.to_string().ends_with("login --username robot --password-stdin quay.io <<< ***")
        );
        assert!(!login.to_string().contains("hunter2"));
        assert!(login.assert_no_secret_in_args("hunter2").is_ok());
    }

    #[test]
    fn the_docker_config_for_elastic_beanstalk_carries_the_token() {
        let credentials =
            Credentials { username: "acme+deployer".into(), password: Secret::new("pw") };
        let file = credentials.docker_config("quay.io");
        let json: serde_json::Value = serde_json::from_str(file.expose()).unwrap();
        assert_eq!(json["auths"]["quay.io"]["auth"], "YWNtZStkZXBsb3llcjpwdw==");
        assert!(
            credentials.docker_config("docker.io").expose().contains("https://index.docker.io/v1/")
        );
        assert_eq!(format!("{file:?} {:?}", credentials.token()), "*** ***");
    }

    #[test]
    fn missing_credentials_are_named() {
        let env = Env::default().with("REGISTRY_USERNAME", "robot");
        let err = Credentials::from_env(&env, "quay.io").unwrap_err().to_string();
        assert!(err.starts_with("REGISTRY_PASSWORD not set"), "{err}");
    }

    #[test]
    fn loopback_registries_are_spoken_to_over_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("quay.io"));
    }
}
