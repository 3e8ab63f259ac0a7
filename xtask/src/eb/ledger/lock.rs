//! The deploy lock of an environment: `APP/deploy/locks/ENV.json` in the bucket, created with
//! `If-None-Match: *` (so exactly one of two runs gets it), saying who holds it, from where,
//! for what and since when; deleted with `If-Match` on the ETag written (so a run never
//! deletes a lock someone took after its own was taken away with `--force`).
//!
//! Several environments' locks are taken in name order, all or none: two runs that want
//! overlapping sets never hold one each and wait for the other.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};

use super::store::{Condition, Store, Written};
use crate::aws::{human_duration, time_of_day};
use crate::config::actor::Actor;
use crate::eb::Eb;
use crate::eb::events::utc;
use crate::eb::wait::pause;
use crate::run::Context;
use crate::run::exit::{Failure, LOCKED};

/// How often `--lock-wait` looks again.
pub const POLL: Duration = Duration::from_secs(15);
/// A lock held this much longer than its command's `--timeout` is stale: its run is most
/// likely dead (killed, its machine gone). Said as such, never taken away silently.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);
/// The command of a lock taken with `lock acquire`.
pub const BY_HAND: &str = "lock acquire";

/// Who holds a lock: the lock object's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// A random token of this hold: tells our own write from another's.
    pub id: String,
    pub who: String,
    pub from: String,
    /// `deploy`, `rollback`, `env create`, `env terminate`, or [`BY_HAND`].
    pub command: String,
    pub version: Option<String>,
    /// Why it was taken by hand.
    pub message: Option<String>,
    /// When, in UTC (RFC 3339, the service's clock).
    pub since: String,
    /// The holding command's `--timeout`; none for a lock taken by hand.
    pub timeout_secs: Option<u64>,
    pub build_url: Option<String>,
}

impl Holder {
    /// A new hold by `actor`, from now (`now`: the service's clock).
    pub fn new(actor: &Actor, command: &str, version: Option<&str>, now: DateTime) -> Holder {
        Holder {
            id: crate::run::secret::random_hex(),
            who: actor.who.clone(),
            from: actor.from.clone(),
            command: command.to_owned(),
            version: version.map(str::to_owned),
            message: None,
            since: utc(&now),
            timeout_secs: None,
            build_url: actor.build_url.clone(),
        }
    }

    pub fn by_hand(&self) -> bool {
        self.command == BY_HAND
    }

    /// How long it has been held, by `now` (the service's clock).
    pub fn age(&self, now: DateTime) -> Duration {
        let since = DateTime::from_str(&self.since, DateTimeFormat::DateTime).unwrap_or(now);
        Duration::from_secs(u64::try_from(now.secs() - since.secs()).unwrap_or(0))
    }

    /// Whether it is held longer than its command's `--timeout` plus [`STALE_AFTER`].
    pub fn stale(&self, now: DateTime) -> bool {
        self.timeout_secs.is_some_and(|t| self.age(now) > Duration::from_secs(t) + STALE_AFTER)
    }

    /// `Ana Lima <ana@example.com> (deploy v42 from ci job deploy #1234) since 09:12:03 UTC,
    /// 4m ago`, and why when taken by hand, and whether it is stale.
    pub fn describe(&self, now: DateTime) -> String {
        let age = self.age(now);
        let what = match (&self.version, self.by_hand()) {
            (_, true) => "by hand".to_owned(),
            (Some(version), false) => format!("{} {version}", self.command),
            (None, false) => self.command.clone(),
        };
        let when = DateTime::from_str(&self.since, DateTimeFormat::DateTime)
            .ok()
            .and_then(|t| SystemTime::try_from(t).ok())
            .map_or_else(|| self.since.clone(), time_of_day);
        let when = if age > Duration::from_secs(20 * 3600) { self.since.clone() } else { when };
        let mut line = format!(
            "{} ({what} from {}) since {when}, {} ago",
            self.who,
            self.from,
            human_duration(age)
        );
        if let Some(message) = &self.message {
            line.push_str(&format!(": \"{message}\""));
        }
        if self.stale(now) {
            let timeout = human_duration(Duration::from_secs(self.timeout_secs.unwrap_or(0)));
            line.push_str(&format!(
                " (stale: held longer than its --timeout of {timeout} plus 10m, so that run is \
                 most likely dead)"
            ));
        }
        line
    }
}

/// The locks a run holds: each environment, with the ETag written.
#[derive(Debug, Default)]
pub struct Locks {
    taken: Vec<(String, String)>,
}

/// What taking one lock found.
enum Take {
    Taken(String),
    Held(Holder),
}

/// Takes the locks of `environments` for `holder`, all or none, in name order; while one is
/// held by someone else, waits up to `wait` (`--lock-wait`), looking every [`POLL`], else
/// fails with exit 6 naming the holder and the ways out.
pub async fn acquire(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environments: &[String],
    holder: &Holder,
    wait: Option<Duration>,
) -> anyhow::Result<Locks> {
    let mut names = environments.to_vec();
    names.sort();
    names.dedup();
    let started = Instant::now();
    let mut said = false;
    loop {
        let mut locks = Locks::default();
        let mut blocked = None;
        for environment in &names {
            let taken = take(ctx, eb, store, environment, holder).await.with_context(|| {
                format!(
                    "cannot take the deploy lock of {environment} (nothing was built or changed)"
                )
            });
            match taken {
                Ok(Take::Taken(etag)) => locks.taken.push((environment.clone(), etag)),
                Ok(Take::Held(theirs)) => {
                    blocked = Some((environment, theirs));
                    break;
                }
                Err(err) => {
                    // Ctrl-C (or an error) while this one was being written: it may be ours.
                    let ctx = &ctx.without_interrupt();
                    let cleanup = eb.with_timeout(super::CLEANUP);
                    if let Ok(Some((theirs, etag))) =
                        status(ctx, &cleanup, store, environment).await
                        && theirs.id == holder.id
                    {
                        locks.taken.push((environment.clone(), etag));
                    }
                    locks.release(ctx, &cleanup, store).await;
                    return Err(err);
                }
            }
        }
        let Some((environment, theirs)) = blocked else {
            let list = names.join(", ");
            ctx.ui.info(format_args!("took the deploy lock of {list}"));
            return Ok(locks);
        };
        locks.release(&ctx.without_interrupt(), eb, store).await;
        let now = eb.now();
        let remaining = wait.map(|w| w.saturating_sub(started.elapsed())).unwrap_or_default();
        if remaining.is_zero() {
            return Err(held(environment, &theirs, now, wait).into());
        }
        if !said {
            ctx.ui.info(format_args!(
                "{environment} is locked by {}: waiting for it up to {} (--lock-wait), looking \
                 every {}s",
                theirs.describe(now),
                human_duration(wait.unwrap_or_default()),
                POLL.as_secs()
            ));
            said = true;
        }
        pause(ctx, POLL.min(remaining), &format!("the wait for the deploy lock of {environment}"))
            .await?;
    }
}

/// Creates the lock of `environment` unless it exists.
async fn take(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
    holder: &Holder,
) -> anyhow::Result<Take> {
    let key = store.key("locks", environment);
    loop {
        if let Written::Done(Some(etag)) =
            store.put(ctx, eb, &key, holder, &Condition::Absent).await?
        {
            return Ok(Take::Taken(etag));
        }
        // Refused (or written without an ETag in the answer): whose is it? Ours, when an
        // attempt whose answer was lost had written it.
        match store.get::<Holder>(ctx, eb, &key).await? {
            Some(read) if read.value.id == holder.id => return Ok(Take::Taken(read.etag)),
            Some(read) => return Ok(Take::Held(read.value)),
            // Released in between: try again.
            None => continue,
        }
    }
}

/// The error of a lock held by someone else: who, since when, and the ways out.
fn held(environment: &str, theirs: &Holder, now: DateTime, waited: Option<Duration>) -> Failure {
    let waited = match waited {
        Some(wait) => format!(" (still, after waiting {} with --lock-wait)", human_duration(wait)),
        None => String::new(),
    };
    let release = format!("cargo xtask lock release {environment} --force");
    let way_out = if theirs.by_hand() {
        format!(
            "wait with --lock-wait 10m, or ask them to run `cargo xtask lock release \
             {environment}`; `{release}` takes it from them"
        )
    } else if theirs.stale(now) {
        format!("if that run is dead, `{release}`")
    } else {
        format!("wait with --lock-wait 10m, or, if that run is dead, `{release}`")
    };
    let seen = theirs.build_url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
    Failure::new(
        LOCKED,
        format!("{environment} is locked{waited} by {}{seen}: {way_out}", theirs.describe(now)),
    )
}

impl Locks {
    /// Releases every lock taken, each only if it is still the one written, quietly: a lock
    /// that cannot be released is a warning saying how to release it (the run's verdict
    /// stands). Returns the environments released.
    pub async fn release(self, ctx: &Context, eb: &Eb, store: &Store) -> Vec<String> {
        let mut released = Vec::new();
        for (environment, etag) in self.taken.into_iter().rev() {
            match store.delete(ctx, eb, &store.key("locks", &environment), &etag).await {
                Ok(Written::Done(_)) => released.push(environment),
                Ok(Written::Refused) => ctx.ui.warn(format_args!(
                    "the deploy lock of {environment} was no longer this run's (taken away with \
                     `lock release --force`?): left as it is"
                )),
                Err(err) => ctx.ui.warn(format_args!(
                    "cannot release the deploy lock of {environment} ({err:#}): release it with \
                     `cargo xtask lock release {environment} --force`"
                )),
            }
        }
        released.reverse();
        released
    }
}

/// The lock of `environment` as it is now: its holder and ETag, or `None` when free.
pub async fn status(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
) -> anyhow::Result<Option<(Holder, String)>> {
    let read = store.get::<Holder>(ctx, eb, &store.key("locks", environment)).await?;
    Ok(read.map(|r| (r.value, r.etag)))
}

/// Releases the lock of `environment` by hand (`lock release`): one taken by hand by `me`
/// without more ado; any other (someone else's, or a running command's) only with `force`.
/// Returns the holder it released, `None` when it was free.
pub async fn release_by_hand(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
    me: &Actor,
    force: bool,
) -> anyhow::Result<Option<Holder>> {
    let Some((theirs, etag)) = status(ctx, eb, store, environment).await? else {
        return Ok(None);
    };
    let mine = theirs.by_hand() && theirs.who == me.who;
    if !mine && !force {
        let whose = if theirs.by_hand() { "someone else's" } else { "a running command's" };
        anyhow::bail!(
            "{environment} is locked by {}: that is {whose} lock; if that run is dead (or you \
             mean to take it from them), pass --force",
            theirs.describe(eb.now())
        );
    }
    match store.delete(ctx, eb, &store.key("locks", environment), &etag).await? {
        Written::Done(_) => Ok(Some(theirs)),
        Written::Refused => anyhow::bail!(
            "the deploy lock of {environment} changed while it was being released: look again \
             with `cargo xtask lock status {environment}`"
        ),
    }
}
