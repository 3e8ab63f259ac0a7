//! `.circleci/config.yml`, checked offline: first against the JSON schema CircleCI publishes
//! for its YAML language server (vendored by PyPI's check-jsonschema as `vendor.circle-ci`,
//! installed by `.ci/setup`), then for what a schema cannot know: that every name refers to
//! something defined, that jobs only run `cargo xtask` commands that exist, that deploy
//! runs on exactly the branches the deploy settings map, and that every job that pushes gets
//! the credentials of the registry the settings name (AWS's for Amazon ECR).

use std::collections::BTreeSet;
use std::fs;

use clap::CommandFactory;
use serde_json::Value;
use xtask::config::settings::{RegistryKind, Settings};
use xtask::docker::registry;
use xtask::run::Env;

/// Steps CircleCI provides; any other step must be a command of the config.
const BUILT_IN_STEPS: [&str; 13] = [
    "checkout",
    "run",
    "save_cache",
    "restore_cache",
    "persist_to_workspace",
    "attach_workspace",
    "store_artifacts",
    "store_test_results",
    "setup_remote_docker",
    "add_ssh_keys",
    "deploy",
    "when",
    "unless",
];

/// Keys a workflow may give a job that declares no parameters.
const WORKFLOW_JOB_KEYS: [&str; 10] = [
    "requires",
    "context",
    "filters",
    "name",
    "type",
    "matrix",
    "pre-steps",
    "post-steps",
    "serial-group",
    "override-with",
];

fn config_text() -> String {
    fs::read_to_string(crate::support::root().join(".circleci/config.yml")).unwrap()
}

/// Errors of the schema check, one per line of check-jsonschema's report.
fn schema_errors(text: &str) -> Vec<String> {
    let dir = crate::support::TempDir::new("circleci");
    let path = dir.path().join("config.yml");
    fs::write(&path, text).unwrap();
    let output = duct::cmd!("check-jsonschema", "--builtin-schema", "vendor.circle-ci", &path)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .unwrap_or_else(|err| panic!("check-jsonschema: {err} (run `bash .ci/setup` first)"));
    if output.status.success() {
        return Vec::new();
    }
    let report = String::from_utf8_lossy(&output.stdout);
    report.lines().skip(1).map(|line| line.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

/// What a schema cannot check. `settings` gives the branches deploy must run on.
fn structure_errors(text: &str, settings: &Settings) -> Vec<String> {
    let config: Value = match serde_norway::from_str(text) {
        Ok(config) => config,
        Err(err) => return vec![format!("not YAML: {err}")],
    };
    let mut errors = Vec::new();
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let jobs = keys(&config["jobs"]);
    let commands = keys(&config["commands"]);
    let executors = keys(&config["executors"]);
    let subcommands: BTreeSet<String> =
        xtask::flags::Xtask::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let image = settings.image.clone().unwrap_or_default();
    let ecr = registry::kind(settings, &image) == RegistryKind::Ecr;
    let deploy_branches: BTreeSet<String> = settings
        .environments
        .values()
        .filter_map(|env| env.branch.clone())
        .chain(settings.branch_defaults.keys().cloned())
        .collect();

    let check_steps = |owner: &str, steps: &Value, errors: &mut Vec<String>| {
        for step in steps.as_array().into_iter().flatten() {
            let name = match step {
                Value::String(name) => name.clone(),
                Value::Object(map) if map.len() == 1 => map.keys().next().unwrap().clone(),
                other => {
                    errors.push(format!(
                        "{owner}: a step is neither a name nor a one-key map: {other}"
                    ));
                    continue;
                }
            };
            if !BUILT_IN_STEPS.contains(&name.as_str()) && !commands.contains(&name) {
                errors.push(format!(
                    "{owner}: step `{name}` is neither a built-in step nor a command"
                ));
            }
        }
    };
    for (name, command) in config["commands"].as_object().into_iter().flatten() {
        check_steps(&format!("command {name}"), &command["steps"], &mut errors);
    }
    let mut deploy_jobs = BTreeSet::new();
    // Jobs that push the image (`build --push`, `deploy`), and whether they take AWS
    // credentials from CircleCI's OIDC token (the `aws-oidc` command).
    let mut pushing_jobs = std::collections::BTreeMap::new();
    for (name, job) in config["jobs"].as_object().into_iter().flatten() {
        let owner = format!("job {name}");
        match &job["executor"] {
            Value::Null if job.get("machine").is_some() || job.get("docker").is_some() => {}
            Value::String(executor) if executors.contains(executor) => {}
            Value::Object(map) if map["name"].as_str().is_some_and(|e| executors.contains(e)) => {}
            other => errors.push(format!("{owner}: executor {other} is not defined")),
        }
        check_steps(&owner, &job["steps"], &mut errors);
        let mut runs_xtask = false;
        for step in job["steps"].as_array().into_iter().flatten() {
            let Some(run) = step.get("run") else { continue };
            let command = run.as_str().or(run["command"].as_str()).unwrap_or("").trim();
            let mut words = command.split_whitespace();
            if (words.next(), words.next()) != (Some("cargo"), Some("xtask")) {
                errors.push(format!(
                    "{owner}: runs `{command}`: a job's own steps run `cargo xtask` only (setup belongs in `commands`)"
                ));
                continue;
            }
            runs_xtask = true;
            let sub = words.next().unwrap_or("");
            if !subcommands.contains(sub) {
                errors.push(format!(
                    "{owner}: `cargo xtask {sub}` is not an xtask command ({subcommands:?})"
                ));
            }
            if sub == "deploy" {
                deploy_jobs.insert(name.clone());
            }
            let args: Vec<&str> = words.collect();
            if (sub == "build" && args.contains(&"--push"))
                || (sub == "deploy" && !args.contains(&"--local"))
            {
                let steps = job["steps"].as_array().into_iter().flatten();
                let oidc = steps.clone().any(|s| s == "aws-oidc" || s.get("aws-oidc").is_some());
                pushing_jobs.insert(name.clone(), oidc);
            }
        }
        if !runs_xtask {
            errors.push(format!("{owner}: runs no `cargo xtask` command"));
        }
    }
    for (workflow, definition) in config["workflows"].as_object().into_iter().flatten() {
        if workflow == "version" {
            continue;
        }
        let mut named = BTreeSet::new();
        let mut entries = Vec::new();
        for entry in definition["jobs"].as_array().into_iter().flatten() {
            let (job, settings) = match entry {
                Value::String(job) => (job.clone(), Value::Null),
                Value::Object(map) if map.len() == 1 => {
                    let (job, settings) = map.iter().next().unwrap();
                    (job.clone(), settings.clone())
                }
                other => {
                    errors.push(format!("workflow {workflow}: an entry is not a job: {other}"));
                    continue;
                }
            };
            if !jobs.contains(&job) {
                errors.push(format!("workflow {workflow}: job `{job}` is not defined"));
            }
            let takes_parameters = config["jobs"][&job].get("parameters").is_some();
            for key in keys(&settings) {
                if !takes_parameters && !WORKFLOW_JOB_KEYS.contains(&key.as_str()) {
                    errors.push(format!(
                        "workflow {workflow}: job `{job}` has an unknown key `{key}`"
                    ));
                }
            }
            named.insert(settings["name"].as_str().map_or(job.clone(), str::to_owned));
            entries.push((job, settings));
        }
        for (job, settings) in &entries {
            for required in settings["requires"].as_array().into_iter().flatten() {
                let required = required.as_str().unwrap_or("");
                if !named.contains(required) {
                    errors.push(format!("workflow {workflow}: `{job}` requires `{required}`, which is not a job of this workflow"));
                }
            }
            if let Some(oidc) = pushing_jobs.get(job) {
                let contexts: BTreeSet<&str> = match &settings["context"] {
                    Value::String(context) => [context.as_str()].into(),
                    Value::Array(contexts) => contexts.iter().filter_map(Value::as_str).collect(),
                    _ => BTreeSet::new(),
                };
                if ecr && !(contexts.contains("aws") && *oidc) {
                    errors.push(format!(
                        "workflow {workflow}: `{job}` pushes to Amazon ECR ({image}): give it the `aws` context and the `aws-oidc` step (AWS credentials for its token)"
                    ));
                }
                if !ecr && !contexts.contains("registry") {
                    errors.push(format!(
                        "workflow {workflow}: `{job}` pushes to {image}: give it the `registry` context (REGISTRY_USERNAME, REGISTRY_PASSWORD)"
                    ));
                }
            }
            if deploy_jobs.contains(job) {
                let only: BTreeSet<String> = match &settings["filters"]["branches"]["only"] {
                    Value::String(branch) => [branch.clone()].into(),
                    Value::Array(branches) => {
                        branches.iter().filter_map(|b| b.as_str().map(str::to_owned)).collect()
                    }
                    _ => BTreeSet::new(),
                };
                if only != deploy_branches {
                    errors.push(format!(
                        "workflow {workflow}: `{job}` runs on branches {only:?}, but the deploy settings map {deploy_branches:?}"
                    ));
                }
            }
        }
    }
    errors
}

fn settings() -> Settings {
    Settings::load(&crate::support::root(), &Env::default()).unwrap()
}

#[test]
fn the_config_passes_the_schema_and_the_structure_checks() {
    let text = config_text();
    assert_eq!(schema_errors(&text), Vec::<String>::new());
    assert_eq!(structure_errors(&text, &settings()), Vec::<String>::new());
}

#[test]
fn a_broken_config_is_caught() {
    let text = config_text();
    let cases = [
        // A misspelt key inside a job: the schema's business.
        (text.replace("    executor: linux\n    steps:\n      - setup\n      - run:\n          name: Test", "    executor: linux\n    stpes:\n      - setup\n      - run:\n          name: Test"), "schema", "jobs.test"),
        // A misspelt key of a workflow entry: a job parameter to the schema.
        (text.replace("          requires:\n            - test", "          requirez:\n            - test"), "structure", "unknown key `requirez`"),
        (text.replace("            - build\n", "            - buidl\n"), "structure", "requires `buidl`"),
        (text.replace("          command: cargo xtask test", "          command: cargo xtask tset"), "structure", "`cargo xtask tset` is not an xtask command"),
        (text.replace("          command: cargo xtask test", "          command: make test"), "structure", "a job's own steps run `cargo xtask` only"),
        (text.replace("      - save-caches", "      - save-cache"), "structure", "step `save-cache` is neither"),
        (text.replace("                - release/prd\n", ""), "structure", "but the deploy settings map"),
        (text.replace("  deploy:\n    executor: linux", "  deploy:\n    executor: windows"), "structure", "executor \"windows\" is not defined"),
        (text.replace("      - build:\n          context:\n            - registry\n", "      - build:\n          context:\n            - aws\n"), "structure", "`build` pushes to quay.io/acme/web: give it the `registry` context"),
    ];
    for (broken, checker, expected) in cases {
        assert_ne!(broken, text, "the mutation for {expected:?} changed nothing");
        let errors = match checker {
            "schema" => schema_errors(&broken),
            _ => structure_errors(&broken, &settings()),
        };
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{checker} check missed {expected:?}; it said {errors:#?}"
        );
    }
}

#[test]
fn an_image_on_ecr_needs_aws_credentials_in_every_job_that_pushes() {
    let ecr = Settings {
        image: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web".into()),
        ..settings()
    };
    let text = config_text();
    let errors = structure_errors(&text, &ecr);
    assert!(
        errors.iter().any(|e| e.contains("`build` pushes to Amazon ECR")),
        "the build job lacks AWS credentials: {errors:#?}"
    );
    // The recipe of docs/circleci.md: the build job gets the `aws` context and the `aws-oidc` step.
    let fixed = text
        .replace(
            "      - setup\n      - run:\n          name: Build and push",
            "      - setup\n      - aws-oidc\n      - run:\n          name: Build and push",
        )
        .replace(
            "      - build:\n          context:\n            - registry\n",
            "      - build:\n          context:\n            - aws\n",
        );
    assert_ne!(fixed, text);
    assert_eq!(structure_errors(&fixed, &ecr), Vec::<String>::new());
    assert_eq!(schema_errors(&fixed), Vec::<String>::new());
}
