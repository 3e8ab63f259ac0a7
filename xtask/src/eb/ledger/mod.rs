//! Who deployed what, and who may deploy now: the deploy lock and the deploy history of each
//! environment, kept beside the bundles in the Elastic Beanstalk bucket with S3's conditional
//! writes (`store`). Every command that changes an environment (`deploy`, `rollback`,
//! `env create`, `env terminate`) runs [`guarded`]: its locks first, before anything is
//! built, pushed or changed; then the work, under the command's own deadline; then, whatever
//! the outcome (Ctrl-C, a closed terminal included), one history record per environment and
//! the locks released.

pub mod history;
pub mod lock;
pub mod store;

use std::time::Duration;

use self::history::Record;
use self::lock::Holder;
use self::store::Store;
use crate::aws::Aws;
use crate::config::actor::Actor;
use crate::eb::Eb;
use crate::eb::events::utc;
use crate::eb::{logs, publish};
use crate::run::{Context, exit};

/// What the clean-up after the work may take: the history records and the locks' release.
/// Its own bound, so that a run out of time still releases its locks.
pub const CLEANUP: Duration = Duration::from_secs(60);
/// What the calls that take the locks may take, on top of `--lock-wait`.
const LOCK_CALLS: Duration = Duration::from_secs(60);

/// A command that changes environments, as its lock and its history records see it.
#[derive(Clone, Debug)]
pub struct Job {
    /// `deploy`, `rollback`, `env create`, `env terminate`, `swap`, `deploy --blue-green`,
    /// `rollback --blue-green`.
    pub command: &'static str,
    pub environments: Vec<String>,
    pub version: Option<String>,
    /// The commit of the version, and its subject.
    pub commit: Option<(String, String)>,
    /// `--lock-wait`: how long to wait for a lock someone else holds.
    pub lock_wait: Option<Duration>,
    /// `--timeout`: the work's deadline, from when the locks are held.
    pub timeout: Duration,
    /// `--no-wait`: a success is the operation accepted, not done (recorded as `accepted`).
    pub no_wait: bool,
    /// The `bucket` setting (else the account's Elastic Beanstalk bucket).
    pub bucket: Option<String>,
    /// On a failed deploy (exit 3 or 4), show why from each failed environment's logs.
    pub logs: bool,
}

/// Where the lock and history of the application's environments are.
pub async fn store(ctx: &Context, eb: &Eb, bucket: Option<&str>) -> anyhow::Result<Store> {
    let bucket = publish::bucket(ctx, eb, bucket).await?;
    Ok(Store { bucket, application: eb.application.clone() })
}

/// Runs `work` holding the locks of the job's environments (`eb`'s clients; its deadline
/// starts once they are held), then records it in each environment's history and releases
/// the locks, whatever happened. A history or a release that fails is a warning: the work's
/// result is the command's.
pub fn guarded(
    ctx: &Context,
    aws: &Aws,
    eb: &Eb,
    job: &Job,
    work: impl FnOnce(&Eb) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let actor = Actor::of(ctx);
    let taking = eb.with_timeout(job.lock_wait.unwrap_or_default() + LOCK_CALLS);
    let (store, locks, started) = aws.block_on(async {
        let store = store(ctx, &taking, job.bucket.as_deref()).await?;
        let mut holder = Holder::new(&actor, job.command, job.version.as_deref(), taking.now());
        holder.timeout_secs = Some(job.timeout.as_secs());
        let locks =
            lock::acquire(ctx, &taking, &store, &job.environments, &holder, job.lock_wait).await?;
        anyhow::Ok((store, locks, taking.now()))
    })?;
    let working = eb.with_timeout(job.timeout);
    working.say_deadline(ctx);
    let result = work(&working);
    if job.logs {
        let code = result.as_ref().map_or_else(exit::code, |()| 0);
        aws.block_on(show_why(ctx, eb, job, code, working.journal()));
    }
    // After Ctrl-C too: a fresh flag (a second Ctrl-C still ends the process at once).
    let ctx = &ctx.without_interrupt();
    let ending = eb.with_timeout(CLEANUP);
    let code = result.as_ref().map_or_else(exit::code, |()| 0);
    aws.block_on(async {
        let ended = utc(&ending.now());
        for environment in &job.environments {
            let entry = working.journal().entry(environment);
            if entry.untouched {
                continue;
            }
            let code = entry.code.unwrap_or(code);
            // The other side of a swap runs a version of its own: a swap, not this release.
            let (version, live) = match entry.placed {
                Some((version, live)) => (Some(version), Some(live)),
                None => (job.version.clone(), None),
            };
            let released = version == job.version;
            let commit = job.commit.as_ref().filter(|_| released);
            let record = Record {
                id: crate::run::secret::random_hex(),
                command: if released { job.command } else { "swap" }.to_owned(),
                version,
                commit: commit.map(|(sha, _)| sha.clone()),
                subject: commit.map(|(_, subject)| subject.clone()),
                who: actor.who.clone(),
                from: actor.from.clone(),
                build_url: actor.build_url.clone(),
                started: utc(&started),
                ended: ended.clone(),
                outcome: history::outcome(code, job.no_wait).to_owned(),
                exit_code: code,
                request_id: entry.request_id,
                live,
            };
            if let Err(err) = history::append(ctx, &ending, &store, environment, &record).await {
                ctx.ui.warn(format_args!(
                    "cannot record this {} in the deploy history of {environment} ({err:#}): \
                     its verdict stands",
                    job.command
                ));
            }
        }
        let released = locks.release(ctx, &ending, &store).await;
        // A success's own line stays the last; after a failure, the error is printed last
        // and this says the lock is not left behind.
        if result.is_err() && !released.is_empty() {
            ctx.ui.info(format_args!("released the deploy lock of {}", released.join(", ")));
        }
    });
    result
}

/// After a failed deploy (exit 3 or 4): why, from the logs of each environment it failed
/// on (its own status, with several), within [`logs::WHY_TAKES`]. A failure to fetch them
/// is one line; the exit status stays the deploy's.
async fn show_why(ctx: &Context, eb: &Eb, job: &Job, code: i32, journal: &crate::eb::Journal) {
    let failed = |code: i32| code == exit::DEPLOY_FAILED || code == exit::UNHEALTHY;
    for environment in &job.environments {
        let entry = journal.entry(environment);
        if entry.untouched || !failed(entry.code.unwrap_or(code)) {
            continue;
        }
        ctx.ui.info(format_args!(
            "fetching the logs of {environment} to show why (--no-logs skips this)"
        ));
        let fetching = eb.with_timeout(logs::WHY_TAKES);
        if let Err(err) = logs::why(ctx, &fetching, environment).await {
            ctx.ui.warn(format_args!(
                "cannot show why from the logs of {environment} ({err:#}): `cargo xtask logs \
                 {environment}` tries again"
            ));
        }
    }
}

/// What `--dry-run` says of the lock and the history: it takes no lock.
pub fn print_plan(ctx: &Context, application: &str, environments: &[&str]) {
    for environment in environments {
        ctx.ui.info(format_args!(
            "first take the deploy lock of {environment} ({application}/deploy/locks/\
             {environment}.json in the bucket; exit 6 while someone else holds it, --lock-wait \
             waits for it); at the end record the outcome in {application}/deploy/history/\
             {environment}.json and release the lock"
        ));
    }
}
