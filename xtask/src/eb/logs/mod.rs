//! The logs of an environment's instances, as Elastic Beanstalk hands them out:
//! RequestEnvironmentInfo (`tail`: the last lines of each log file; `bundle`: a zip of
//! them), followed by its events until "Pulled logs for environment instances." (the EB
//! CLI also takes "Successfully finished tailing" or "… bundling"; "Failed to pull logs for
//! environment instances." is a failure), then RetrieveEnvironmentInfo: per instance a
//! presigned S3 URL valid 15 minutes, a secret (anyone holding it reads the logs), masked
//! in every line from the moment it is known. An instance may have several samples, earlier
//! requests' among them: the newest `SampleTimestamp` of this request is taken. What a failed deploy prints of them is [`why`]; the
//! streamed logs of `--follow` are `stream`.

pub mod stream;
pub mod tail;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::EnvironmentInfoType;

use crate::aws;
use crate::eb::Eb;
use crate::eb::events::{EventStream, utc};
use crate::eb::wait::pause;
use crate::run::Context;
use crate::run::interrupt::Interrupted;
use crate::run::secret::Secret;

/// The events that end a pull (the EB CLI's `commonops` waits on the same).
const PULLED: [&str; 3] = [
    "Pulled logs for environment instances.",
    "Successfully finished tailing",
    "Successfully finished bundling",
];
const NOT_PULLED: &str = "Failed to pull logs for environment instances.";
/// What a failed command may spend on its logs.
pub const WHY_TAKES: Duration = Duration::from_secs(60);

/// What to pull: each log's last lines, or a zip of all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    Tail,
    Bundle,
}

impl Info {
    fn of(self) -> EnvironmentInfoType {
        match self {
            Info::Tail => EnvironmentInfoType::Tail,
            Info::Bundle => EnvironmentInfoType::Bundle,
        }
    }
}

/// One instance's logs, where to fetch them.
#[derive(Clone, Debug)]
pub struct Sample {
    pub instance: String,
    pub sampled: Option<DateTime>,
    /// The presigned URL (masked in output).
    url: String,
}

impl Sample {
    /// `i-0abc (2026-12-07T09:12:03.000Z)`.
    pub fn title(&self) -> String {
        let at = self.sampled.as_ref().map(utc).unwrap_or_else(|| "-".to_owned());
        format!("{} ({at})", self.instance)
    }

    /// The sample's bytes, from its presigned URL.
    pub async fn fetch(&self, ctx: &Context, eb: &Eb) -> anyhow::Result<Vec<u8>> {
        let doing = format!("fetch the logs of {}", self.instance);
        let within = eb.deadline().remaining();
        let got = tokio::select! {
            got = tokio::time::timeout(within, aws::https_get(&self.url)) => got,
            () = ctx.interrupt.signalled() => return Err(Interrupted { during: doing }.into()),
        };
        let (status, body) = got
            .map_err(|_| anyhow::anyhow!("{doing}: no answer within --timeout"))?
            .with_context(|| doing.clone())?;
        if status != 200 {
            bail!("{doing}: HTTP {status} from S3 (the URL expires 15 minutes after the request)");
        }
        Ok(body)
    }
}

/// Asks Elastic Beanstalk for the logs of `environment`'s instances, waits until it pulled
/// them, and returns one sample per instance (the newest), in instance order.
pub async fn pull(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    info: Info,
) -> anyhow::Result<Vec<Sample>> {
    // A little before the call on the service's clock (its `Date` has whole seconds).
    let from = DateTime::from_millis(eb.now().to_millis().unwrap_or_default() - 2000);
    let doing = format!("request the logs of {environment}");
    let asked = eb
        .call(ctx, &doing, || {
            eb.client()
                .request_environment_info()
                .environment_name(environment)
                .info_type(info.of())
                .send()
        })
        .await?;
    use aws_sdk_elasticbeanstalk::operation::RequestId;
    let request = asked.request_id().map(str::to_owned);
    let mut events = EventStream::new(Some(environment), from);
    'wait: loop {
        for event in events.next(ctx, eb).await? {
            if event.request_id.is_none() || event.request_id != request {
                continue;
            }
            if PULLED.iter().any(|done| event.message.starts_with(done)) {
                break 'wait;
            }
            if event.message.starts_with(NOT_PULLED) {
                bail!(
                    "Elastic Beanstalk could not pull the logs of {environment}: {}",
                    event.message
                );
            }
        }
        if eb.deadline().passed() {
            bail!(
                "Elastic Beanstalk did not pull the logs of {environment} within {}s: try again, \
                 or raise --timeout",
                eb.deadline().timeout().as_secs()
            );
        }
        pause(ctx, Duration::from_secs(2), "waiting for the logs").await?;
    }
    let doing = format!("retrieve the logs of {environment}");
    let retrieved = eb
        .call(ctx, &doing, || {
            eb.client()
                .retrieve_environment_info()
                .environment_name(environment)
                .info_type(info.of())
                .send()
        })
        .await?;
    let mut newest: BTreeMap<String, Sample> = BTreeMap::new();
    for item in retrieved.environment_info() {
        let (Some(instance), Some(url)) = (item.ec2_instance_id(), item.message()) else {
            continue;
        };
        ctx.ui.hide(&Secret::new(url.to_owned()));
        let sample = Sample {
            instance: instance.to_owned(),
            sampled: item.sample_timestamp().copied(),
            url: url.to_owned(),
        };
        // Samples of earlier requests are listed too: from before this one, they may end
        // before what it is asked for (a failure that just happened).
        if sample.sampled.is_some_and(|at| at < from) {
            continue;
        }
        match newest.get(instance) {
            Some(kept) if kept.sampled >= sample.sampled => {}
            _ => {
                newest.insert(instance.to_owned(), sample);
            }
        }
    }
    Ok(newest.into_values().collect())
}

/// A time as a directory name: `2026-12-07T09-12-03Z` (no colons).
pub fn file_stamp(time: &DateTime) -> String {
    let text = utc(time);
    let whole = text.split('.').next().unwrap_or(&text);
    format!("{}Z", whole.replace(':', "-"))
}

/// After a failed deploy (exit 3 or 4): the lines of `environment`'s tail that explain
/// it, under `== why: …`, then how to read them all. Bounded by the handle's deadline;
/// an error is the caller's one line.
pub async fn why(ctx: &Context, eb: &Eb, environment: &str) -> anyhow::Result<()> {
    let samples = pull(ctx, eb, environment, Info::Tail).await?;
    if samples.is_empty() {
        bail!("no instance of {environment} returned its logs");
    }
    for sample in &samples {
        let text = sample.fetch(ctx, eb).await?;
        let text = String::from_utf8_lossy(&text);
        let sections = tail::sections(&text);
        ctx.ui.info(format_args!("== why: {environment}, {}", sample.title()));
        let why = tail::why(&sections);
        if why.is_empty() {
            ctx.ui.info("   no [ERROR] in eb-engine.log, and no output of the application");
        }
        for section in why {
            ctx.ui.info(format_args!("   {}:", section.path));
            for line in section.lines {
                ctx.ui.info(format_args!("     {line}"));
            }
        }
    }
    ctx.ui.info(format_args!("full logs: cargo xtask logs {environment}"));
    Ok(())
}
