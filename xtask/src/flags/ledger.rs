//! The flags of what happened on an environment: `--lock-wait` of the commands that take
//! the lock, and the `history`, `lock` and `logs` commands.

use std::time::Duration;

use clap::{Args, Subcommand};

/// How a command that changes environments treats a lock someone else holds.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// When an environment's deploy lock is held by someone else, wait up to DURATION for it
    /// (`90s`, `10m`, `1h`), looking every 15 s [default: fail at once, exit 6]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct Logs {
    /// Environment: a key of [workspace.metadata.deploy.environments], or an Elastic
    /// Beanstalk environment name
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Save each instance's full logs (a zip) under DIR/ENV/TIME/INSTANCE.zip instead
    #[arg(long, value_name = "DIR", conflicts_with_all = ["follow", "json", "grep"])]
    pub bundle: Option<std::path::PathBuf>,

    /// Follow the logs the environment streams to CloudWatch Logs, until Ctrl-C
    #[arg(long)]
    pub follow: bool,

    /// With --follow: start this long ago (`90s`, `10m`, `1h`) [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "follow")]
    pub since: Option<Duration>,

    /// With --follow: only this log group (its name, or its end: `eb-engine.log`)
    #[arg(long, value_name = "NAME", requires = "follow")]
    pub group: Option<String>,

    /// Only this instance's logs
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,

    /// Only the lines that match REGEX
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,

    /// Print JSON: an array of {instance, sampled, lines}; with --follow one object a line
    #[arg(long)]
    pub json: bool,

    /// Seconds for Elastic Beanstalk to pull the logs and for fetching them [default: 120]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct History {
    /// Environment: a key of [workspace.metadata.deploy.environments], or an Elastic
    /// Beanstalk environment name; or a blue/green pair (both of its environments)
    #[arg(value_name = "ENV")]
    pub env: String,

    /// How many records to show, newest first
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// Print a JSON array (the records as stored, newest first) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the environment's deploy lock, since when, and whether it looks stale
    Status(Lock),
    /// Take the lock by hand (an incident, a freeze): deploys, rollbacks, env create and
    /// terminate then refuse with your message until `lock release`
    Acquire {
        #[command(flatten)]
        lock: Lock,

        /// Why, as the refused commands will show it
        #[arg(long, value_name = "TEXT")]
        message: String,
    },
    /// Release the lock: yours (taken by hand) at once; someone else's, or one a running
    /// command holds, only with --force
    Release {
        #[command(flatten)]
        lock: Lock,

        /// Release it whoever holds it (a run that was killed leaves its lock behind)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct Lock {
    /// Environment: a key of [workspace.metadata.deploy.environments], or an Elastic
    /// Beanstalk environment name
    #[arg(value_name = "ENV")]
    pub env: String,
}

/// `90s`, `10m`, `1h`, `1h30m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration: write it as 90s, 10m, 1h or 1h30m");
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let (mut total, mut number) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        let n: u64 = number.parse().map_err(|_| invalid())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(invalid)?).ok_or_else(invalid)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_people_write_them() {
        let secs = |s| Ok(Duration::from_secs(s));
        assert_eq!(parse_duration("90s"), secs(90));
        assert_eq!(parse_duration("10m"), secs(600));
        assert_eq!(parse_duration("1h30m"), secs(5400));
        assert_eq!(parse_duration("45"), secs(45));
        for bad in ["", "10x", "m", "10m5", "-5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
