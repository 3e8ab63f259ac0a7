//! A command's one deadline (`--timeout` from its first call), and how times are shown.

use std::time::{Duration, Instant, SystemTime};

/// When a command's calls must have answered: `--timeout` from its first call.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    of: Duration,
    /// `at` on the wall clock, to be shown.
    until: SystemTime,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline { at: Instant::now() + timeout, of: timeout, until: SystemTime::now() + timeout }
    }

    /// `at most 20m, until 14:32:05 UTC`.
    pub fn describe(&self) -> String {
        format!("at most {}, until {}", human_duration(self.of), time_of_day(self.until))
    }

    /// When it passes, on the wall clock.
    pub fn until(&self) -> SystemTime {
        self.until
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The timeout this deadline was set from.
    pub fn timeout(&self) -> Duration {
        self.of
    }
}

/// `20m`, `90s`, `1h5m`: a duration as the deadline line shows it.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 3600, (secs / 60) % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// A time of day in UTC, `14:32:05 UTC`: what a deadline is shown as.
pub fn time_of_day(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_as_a_time_of_day_in_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 14 * 3600 + 32 * 60 + 5);
        assert_eq!(time_of_day(at), "14:32:05 UTC");
    }

    #[test]
    fn durations_read_as_a_person_writes_them() {
        let secs = Duration::from_secs;
        assert_eq!(human_duration(secs(1200)), "20m");
        assert_eq!(human_duration(secs(90)), "1m30s");
        assert_eq!(human_duration(secs(5)), "5s");
        assert_eq!(human_duration(secs(3900)), "1h5m");
    }
}
