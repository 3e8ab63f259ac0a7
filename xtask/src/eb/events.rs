//! Elastic Beanstalk's events: each as shown (a UTC time to the millisecond, the severity,
//! the message) and judged (its RequestId), the latest of an environment, and a stream that
//! returns each event once, oldest first, across pages and polls.

use std::collections::HashSet;

use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat};
use aws_sdk_elasticbeanstalk::types::EventDescription;

use crate::eb::Eb;
use crate::run::Context;

/// One event, as shown and judged (and in `status --json`: date, severity, message).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Event {
    /// UTC, fixed width: `2026-11-30T05:20:03.500Z`.
    pub date: String,
    pub severity: String,
    pub message: String,
    #[serde(skip)]
    pub environment: Option<String>,
    #[serde(skip)]
    pub request_id: Option<String>,
    #[serde(skip)]
    pub at: Option<DateTime>,
}

impl Event {
    pub fn of(event: &EventDescription) -> Event {
        Event {
            date: event.event_date().map(utc).unwrap_or_default(),
            severity: event.severity().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            message: event.message().unwrap_or_default().to_owned(),
            environment: event.environment_name().map(str::to_owned),
            request_id: event.request_id().map(str::to_owned),
            at: event.event_date().copied(),
        }
    }

    /// The line a CI log shows.
    pub fn line(&self) -> String {
        format!("{}  {:<5}  {}", self.date, self.severity, self.message)
    }
}

/// A time as every line shows it: UTC, milliseconds always, so that lines align and read
/// in order (`DateTime`'s own format drops zero fractions: `03.5Z`, `03Z`).
pub fn utc(time: &DateTime) -> String {
    let seconds = DateTime::from_secs(time.secs()).fmt(DateTimeFormat::DateTime);
    let seconds = seconds.unwrap_or_default();
    let millis = time.subsec_nanos() / 1_000_000;
    match seconds.strip_suffix('Z') {
        Some(whole) => format!("{whole}.{millis:03}Z"),
        None => seconds,
    }
}

/// The events of one environment, or of every environment of the application, from a
/// moment on (the service's time: never our clock's): each returned once, oldest first,
/// across pages and polls.
pub struct EventStream<'a> {
    /// `None`: the application's events (one call however many environments are followed).
    pub environment: Option<&'a str>,
    /// Asked from here on; moves to the newest event seen (`StartTime` is inclusive, so
    /// events of that very moment come again and are recognised).
    since: DateTime,
    seen: HashSet<Event>,
}

impl<'a> EventStream<'a> {
    pub fn new(environment: Option<&'a str>, since: DateTime) -> EventStream<'a> {
        EventStream { environment, since, seen: HashSet::new() }
    }

    /// Events not returned before, oldest first.
    pub async fn next(&mut self, ctx: &Context, eb: &Eb) -> anyhow::Result<Vec<Event>> {
        let mut listed = since(ctx, eb, self.environment, self.since).await?;
        // Newest first from the service: reversed, then a stable sort by time keeps events
        // of the same millisecond in the order they happened.
        listed.reverse();
        listed.sort_by_key(|e| e.at);
        let fresh: Vec<Event> =
            listed.into_iter().filter(|e| self.seen.insert(e.clone())).collect();
        if let Some(newest) = fresh.iter().filter_map(|e| e.at).max() {
            self.since = self.since.max(newest);
        }
        Ok(fresh)
    }
}

/// Every event from `from` on (the service's clock: `StartTime` is inclusive), of one
/// environment or of every environment of the application, newest first, across pages.
pub async fn since(
    ctx: &Context,
    eb: &Eb,
    environment: Option<&str>,
    from: DateTime,
) -> anyhow::Result<Vec<Event>> {
    let doing = format!("describe the events of {}", environment.unwrap_or(&eb.application));
    let pages = eb
        .pages(ctx, &doing, |token| {
            eb.client()
                .describe_events()
                .application_name(&eb.application)
                .set_environment_name(environment.map(str::to_owned))
                .start_time(from)
                .set_next_token(token)
                .send()
        })
        .await?;
    Ok(pages.iter().flat_map(|page| page.events()).map(Event::of).collect())
}

/// The latest `max` (1 to 1000) events of an environment, newest first.
pub async fn latest(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    max: i32,
) -> anyhow::Result<Vec<EventDescription>> {
    let doing = format!("describe the events of {environment}");
    let listed = eb
        .call(ctx, &doing, || {
            eb.client()
                .describe_events()
                .application_name(&eb.application)
                .environment_name(environment)
                .max_records(max.clamp(1, 1000))
                .send()
        })
        .await?;
    Ok(listed.events().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eb::testing::{ctx, eb, event_at};
    use aws_sdk_elasticbeanstalk::Client;
    use aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_elasticbeanstalk::types::EventSeverity;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use std::time::Duration;

    #[tokio::test]
    async fn events_come_oldest_first_across_pages_each_once() {
        let events = mock!(Client::describe_events)
            .sequence()
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(3_000, EventSeverity::Info, "third", None))
                    .events(event_at(2_500, EventSeverity::Info, "second", None))
                    .next_token("page-2")
                    .build()
            })
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(2_000, EventSeverity::Info, "first", None))
                    .build()
            })
            .output(|| {
                DescribeEventsOutput::builder()
                    .events(event_at(3_500, EventSeverity::Info, "fourth", None))
                    .events(event_at(3_000, EventSeverity::Info, "third", None))
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_elasticbeanstalk, RuleMode::MatchAny, [&events]);
        let eb = eb(client, Duration::from_secs(5));
        let mut stream = EventStream::new(Some("acme-web-stg"), DateTime::from_secs(0));
        let first: Vec<String> =
            stream.next(&ctx(), &eb).await.unwrap().into_iter().map(|e| e.message).collect();
        assert_eq!(first, ["first", "second", "third"]);
        let then: Vec<String> =
            stream.next(&ctx(), &eb).await.unwrap().into_iter().map(|e| e.line()).collect();
        assert_eq!(then, ["1970-01-01T00:00:03.500Z  INFO   fourth"]);
    }

    #[test]
    fn times_are_fixed_width_utc() {
        assert_eq!(utc(&DateTime::from_millis(3_500)), "1970-01-01T00:00:03.500Z");
        assert_eq!(utc(&DateTime::from_secs(3)), "1970-01-01T00:00:03.000Z");
        assert_eq!(utc(&DateTime::from_secs_and_nanos(3, 502_999_999)), "1970-01-01T00:00:03.502Z");
    }
}
