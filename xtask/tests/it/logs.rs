//! Logs: `cargo xtask logs ENV` (tails, bundles, `--follow` on moto's CloudWatch Logs), and
//! a failed deploy that shows why from its instances' logs.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::eb_fake::Seed;
use crate::support::logs::{Groups, now_ms};
use crate::support::{ENVIRONMENT, Started, TempDir, World, closed_port, root, unique};

#[test]
fn logs_prints_each_instance_s_newest_tail_without_its_url_and_bundles_them_0600() {
    let world = World::prebuilt(&["v1"]);
    let name = unique("logs").replace('_', "-");
    let seed = Seed { enhanced: true, instances: 2 };
    world.fake.add_environment_with(&name, closed_port(), seed);
    world.deploy(&[&name, "--tag", "v1"]).assert_success();
    world.fake.faults(|f| f.earlier_log_samples = true);
    let run = world.xtask(&["logs", &name], &[]);
    run.assert_success()
        .assert_contains("/var/log/eb-engine.log")
        .assert_contains("[INFO] Platform Engine finished execution on command: app-deploy")
        .assert_lacks("an earlier sample")
        .assert_lacks("X-Amz-Signature")
        .assert_lacks("127.0.0.1:5100");
    let headers = run.output.lines().filter(|l| l.starts_with("== i-")).count();
    assert_eq!(headers, 2, "one tail per instance, the newest:\n{}", run.output);
    world
        .xtask(&["logs", &name, "--grep", "Platform Engine finished", "--json"], &[])
        .assert_success()
        .assert_lacks("/var/log/eb-engine.log");
    // A sample of an earlier request does not stand in for a missing one.
    std::thread::sleep(Duration::from_secs(3));
    world.fake.faults(|f| f.logs_lose_an_instance = true);
    let one = world.xtask(&["logs", &name], &[]);
    one.assert_success().assert_contains(": Elastic Beanstalk returned no logs of it");
    assert_eq!(one.output.lines().filter(|l| l.starts_with("== i-")).count(), 1);

    let dir = TempDir::new("bundles");
    let bundle = world.xtask(&["logs", &name, "--bundle", &dir.path().display().to_string()], &[]);
    bundle.assert_success();
    let paths: Vec<&str> = bundle.output.lines().filter(|l| l.ends_with(".zip")).collect();
    assert_eq!(paths.len(), 2, "{}", bundle.output);
    for path in paths {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
        let entries = crate::support::zip_entries(&std::fs::read(path).unwrap()).unwrap();
        assert!(entries.iter().any(|(name, ..)| name == "var/log/eb-engine.log"), "{path}");
    }
}

#[test]
fn a_failed_deploy_shows_why_from_the_instance_log_and_a_failed_pull_changes_nothing() {
    let world = World::prebuilt(&["v1"]);
    let why = "docker run: port 80 already allocated";
    world.fake.faults(|f| {
        f.fail_next_deploy = true;
        f.fail_next_deploy_why = Some(why.to_owned());
    });
    let failed = world.deploy(&["staging", "--tag", "v1"]);
    assert_eq!(failed.code, Some(3), "{}", failed.output);
    failed
        .assert_contains(&format!("== why: {ENVIRONMENT}, i-"))
        .assert_contains("[ERROR] An error occurred during execution of command [app-deploy]")
        .assert_contains(why)
        .assert_contains(&format!("full logs: cargo xtask logs {ENVIRONMENT}"));
    let last = failed.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: "), "{last}");

    world.fake.faults(|f| {
        f.fail_next_deploy = true;
        f.fail_next_logs = true;
    });
    let failed = world.deploy(&["staging", "--tag", "v1"]);
    assert_eq!(failed.code, Some(3), "{}", failed.output);
    let lines: Vec<&str> =
        failed.output.lines().filter(|l| l.contains("cannot show why from the logs")).collect();
    assert_eq!(lines.len(), 1, "{}", failed.output);
    assert!(lines[0].contains("Failed to pull logs for environment instances."), "{}", lines[0]);
    failed.assert_lacks("== why");

    world.fake.faults(|f| f.fail_next_deploy = true);
    let quiet = world.deploy(&["staging", "--tag", "v1", "--no-logs"]);
    assert_eq!(quiet.code, Some(3), "{}", quiet.output);
    quiet.assert_lacks("== why").assert_lacks("cannot show why");
}

#[test]
fn logs_follow_prints_streams_in_time_order_new_lines_within_seconds_masked_ctrl_c_ends_0() {
    let world = World::prebuilt(&["v1"]);
    let name = unique("follow").replace('_', "-");
    world.fake.add_environment(&name, closed_port());
    let refused = world.xtask(&["logs", &name, "--follow"], &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.output);
    refused.assert_contains(
        "does not stream its logs to CloudWatch Logs: set \
         aws:elasticbeanstalk:cloudwatch:logs StreamLogs=true",
    );

    world.fake.set_option(&name, ("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs", "true"));
    let mut groups = Groups::new();
    let engine = format!("/aws/elasticbeanstalk/{name}/var/log/eb-engine.log");
    let app = format!(
        "/aws/elasticbeanstalk/{name}/var/log/eb-docker/containers/eb-current-app/stdouterr.log"
    );
    let now = now_ms();
    groups.put(&engine, "i-0bbb", now - 3000, "first, on b");
    groups.put(&app, "i-0aaa", now - 2000, &format!("second, on a, SECRET_KEY={}", world.secret));
    groups.put(&engine, "i-0aaa", now - 1000, "third, on a");
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut follow = Started::new(&root(), &["logs", &name, "--follow", "--since", "1m"], &env);
    follow.wait_for("third, on a", 60);
    groups.put(&engine, "i-0bbb", now_ms(), "fourth, new");
    let put = std::time::Instant::now();
    follow.wait_for("fourth, new", 6);
    assert!(put.elapsed() < Duration::from_secs(6));
    follow.signal_group(libc::SIGINT);
    let ended = follow.wait(30);
    assert_eq!(ended.code, Some(0), "{}", ended.output);
    world.assert_no_secret(&ended.output);
    let order: Vec<usize> = ["first, on b", "second, on a", "third, on a", "fourth, new"]
        .iter()
        .map(|m| ended.output.find(m).unwrap_or_else(|| panic!("{m}:\n{}", ended.output)))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in time order:\n{}", ended.output);
    ended.assert_contains("i-0aaa  ").assert_contains("SECRET_KEY=***").assert_lacks("error:");
}
