//! The private registry: how to log in (a user and password, or Amazon ECR's token:
//! `docker::ecr`), and a login session in a docker config directory of its own
//! (the user's `~/.docker/config.json` is never touched, nor an OS keychain), with the
//! password fed through stdin; the run's scrubber (`ui`) masks it in anything docker says
//! back. The directory is private: a random name (never derived from the PID), mode 0700,
//! made atomically (`tempfile`), and removed when the session ends, whatever the ending.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::aws::{Aws, DEFAULT_DEADLINE, Deadline};
use crate::config::settings::{RegistryKind, Settings};
use crate::docker::credentials::{Credentials, server_key};
use crate::docker::docker;
use crate::docker::ecr::{self, Ecr};
use crate::docker::reference::{ImageRef, registry_of};
use crate::run::cmd::{Cmd, CommandFailed};
use crate::run::{Context, Env};

/// How the registry of `repository` is logged in to: the `registry` setting, else ECR for
/// an ECR host and a user and password for any other.
pub fn kind(settings: &Settings, repository: &str) -> RegistryKind {
    settings.registry.unwrap_or(match ecr::parse_host(registry_of(repository)) {
        Some(_) => RegistryKind::Ecr,
        None => RegistryKind::Basic,
    })
}

/// How a session logs in.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`.
    Basic(Credentials),
    /// A token from ECR, fetched when the session logs in.
    Ecr(Ecr),
}

impl Auth {
    /// How to log in to push `image`, from the settings and the environment.
    pub fn for_image(env: &Env, settings: &Settings, image: &ImageRef) -> anyhow::Result<Auth> {
        let registry = image.registry();
        match kind(settings, &image.repository) {
            RegistryKind::Ecr => {
                Ok(Auth::Ecr(Ecr::new(registry, &image.repository, settings.create_repository)))
            }
            RegistryKind::Basic if settings.create_repository => bail!(
                "create_repository applies to Amazon ECR only, and {registry} is not an ECR \
                 registry: remove the setting (or DEPLOY_CREATE_REPOSITORY), or set `registry = \
                 \"ecr\"` if it is one"
            ),
            RegistryKind::Basic => Ok(Auth::Basic(Credentials::from_env(env, registry)?)),
        }
    }
}

/// A docker CLI talking to one registry with its own config directory.
#[derive(Debug)]
pub struct Session {
    pub registry: String,
    pub auth: Auth,
    /// What `docker login` takes: the basic credentials, or ECR's token once fetched.
    credentials: Option<Credentials>,
    /// The private config directory, once logged in; removed (with the login it holds)
    /// when the session ends.
    config_dir: Option<tempfile::TempDir>,
}

/// How a plan shows the config directory before it exists.
const PLANNED_CONFIG_DIR: &str = "$TMPDIR/xtask-docker-XXXXXX";

impl Session {
    /// A session as planned: nothing is created or asked until [`Session::login`].
    pub fn planned(registry: &str, auth: Auth) -> Session {
        let credentials = match &auth {
            Auth::Basic(credentials) => Some(credentials.clone()),
            Auth::Ecr(_) => None,
        };
        Session { registry: registry.to_owned(), auth, credentials, config_dir: None }
    }

    /// The config directory docker is pointed at.
    pub fn config_dir(&self) -> PathBuf {
        match &self.config_dir {
            Some(dir) => dir.path().to_path_buf(),
            None => PathBuf::from(PLANNED_CONFIG_DIR),
        }
    }

    /// The ECR registry, when the session logs in to one.
    pub fn ecr(&self) -> Option<&Ecr> {
        match &self.auth {
            Auth::Ecr(ecr) => Some(ecr),
            Auth::Basic(_) => None,
        }
    }

    /// The basic credentials (Elastic Beanstalk needs them to pull); none for ECR.
    pub fn basic(&self) -> Option<&Credentials> {
        match &self.auth {
            Auth::Basic(credentials) => Some(credentials),
            Auth::Ecr(_) => None,
        }
    }

    fn docker(&self) -> Cmd {
        docker().arg("--config").arg(self.config_dir())
    }

    /// `docker login`, the password on stdin (ECR's user `AWS` until its token is known).
    pub fn login_cmd(&self) -> Cmd {
        let (username, password) = match &self.credentials {
            Some(credentials) => (credentials.username.as_str(), credentials.password.expose()),
            None => ("AWS", "<token from GetAuthorizationToken>"),
        };
        self.docker()
            .args(["login", "--username", username, "--password-stdin"])
            .arg(&self.registry)
            .stdin_secret(password.as_bytes())
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
    /// For ECR, the repository and the token come first, through `aws`.
    pub fn login(mut self, ctx: &Context, aws: Option<&Aws>) -> anyhow::Result<Session> {
        if let Auth::Ecr(ecr) = &self.auth {
            let aws = aws.context("internal error: an ECR login without AWS clients")?;
            let deadline = Deadline::after(DEFAULT_DEADLINE);
            self.credentials = Some(aws.block_on(ecr.authorize(ctx, &aws.clients, deadline))?);
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("xtask-docker-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .context("create the private docker config directory (in TMPDIR)")?;
        let path = dir.path().join("config.json");
        self.config_dir = Some(dir);
        let config = serde_json::json!({ "credHelpers": { server_key(&self.registry): "" } });
        fs::write(&path, config.to_string())
            .with_context(|| format!("write the docker config {}", path.display()))?;
        let login = self.login_cmd();
        if let Some(credentials) = &self.credentials {
            login.assert_no_secret_in_args(credentials.password.expose())?;
        }
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
        let ecr = matches!(self.auth, Auth::Ecr(_));
        let user = self.credentials.as_ref().map_or("AWS", |c| c.username.as_str());
        let has = |words: &[&str]| words.iter().any(|w| said.to_lowercase().contains(w));
        // Unreachable first: docker's words for it carry the address, whose port may hold
        // "401" or "403".
        let (what, fix) = if has(&UNREACHABLE) {
            ("is unreachable".to_owned(), "is it up, and is the image setting right?")
        } else if ecr && has(&["token has expired"]) {
            // ECR's words for a token past its 12 hours (reported on push and pull).
            ("refused the expired ECR token".to_owned(), "run the command again for a new one")
        } else if ecr && has(&["name unknown"]) {
            (
                "has no such repository".to_owned(),
                "create it, or set `create_repository = true` in [workspace.metadata.deploy]",
            )
        } else if has(&["unauthorized", "incorrect username or password", "401"]) {
            if ecr {
                (
                    "refused the ECR token".to_owned(),
                    "a token opens the ECR registries of the account of your AWS credentials: \
                     check that the image setting names one of them, region included",
                )
            } else {
                (
                    format!("refused the credentials of {user:?}"),
                    "check REGISTRY_USERNAME and REGISTRY_PASSWORD",
                )
            }
        } else if has(&["denied", "403"]) {
            if ecr {
                (
                    "denied permission".to_owned(),
                    "allow ecr:BatchGetImage, ecr:BatchCheckLayerAvailability, \
                     ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and \
                     ecr:PutImage on the repository",
                )
            } else {
                (
                    format!("denied {user:?} permission"),
                    "give the account write access to the repository",
                )
            }
        } else {
            return format!("registry {registry}: cannot {doing} [{said}]");
        };
        format!("registry {registry} {what} (cannot {doing}): {fix} [{said}]")
    }
}

/// What docker says when it cannot reach a registry.
const UNREACHABLE: [&str; 6] =
    ["connection refused", "no such host", "timeout", "dial tcp", "network is unreachable", "eof"];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::secret::Secret;

    #[test]
    fn the_password_goes_through_stdin_only() {
        let creds = Credentials { username: "robot".into(), password: Secret::new("hunter2") };
        let session = Session::planned("quay.io", Auth::Basic(creds));
        let login = session.login_cmd();
        assert!(
            login.to_string().ends_with("login --username robot --password-stdin quay.io <<< ***")
        );
        assert!(!login.to_string().contains("hunter2"));
        assert!(login.assert_no_secret_in_args("hunter2").is_ok());
        let ecr = Ecr::new("127.0.0.1:5001", "127.0.0.1:5001/web", false);
        let session = Session::planned("127.0.0.1:5001", Auth::Ecr(ecr));
        let login = session.login_cmd().to_string();
        assert!(login.ends_with("login --username AWS --password-stdin 127.0.0.1:5001 <<< ***"));
    }

    #[test]
    fn refusals_are_explained_with_the_fix_of_each_kind_of_registry() {
        let host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        let ecr = Session::planned(host, Auth::Ecr(Ecr::new(host, &format!("{host}/web"), false)));
        let creds = Credentials { username: "robot".into(), password: Secret::new("pw") };
        let basic = Session::planned("quay.io", Auth::Basic(creds));
        // docker's words, as reported for ECR (aws-cli#6580, and pushes to a missing repository).
        let expired = "denied: Your authorization token has expired. Reauthenticate and try again.";
        assert!(ecr.explain(expired, "push web:1").starts_with(&format!(
            "registry {host} refused the expired ECR token (cannot push web:1): run the command \
             again for a new one [denied: Your"
        )));
        let missing = "name unknown: The repository with name 'web' does not exist in the registry \
                       with id '123456789012'";
        assert!(ecr.explain(missing, "push web:1").contains("has no such repository"));
        let unauthorized = "Error response from daemon: login attempt failed with status: 401 \
                            Unauthorized";
        assert!(
            ecr.explain(unauthorized, "log in").contains("refused the ECR token (cannot log in)")
        );
        assert!(basic.explain(unauthorized, "log in").contains(
            "refused the credentials of \"robot\" (cannot log in): check REGISTRY_USERNAME"
        ));
        assert!(
            basic.explain("denied: requested access to the resource is denied", "push").contains(
                "denied \"robot\" permission (cannot push): give the account write access"
            )
        );
        // A refused connection to a port whose number holds 401 is no refused login.
        let down = "Get \"http://127.0.0.1:40151/v2/\": dial tcp 127.0.0.1:40151: connect: \
                    connection refused";
        assert!(basic.explain(down, "log in").contains("is unreachable (cannot log in)"));
    }

    #[test]
    fn loopback_registries_are_spoken_to_over_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("quay.io"));
    }
}
