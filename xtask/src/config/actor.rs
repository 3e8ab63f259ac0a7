//! Who runs a command and from where, as the deploy lock and the deploy history name them:
//! in CircleCI the user who triggered the pipeline and the job with its build URL (CircleCI's
//! built-in variables `CIRCLE_USERNAME`, `CIRCLE_JOB`, `CIRCLE_BUILD_NUM`, `CIRCLE_BUILD_URL`);
//! on a laptop git's `user.name` and `user.email`, and the host.

use crate::config::git;
use crate::run::Context;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `Ana Lima <ana@example.com>`, or the CircleCI user.
    pub who: String,
    /// `ci job deploy-staging #1234`, or `host ana-laptop`.
    pub from: String,
    /// The CircleCI job's page.
    pub build_url: Option<String>,
}

impl Actor {
    pub fn of(ctx: &Context) -> Actor {
        let env = &ctx.env;
        if env.get("CIRCLECI") == Some("true") {
            // Scheduled pipelines have no triggering user.
            let who = env.get("CIRCLE_USERNAME").unwrap_or("CircleCI (no user)").to_owned();
            let job = env.get("CIRCLE_JOB").unwrap_or("?");
            let number = env.get("CIRCLE_BUILD_NUM").unwrap_or("?");
            return Actor {
                who,
                from: format!("ci job {job} #{number}"),
                build_url: env.get("CIRCLE_BUILD_URL").map(str::to_owned),
            };
        }
        let name = git::config(ctx, "user.name")
            .or_else(|| env.get("USER").or(env.get("LOGNAME")).map(str::to_owned))
            .unwrap_or_else(login_name);
        let who = match git::config(ctx, "user.email") {
            Some(email) => format!("{name} <{email}>"),
            None => name,
        };
        Actor { who, from: format!("host {}", hostname()), build_url: None }
    }
}

/// The name of the user this process runs as (`/etc/passwd`), else `uid N`.
fn login_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_owned();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&uid.to_string().as_str()))
        .and_then(|fields| fields.first().map(|name| (*name).to_owned()))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// This machine's name (the kernel's, as `hostname` prints it).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Env;
    use crate::run::interrupt::Interrupt;
    use crate::run::ui::Ui;

    #[test]
    fn in_circleci_the_record_names_the_user_the_job_and_its_page() {
        let env = Env::default()
            .with("CIRCLECI", "true")
            .with("CIRCLE_USERNAME", "ana")
            .with("CIRCLE_JOB", "deploy-staging")
            .with("CIRCLE_BUILD_NUM", "1234")
            .with("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/web/1234");
        let ctx = Context {
            root: std::env::temp_dir(),
            env,
            ui: Ui::new(false, true),
            interrupt: Interrupt::default(),
        };
        let actor = Actor::of(&ctx);
        assert_eq!(actor.who, "ana");
        assert_eq!(actor.from, "ci job deploy-staging #1234");
        assert_eq!(actor.build_url.as_deref(), Some("https://circleci.com/gh/acme/web/1234"));
    }
}
