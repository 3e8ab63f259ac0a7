//! A client nobody here wrote must accept the Elastic Beanstalk fake's answers: the EB CLI
//! (`awsebcli` from PyPI, in the venv `.ci/setup` makes) deploys a version with `eb deploy`
//! and reads `eb status` against the fake and moto, as it would against the service. What
//! it needs that real EB sends (`PlatformArn`, `SolutionStackName`, `EnvironmentArn` and
//! `Tier` on every environment, DescribePlatformVersion, ListPlatformBranches, a `Date` on
//! every answer) the fake gives because of this test.

use std::fs;
use std::path::PathBuf;

use crate::support::{ENVIRONMENT, TempDir, World, wait_healthy};

/// The venv's `eb`.
fn eb_cli() -> PathBuf {
    let venv = std::env::var("XTASK_TEST_EBCLI").unwrap_or_else(|_| "/var/tmp/xtask-ebcli".into());
    let eb = PathBuf::from(venv).join("bin/eb");
    assert!(eb.exists(), "no EB CLI at {}: run `bash .ci/setup` first", eb.display());
    eb
}

/// `eb ARGS` in `project`, against `world`'s fake and moto, with nothing of this machine's
/// AWS configuration; its update check cannot leave the machine (HTTPS_PROXY: a closed
/// port).
fn eb(world: &World, project: &TempDir, args: &[&str]) -> (Option<i32>, String) {
    let home = project.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let output = duct::cmd(eb_cli(), args)
        .dir(project.path())
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        .env("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", &world.fake.endpoint)
        .env("AWS_ENDPOINT_URL_S3", format!("http://{}", world.bucket.s3))
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin_null()
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_eb_cli_deploys_a_version_and_reads_the_status_against_the_fake() {
    let world = World::prebuilt(&["v1", "v2"]);
    world.deploy(&["staging", "--tag", "v1"]).assert_success();
    world.deploy(&["staging", "--tag", "v2"]).assert_success();
    let project = TempDir::new("eb-cli");
    fs::create_dir_all(project.path().join(".elasticbeanstalk")).unwrap();
    fs::write(
        project.path().join(".elasticbeanstalk/config.yml"),
        "global:\n  application_name: acme-web\n  default_region: us-east-1\n",
    )
    .unwrap();
    // The EB CLI wants some source in the directory, even for an existing version.
    fs::write(project.path().join("README"), "deployed by label\n").unwrap();

    let before = world.updates();
    let (code, output) = eb(&world, &project, &["deploy", ENVIRONMENT, "--label", "v1"]);
    assert_eq!(code, Some(0), "eb deploy:\n{output}");
    assert!(output.contains("Environment update completed successfully."), "{output}");
    assert_eq!(world.updates() - before, 1, "one UpdateEnvironment");
    let health = wait_healthy(&format!("127.0.0.1:{}", world.port), 10).body;
    assert!(health.contains("\"v1\""), "the environment runs v1 again: {health}");

    let (code, output) = eb(&world, &project, &["status", ENVIRONMENT]);
    assert_eq!(code, Some(0), "eb status:\n{output}");
    for expected in [ENVIRONMENT, "acme-web", "Deployed Version: v1", "Status: Ready"] {
        assert!(output.contains(expected), "{expected:?} in:\n{output}");
    }
}
