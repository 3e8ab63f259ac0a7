//! What the Docker platform does on an instance: fetch the Dockerrun from S3 (moto), check it
//! by the documented v1 rules, `docker pull` the image with the uploaded registry auth file
//! (or, for an ECR image, the instance profile's access), run it with the environment's
//! option values as its environment, and see it answer its health check path.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::CONTAINER_LABEL;
use super::http::get_status;
use super::state::World;

/// One deployment's inputs.
pub struct Deployment<'a> {
    pub world: &'a World,
    pub bundle: Option<&'a (String, String)>,
    pub previous_serving: Option<&'a (String, u16)>,
    pub options: &'a [(String, String, String)],
    pub request: &'a str,
    pub port: u16,
}

/// The Dockerrun of a source bundle: the bundle itself, or, in a zip, `Dockerrun.aws.json`
/// at its root (AWS's "Docker configuration" page: a source bundle is the Dockerrun, or a
/// zip with it at the root beside `.ebextensions` and `.platform`); a zip without one fails
/// the deployment as EB's engine does ("Dockerrun.aws.json is missing").
fn dockerrun_of(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(String::from_utf8_lossy(bytes).into_owned());
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the source bundle is not a valid zip: {e}"))?;
    let mut file = archive
        .by_name("Dockerrun.aws.json")
        .map_err(|_| "Dockerrun.aws.json is missing from the source bundle's root".to_owned())?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

pub fn docker(args: &[&str]) -> Output {
    duct::cmd("docker", args).stdout_capture().stderr_capture().unchecked().run().unwrap()
}

/// Runs the bundle's image; returns the container and the loopback port it answers on.
pub fn deploy(d: Deployment<'_>) -> Result<(String, u16), String> {
    let Some((bucket, key)) = d.bundle else {
        return d.previous_serving.cloned().ok_or_else(|| "no application version".into());
    };
    let s3 = crate::support::S3::new(&d.world.config.s3);
    let bytes =
        s3.get(bucket, key).ok_or_else(|| format!("cannot read s3://{bucket}/{key}"))?.bytes;
    let dockerrun = Dockerrun::check(&dockerrun_of(&bytes)?)?;
    let config_dir = d.world.dir.join(format!("docker-config-{}", d.request));
    std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
    let ecr = d.world.config.instance_profile_ecr.as_ref();
    if let Some((host, user, password)) =
        ecr.filter(|(host, _, _)| dockerrun.image.starts_with(&format!("{host}/")))
    {
        let login = duct::cmd!(
            "docker",
            "--config",
            &config_dir,
            "login",
            "--username",
            user,
            "--password-stdin",
            host
        )
        .stdin_bytes(password.as_bytes())
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| e.to_string())?;
        if !login.status.success() {
            return Err(format!(
                "instance profile cannot log in to ECR: {}",
                String::from_utf8_lossy(&login.stderr).trim()
            ));
        }
    } else if let Some((bucket, key)) = &dockerrun.authentication {
        let auth = s3.get(bucket, key).ok_or_else(|| format!("cannot read s3://{bucket}/{key}"))?;
        std::fs::write(config_dir.join("config.json"), auth.body).map_err(|e| e.to_string())?;
    }
    let config = config_dir.to_string_lossy().into_owned();
    let pull = docker(&["--config", &config, "pull", "--quiet", &dockerrun.image]);
    let _ = std::fs::remove_dir_all(&config_dir);
    if !pull.status.success() {
        return Err(format!(
            "cannot pull {}: {}",
            dockerrun.image,
            String::from_utf8_lossy(&pull.stderr).trim()
        ));
    }
    run(&d, &dockerrun)
}

fn run(d: &Deployment<'_>, dockerrun: &Dockerrun) -> Result<(String, u16), String> {
    let container = crate::support::unique("xtask-fake-eb");
    let logs = d.world.dir.join(format!("logs-{}", d.request));
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777));
    let mut args: Vec<String> =
        ["run", "--detach", "--name", &container, "--label"].map(str::to_owned).to_vec();
    args.push(format!("{CONTAINER_LABEL}={}", d.port));
    args.extend(["--publish".to_owned(), format!("127.0.0.1::{}", dockerrun.port)]);
    if let Some(dir) = &dockerrun.logging {
        args.extend(["--volume".to_owned(), format!("{}:{dir}", logs.display())]);
    }
    // Option values reach the container as its environment; through docker's own
    // environment, so that none is in a command line.
    let env: Vec<(String, String)> = d
        .options
        .iter()
        .filter(|(ns, _, _)| ns == "aws:elasticbeanstalk:application:environment")
        .map(|(_, name, value)| (name.clone(), value.clone()))
        .collect();
    for (name, _) in &env {
        args.extend(["--env".to_owned(), name.clone()]);
    }
    if let Some(entrypoint) = &dockerrun.entrypoint {
        args.extend(["--entrypoint".to_owned(), entrypoint.clone()]);
    }
    args.push(dockerrun.image.clone());
    args.extend(dockerrun.command.iter().flat_map(|c| c.split_whitespace().map(str::to_owned)));
    let mut run = duct::cmd("docker", &args);
    for (name, value) in &env {
        run = run.env(name, value);
    }
    let started =
        run.stdout_capture().stderr_capture().unchecked().run().map_err(|e| e.to_string())?;
    if !started.status.success() {
        return Err(String::from_utf8_lossy(&started.stderr).trim().to_owned());
    }
    let published = docker(&["port", &container, &format!("{}/tcp", dockerrun.port)]);
    let port = String::from_utf8_lossy(&published.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:").and_then(|p| p.trim().parse::<u16>().ok()));
    let answered =
        port.is_some_and(|port| answers(port, &health_path(d.options), Duration::from_secs(30)));
    match port {
        Some(port) if answered => Ok((container, port)),
        _ => {
            docker(&["rm", "--force", &container]);
            Err("the application did not answer its health check".to_owned())
        }
    }
}

/// The health check path: the `Application Healthcheck URL` option, else `/`.
fn health_path(options: &[(String, String, String)]) -> String {
    options
        .iter()
        .find(|(ns, name, _)| {
            ns == "aws:elasticbeanstalk:application" && name == "Application Healthcheck URL"
        })
        .and_then(|(_, _, value)| value.find('/').map(|i| value[i..].to_owned()))
        .unwrap_or_else(|| "/".to_owned())
}

/// Whether `GET path` on the loopback port answers 200 within `within`.
fn answers(port: u16, path: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if get_status(port, path) == Some(200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// What the Docker platform reads of a v1 Dockerrun.aws.json, by the rules of the EB
/// developer guide ("Docker configuration": v1 keys; `Ports` required with `Image`; only
/// the first port is routed; `Authentication` names the auth file's Bucket and Key).
struct Dockerrun {
    image: String,
    port: u16,
    authentication: Option<(String, String)>,
    logging: Option<String>,
    entrypoint: Option<String>,
    command: Option<String>,
}

impl Dockerrun {
    fn check(text: &str) -> Result<Dockerrun, String> {
        let invalid = |why: &str| format!("Invalid Dockerrun.aws.json: {why}, abort deployment");
        let json: Value = serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
        if json["AWSEBDockerrunVersion"] != "1" && json["AWSEBDockerrunVersion"] != 1 {
            return Err("Invalid Dockerrun.aws.json version, abort deployment".into());
        }
        let image = json["Image"]["Name"].as_str().filter(|n| !n.is_empty());
        let image = image.ok_or_else(|| invalid("no Image.Name"))?.to_owned();
        let port = &json["Ports"][0]["ContainerPort"];
        let port = port
            .as_str()
            .map(str::to_owned)
            .or_else(|| port.as_u64().map(|p| p.to_string()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| invalid("Ports is required with Image"))?;
        let authentication = match &json["Authentication"] {
            Value::Null => None,
            auth => Some((
                auth["Bucket"]
                    .as_str()
                    .ok_or_else(|| invalid("no Authentication.Bucket"))?
                    .to_owned(),
                auth["Key"].as_str().ok_or_else(|| invalid("no Authentication.Key"))?.to_owned(),
            )),
        };
        let text = |key: &str| json[key].as_str().map(str::to_owned);
        Ok(Dockerrun {
            image,
            port,
            authentication,
            logging: text("Logging"),
            entrypoint: text("Entrypoint"),
            command: text("Command"),
        })
    }
}
