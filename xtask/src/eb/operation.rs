//! Starting an operation that changes an environment (UpdateEnvironment, CreateEnvironment,
//! TerminateEnvironment, SwapEnvironmentCNAMEs) exactly once. These calls carry no client
//! token: a resend after a lost answer is a second operation (another outage under
//! AllAtOnce; a swap back) or an error ("… Must be Ready.", "already exists") while Elastic
//! Beanstalk carries on with the first. So the call is sent once (`Eb::call_once`); when
//! its answer is lost, we look at what the service did since (its events, by its own clock)
//! and follow the operation that started, saying so; only when none started is the call
//! sent again.

use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::primitives::DateTime;

use crate::aws::{AwsError, Once};
use crate::eb::events::{self, utc};
use crate::eb::wait::pause;
use crate::eb::{Eb, environments};
use crate::run::Context;

/// A little before the call, on the service's clock: the `Date` header has whole seconds.
const MARGIN: Duration = Duration::from_secs(5);
/// How long a started operation may take to show in the service's answers (they are
/// eventually consistent) before we conclude that none started.
const LOOK_FOR: Duration = Duration::from_secs(20);
const LOOK_EVERY: Duration = Duration::from_millis(2500);

/// The kind of operation, by its API action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Update,
    Create,
    Terminate,
    /// SwapEnvironmentCNAMEs, looked for on the environment named as its source: a resend
    /// whose first attempt went through would swap back.
    Swap,
}

impl Kind {
    fn action(self) -> &'static str {
        match self {
            Kind::Update => "UpdateEnvironment",
            Kind::Create => "CreateEnvironment",
            Kind::Terminate => "TerminateEnvironment",
            Kind::Swap => "SwapEnvironmentCNAMEs",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Update => "update",
            Kind::Create => "launch",
            Kind::Terminate => "termination",
            Kind::Swap => "swap",
        }
    }

    /// The first event of such an operation, carrying its RequestId (the EB developer
    /// guide's "Events" page, and its `eb swap` example for a swap; the EB CLI waits on the
    /// same strings).
    fn starting(self) -> &'static str {
        match self {
            Kind::Update => "Environment update is starting.",
            Kind::Create => "createEnvironment is starting.",
            Kind::Terminate => "terminateEnvironment is starting.",
            Kind::Swap => "swapEnvironmentCNAMEs is starting.",
        }
    }

    /// Whether `event` shows such an operation of `environment` started. A swap's events
    /// may be filed under either environment: its "Swapping CNAMEs for environments 'A' and
    /// 'B'." (the `eb swap` example), which names both, is looked for across the
    /// application.
    fn began(self, event: &events::Event, environment: &str) -> bool {
        match self {
            Kind::Swap => {
                event.message.starts_with("Swapping CNAMEs for environments")
                    && event.message.contains(&format!("'{environment}'"))
            }
            _ => event.message == self.starting(),
        }
    }

    /// Where its events are looked for: the environment's, or the application's for a swap.
    fn scope(self, environment: &str) -> Option<&str> {
        if self == Kind::Swap { None } else { Some(environment) }
    }
}

/// An operation Elastic Beanstalk accepted (or, its answer lost, was seen to start).
#[derive(Clone, Debug)]
pub struct Started {
    pub request_id: Option<String>,
    pub environment_id: Option<String>,
    /// When it changed the environment, on the service's clock: descriptions updated
    /// before are stale reads.
    pub since: Option<DateTime>,
    /// Where its events begin (the service's clock, a little before the call).
    pub events_from: DateTime,
    /// The status the answer gave (`Updating`, `Launching`…), when it gave one.
    pub status: Option<String>,
}

/// The answers of the three calls, read alike.
pub trait Accepted {
    fn started(&self) -> Started;
}

macro_rules! accepted {
    ($($output:ty),*) => {
        $(impl Accepted for $output {
            fn started(&self) -> Started {
                use aws_sdk_elasticbeanstalk::operation::RequestId;
                Started {
                    request_id: self.request_id().map(str::to_owned),
                    environment_id: self.environment_id().map(str::to_owned),
                    since: self.date_updated().copied(),
                    events_from: DateTime::from_secs(0),
                    status: self.status().map(|s| s.as_str().to_owned()),
                }
            }
        })*
    };
}

accepted!(
    aws_sdk_elasticbeanstalk::operation::update_environment::UpdateEnvironmentOutput,
    aws_sdk_elasticbeanstalk::operation::create_environment::CreateEnvironmentOutput,
    aws_sdk_elasticbeanstalk::operation::terminate_environment::TerminateEnvironmentOutput
);

/// A swap's answer has its RequestId only: the swap's own events say the rest.
impl Accepted
    for aws_sdk_elasticbeanstalk::operation::swap_environment_cnames::SwapEnvironmentCnamEsOutput
{
    fn started(&self) -> Started {
        use aws_sdk_elasticbeanstalk::operation::RequestId;
        Started {
            request_id: self.request_id().map(str::to_owned),
            environment_id: None,
            since: None,
            events_from: DateTime::from_secs(0),
            status: None,
        }
    }
}

/// Sends `call` once; when its answer is lost, looks for the operation it may have started
/// on `environment`, follows that one, or sends again when none started. Its request id goes
/// to the handle's journal.
pub async fn start<T, F, Fut>(
    ctx: &Context,
    eb: &Eb,
    kind: Kind,
    environment: &str,
    call: F,
) -> anyhow::Result<Started>
where
    T: Accepted,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Once<T>>>,
{
    let started = send(ctx, eb, kind, environment, call).await?;
    eb.journal().started(environment, started.request_id.clone());
    Ok(started)
}

async fn send<T, F, Fut>(
    ctx: &Context,
    eb: &Eb,
    kind: Kind,
    environment: &str,
    mut call: F,
) -> anyhow::Result<Started>
where
    T: Accepted,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Once<T>>>,
{
    let mut first_from = None;
    loop {
        let events_from = before(eb.now(), MARGIN);
        let why = match call().await {
            Ok(Once::Answered(answer)) => {
                // The answer's own stamp, when it has one, anchors the window too: the clock
                // read from `Date` headers is only as good as the last answer.
                let started = answer.started();
                let stamped = started.since.map(|s| before(s, MARGIN));
                let events_from = stamped.map_or(events_from, |s| s.min(events_from));
                return Ok(Started { events_from, ..started });
            }
            Ok(Once::Lost(why)) => why,
            // Sent again after a lost answer and refused ("Must be Ready", "already
            // exists"): the first one may have started after all, only later than we looked.
            Err(err) if first_from.is_some() && err.is::<AwsError>() => {
                let from = first_from.unwrap_or(events_from);
                return match look(ctx, eb, kind, environment, from).await? {
                    Some(started) => Ok(found(ctx, kind, started)),
                    None => Err(err),
                };
            }
            Err(err) => return Err(err),
        };
        let events_from = *first_from.get_or_insert(events_from);
        let (action, noun) = (kind.action(), kind.noun());
        ctx.ui.warn(format_args!(
            "the answer to {action} of {environment} was lost ({why}): looking for the {noun} it \
             may have started before sending anything again"
        ));
        match look(ctx, eb, kind, environment, events_from).await? {
            Some(started) => return Ok(found(ctx, kind, started)),
            None => ctx.ui.info(format_args!(
                "no {noun} of {environment} started within {}s: sending {action} again",
                LOOK_FOR.as_secs()
            )),
        }
    }
}

/// `margin` before `time`.
fn before(time: DateTime, margin: Duration) -> DateTime {
    DateTime::from_millis(time.to_millis().unwrap_or_default() - margin.as_millis() as i64)
}

/// Says which operation is followed after a lost answer.
fn found(ctx: &Context, kind: Kind, started: Started) -> Started {
    let at = started.since.as_ref().map(utc).unwrap_or_else(|| "-".into());
    ctx.ui.info(format_args!(
        "the answer to {} was lost; following the {} that started at {at} (request {})",
        kind.action(),
        kind.noun(),
        started.request_id.as_deref().unwrap_or("-")
    ));
    started
}

/// The operation of `kind` that started on `environment` since `from` (the service's
/// clock): its first event, which carries its RequestId. Looked for until it shows or
/// [`LOOK_FOR`] passes.
async fn look(
    ctx: &Context,
    eb: &Eb,
    kind: Kind,
    environment: &str,
    from: DateTime,
) -> anyhow::Result<Option<Started>> {
    let looking = Instant::now();
    loop {
        let listed = events::since(ctx, eb, kind.scope(environment), from).await?;
        let first = listed
            .into_iter()
            .filter(|e| kind.began(e, environment) && e.request_id.is_some())
            .min_by_key(|e| e.at);
        if let Some(event) = first {
            let env = environments::find(ctx, eb, environment).await?;
            return Ok(Some(Started {
                request_id: event.request_id,
                environment_id: env.as_ref().and_then(|e| e.environment_id()).map(str::to_owned),
                since: event.at,
                events_from: from,
                status: env.and_then(|e| e.status().map(|s| s.as_str().to_owned())),
            }));
        }
        if looking.elapsed() >= LOOK_FOR || eb.deadline().passed() {
            return Ok(None);
        }
        pause(ctx, LOOK_EVERY, &format!("looking for the {} of {environment}", kind.noun()))
            .await?;
    }
}
