//! Source bundles with `.ebextensions` and `.platform` beside the Dockerrun: what the zip
//! holds and how, that it is the same bytes from two clones, that a version still never
//! changes, what is refused before anything is built, and `deploy --local` and `versions`.

use crate::support::{ENVIRONMENT, Project, World, version_at, zip_entries};

const CONFIG: &str = "deploy/.ebextensions/01-env.config";
const NGINX: &str = "deploy/.platform/nginx/conf.d/body.conf";
const HOOK: &str = "deploy/.platform/hooks/predeploy/01-migrate.sh";

/// A project whose bundle directory has a configuration file, an nginx file and a hook
/// (not executable in git), and a README that is not bundled; committed.
fn project(prefix: &str) -> Project {
    let project = Project::new(prefix);
    let config = "option_settings:\n  aws:elasticbeanstalk:application:environment:\n    \
                  LOG_LEVEL: debug\n    APP_ENV: from-ebextensions\n";
    project.write(CONFIG, config.as_bytes(), false);
    project.write(NGINX, b"client_max_body_size 2m;\n", false);
    project.write(HOOK, b"#!/bin/bash\nset -eu\necho migrate\n", false);
    project.write("deploy/README.md", b"not bundled\n", false);
    project.commit("a bundle directory");
    project
}

/// The SHA-256 `deploy --dry-run` names for the bundle (the bucket set, so it is known).
fn dry_run_digest(world: &World, project: &Project) -> String {
    let bucket = [("EB_BUCKET", world.bucket.name.clone())];
    let run = world.deploy_in(project.path(), &["staging", "--tag", "v1", "--dry-run"], &bucket);
    run.assert_success();
    let line = run.output.lines().find(|l| l.contains("upload the bundle, a zip of")).unwrap();
    let at = line.find("sha256:").unwrap() + 7;
    line[at..at + 64].to_owned()
}

#[test]
fn the_zip_holds_the_dockerrun_and_the_trees_with_their_modes_the_same_from_two_clones() {
    let world = World::prebuilt(&["v1"]);
    let first = project("bundle-a");
    let run = world.deploy_in(first.path(), &["staging", "--tag", "v1"], &[]);
    run.assert_success()
        .assert_contains(&format!(
            "warning: {HOOK} is not executable in git: the bundle gives it mode 0755"
        ))
        .assert_contains(&format!("ok: {ENVIRONMENT} runs v1"));
    assert_eq!(version_at(world.port), "v1", "the fake's platform ran the zip's Dockerrun");

    let keys: Vec<String> =
        world.bucket.keys().into_iter().filter(|k| k.starts_with("acme-web/deploy/v1/")).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("/bundle.zip"), "{keys:?}");
    let object = world.bucket.get(&keys[0]).unwrap();
    assert_eq!(object.content_type.as_deref(), Some("application/zip"));
    assert_eq!(object.encryption.as_deref(), Some("AES256"));
    let entries: Vec<(String, u32)> =
        zip_entries(&object.bytes).unwrap().into_iter().map(|(n, m, _)| (n, m)).collect();
    let expected = [
        (".ebextensions/01-env.config", 0o644),
        (".platform/hooks/predeploy/01-migrate.sh", 0o755),
        (".platform/nginx/conf.d/body.conf", 0o644),
        ("Dockerrun.aws.json", 0o644),
    ]
    .map(|(n, m)| (n.to_owned(), m));
    assert_eq!(entries, expected, "exactly these, in this order, with these modes");

    // Another clone, committed at another time: the same bytes, the same key.
    let second = project("bundle-b");
    let digest = dry_run_digest(&world, &second);
    assert_eq!(digest, dry_run_digest(&world, &first));
    assert!(keys[0].contains(&digest), "{digest} names the uploaded bundle {}", keys[0]);

    let listed = world.xtask(&["versions", "list"], &[]);
    listed.assert_success();
    let line = listed.output.lines().find(|l| l.starts_with("v1 ")).unwrap();
    let sized = line.contains(" KiB ") || line.contains(" B ");
    assert!(line.contains("  zip  ") && sized, "kind and size: {line}");

    // A changed hook under the same label: refused, nothing written.
    first.write(HOOK, b"#!/bin/bash\necho another migration\n", true);
    first.commit("another migration");
    let run = world.deploy_in(first.path(), &["staging", "--tag", "v1"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: application version v1 already exists with another bundle");
    let after: Vec<String> =
        world.bucket.keys().into_iter().filter(|k| k.starts_with("acme-web/deploy/v1/")).collect();
    assert_eq!(after, keys, "nothing written");
    assert_eq!(world.updates(), 1);
}

#[test]
fn mistakes_in_the_bundle_directory_are_refused_before_anything_is_built() {
    let world = World::prebuilt(&[]);
    let hook = "deploy/.platform/hooks/postdeploy/90-warm.sh";
    let cases: [(&str, &[u8], &str); 5] = [
        (hook, b"curl -s localhost/health\n", &format!("{hook} line 1: a platform hook must start with `#!`")),
        (hook, b"#!/bin/bash\r\necho warm\r\n", &format!("{hook} line 1: CRLF line endings")),
        (CONFIG, b"packages:\n  yum:\n    jq: []\n  bad: [\n", &format!("{CONFIG} line 5: not valid YAML or JSON")),
        (CONFIG, b"option_settings: []\n\ncontainer_command:\n  01: {command: ls}\n", &format!("{CONFIG} line 3: unknown top-level key `container_command`")),
        (
            CONFIG,
            b"option_settings:\n  - namespace: aws:elasticbeanstalk:application:environment\n    option_name: SECRET_KEY\n    value: hunter2\n",
            &format!("{CONFIG} line 3: option SECRET_KEY looks secret"),
        ),
    ];
    for (path, content, said) in cases {
        let project = Project::new("bundle-mistake");
        project.write(path, content, true);
        project.commit("a mistake");
        let run = world.deploy_in(project.path(), &["staging", "--tag", "t1"], &[]);
        assert_eq!(run.code, Some(1), "{said}: {}", run.output);
        let last = run.output.trim_end().lines().last().unwrap();
        assert!(last.starts_with(&format!("error: {said}")), "{last}");
        assert!(!run.output.contains("hunter2"), "{}", run.output);
        assert!(world.fake.requests().is_empty(), "{said}: nothing reached Elastic Beanstalk");
    }

    // A bundle directory the setting names must exist: a typo is not "no bundle".
    let typo = [("DEPLOY_BUNDLE_DIR", "deplyo".to_owned())];
    let run = world.deploy_with(&["staging", "--tag", "t1"], &typo);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("error: bundle_dir \"deplyo\" is not a directory of");

    // Uncommitted: refused for the commit's own tag, as any uncommitted change is.
    let project = Project::new("bundle-untracked");
    project.write("deploy/.ebextensions/02-new.config", b"packages: {}\n", false);
    let run = world.deploy_in(project.path(), &["staging"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("deploy/.ebextensions/02-new.config not committed: left out of the bundle")
        .assert_contains("the work tree has uncommitted changes (deploy/");
    assert!(world.fake.requests().is_empty());
}

#[test]
fn deploy_local_gives_the_ebextensions_variables_and_says_the_hooks_are_not_run() {
    let project = project("bundle-local");
    let run = crate::support::xtask_in(
        project.path(),
        &["deploy", "--local", "--dry-run", "--tag", "t1", "--port", "18093"],
        &[("SECRET_KEY", "s"), ("CIRCLE_SHA1", "")],
    );
    run.assert_success()
        .assert_contains(
            "not run locally (Elastic Beanstalk runs them on its instances): \
             .platform/hooks/predeploy/01-migrate.sh",
        )
        .assert_contains("LOG_LEVEL=debug");
    // The options template sets APP_ENV itself: it wins over the bundle's.
    run.assert_lacks("APP_ENV=from-ebextensions");
}
