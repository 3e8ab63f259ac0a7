//! `cargo xtask env create ENV`: a new Elastic Beanstalk environment running the commit,
//! from an account that has only the IAM roles.
//!
//! Steps (`--dry-run` prints them): the environment must not exist yet, the platform is
//! found (or pinned), the roles are checked → the image and the application version, as
//! `deploy` makes them (the application is created first when missing) → one
//! CreateEnvironment with the version and the option settings (the template's, then the
//! launch's: environment type, roles, instance type), followed until it runs healthy.

use anyhow::bail;

use super::{Release, print_options};
use crate::aws::Deadline;
use crate::config::settings::Settings;
use crate::config::targets::{EB_ENVIRONMENT, LAUNCH_CONFIGURATION};
use crate::eb::create::{self, Creation, DOCKER_BRANCH, Roles};
use crate::eb::{environments, update};
use crate::{Context, flags};

pub fn run(ctx: &Context, flags: &flags::EnvCreate) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.root, &ctx.env)?;
    let target = settings.target(Some(&flags.env), || Ok(None))?;
    let launch = settings.launch(&target);
    let wait = flags.wait.options(flags.timeout);
    let mut release = Release::new(ctx, settings, &flags.image, vec![target], wait)?;
    let options = launch.options(&release.destinations[0].options);
    let environment = release.destinations[0].target.name.clone();
    let application = release.application.clone();
    // The template may name them itself: then those are checked.
    let roles = Roles {
        instance_profile: options
            .get(LAUNCH_CONFIGURATION, "IamInstanceProfile")
            .unwrap_or(&launch.instance_profile),
        service_role: options.get(EB_ENVIRONMENT, "ServiceRole").unwrap_or(&launch.service_role),
    };
    if flags.image.dry_run {
        let ui = &ctx.ui;
        ui.step(format_args!(
            "plan: create {environment} in {application} with {} (dry run: nothing is run)",
            release.build.image
        ));
        ui.info(format_args!(
            "check that {environment} does not exist yet (application {application} is created \
             after the build if missing)"
        ));
        match &launch.platform {
            Some(arn) => ui.info(format_args!("platform {arn} (setting)")),
            None => ui.info(format_args!(
                "platform: the newest recommended version of \"{DOCKER_BRANCH}\" \
                 (ListPlatformVersions)"
            )),
        }
        ui.info(format_args!(
            "check that instance profile {} and service role {} exist (IAM, read only)",
            roles.instance_profile, roles.service_role
        ));
        release.print(ctx)?;
        ui.info(format_args!(
            "one CreateEnvironment of {environment}: version {} and {} option settings:",
            release.label(),
            options.0.len()
        ));
        print_options(ctx, &options);
        release.print_wait(ctx, "the launch");
        return Ok(());
    }
    let aws = release.connect(ctx)?;
    let clients = &aws.clients;
    ctx.ui.step(format_args!("check what creating {environment} needs"));
    let (exists, platform) = aws.block_on(async {
        let deadline = Deadline::after(wait.timeout);
        let exists = create::application_exists(ctx, clients, &application, deadline).await?;
        if exists
            && environments::find(ctx, clients, &application, &environment, deadline)
                .await?
                .is_some()
        {
            bail!(
                "environment {environment} already exists in application {application}: deploy \
                 to it with `cargo xtask deploy {}`, or terminate it first",
                flags.env
            );
        }
        let platform = match &launch.platform {
            Some(arn) => arn.clone(),
            None => create::newest_platform(ctx, clients, deadline).await?,
        };
        create::check_roles(ctx, clients, &roles, deadline).await?;
        anyhow::Ok((exists, platform))
    })?;
    let pinned = if launch.platform.is_some() { "pinned by the settings" } else { "the newest" };
    ctx.ui.info(format_args!("platform {platform} ({pinned})"));
    release.build(ctx, &aws)?;
    if !exists {
        let deadline = Deadline::after(wait.timeout);
        aws.block_on(create::create_application(ctx, clients, &application, deadline))?;
    }
    release.publish(ctx, &aws)?;
    let creation = Creation {
        application: &application,
        environment: &environment,
        label: release.label(),
        platform: &platform,
        options: update::option_settings(&options),
        wait,
    };
    aws.block_on(creation.run(ctx, clients))
}
