//! The deploy history of an environment: `APP/deploy/history/ENV.json` in the bucket, a JSON
//! list of what each deploy, rollback, launch and termination did (newest last, the last
//! [`CAP`] kept). Elastic Beanstalk keeps no such record: its events carry no version label.
//!
//! An append reads the list and its ETag, adds the record and writes it back with
//! `If-Match` (`If-None-Match: *` for the first): when another writer came between, S3
//! refuses, and the append starts over from a fresh read. No record is ever lost.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::store::{Condition, Store, Written};
use crate::aws::human_duration;
use crate::eb::Eb;
use crate::eb::wait::pause;
use crate::run::Context;
use crate::run::exit;
use crate::run::ui::cut;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};

/// How many records a history keeps.
pub const CAP: usize = 500;
/// How many times an append starts over when other writers keep coming between.
const ATTEMPTS: usize = 60;

/// What one command did to one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// A random token of this record: an append resent after a lost answer adds it once.
    pub id: String,
    /// `deploy`, `rollback`, `env create`, `env terminate`, `swap`; `deploy --blue-green`
    /// and `rollback --blue-green` on a pair.
    pub command: String,
    pub version: Option<String>,
    pub commit: Option<String>,
    pub subject: Option<String>,
    pub who: String,
    pub from: String,
    pub build_url: Option<String>,
    /// UTC, RFC 3339, the service's clock.
    pub started: String,
    pub ended: String,
    /// `success`, `accepted` (`--no-wait`), `failed`, `unhealthy`, `timed out`,
    /// `interrupted`, `error`.
    pub outcome: String,
    pub exit_code: i32,
    pub request_id: Option<String>,
    /// A blue/green side: whether the environment held the pair's public CNAME after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
}

impl Record {
    /// Whether it ended healthy on its version (not merely accepted, with `--no-wait`).
    pub fn succeeded(&self) -> bool {
        self.outcome == "success"
    }

    /// Whether it put its version on the environment (a deploy, rollback or launch): not a
    /// termination, nor a swap (the version it names was there before).
    pub fn releases(&self) -> bool {
        self.command != "env terminate" && self.command != "swap"
    }
}

/// The outcome word of an exit status, as the history says it; `no_wait`: the command
/// returned once its operation was accepted.
pub fn outcome(code: i32, no_wait: bool) -> &'static str {
    match code {
        0 if no_wait => "accepted",
        0 => "success",
        exit::DEPLOY_FAILED => "failed",
        exit::UNHEALTHY => "unhealthy",
        exit::TIMED_OUT => "timed out",
        exit::INTERRUPTED | exit::HANGUP => "interrupted",
        _ => "error",
    }
}

/// The history of `environment`, oldest first; empty when it has none.
pub async fn read(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
) -> anyhow::Result<Vec<Record>> {
    let key = store.key("history", environment);
    Ok(store.get::<Vec<Record>>(ctx, eb, &key).await?.map(|r| r.value).unwrap_or_default())
}

/// Appends `record` to the history of `environment`, keeping the last [`CAP`].
pub async fn append(
    ctx: &Context,
    eb: &Eb,
    store: &Store,
    environment: &str,
    record: &Record,
) -> anyhow::Result<()> {
    let key = store.key("history", environment);
    for attempt in 0..ATTEMPTS {
        let (mut records, condition) = match store.get::<Vec<Record>>(ctx, eb, &key).await? {
            Some(read) => (read.value, Condition::Unchanged(read.etag)),
            None => (Vec::new(), Condition::Absent),
        };
        if records.iter().any(|r| r.id == record.id) {
            return Ok(());
        }
        records.push(record.clone());
        let excess = records.len().saturating_sub(CAP);
        records.drain(..excess);
        if store.put(ctx, eb, &key, &records, &condition).await? != Written::Refused {
            return Ok(());
        }
        // Another writer came between: read again, after a pause that differs between
        // writers (so that they do not keep colliding).
        let random = crate::run::secret::random_hex();
        let jitter = u64::from_str_radix(&random[..2], 16).unwrap_or(0);
        let pause_ms = 20 + (attempt as u64 % 5) * 20 + jitter % 80;
        pause(ctx, Duration::from_millis(pause_ms), "an append to the deploy history").await?;
    }
    bail!("{} kept changing while this run appended to it ({ATTEMPTS} attempts)", store.url(&key))
}

/// The records as a table, in the order given (newest first): a header, then one
/// fixed-width line each.
pub fn table<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<16}  {:<20}  {:<14}  {:<40}  {:<11}  TOOK",
        "WHEN (UTC)", "WHO", "VERSION", "SUBJECT", "OUTCOME"
    )];
    for r in records {
        let when = r.started.get(..16).unwrap_or(&r.started).replace('T', " ");
        let subject = match (r.command.as_str(), &r.subject) {
            ("deploy", subject) => subject.clone().unwrap_or_default(),
            (command, Some(subject)) => format!("{command}: {subject}"),
            (command, None) => command.to_owned(),
        };
        // A blue/green side: where it stood after (first, so that no cut hides it).
        let subject = match r.live {
            Some(true) => format!("[live] {subject}"),
            Some(false) => format!("[idle] {subject}"),
            None => subject,
        };
        let parse = |t: &str| DateTime::from_str(t, DateTimeFormat::DateTime).ok();
        let took = match (parse(&r.started), parse(&r.ended)) {
            (Some(a), Some(b)) => {
                human_duration(Duration::from_secs(u64::try_from(b.secs() - a.secs()).unwrap_or(0)))
            }
            _ => "-".to_owned(),
        };
        lines.push(format!(
            "{when:<16}  {:<20}  {:<14}  {:<40}  {:<11}  {took}",
            // The name only: the email is in `--json`.
            cut(r.who.split(" <").next().unwrap_or(&r.who), 20),
            cut(r.version.as_deref().unwrap_or("-"), 14),
            cut(&subject, 40),
            r.outcome,
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, outcome: &str, command: &str) -> Record {
        Record {
            id: "0".into(),
            command: command.into(),
            version: Some(version.into()),
            commit: None,
            subject: Some("Fix the login redirect".into()),
            who: "Ana Lima <ana@example.com>".into(),
            from: "host ana-laptop".into(),
            build_url: None,
            started: "2026-12-07T09:12:03.000Z".into(),
            ended: "2026-12-07T09:15:15.000Z".into(),
            outcome: outcome.into(),
            exit_code: 0,
            request_id: None,
            live: None,
        }
    }

    #[test]
    fn only_a_waited_for_success_counts_as_one() {
        assert_eq!(outcome(0, false), "success");
        assert_eq!(outcome(0, true), "accepted");
        assert_eq!(outcome(3, true), "failed");
        assert_eq!(outcome(129, false), "interrupted");
        assert!(record("v1", "success", "deploy").succeeded());
        assert!(!record("v1", "accepted", "deploy").succeeded());
        assert!(!record("v1", "success", "env terminate").releases());
    }

    #[test]
    fn the_table_has_fixed_columns_newest_as_given() {
        let records = [record("v2", "success", "rollback"), record("v1", "failed", "deploy")];
        let lines = table(records.iter());
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("2026-12-07 09:12  Ana Lima              v2  "),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("rollback: Fix the login redirect"), "{}", lines[1]);
        assert!(lines[1].ends_with("success      3m12s"), "{}", lines[1]);
        let outcome_at = |line: &str| line.find("success").or(line.find("failed"));
        assert_eq!(outcome_at(&lines[1]), outcome_at(&lines[2]), "one column");
    }
}
