//! A value that must never be shown: masked in `Debug` and `Display`, and scrubbed from
//! any text that might echo it back (a tool's error message, an AWS error, an event).

use std::fmt;
use std::sync::{Arc, Mutex};

pub const MASK: &str = "***";
/// The shortest secret the scrubber looks for in free text.
pub const MIN_SCRUBBED: usize = 4;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that hands it over (stdin, an encrypted upload).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The secret values of this run. Every line the terminal or CI log gets passes through
/// [`Scrubber::scrub`] (see `ui`), so whatever echoes a secret back, it is shown as `***`.
#[derive(Clone, Default)]
pub struct Scrubber(Arc<Mutex<Vec<String>>>);

impl Scrubber {
    /// From now on, `secret` is masked. Values shorter than [`MIN_SCRUBBED`] are not hunted
    /// in free text: masking every `on` or `42` would garble every line, and so short a
    /// value hides nothing. (Where we show a secret value ourselves, it is `***` whatever
    /// its length.)
    pub fn add(&self, secret: &Secret) {
        if secret.0.chars().count() < MIN_SCRUBBED {
            return;
        }
        let mut secrets = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !secrets.contains(&secret.0) {
            secrets.push(secret.0.clone());
            // Longest first: a secret that contains another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every occurrence of every secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = text.to_owned();
        for secret in secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "Scrubber({count} secrets)")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// 32 random hex digits (16 bytes of the kernel's random source): a token nobody guesses.
pub fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        let _ = urandom.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn the_scrubber_masks_every_secret_it_was_given() {
        let scrubber = Scrubber::default();
        scrubber.add(&Secret::new("hunter2"));
        scrubber.add(&Secret::new("hunter2-and-more"));
        scrubber.add(&Secret::new(""));
        scrubber.add(&Secret::new("on"));
        let shared = scrubber.clone();
        assert_eq!(shared.scrub("pw hunter2-and-more, hunter2, on!"), "pw ***, ***, on!");
        assert_eq!(format!("{scrubber:?}"), "Scrubber(2 secrets)");
    }
}
