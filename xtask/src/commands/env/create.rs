//! `cargo xtask env create ENV`: a new Elastic Beanstalk environment running the commit,
//! from an account that has only the IAM roles.
//!
//! Steps (`--dry-run` prints them): the name must be free in the region and the CNAME
//! prefix available, the platform is found (or pinned), the roles are checked → the image
//! and the application version, as `deploy` makes them (the application is created first
//! when missing) → one CreateEnvironment with the version and the option settings (the
//! template's, then the launch's: environment type, roles, instance type, enhanced health,
//! the load balancer), followed until it runs healthy.

use anyhow::{anyhow, bail};

use crate::config::launch::{EB_ENVIRONMENT, LAUNCH_CONFIGURATION, Launch};
use crate::config::options::Options;
use crate::config::settings::Settings;
use crate::eb::create::{self, Creation, DOCKER_BRANCH, Roles};
use crate::eb::{ledger, update};
use crate::flags;
use crate::release::{Release, print_options};
use crate::run::Context;

pub fn run(ctx: &Context, flags: &flags::EnvCreate) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let pair = settings.pair(&flags.env);
    let targets = match &pair {
        Some(pair) => pair.environments.to_vec(),
        None => vec![settings.target(Some(&flags.env), || Ok(None))?],
    };
    let launches: Vec<Launch> = targets.iter().map(|t| settings.launch(t)).collect();
    let wait = super::super::wait_options(&flags.wait);
    let image = super::super::image_options(&flags.image, &ctx.env, true, false)?;
    let mut release = Release::new(ctx, settings, &image, targets, wait)?;
    // A pair: the first environment takes the public CNAME, the other its own prefix.
    let cnames: Vec<String> = release
        .destinations
        .iter()
        .zip(&launches)
        .enumerate()
        .map(|(i, (d, launch))| match &pair {
            Some(pair) if i == 0 => pair.cname.clone(),
            _ => launch.cname_prefix(&d.target.name).to_owned(),
        })
        .collect();
    if let Some(pair) = &pair
        && cnames[1] == pair.cname
    {
        bail!(
            "{} of pair {} needs a CNAME prefix of its own, not the pair's {}: set `cname` in \
             its entry of [workspace.metadata.deploy.environments]",
            pair.environments[1].name,
            pair.key,
            pair.cname
        );
    }
    let options: Vec<Options> =
        release.destinations.iter().zip(&launches).map(|(d, l)| l.options(&d.options)).collect();
    // The template may name them itself: then those are checked.
    let roles = Roles {
        instance_profile: options[0]
            .get(LAUNCH_CONFIGURATION, "IamInstanceProfile")
            .unwrap_or(&launches[0].instance_profile),
        service_role: options[0]
            .get(EB_ENVIRONMENT, "ServiceRole")
            .unwrap_or(&launches[0].service_role),
    };
    if flags.image.dry_run {
        return print(ctx, &release, &launches[0], (&options, &cnames), &roles);
    }
    let names: Vec<String> = release.environments().iter().map(|e| (*e).to_owned()).collect();
    let (aws, eb) = release.connect(ctx)?;
    ctx.ui.step(format_args!("check what creating {} needs", names.join(" and ")));
    let (exists, platform) = aws.block_on(async {
        let exists = create::application_exists(ctx, &eb).await?;
        for (environment, cname) in names.iter().zip(&cnames) {
            let taken = || match &pair {
                Some(pair) => anyhow!(
                    "environment {environment} of pair {} already exists in application {}: \
                     create the other one alone with `cargo xtask env create NAME`",
                    pair.key,
                    eb.application
                ),
                None => anyhow!(
                    "environment {environment} already exists in application {}: deploy to it \
                     with `cargo xtask deploy {}`, or terminate it first",
                    eb.application,
                    flags.env
                ),
            };
            create::check_name(ctx, &eb, environment, cname, taken).await?;
        }
        let platform = match &launches[0].platform {
            Some(arn) => arn.clone(),
            None => create::newest_platform(ctx, &eb).await?,
        };
        create::check_roles(ctx, &eb, &roles).await?;
        anyhow::Ok((exists, platform))
    })?;
    let pinned =
        if launches[0].platform.is_some() { "pinned by the settings" } else { "the newest" };
    ctx.ui.info(format_args!(
        "platform {platform} ({pinned}); CNAME prefix {} available",
        cnames.join(" and ")
    ));
    let job = release.job("env create", flags.lock.lock_wait);
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        release.build(ctx, &aws)?;
        let creations =
            names.iter().zip(&cnames).zip(&options).map(|((environment, cname), o)| Creation {
                environment,
                cname_prefix: cname,
                label: release.label(),
                platform: &platform,
                options: update::option_settings(o),
                wait,
            });
        aws.block_on(async {
            if !exists {
                create::create_application(ctx, eb).await?;
            }
            release.publish(ctx, eb).await?;
            // A pair's two launches go on together: each takes minutes on AWS.
            create::run_all(ctx, eb, creations.collect()).await
        })
    })
}

/// The plan as a reader checks it: every step, secrets masked. Runs nothing.
fn print(
    ctx: &Context,
    release: &Release,
    launch: &Launch,
    (options, cnames): (&[Options], &[String]),
    roles: &Roles<'_>,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let (environments, application) = (release.environments(), &release.application);
    let names = environments.join(" and ");
    ui.step(format_args!(
        "plan: create {names} in {application} with {} (dry run: nothing is run)",
        release.build.image
    ));
    for (environment, cname) in environments.iter().zip(cnames) {
        ui.info(format_args!(
            "check that no environment of the region is named {environment}, and that the CNAME \
             prefix {cname} is available"
        ));
    }
    ui.info(format_args!("application {application} is created after the build if missing"));
    match &launch.platform {
        Some(arn) => ui.info(format_args!("platform {arn} (setting)")),
        None => ui.info(format_args!(
            "platform: the newest recommended version of \"{DOCKER_BRANCH}\" (ListPlatformVersions)"
        )),
    }
    ui.info(format_args!(
        "check that instance profile {} and service role {} exist (IAM, read only)",
        roles.instance_profile, roles.service_role
    ));
    ledger::print_plan(ctx, application, &environments);
    release.print(ctx)?;
    for ((environment, cname), options) in environments.iter().zip(cnames).zip(options) {
        ui.info(format_args!(
            "one CreateEnvironment of {environment} (CNAME prefix {cname}): version {} and {} \
             option settings:",
            release.label(),
            options.0.len()
        ));
        print_options(ctx, options);
    }
    if environments.len() > 1 {
        ui.info("the launches go on together");
    }
    release.print_wait(ctx, if environments.len() > 1 { "each launch" } else { "the launch" });
    Ok(())
}
