//! `cargo xtask env create ENV`: a new Elastic Beanstalk environment running the commit,
//! from an account that has only the IAM roles.
//!
//! Steps (`--dry-run` prints them): the name must be free in the region and the CNAME
//! prefix available, the platform is found (or pinned), the roles are checked → the image
//! and the application version, as `deploy` makes them (the application is created first
//! when missing) → one CreateEnvironment with the version and the option settings (the
//! template's, then the launch's: environment type, roles, instance type, enhanced health,
//! the load balancer), followed until it runs healthy.

use anyhow::anyhow;

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
    let target = settings.target(Some(&flags.env), || Ok(None))?;
    let launch = settings.launch(&target);
    let wait = super::super::wait_options(&flags.wait);
    let image = super::super::image_options(&flags.image, &ctx.env, true, false)?;
    let mut release = Release::new(ctx, settings, &image, vec![target], wait)?;
    let options = launch.options(&release.destinations[0].options);
    let environment = release.destinations[0].target.name.clone();
    let cname = launch.cname_prefix(&environment).to_owned();
    // The template may name them itself: then those are checked.
    let roles = Roles {
        instance_profile: options
            .get(LAUNCH_CONFIGURATION, "IamInstanceProfile")
            .unwrap_or(&launch.instance_profile),
        service_role: options.get(EB_ENVIRONMENT, "ServiceRole").unwrap_or(&launch.service_role),
    };
    if flags.image.dry_run {
        return print(ctx, &release, &launch, &options, &roles);
    }
    let (aws, eb) = release.connect(ctx)?;
    ctx.ui.step(format_args!("check what creating {environment} needs"));
    let (exists, platform) = aws.block_on(async {
        let exists = create::application_exists(ctx, &eb).await?;
        let taken = || {
            anyhow!(
                "environment {environment} already exists in application {}: deploy to it with \
                 `cargo xtask deploy {}`, or terminate it first",
                eb.application,
                flags.env
            )
        };
        create::check_name(ctx, &eb, &environment, &cname, taken).await?;
        let platform = match &launch.platform {
            Some(arn) => arn.clone(),
            None => create::newest_platform(ctx, &eb).await?,
        };
        create::check_roles(ctx, &eb, &roles).await?;
        anyhow::Ok((exists, platform))
    })?;
    let pinned = if launch.platform.is_some() { "pinned by the settings" } else { "the newest" };
    ctx.ui.info(format_args!("platform {platform} ({pinned}); CNAME prefix {cname} is available"));
    let job = release.job("env create", flags.lock.lock_wait);
    ledger::guarded(ctx, &aws, &eb, &job, |eb| {
        release.build(ctx, &aws)?;
        let creation = Creation {
            environment: &environment,
            cname_prefix: &cname,
            label: release.label(),
            platform: &platform,
            options: update::option_settings(&options),
            wait,
        };
        aws.block_on(async {
            if !exists {
                create::create_application(ctx, eb).await?;
            }
            release.publish(ctx, eb).await?;
            creation.run(ctx, eb).await
        })
    })
}

/// The plan as a reader checks it: every step, secrets masked. Runs nothing.
fn print(
    ctx: &Context,
    release: &Release,
    launch: &Launch,
    options: &Options,
    roles: &Roles<'_>,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let (environment, application) = (&release.destinations[0].target.name, &release.application);
    ui.step(format_args!(
        "plan: create {environment} in {application} with {} (dry run: nothing is run)",
        release.build.image
    ));
    ui.info(format_args!(
        "check that no environment of the region is named {environment}, and that the CNAME \
         prefix {} is available (application {application} is created after the build if \
         missing)",
        launch.cname_prefix(environment)
    ));
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
    ledger::print_plan(ctx, application, &[environment]);
    release.print(ctx)?;
    ui.info(format_args!(
        "one CreateEnvironment of {environment} (CNAME prefix {}): version {} and {} option \
         settings:",
        launch.cname_prefix(environment),
        release.label(),
        options.0.len()
    ));
    print_options(ctx, options);
    release.print_wait(ctx, "the launch");
    Ok(())
}
