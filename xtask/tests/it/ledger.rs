//! Who deployed what, and who may deploy now: the deploy lock and the deploy history in the
//! bucket (moto's S3, which implements S3's conditional writes), `history`, `lock`, and
//! `rollback`'s choice from the history.

use std::time::Duration;

use crate::support::{
    Bucket, ENVIRONMENT, Started, World, aws_test_credentials, unique, version_at,
};

/// `ARGS` in `world`, started now (not waited for).
fn start(world: &World, args: &[&str]) -> Started {
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Started::new(&crate::support::root(), args, &env)
}

/// The environment's deploy history as stored, oldest first.
fn history(world: &World) -> Vec<serde_json::Value> {
    let key = format!("acme-web/deploy/history/{ENVIRONMENT}.json");
    let object = world.bucket.get(&key).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(object.encryption.as_deref(), Some("AES256"), "encrypted at rest");
    serde_json::from_str::<Vec<serde_json::Value>>(&object.body).unwrap()
}

fn outcomes(world: &World) -> Vec<(String, i64)> {
    history(world)
        .iter()
        .map(|r| (r["version"].as_str().unwrap().to_owned(), r["exit_code"].as_i64().unwrap()))
        .collect()
}

fn lock_key() -> String {
    format!("acme-web/deploy/locks/{ENVIRONMENT}.json")
}

#[test]
fn two_deploys_at_once_one_goes_the_other_exits_6_naming_it_or_waits_its_turn() {
    let world = World::prebuilt_with(&["v1", "v2"], |c| c.update_takes = Duration::from_secs(4));
    let (first, second) = (
        start(&world, &["deploy", "staging", "--tag", "v1"]),
        start(&world, &["deploy", "staging", "--tag", "v2"]),
    );
    let runs = [first.wait(300), second.wait(300)];
    let codes: Vec<Option<i32>> = runs.iter().map(|r| r.code).collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(6)), "{codes:?}");
    let (won, lost) = if runs[0].code == Some(0) { (0, 1) } else { (1, 0) };
    let (won_tag, lost_tag) = (["v1", "v2"][won], ["v1", "v2"][lost]);
    let loser = &runs[lost];
    let last = loser.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with(&format!("error: {ENVIRONMENT} is locked by ")), "{last}");
    assert!(last.contains(&format!("(deploy {won_tag} from host ")), "{last}");
    assert!(last.contains("wait with --lock-wait 10m"), "{last}");
    assert!(last.contains(&format!("cargo xtask lock release {ENVIRONMENT} --force")), "{last}");
    loser.assert_lacks(&format!("application version {lost_tag}"));
    assert_eq!(world.updates(), 1, "exactly one updated");
    assert!(world.fake.version_description(lost_tag).is_none(), "the loser published nothing");

    // With --lock-wait the second goes once the first is done; both succeed, in turn.
    let mut first = start(&world, &["deploy", "staging", "--tag", "v1"]);
    first.wait_for("took the deploy lock", 120);
    let second = start(&world, &["deploy", "staging", "--tag", "v2", "--lock-wait", "2m"]);
    let (first, second) = (first.wait(300), second.wait(300));
    first.assert_success();
    second
        .assert_success()
        .assert_contains(&format!("{ENVIRONMENT} is locked by "))
        .assert_contains("waiting for it up to 2m (--lock-wait)")
        .assert_contains(&format!("ok: {ENVIRONMENT} runs v2"));
    assert_eq!(world.updates(), 3);
    assert_eq!(version_at(world.port), "v2");
    let recorded = outcomes(&world);
    assert_eq!(recorded.len(), 3, "the refused run records nothing: {recorded:?}");
    assert!(recorded.iter().all(|(_, code)| *code == 0), "{recorded:?}");
    assert!(world.bucket.get(&lock_key()).is_none(), "released");
}

#[test]
fn a_killed_deploy_leaves_its_lock_which_status_shows_and_release_force_frees() {
    let world = World::prebuilt(&["v1"]);
    world.fake.faults(|f| f.hang_next_deploy = true);
    let mut started = start(&world, &["deploy", "staging", "--tag", "v1"]);
    started.wait_for("update accepted", 300);
    started.signal_group(libc::SIGKILL);
    let killed = started.wait(10);
    assert_eq!(killed.code, None, "killed: {}", killed.output);

    let status = world.xtask(&["lock", "status", "staging"], &[]);
    status.assert_success();
    let line = status.output.trim_end().lines().last().unwrap();
    assert!(line.starts_with(&format!("{ENVIRONMENT} is locked by ")), "{line}");
    assert!(line.contains("(deploy v1 from host ") && line.contains("s ago"), "{line}");

    let refused = world.xtask(&["lock", "release", "staging"], &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.output);
    refused.assert_contains("a running command's lock").assert_contains("pass --force");
    assert!(world.bucket.get(&lock_key()).is_some(), "kept without --force");

    world
        .xtask(&["lock", "release", "staging", "--force"], &[])
        .assert_success()
        .assert_contains(&format!("released the deploy lock of {ENVIRONMENT}, held by "));
    world
        .xtask(&["lock", "status", "staging"], &[])
        .assert_success()
        .assert_contains(&format!("{ENVIRONMENT} is not locked"));
}

#[test]
fn a_lock_taken_by_hand_refuses_deploys_with_its_message_until_released() {
    let world = World::prebuilt(&["v1"]);
    let other = "acme-web-prd";
    world.fake.add_environment(other, crate::support::closed_port());
    let typo = world.xtask(&["lock", "acquire", "acme-web-sgt", "--message", "x"], &[]);
    assert_eq!(typo.code, Some(1), "{}", typo.output);
    typo.assert_contains("environment acme-web-sgt not found in application acme-web");
    assert!(world.bucket.keys().is_empty(), "no lock taken for a misspelt name");
    world
        .xtask(&["lock", "acquire", ENVIRONMENT, "--message", "incident 42: hands off"], &[])
        .assert_success();
    // Two environments: all their locks or none (prd's, taken first in name order, is
    // released again).
    let run = world.deploy(&[other, ENVIRONMENT, "--tag", "v1"]);
    assert_eq!(run.code, Some(6), "{}", run.output);
    let last = run.output.trim_end().lines().last().unwrap();
    assert!(last.contains("(by hand from host ") && last.contains("\"incident 42: hands off\""));
    assert!(last.contains(&format!("cargo xtask lock release {ENVIRONMENT}`")), "{last}");
    assert_eq!(world.updates(), 0);
    assert!(world.bucket.get(&format!("acme-web/deploy/locks/{other}.json")).is_none());
    let dry = world.deploy(&[ENVIRONMENT, "--tag", "v1", "--dry-run"]);
    dry.assert_success().assert_contains(&format!("first take the deploy lock of {ENVIRONMENT}"));

    // Taken by this very user, by hand: released without --force.
    world.xtask(&["lock", "release", ENVIRONMENT], &[]).assert_success();
    world.deploy(&["staging", "--tag", "v1"]).assert_success();
}

#[test]
fn every_ending_has_its_record_in_order_and_releases_the_lock() {
    let world = World::prebuilt(&["v1", "v2", "v3"]);
    world.deploy(&["staging", "--tag", "v1"]).assert_success();
    world.fake.faults(|f| f.roll_back_next_deploy = true);
    assert_eq!(world.deploy(&["staging", "--tag", "v2"]).code, Some(3));
    assert!(world.bucket.get(&lock_key()).is_none(), "a failed deploy releases its lock");

    world.fake.faults(|f| f.hang_next_deploy = true);
    let mut started = start(&world, &["deploy", "staging", "--tag", "v3"]);
    started.wait_for("update accepted", 300);
    std::thread::sleep(Duration::from_millis(300));
    started.signal_group(libc::SIGINT);
    let interrupted = started.wait(30);
    assert_eq!(interrupted.code, Some(130), "{}", interrupted.output);
    interrupted.assert_contains(&format!("released the deploy lock of {ENVIRONMENT}"));
    assert!(world.bucket.get(&lock_key()).is_none(), "Ctrl-C releases the lock");

    let recorded = outcomes(&world);
    let expected = [("v1", 0), ("v2", 3), ("v3", 130)].map(|(v, c)| (v.to_owned(), c));
    assert_eq!(recorded, expected);
    let last = &history(&world)[2];
    assert_eq!(last["outcome"], "interrupted");
    assert_eq!(last["command"], "deploy");
    assert!(last["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{last}");
    assert!(last["from"].as_str().unwrap().starts_with("host "), "{last}");

    let table = world.xtask(&["history", "staging", "--limit", "2"], &[]);
    table.assert_success();
    let lines: Vec<&str> = table.output.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.output);
    assert!(lines[0].starts_with("WHEN (UTC)") && lines[0].contains("OUTCOME"), "{}", lines[0]);
    assert!(lines[1].contains("v3") && lines[1].contains("interrupted"), "{}", lines[1]);
    assert!(lines[2].contains("v2") && lines[2].contains("failed"), "{}", lines[2]);
    world
        .xtask(&["status", "staging"], &[])
        .assert_success()
        .assert_contains("last deploys, newest first");
}

#[test]
fn rollback_goes_to_the_newest_other_version_that_succeeded_there() {
    let world = World::prebuilt(&["v1", "v2", "v3"]);
    let run = world.xtask(&["rollback", "staging"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("has no deploy history yet").assert_contains("--to LABEL");

    world.deploy(&["staging", "--tag", "v1"]).assert_success();
    world.deploy(&["staging", "--tag", "v2"]).assert_success();
    world.fake.faults(|f| f.roll_back_next_deploy = true);
    assert_eq!(world.deploy(&["staging", "--tag", "v3"]).code, Some(3));
    assert_eq!(world.fake.environment(ENVIRONMENT).label.as_deref(), Some("v2"));

    let refused = world.xtask(&["rollback", "staging", "--to", "v3"], &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.output);
    refused
        .assert_contains("v3 never succeeded on acme-web-stg")
        .assert_contains("cargo xtask history acme-web-stg");
    world.xtask(&["rollback", "staging", "--dry-run"], &[]).assert_success().assert_contains(
        &format!("roll {ENVIRONMENT} back from v2 to v1 (the newest other version that succeeded"),
    );
    assert_eq!(world.updates(), 3, "a dry run updates nothing");
    world
        .xtask(&["rollback", "staging"], &[])
        .assert_success()
        .assert_contains(&format!("ok: {ENVIRONMENT} runs v1, health Green"));
    assert_eq!(version_at(world.port), "v1");
    let last = history(&world).pop().unwrap();
    assert_eq!(
        (last["command"].as_str(), last["version"].as_str()),
        (Some("rollback"), Some("v1"))
    );
}

#[test]
fn a_version_description_names_the_commit_subject_and_author_within_200_characters() {
    let project = crate::support::Project::new("long-subject");
    let subject = format!("Make the login page {}", "much ".repeat(56));
    assert!(subject.chars().count() > 290);
    project.commit(&subject);
    let world = World::prebuilt(&["v1"]);
    world.deploy_in(project.path(), &["staging", "--tag", "v1"], &[]).assert_success();
    let description = world.fake.version_description("v1").unwrap();
    assert!(description.chars().count() <= 200, "{description}");
    assert!(description.starts_with("Make the login page much much"), "{description}");
    assert!(description.ends_with("… (Ana Lima <ana@example.com>)"), "{description}");
}

/// The bucket and moto's address the helper below appends in.
const BUCKET_VAR: &str = "XTASK_IT_APPEND_BUCKET";

#[test]
fn twenty_concurrent_appends_lose_no_record() {
    let bucket = Bucket::new();
    // The SDK's credential chain reads the process's environment: the appends run in a
    // process of their own, this test binary running the helper below.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "ledger::appends_of_one_process", "--nocapture"])
        .envs(aws_test_credentials())
        .env("AWS_ENDPOINT_URL_S3", format!("http://{}", bucket.s3))
        .env(BUCKET_VAR, &bucket.name)
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{output}{}", String::from_utf8_lossy(&out.stderr));
    assert!(output.contains("1 passed"), "{output}");
    let object = bucket.get("acme-web/deploy/history/acme-web-stg.json").unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&object.body).unwrap();
    let mut versions: Vec<&str> = records.iter().map(|r| r["version"].as_str().unwrap()).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 20, "every append kept, once: {versions:?}");
}

#[test]
#[ignore = "a helper: twenty_concurrent_appends_lose_no_record runs it with moto's address"]
fn appends_of_one_process() {
    use xtask::eb::Eb;
    use xtask::eb::ledger::history::{self, Record};
    use xtask::eb::ledger::store::Store;
    use xtask::run::{Context, Env, interrupt::Interrupt, ui::Ui};
    let Ok(bucket) = std::env::var(BUCKET_VAR) else {
        panic!("run by twenty_concurrent_appends_lose_no_record, which sets {BUCKET_VAR}");
    };
    let ctx = Context {
        root: crate::support::root(),
        env: Env::from_process(),
        ui: Ui::new(false, true),
        interrupt: Interrupt::default(),
    };
    let setup = xtask::aws::Setup { region: Some("us-east-1"), profile: None, ecr_region: None };
    let (aws, eb) = Eb::connect(&ctx.env, setup, "acme-web", Duration::from_secs(120)).unwrap();
    let store = Store { bucket, application: "acme-web".into() };
    let record = |n: usize| Record {
        id: unique("record"),
        command: "deploy".into(),
        version: Some(format!("v{n}")),
        commit: None,
        subject: None,
        who: "test".into(),
        from: "host test".into(),
        build_url: None,
        started: "2026-12-07T09:00:00Z".into(),
        ended: "2026-12-07T09:01:00Z".into(),
        outcome: "success".into(),
        exit_code: 0,
        request_id: None,
        live: None,
    };
    let records: Vec<Record> = (0..20).map(record).collect();
    let appends = records.iter().map(|r| history::append(&ctx, &eb, &store, ENVIRONMENT, r));
    for result in aws.block_on(futures_util::future::join_all(appends)) {
        result.unwrap();
    }
}
