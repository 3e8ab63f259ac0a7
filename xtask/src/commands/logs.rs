//! `cargo xtask logs ENV`: the logs of the environment's instances, without the console or
//! the EB CLI (`eb::logs`): each instance's tail under its own header; `--bundle DIR` a zip
//! each; `--follow` what the environment streams to CloudWatch Logs. Every line goes
//! through the run's scrubber: the template's secret values and the presigned URLs.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use regex_lite::Regex;

use crate::config::settings::Settings;
use crate::eb::instances::{self, Instances};
use crate::eb::logs::{self, Info, stream};
use crate::eb::{Eb, environments};
use crate::flags;
use crate::run::Context;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_SINCE: Duration = Duration::from_secs(600);

pub fn run(ctx: &Context, flags: &flags::Logs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let application = settings.application()?.to_owned();
    let target = settings.target(Some(&flags.env), || Ok(None))?;
    let environment = target.name.as_str();
    super::hide_secrets(ctx, &target);
    let grep = match &flags.grep {
        Some(pattern) => Some(
            Regex::new(pattern)
                .map_err(|err| anyhow!("--grep {pattern:?} is not a regular expression: {err}"))?,
        ),
        None => None,
    };
    let wanted = |line: &str| grep.as_ref().is_none_or(|re| re.is_match(line));
    let instance_ok = |id: &str| flags.instance.as_deref().is_none_or(|only| only == id);
    let timeout = flags.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let (aws, eb) = Eb::connect(&ctx.env, settings.aws(), &application, timeout)?;
    aws.block_on(async {
        environments::describe(ctx, &eb, environment).await?;
        if flags.follow {
            return follow(ctx, &eb, environment, flags, &wanted, &instance_ok).await;
        }
        let info = if flags.bundle.is_some() { Info::Bundle } else { Info::Tail };
        let samples = logs::pull(ctx, &eb, environment, info).await?;
        let samples: Vec<_> = samples.into_iter().filter(|s| instance_ok(&s.instance)).collect();
        if samples.is_empty() {
            bail!(
                "no instance of {environment} returned its logs (--instance, if given, names none)"
            );
        }
        if let Instances::Reported(report) = instances::report(ctx, &eb, environment).await? {
            for i in report.instances.iter().filter(|i| instance_ok(&i.id)) {
                if !samples.iter().any(|s| s.instance == i.id) {
                    ctx.ui.warn(format_args!("{}: Elastic Beanstalk returned no logs of it", i.id));
                }
            }
        }
        if let Some(dir) = &flags.bundle {
            let stamp = logs::file_stamp(&eb.now());
            let dir = dir.join(environment).join(stamp);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for sample in &samples {
                let bytes = sample.fetch(ctx, &eb).await?;
                let path = dir.join(format!("{}.zip", sample.instance));
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                file.write_all(&bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                ctx.ui.out(path.display());
            }
            return Ok(());
        }
        let mut documents = Vec::new();
        for sample in &samples {
            let text = sample.fetch(ctx, &eb).await?;
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().filter(|l| wanted(l)).collect();
            if flags.json {
                let lines: Vec<String> = lines.iter().map(|l| ctx.ui.scrub(l)).collect();
                documents.push(serde_json::json!({
                    "instance": sample.instance,
                    "sampled": sample.sampled.as_ref().map(crate::eb::events::utc),
                    "lines": lines,
                }));
                continue;
            }
            ctx.ui.out(format_args!("== {}", sample.title()));
            for line in lines {
                ctx.ui.out(line);
            }
        }
        if flags.json {
            ctx.ui.out(serde_json::to_string_pretty(&documents)?);
        }
        anyhow::Ok(())
    })
}

async fn follow(
    ctx: &Context,
    eb: &Eb,
    environment: &str,
    flags: &flags::Logs,
    wanted: &dyn Fn(&str) -> bool,
    instance_ok: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    if !stream::streams(ctx, eb, environment).await? {
        bail!(
            "{environment} does not stream its logs to CloudWatch Logs: set {} StreamLogs=true \
             (in eb-options.json.template, then deploy), or read its tails with `cargo xtask \
             logs {environment}`",
            stream::NAMESPACE
        );
    }
    let groups = stream::groups(ctx, eb, environment, flags.group.as_deref()).await?;
    if groups.is_empty() {
        bail!(
            "{environment} streams its logs, but CloudWatch Logs has no group of it yet: try again in a minute"
        );
    }
    let since = flags.since.unwrap_or(DEFAULT_SINCE);
    let plural = if groups.len() == 1 { "" } else { "s" };
    ctx.ui.info(format_args!(
        "following {} log group{plural} of {environment} from {} ago (Ctrl-C ends)",
        groups.len(),
        crate::aws::human_duration(since)
    ));
    stream::follow(ctx, eb, &groups, since, |lines| {
        for line in lines.iter().filter(|l| instance_ok(&l.instance) && wanted(&l.message)) {
            if flags.json {
                let json = serde_json::json!({
                    "at": line.at, "group": line.group, "instance": line.instance,
                    "message": ctx.ui.scrub(&line.message),
                });
                ctx.ui.out(json);
            } else {
                ctx.ui.out(stream::show(line, environment));
            }
        }
    })
    .await
}
