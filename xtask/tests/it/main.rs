//! The xtask's integration tests, one binary so the AWS SDK is linked once. Each module is a
//! command or a concern; `support` holds what they share (the real binary, unique names,
//! clean-up, the registry, moto's S3 and the Elastic Beanstalk fake).

mod support;

mod blue_green;
mod build_command;
mod bundles;
mod circleci;
mod deploy_command;
mod eb_cli;
mod ecr;
mod environments;
mod faults;
mod ledger;
mod local_deploy;
mod logs;
mod secrets;
mod status_versions;
mod test_command;
mod tls;
mod verdicts;
mod web_app;
