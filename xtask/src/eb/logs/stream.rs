//! `logs --follow`: the environment's logs as it streams them to CloudWatch Logs
//! (`aws:elasticbeanstalk:cloudwatch:logs StreamLogs=true`), one group per log file
//! (`/aws/elasticbeanstalk/ENV/var/log/eb-engine.log`, …), one stream per instance (named by
//! its ID). Polled every 5 s with FilterLogEvents from a start time, each event once (by
//! its ID), oldest first across the groups and streams.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_elasticbeanstalk::primitives::DateTime;

use crate::aws::Service;
use crate::eb::Eb;
use crate::eb::events::utc;
use crate::eb::wait::pause;
use crate::run::Context;

pub const NAMESPACE: &str = "aws:elasticbeanstalk:cloudwatch:logs";
const EVERY: Duration = Duration::from_secs(5);
/// What one round of calls may take.
const ROUND: Duration = Duration::from_secs(60);

/// One streamed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub group: String,
    /// The stream: the instance's ID.
    pub instance: String,
    pub message: String,
}

/// Whether the environment streams its logs (its `StreamLogs` option).
pub async fn streams(ctx: &Context, eb: &Eb, environment: &str) -> anyhow::Result<bool> {
    let doing = format!("read the option settings of {environment}");
    let answer = eb
        .call(ctx, &doing, || {
            eb.client()
                .describe_configuration_settings()
                .application_name(&eb.application)
                .environment_name(environment)
                .send()
        })
        .await?;
    let on = answer.configuration_settings().iter().flat_map(|c| c.option_settings()).any(|o| {
        o.namespace() == Some(NAMESPACE)
            && o.option_name() == Some("StreamLogs")
            && o.value().is_some_and(|v| v.eq_ignore_ascii_case("true"))
    });
    Ok(on)
}

/// The environment's log groups (`/aws/elasticbeanstalk/ENV/…`), or the one `only` names
/// (its full name, or the end of it: `eb-engine.log`).
pub async fn groups(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    only: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let prefix = format!("/aws/elasticbeanstalk/{environment}/");
    let mut groups = Vec::new();
    let mut token = None;
    loop {
        let answer = eb
            .call_other(ctx, Service::Logs, "list the log groups", || {
                eb.logs()
                    .describe_log_groups()
                    .log_group_name_prefix(&prefix)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        groups.extend(
            answer.log_groups().iter().filter_map(|g| g.log_group_name()).map(str::to_owned),
        );
        token = answer.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    if let Some(only) = only {
        groups.retain(|g| g == only || g.ends_with(&format!("/{}", only.trim_start_matches('/'))));
        if groups.is_empty() {
            anyhow::bail!(
                "no log group {only} for {environment}: `cargo xtask logs {environment} --follow` \
                 without --group lists them"
            );
        }
    }
    Ok(groups)
}

/// Follows `groups` from `since` ago, calling `show` with each new batch of lines (oldest
/// first), until Ctrl-C, which ends it without an error.
pub async fn follow(
    ctx: &Context,
    eb: &Eb,
    groups: &[String],
    since: Duration,
    mut show: impl FnMut(&[Line]),
) -> anyhow::Result<()> {
    // AWS's time (the `Date` of Elastic Beanstalk's answers), not this machine's.
    let now = eb.now().to_millis().unwrap_or_default();
    let mut from = now - since.as_millis() as i64;
    // Event IDs seen at `from` or later (the start time is inclusive).
    let mut seen: HashMap<String, i64> = HashMap::new();
    loop {
        let round = eb.with_timeout(ROUND);
        let mut fresh = Vec::new();
        for group in groups {
            let mut token = None;
            loop {
                let answer = round
                    .call_other(ctx, Service::Logs, &format!("read {group}"), || {
                        eb.logs()
                            .filter_log_events()
                            .log_group_name(group)
                            .start_time(from)
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await;
                let answer = match answer {
                    Ok(answer) => answer,
                    Err(err) if ctx.interrupt.is_set() => return stopped(err),
                    Err(err) => return Err(err),
                };
                for event in answer.events() {
                    // Event IDs are unique on AWS; moto numbers them per stream.
                    let stream = event.log_stream_name().unwrap_or("-");
                    let id = format!("{group} {stream} {}", event.event_id().unwrap_or_default());
                    let at = event.timestamp().unwrap_or_default();
                    if seen.insert(id, at).is_some() {
                        continue;
                    }
                    fresh.push(Line {
                        at,
                        group: group.clone(),
                        instance: event.log_stream_name().unwrap_or("-").to_owned(),
                        message: event.message().unwrap_or_default().trim_end().to_owned(),
                    });
                }
                token = answer.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        fresh.sort_by_key(|l| l.at);
        if let Some(newest) = fresh.last().map(|l| l.at) {
            from = from.max(newest);
            seen.retain(|_, at| *at >= from);
        }
        show(&fresh);
        if let Err(err) = pause(ctx, EVERY, "following the logs").await {
            return stopped(err);
        }
    }
}

/// Ctrl-C is how `--follow` ends: not an error.
fn stopped(err: anyhow::Error) -> anyhow::Result<()> {
    if crate::run::exit::code(&err) == crate::run::exit::INTERRUPTED { Ok(()) } else { Err(err) }
}

/// A streamed line as shown: the instance first, the time, the file, the message.
pub fn show(line: &Line, environment: &str) -> String {
    let at = utc(&DateTime::from_millis(line.at));
    let prefix = format!("/aws/elasticbeanstalk/{environment}");
    let file = line.group.strip_prefix(&prefix).unwrap_or(&line.group);
    format!("{}  {at}  {file}  {}", line.instance, line.message)
}
