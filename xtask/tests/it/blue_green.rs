//! Blue/green: `deploy PAIR --blue-green`, `swap`, `rollback PAIR`, `status PAIR` and
//! `env create PAIR` against the fake's SwapEnvironmentCNAMEs, in a committed copy of the
//! workspace whose settings name the pair.

use std::time::Duration;

use crate::support::iam::Roles;
use crate::support::{Project, Run, Started, World, closed_port, version_at};

const A: &str = "acme-prod-a";
const B: &str = "acme-prod-b";
const PUBLIC: &str = "acme-prod";

/// A world with the pair `production` (A holds the public CNAME), its copy of the workspace,
/// and the ports of A's and B's load balancers.
struct Pair {
    world: World,
    project: Project,
    ports: [u16; 2],
    /// Variables set over the world's.
    extra: Vec<(&'static str, String)>,
}

impl Pair {
    /// Both environments created, A live; with `deployed`, both run it first.
    fn new(tags: &[&str], deployed: Option<&str>) -> Pair {
        let world = World::prebuilt(tags);
        let pair = Pair::settings(world);
        let ports = [closed_port(), closed_port()];
        pair.world.fake.add_environment(A, ports[0]);
        pair.world.fake.add_environment(B, ports[1]);
        pair.world.fake.set_cname_prefix(A, PUBLIC);
        let pair = Pair { ports, ..pair };
        if let Some(tag) = deployed {
            pair.run(&["deploy", A, B, "--tag", tag]).assert_success();
        }
        pair
    }

    /// `world`, and a workspace copy whose `production` is a blue/green pair.
    fn settings(world: World) -> Pair {
        let project = Project::new("blue-green");
        let manifest = project.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text
            .replace("production = { name = \"acme-web-prd\", branch = \"release/prd\" }\n", "");
        let pair = format!(
            "\n[workspace.metadata.deploy.blue_green.production]\nenvironments = [\"{A}\", \
             \"{B}\"]\ncname = \"{PUBLIC}\"\n"
        );
        std::fs::write(&manifest, text + &pair).unwrap();
        project.commit("a blue/green pair");
        Pair { world, project, ports: [0, 0], extra: Vec::new() }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.start(args).wait(300)
    }

    fn start(&self, args: &[&str]) -> Started {
        let env = self.world.env_with(&self.extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Started::new(self.project.path(), args, &env)
    }

    fn live(&self) -> Option<u16> {
        self.world.fake.port_of_cname(PUBLIC)
    }

    fn swaps(&self) -> usize {
        self.world.fake.count("SwapEnvironmentCNAMEs")
    }

    /// The history of `environment` as stored: (command, version, live, outcome).
    fn history(&self, environment: &str) -> Vec<(String, String, Option<bool>, String)> {
        let key = format!("acme-web/deploy/history/{environment}.json");
        let object = self.world.bucket.get(&key).unwrap_or_else(|| panic!("no {key}"));
        let records: Vec<serde_json::Value> = serde_json::from_str(&object.body).unwrap();
        let text = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("-").to_owned();
        records
            .iter()
            .map(|r| {
                (text(r, "command"), text(r, "version"), r["live"].as_bool(), text(r, "outcome"))
            })
            .collect()
    }
}

#[test]
fn deploy_blue_green_updates_the_idle_side_swaps_it_live_and_rollback_swaps_back() {
    let pair = Pair::new(&["v1", "v2"], Some("v1"));
    let [a, b] = pair.ports;
    let a_updates = pair.world.fake.count_on("UpdateEnvironment", A);
    // The swap's answer is lost after it was carried out: it is followed, never resent
    // (a resend would swap back).
    let cut = ("SwapEnvironmentCNAMEs".to_owned(), crate::support::eb_fake::Loss::Cut);
    pair.world.fake.faults(|f| f.lose_answer = Some(cut));
    let deploy =
        pair.run(&["deploy", "production", "--blue-green", "--tag", "v2", "--settle", "2"]);
    deploy
        .assert_success()
        .assert_contains(&format!("update {B} to v2"))
        .assert_contains(&format!("verify {B} before it goes live"))
        .assert_contains(&format!("{B} runs v2, Green for "))
        .assert_contains("the answer to SwapEnvironmentCNAMEs was lost")
        .assert_contains("Completed swapping CNAMEs for environments")
        .assert_contains("the CNAME's TTL is 60 s");
    let last = deploy.output.trim_end().lines().last().unwrap();
    assert!(last.starts_with(&format!("ok: {B} is live at http://{PUBLIC}.")), "{last}");
    assert!(last.ends_with(&format!("runs v2; {A} is idle with v1")), "{last}");
    assert_eq!(pair.world.fake.count_on("UpdateEnvironment", A), a_updates, "live untouched");
    assert_eq!(pair.swaps(), 1, "one swap, its lost answer followed");
    assert_eq!(pair.live(), Some(b));
    assert_eq!((version_at(b), version_at(a)), ("v2".into(), "v1".into()));
    pair.run(&["status", "production"])
        .assert_success()
        .assert_contains(&format!("live  {B}  v2  Ready  Green"))
        .assert_contains(&format!("idle  {A}  v1  Ready  Green"));
    assert_eq!(
        pair.history(B).last().unwrap(),
        &("deploy --blue-green".into(), "v2".into(), Some(true), "success".into())
    );
    assert_eq!(
        pair.history(A).last().unwrap(),
        &("swap".into(), "v1".into(), Some(false), "success".into())
    );
    pair.run(&["history", "production", "--limit", "1"])
        .assert_success()
        .assert_contains(&format!("{A}:"))
        .assert_contains("[idle] swap")
        .assert_contains(&format!("{B}:"))
        .assert_contains("[live] deploy --blue-green: ");

    // A still runs v1, live before the swap: the rollback is one swap back.
    let updates = pair.world.updates();
    pair.run(&["rollback", "production", "--settle", "2"])
        .assert_success()
        .assert_contains(&format!(
            "roll pair production back from v2 to v1: swap back: {A} still runs v1"
        ))
        .assert_contains(&format!("ok: {A} is live"));
    assert_eq!(pair.world.updates(), updates, "no UpdateEnvironment");
    assert_eq!(pair.swaps(), 2);
    assert_eq!(pair.live(), Some(a));
}

#[test]
fn a_bad_version_on_the_idle_side_is_never_swapped_live_a_good_one_waits_with_no_swap() {
    let pair = Pair::new(&["v1", "v2"], Some("v1"));
    pair.world.fake.faults(|f| f.instances_keep_old_version_next_deploy = true);
    let deploy =
        pair.run(&["deploy", "production", "--blue-green", "--tag", "v2", "--settle", "2"]);
    assert_eq!(deploy.code, Some(3), "{}", deploy.output);
    let last = deploy.output.trim_end().lines().last().unwrap();
    assert!(last.ends_with(&format!("; live: {A} still serves v1")), "{last}");
    assert_eq!(pair.swaps(), 0, "no SwapEnvironmentCNAMEs");
    assert_eq!(pair.world.fake.count_on("UpdateEnvironment", A), 1, "the first deploy only");
    assert_eq!(pair.live(), Some(pair.ports[0]));
    assert_eq!(pair.history(B).last().unwrap().3, "failed");
    assert!(
        pair.history(A).iter().all(|(command, ..)| command == "deploy"),
        "the untouched live side records nothing: {:?}",
        pair.history(A)
    );

    // --no-swap: the idle side verified and left idle; `swap` finishes.
    let args = ["deploy", "production", "--blue-green", "--tag", "v2", "--no-swap"];
    pair.run(&args)
        .assert_success()
        .assert_contains(&format!("ok: {B} (idle) runs v2, verified; {A} still serves v1"))
        .assert_contains("`cargo xtask swap production` puts it live");
    assert_eq!((pair.swaps(), version_at(pair.ports[1])), (0, "v2".to_owned()));
    pair.run(&["swap", "production", "--settle", "2"])
        .assert_success()
        .assert_contains(&format!("ok: {B} is live"));
    assert_eq!(pair.live(), Some(pair.ports[1]));
}

#[test]
fn swap_is_refused_while_a_side_is_busy_or_the_idle_one_is_red() {
    let pair = Pair::new(&["v1", "v2"], Some("v1"));
    pair.run(&["swap", "production", "--dry-run"])
        .assert_success()
        .assert_contains(&format!("{B} would go live"))
        .assert_contains(&format!("live  {A}  v1  Ready"))
        .assert_contains(&format!("idle  {B}  v1  Ready"));

    pair.world.fake.make_busy(B, Duration::from_secs(8));
    let busy = pair.run(&["swap", "production"]);
    assert_eq!(busy.code, Some(1), "{}", busy.output);
    busy.assert_contains(&format!(
        "error: no swap: {B} is Updating (latest event: Environment update is starting.)"
    ));

    // B turns Red after a deploy of its own (its recovery window runs out); the deploy
    // waits for B to be Ready first.
    pair.world.fake.faults(|f| f.red_after_next_deploy = Some(Duration::from_secs(600)));
    let red = pair.run(&["deploy", B, "--tag", "v2", "--recovery-window", "2"]);
    assert_eq!(red.code, Some(4), "{}", red.output);
    let refused = pair.run(&["swap", "production", "--settle", "2"]);
    assert_eq!(refused.code, Some(4), "{}", refused.output);
    refused.assert_contains(&format!("error: no swap: {B} is Red"));
    refused.assert_contains(&format!("live: {A} still serves v1 (nothing was changed)"));
    assert_eq!(pair.swaps(), 0);
}

#[test]
fn ctrl_c_while_the_swap_runs_says_it_continues_and_how_to_check() {
    let pair = Pair::new(&["v1", "v2"], Some("v1"));
    // During the verification of a blue/green deploy: recorded interrupted (its update
    // succeeded, the command did not), nothing swapped.
    let mut deploy = pair.start(&["deploy", "production", "--blue-green", "--tag", "v2"]);
    deploy.wait_for(&format!("verify {B} before it goes live"), 120);
    deploy.signal_group(libc::SIGINT);
    let stopped = deploy.wait(60);
    assert_eq!(stopped.code, Some(130), "{}", stopped.output);
    assert_eq!(pair.history(B).last().unwrap().3, "interrupted");
    assert_eq!(pair.swaps(), 0);

    // During the swap's wait.
    pair.world.fake.faults(|f| f.slow_swap = Some(Duration::from_secs(30)));
    let mut swap = pair.start(&["swap", "production", "--settle", "2"]);
    swap.wait_for("swap accepted", 120);
    swap.signal_group(libc::SIGINT);
    let stopped = swap.wait(60);
    assert_eq!(stopped.code, Some(130), "{}", stopped.output);
    stopped
        .assert_contains("Elastic Beanstalk continues the swap on its own")
        .assert_contains("`cargo xtask status production`")
        .assert_contains(&format!("released the deploy lock of {A}, {B}"));
    assert_eq!(pair.history(B).last().unwrap().3, "interrupted");
}

#[test]
fn env_create_makes_both_sides_the_first_one_live() {
    let world = World::empty_account(&["v1"]);
    let roles = Roles::new();
    let pair = Pair { extra: roles.env(), ..Pair::settings(world) };
    pair.run(&["env", "create", "production", "--tag", "v1"])
        .assert_success()
        .assert_contains(&format!("CNAME prefix {PUBLIC} and {B} available"))
        .assert_contains(&format!("ok: {A} created: runs v1"))
        .assert_contains(&format!("ok: {B} created: runs v1"));
    assert_eq!(pair.world.fake.environment(A).cname_prefix, PUBLIC);
    assert_eq!(pair.world.fake.environment(B).cname_prefix, B);
    pair.run(&["status", "production"]).assert_success().assert_contains(&format!("live  {A}  v1"));
    let refused = pair.run(&["env", "terminate", A, "--yes"]);
    assert_eq!(refused.code, Some(1), "{}", refused.output);
    refused.assert_contains(&format!("{A} is the live side of blue/green pair production"));
}
