//! What `status`, `rollback` and `versions` show and do, and what no output may show:
//! secrets that Elastic Beanstalk echoes back, in a deploy's events or in `status`.

use std::time::Duration;

use crate::support::{ENVIRONMENT, Run, World, xtask_in};

#[test]
fn secrets_echoed_by_elastic_beanstalk_are_masked() {
    let world = World::prebuilt(&["v1", "v2"]);
    world.fake.faults(|f| f.refuse_option_next_update = Some("SECRET_KEY".into()));
    let run = world.deploy(&["staging", "--tag", "v1"]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains(
        "Invalid option value: '***' (Namespace: \
                         'aws:elasticbeanstalk:application:environment', OptionName: 'SECRET_KEY')",
    );
    world.fake.faults(|f| f.reject_option_next_deploy = Some("SECRET_KEY".into()));
    let run = world.deploy(&["staging", "--tag", "v2"]);
    assert_eq!(run.code, Some(3), "{}", run.output);
    run.assert_contains("ERROR  Configuration validation exception: Invalid option value: '***'");
    // The event stays six weeks: `status` masks it too (World::xtask checks every output).
    world
        .xtask(&["status", "staging", "--events", "20"], &[])
        .assert_success()
        .assert_contains("ERROR  Configuration validation exception: Invalid option value: '***'");
}

fn xtask(world: &World, args: &[&str]) -> Run {
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = xtask_in(&crate::support::root(), args, &env);
    world.assert_no_secret(&run.output);
    run
}

#[test]
fn status_shows_what_runs_where_as_text_and_stable_json() {
    let world = World::prebuilt(&["v1"]);
    let tag = "v1";
    world.deploy(&["staging", "--tag", tag]).assert_success();

    let url = format!("http://{ENVIRONMENT}.us-east-1.elasticbeanstalk.com/");
    xtask(&world, &["status", "staging"])
        .assert_success()
        .assert_contains(&format!("acme-web / {ENVIRONMENT}"))
        .assert_contains(&format!("version  {tag}"))
        .assert_contains("status   Ready")
        .assert_contains("health   Green (Ok)")
        .assert_contains(&format!("url      {url}"))
        .assert_contains("INFO   Environment update completed successfully.");

    let run = xtask(&world, &["status", "staging", "--json", "--events", "2"]);
    run.assert_success();
    let json: serde_json::Value = serde_json::from_str(&run.output).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "application",
            "environment",
            "version",
            "status",
            "health",
            "health_status",
            "causes",
            "url",
            "updated",
            "events"
        ]
    );
    assert_eq!(json["version"], tag);
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["events"].as_array().unwrap().len(), 2);
    assert_eq!(json["events"][0]["message"], "Environment update completed successfully.");

    let run = xtask(&world, &["status"]);
    run.assert_success();
    let line = run.output.lines().find(|l| l.starts_with(ENVIRONMENT)).unwrap();
    assert!(line.contains("Ready") && line.contains("Green") && line.contains(tag), "{line}");
}

#[test]
fn prune_keeps_the_deployed_version_even_when_it_is_the_oldest() {
    let world = World::prebuilt(&["v1"]);
    let deployed = "v1";
    world.deploy(&["staging", "--tag", deployed]).assert_success();
    for (n, label) in ["newer-1", "newer-2", "newer-3", "newer-4"].iter().enumerate() {
        world.fake.add_version(label, Duration::from_millis(40 - 10 * n as u64));
    }
    let all = world.fake.versions();
    assert_eq!(all.len(), 5);

    xtask(&world, &["versions", "prune", "--keep", "2", "--dry-run"])
        .assert_success()
        .assert_contains("keep the 2 newest and 1 older ones in use, delete 2")
        .assert_contains("would delete newer-2")
        .assert_contains("would delete newer-1")
        .assert_contains("dry run: nothing was deleted")
        .assert_contains("application versions in this region, all applications: 5 of 1000");
    assert_eq!(world.fake.versions(), all, "a dry run deletes nothing");

    xtask(&world, &["versions", "prune", "--keep", "2"])
        .assert_success()
        .assert_contains("deleted newer-1")
        .assert_contains("3 of 1000");
    let mut left = world.fake.versions();
    left.sort();
    let mut expected = vec![deployed.to_owned(), "newer-3".to_owned(), "newer-4".to_owned()];
    expected.sort();
    assert_eq!(left, expected, "the deployed version survives although it is the oldest");

    let run = xtask(&world, &["versions", "list"]);
    run.assert_success();
    let line = run.output.lines().find(|l| l.starts_with(deployed)).unwrap();
    assert!(line.ends_with(ENVIRONMENT), "{line}");
}

#[test]
fn prune_of_800_versions_read_2_a_page_ends_within_its_own_timeout() {
    let world = World::prebuilt(&[]);
    for n in 0..800u64 {
        world.fake.add_version(&format!("old-{n:03}"), Duration::from_secs(100_000 - n));
    }
    world.fake.faults(|f| f.throttle_next = 3);
    xtask(&world, &["versions", "prune", "--keep", "10", "--timeout", "600"])
        .assert_success()
        .assert_contains("prune acme-web: 800 versions, keep the 10 newest, delete 790")
        .assert_contains("Elastic Beanstalk: waiting at most 10m, until")
        .assert_contains("deleted old-000")
        .assert_contains("application versions in this region, all applications: 10 of 1000");
    let mut left = world.fake.versions();
    left.sort();
    assert_eq!(left.first().map(String::as_str), Some("old-790"));
    assert_eq!(left.len(), 10);
}
