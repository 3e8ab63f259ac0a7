//! `env create`, `env terminate` and `deploy` to several environments at once, end to end
//! against the Elastic Beanstalk fake (which launches and terminates environments as the
//! service does, checking the instance profile in moto's IAM), moto's S3 and the registry.

use std::time::Duration;

use crate::support::eb_fake::{Loss, Seed};
use crate::support::http;
use crate::support::iam::Roles;
use crate::support::{ENVIRONMENT, World, closed_port, unique, version_at};

const PLATFORM: &str =
    "arn:aws:elasticbeanstalk:us-east-1::platform/Docker running on 64bit Amazon Linux 2023/4.10.0";

fn actions(world: &World, action: &str) -> usize {
    world.fake.requests().iter().filter(|r| r.action == action).count()
}

#[test]
fn from_an_empty_account_to_a_running_environment_then_deploy_and_terminate() {
    let world = World::empty_account(&["v1", "v2"]);
    let roles = Roles::new();
    let env = roles.env();

    let plan = world.xtask(&["env", "create", "staging", "--tag", "v1", "--dry-run"], &env);
    plan.assert_success()
        .assert_contains("plan: create acme-web-stg in acme-web with")
        .assert_contains(
            "the newest recommended version of \"Docker running on 64bit Amazon Linux 2023\"",
        )
        .assert_contains(&format!(
            "check that instance profile {} and service role {}",
            roles.instance_profile, roles.service_role
        ))
        .assert_contains("aws:elasticbeanstalk:environment:EnvironmentType = SingleInstance")
        .assert_contains("aws:elasticbeanstalk:application:environment:SECRET_KEY = ***");
    assert!(world.fake.requests().is_empty(), "a dry run calls nothing");

    let run = world.xtask(&["env", "create", "staging", "--tag", "v1"], &env);
    run.assert_success()
        .assert_contains("application acme-web created")
        .assert_contains(&format!("platform {PLATFORM}"))
        .assert_contains("createEnvironment is starting.")
        .assert_contains("Created EIP: 127.0.0.1")
        .assert_contains("Successfully launched environment: acme-web-stg");
    let created = world.fake.environment(ENVIRONMENT);
    let last = run.output.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        "ok: acme-web-stg created: runs v1, health Green: \
         http://acme-web-stg.us-east-1.elasticbeanstalk.com/"
    );
    assert_eq!((created.status.as_str(), created.label.as_deref()), ("Ready", Some("v1")));
    assert_eq!(created.platform, PLATFORM);
    let option =
        |name: &str| created.options.iter().find(|(_, o, _)| o == name).map(|(_, _, v)| v.clone());
    assert_eq!(option("EnvironmentType").as_deref(), Some("SingleInstance"));
    assert_eq!(option("IamInstanceProfile"), Some(roles.instance_profile.clone()));
    assert_eq!(option("ServiceRole"), Some(roles.service_role.clone()));
    assert_eq!(option("APP_ENV").as_deref(), Some("staging"));
    assert_eq!(version_at(created.port), "v1");

    let again = world.xtask(&["env", "create", "staging", "--tag", "v1"], &env);
    assert_eq!(again.code, Some(1), "{}", again.output);
    again.assert_contains(
        "error: environment acme-web-stg already exists in application acme-web: deploy to it \
         with `cargo xtask deploy staging`, or terminate it first",
    );
    assert_eq!(actions(&world, "CreateEnvironment"), 1);

    world.deploy(&["staging", "--tag", "v2"]).assert_success();
    assert_eq!(version_at(created.port), "v2");

    let unasked = world.xtask(&["env", "terminate", "staging"], &env);
    assert_eq!(unasked.code, Some(1), "{}", unasked.output);
    unasked.assert_contains("there is no terminal to ask on: pass --yes");
    let production = world.xtask(&["env", "terminate", "production", "--yes"], &env);
    assert_eq!(production.code, Some(1), "{}", production.output);
    production
        .assert_contains("error: acme-web-prd is deployed from release/prd, a production branch");
    assert_eq!(actions(&world, "TerminateEnvironment"), 0);

    let gone = world.xtask(&["env", "terminate", "staging", "--yes"], &env);
    gone.assert_success()
        .assert_contains("terminateEnvironment is starting.")
        .assert_contains("terminateEnvironment completed successfully.")
        .assert_contains(
            "ok: acme-web-stg is terminated; the application versions of acme-web are kept",
        );
    let terminated = world.fake.find_environment(ENVIRONMENT).unwrap();
    assert_eq!(terminated.status, "Terminated");
    assert_eq!(world.fake.versions(), ["v1", "v2"], "the versions stay");
    // The launch, the deploy and the termination, each in the history, under the lock.
    let key = format!("acme-web/deploy/history/{ENVIRONMENT}.json");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&world.bucket.get(&key).unwrap().body).unwrap();
    let done: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or("-");
            (field("command"), field("version"), field("outcome"))
        })
        .collect();
    assert_eq!(
        done,
        [
            ("env create", "v1", "success"),
            ("deploy", "v2", "success"),
            ("env terminate", "v2", "success")
        ]
    );
    assert!(world.bucket.get(&format!("acme-web/deploy/locks/{ENVIRONMENT}.json")).is_none());
    let health = format!("127.0.0.1:{}", created.port);
    let answer = http::get(&health, "/health");
    assert!(answer.is_none_or(|r| r.status != 200), "the terminated environment still serves");

    let status = world.xtask(&["status"], &env);
    status
        .assert_success()
        .assert_contains("acme-web-stg  not created: `cargo xtask env create staging`")
        .assert_contains("acme-web-prd  not created");
}

#[test]
fn missing_roles_are_named_before_anything_is_created_and_a_failed_launch_exits_3() {
    let world = World::empty_account(&["v1"]);
    let roles = Roles::new();
    let missing = unique("no-such-profile");
    let mut env = roles.env();
    env.retain(|(k, _)| *k != "EB_INSTANCE_PROFILE");
    env.push(("EB_INSTANCE_PROFILE", missing.clone()));
    let run = world.xtask(&["env", "create", "staging", "--tag", "v1"], &env);
    assert_eq!(run.code, Some(1), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: instance profile {missing} does not exist: create it with a role"
        )),
        "{last}"
    );
    assert!(last.contains("`instance_profile` in [workspace.metadata.deploy]"), "{last}");
    assert!(last.ends_with("(this tool creates no IAM roles)"), "{last}");
    let mut env = roles.env();
    env.retain(|(k, _)| *k != "EB_SERVICE_ROLE");
    env.push(("EB_SERVICE_ROLE", missing.clone()));
    let run = world.xtask(&["env", "create", "staging", "--tag", "v1"], &env);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(&format!("error: service role {missing} does not exist: create it"));
    let empty = Roles::with_an_empty_instance_profile();
    let run = world.xtask(&["env", "create", "staging", "--tag", "v1"], &empty.env());
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(&format!(
        "error: instance profile {} has no role: add one",
        empty.instance_profile
    ));
    assert_eq!(actions(&world, "CreateApplication") + actions(&world, "CreateEnvironment"), 0);

    world.fake.faults(|f| f.fail_next_deploy = true);
    let run = world.xtask(&["env", "create", "staging", "--tag", "v1"], &roles.env());
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("ERROR  Create environment operation is complete, but with errors.");
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("error: Elastic Beanstalk reported: Instance deployment failed."),
        "{last}"
    );
}

#[test]
fn one_build_and_version_for_two_environments_and_the_worst_outcome_wins() {
    let world = World::prebuilt(&["v1"]);
    let second = "acme-web-stg2";
    let port = closed_port();
    world.fake.add_environment(second, port);

    let plan = world.deploy(&[ENVIRONMENT, second, "--tag", "v1", "--dry-run"]);
    plan.assert_success()
        .assert_contains(&format!(
            "plan: {}:v1 to acme-web-stg, acme-web-stg2 of acme-web",
            world.image
        ))
        .assert_contains("one UpdateEnvironment of acme-web-stg: version v1")
        .assert_contains("one UpdateEnvironment of acme-web-stg2: version v1")
        .assert_contains("the updates start together");

    world.fake.faults(|f| f.fail_next_deploy_on = Some(second.to_owned()));
    let run = world.deploy(&[ENVIRONMENT, second, "--tag", "v1"]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("acme-web-stg  | ")
        .assert_contains("acme-web-stg2 | ")
        .assert_contains("summary of the deploy of v1: 1 of 2 environments succeeded")
        .assert_contains("succeeded  acme-web-stg   runs v1, health Green")
        .assert_contains("FAILED     acme-web-stg2  Elastic Beanstalk reported:");
    let last = run.output.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        "error: deploy of v1 failed on 1 of 2 environments: acme-web-stg2 (see the summary above)"
    );
    assert_eq!(actions(&world, "CreateApplicationVersion"), 1, "one version for both");
    assert_eq!(actions(&world, "UpdateEnvironment"), 2);
    assert_eq!(version_at(world.port), "v1");
    // Each environment's deploy history has its own outcome and its own update's request.
    for (environment, outcome, code) in [(ENVIRONMENT, "success", 0), (second, "failed", 3)] {
        let key = format!("acme-web/deploy/history/{environment}.json");
        let records: serde_json::Value =
            serde_json::from_str(&world.bucket.get(&key).unwrap().body).unwrap();
        let record = &records[0];
        assert_eq!(
            (record["outcome"].as_str(), record["exit_code"].as_i64()),
            (Some(outcome), Some(code))
        );
        assert!(record["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{record}");
    }

    // While both were followed: a round of one DescribeEnvironments and one DescribeEvents
    // for both, every 2.5 s. Further pages are left out: the fake's pages hold 2 events, the
    // service's 1000.
    let requests = world.fake.requests();
    let last_update = requests.iter().rposition(|r| r.action == "UpdateEnvironment").unwrap();
    let following: Vec<_> = requests[last_update + 1..].iter().filter(|r| !r.next_page).collect();
    let rounds: Vec<usize> =
        (0..following.len()).filter(|i| following[*i].action == "DescribeEnvironments").collect();
    assert!(rounds.len() >= 2, "{following:?}");
    for pair in rounds.windows(2) {
        let (a, b) = (following[pair[0]], following[pair[1]]);
        assert_eq!(pair[1] - pair[0], 2, "two calls a round: {following:?}");
        assert!(b.at.duration_since(a.at) >= Duration::from_secs(2), "{following:?}");
    }
    let span = following[rounds[rounds.len() - 1]].at.duration_since(following[rounds[0]].at);
    let per_environment = (rounds.len() - 1) as f64 * 2.0 / span.as_secs_f64() / 2.0;
    eprintln!(
        "two environments followed: {} rounds of 2 calls, {per_environment:.2} calls/s per \
         environment",
        rounds.len()
    );
}

#[test]
fn env_create_checks_name_and_cname_first_asks_for_enhanced_health_and_an_alb_and_lost_answers_are_followed()
 {
    let world = World::empty_account(&["v1"]);
    let roles = Roles::new();
    let env = roles.env();
    // Names are unique in the region, whatever the application.
    world.fake.add_environment_in("someone-else", "acme-web-prd", closed_port(), Seed::default());
    let taken = world.xtask(&["env", "create", "production", "--tag", "v1"], &env);
    assert_eq!(taken.code, Some(1), "{}", taken.output);
    taken.assert_lacks("==> build").assert_contains(
        "error: environment name acme-web-prd is taken in us-east-1 by application someone-else",
    );
    world.fake.take_cname("acme-web-stg");
    let cname = world.xtask(&["env", "create", "staging", "--tag", "v1"], &env);
    assert_eq!(cname.code, Some(1), "{}", cname.output);
    cname
        .assert_lacks("==> build")
        .assert_contains("error: the CNAME prefix acme-web-stg is taken");
    assert_eq!(actions(&world, "CreateEnvironment"), 0);

    // A load-balanced one, its CreateEnvironment answer cut, its TerminateEnvironment late.
    let quick = [env.clone(), vec![("XTASK_AWS_ATTEMPT_TIMEOUT", "2".to_owned())]].concat();
    world.fake.faults(|f| f.lose_answer = Some(("CreateEnvironment".into(), Loss::Cut)));
    world
        .xtask(&["env", "create", "acme-web-lb", "--tag", "v1"], &quick)
        .assert_success()
        .assert_contains(
            "the answer to CreateEnvironment was lost; following the launch that started at",
        )
        .assert_contains("Created load balancer named");
    assert_eq!(actions(&world, "CreateEnvironment"), 1, "one launch, never a second");
    let created = world.fake.environment("acme-web-lb");
    let option = |namespace: &str, name: &str| {
        created
            .options
            .iter()
            .find(|(n, o, _)| n == namespace && o == name)
            .map(|(_, _, v)| v.clone())
    };
    let health = option("aws:elasticbeanstalk:healthreporting:system", "SystemType");
    assert_eq!(health.as_deref(), Some("enhanced"));
    let balancer = option("aws:elasticbeanstalk:environment", "LoadBalancerType");
    assert_eq!(balancer.as_deref(), Some("application"));
    assert!(created.enhanced);

    let late = Loss::Late(Duration::from_secs(6));
    world.fake.faults(|f| f.lose_answer = Some(("TerminateEnvironment".into(), late)));
    world
        .xtask(&["env", "terminate", "acme-web-lb", "--yes"], &quick)
        .assert_success()
        .assert_contains("the answer to TerminateEnvironment was lost; following the termination")
        .assert_contains("ok: acme-web-lb is terminated");
    assert_eq!(actions(&world, "TerminateEnvironment"), 1);
}
