//! Amazon ECR as the registry, on real parts: moto's ECR answers `GetAuthorizationToken`,
//! `DescribeRepositories` and `CreateRepository` to the real SDK client; the registry on
//! 127.0.0.1:5001 takes user `AWS` with the password in moto's token, as ECR's registry takes
//! the tokens of its API; the Elastic Beanstalk fake pulls from it with the instance
//! profile, as the Docker platform does for ECR images, with no auth file. `registry = "ecr"`
//! (DEPLOY_REGISTRY) makes these loopback hosts ECR registries.

use std::fs;

use crate::support::ecr::{self, Repository};
use crate::support::http::stub_server;
use crate::support::{
    ArgvWatch, ENVIRONMENT, Run, TempDir, World, docker_lock, registry, unique, wait_healthy,
    xtask_in,
};

/// The xtask on this workspace; of a variable given twice, the last value counts.
fn xtask(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut last: Vec<(&str, &str)> = Vec::new();
    for (key, value) in env {
        last.retain(|(k, _)| k != key);
        last.push((key, value));
    }
    xtask_in(&crate::support::root(), args, &last)
}

/// The token and the password it carries appear nowhere in `text`.
fn assert_no_token(text: &str) {
    assert!(!text.contains(&ecr::token()), "the ECR token leaked:\n{text}");
    assert!(!text.contains(&ecr::registry().password), "the ECR password leaked:\n{text}");
}

fn last_line(run: &Run) -> &str {
    run.output.trim_end().lines().last().unwrap_or("")
}

#[test]
fn build_push_then_deploy_to_ecr_with_a_token_and_no_auth_file() {
    let _lock = docker_lock();
    let repository = Repository::new(false);
    let world = World::ecr(&repository);
    let tag = unique("e");
    let mut env = world.env_with(&repository.env());
    env.push(("DEPLOY_CREATE_REPOSITORY", "true".to_owned()));

    // `build --push`: the repository is created, the token logs in, the image is pushed;
    // no command line ever holds the token or its password.
    let watch = ArgvWatch::start(vec![ecr::token(), ecr::registry().password]);
    let run = xtask(&["build", "--push", "--tag", &tag], &env);
    let (seen, scans) = watch.stop();
    run.assert_success()
        .assert_contains(&format!(
            "ECR token from GetAuthorizationToken; repository {} created (tags immutable)",
            repository.name
        ))
        .assert_contains(&format!("ok: pushed {}:{tag}", repository.image));
    assert_no_token(&run.output);
    assert!(seen.is_empty(), "the token was in a command line: {seen:?}");
    assert!(scans > 10, "the watcher ran during the push ({scans} scans)");
    assert!(repository.exists(), "moto's ECR has the repository");
    assert!(ecr::registry().digest(&repository.name, &tag).is_some(), "the image is in ECR");
    // The private docker config with the login is gone: no file left holds the token.
    for entry in fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("xtask-docker-config-") {
            let config = fs::read_to_string(entry.path().join("config.json")).unwrap_or_default();
            assert_no_token(&config);
        }
    }

    // Again: the repository and the tag are there, nothing is built or pushed.
    xtask(&["build", "--push", "--tag", &tag], &env)
        .assert_success()
        .assert_contains("nothing to build or push");

    // `deploy`: no auth file; the instance profile pulls; the new version answers.
    let run = world.deploy_with(&["staging", "--tag", &tag], &repository.env());
    run.assert_success().assert_contains(&format!("ok: {ENVIRONMENT} runs {tag}, health Green"));
    assert_no_token(&run.output);
    let keys = world.bucket.keys();
    assert!(!keys.iter().any(|k| k.ends_with("registry-auth.json")), "no auth file: {keys:?}");
    let bundle = keys.iter().find(|k| k.contains(&format!("/deploy/{tag}/"))).unwrap();
    let dockerrun = world.bucket.get(bundle).unwrap().body;
    assert!(!dockerrun.contains("Authentication"), "{dockerrun}");
    assert!(dockerrun.contains(&format!("{}:{tag}", repository.image)), "{dockerrun}");
    let health = wait_healthy(&format!("127.0.0.1:{}", world.port), 5).body;
    assert!(health.contains(&tag), "{health}");
}

#[test]
fn dry_runs_for_ecr_show_the_token_as_stars_and_ask_nothing() {
    let repository = Repository::new(false);
    let mut env = repository.env();
    env.extend([("DEPLOY_CREATE_REPOSITORY", "true".to_owned()), ("SECRET_KEY", unique("k"))]);
    let run = xtask(&["build", "--push", "--dry-run", "--tag", "t1"], &env);
    run.assert_success()
        .assert_contains("get an ECR authorization token (GetAuthorizationToken)")
        .assert_contains(&format!(
            "check the ECR repository {} (DescribeRepositories): create it when missing",
            repository.name
        ))
        .assert_contains("login --username AWS --password-stdin 127.0.0.1:5001 <<< ***");
    assert!(!repository.exists(), "a dry run creates nothing");

    let run = xtask(&["deploy", "staging", "--dry-run", "--tag", "t1"], &env);
    run.assert_success()
        .assert_contains("no registry auth file: Elastic Beanstalk pulls from ECR")
        .assert_lacks("Authentication")
        .assert_lacks("registry-auth.json");
    assert_no_token(&run.output);
}

#[test]
fn a_missing_ecr_repository_is_named_with_both_fixes_before_anything_is_built() {
    let repository = Repository::new(false);
    let run = xtask(&["build", "--push", "--tag", "t1"], &repository.env());
    assert_eq!(run.code, Some(1), "{}", run.output);
    let name = &repository.name;
    assert_eq!(
        last_line(&run),
        format!(
            "error: ECR repository {name} does not exist in 127.0.0.1:5001: create it (`aws ecr \
             create-repository --repository-name {name}`), or set `create_repository = true` in \
             [workspace.metadata.deploy] (or DEPLOY_CREATE_REPOSITORY=true) and allow \
             ecr:CreateRepository"
        )
    );
    run.assert_lacks("build the deploy image");
    assert!(!repository.exists());
}

#[test]
fn denied_or_expired_aws_credentials_are_named_with_the_fix() {
    // ECR's answers as AWS SDKs log them: HTTP 400, the awsJson1.1 error shape (`__type`,
    // `message`) with these codes and messages (aws-cli and Go SDK reports of the same).
    let cases = [
        (
            r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:GetAuthorizationToken on resource: *"}"#,
            "AccessDeniedException: User: arn:aws:iam::123456789012:user/ci is not authorized to \
             perform: ecr:GetAuthorizationToken on resource: * (the identity of these AWS \
             credentials lacks a permission",
        ),
        (
            r#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#,
            "ExpiredTokenException: The security token included in the request is expired (the \
             AWS credentials have expired: renew them",
        ),
    ];
    let repository = Repository::new(true);
    for (body, said) in cases {
        let ecr = stub_server("400 Bad Request", "application/x-amz-json-1.1", body);
        let mut env = repository.env();
        env.push(("AWS_ENDPOINT_URL_ECR", format!("http://{ecr}")));
        let run = xtask(&["build", "--push", "--tag", "t1"], &env);
        assert_eq!(run.code, Some(1), "{}", run.output);
        let expected =
            format!("error: get an ECR authorization token (GetAuthorizationToken): {said}");
        assert!(last_line(&run).starts_with(&expected), "{}", run.output);
        run.assert_lacks("docker login").assert_lacks("build the deploy image");
    }
}

#[test]
fn a_registry_that_refuses_the_token_is_named() {
    // ECR forced on the registry of users and passwords: it knows no user AWS.
    let repository = Repository::new(true);
    let home = TempDir::new("ecr-refused");
    let mut env = repository.env();
    env.extend([
        ("DEPLOY_IMAGE", format!("{}/{}", registry().addr, repository.name)),
        ("HOME", home.path().display().to_string()),
    ]);
    let run = xtask(&["build", "--push", "--tag", "t1"], &env);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(
        last_line(&run).starts_with(
            "error: registry 127.0.0.1:5000 refused the ECR token (cannot log in): a token opens \
             the ECR registries of the account of your AWS credentials"
        ),
        "{}",
        run.output
    );
    assert_no_token(&run.output);
}
