//! The actions that read or keep versions and events, and the routing of every action.
//! Sources: the API reference and service model for parameters and answers; AWS's error
//! reference for throttling; the rules named beside each.

use std::time::{Instant, SystemTime};

use super::query::{self, Form, members, page, parse_time};
use super::state::{Event, Request, State, Version, World};
use super::xml::{Answer, error, ok};

impl World {
    /// The answer to one request.
    pub fn answer(&self, action: &str, form: &Form) -> Answer {
        let mut s = self.lock();
        s.requests.push(Request {
            at: Instant::now(),
            action: action.to_owned(),
            environment: form.get("EnvironmentName").cloned(),
            next_page: form.contains_key("NextToken"),
        });
        // Any action may be throttled: HTTP 400, code Throttling, "Rate exceeded" (AWS's
        // error reference for the Query APIs; no published rate, comes in bursts).
        if s.faults.throttle_next > 0 {
            s.faults.throttle_next -= 1;
            return error("Throttling", "Rate exceeded");
        }
        let loss = s.faults.lose_answer.take_if(|(a, _)| a == action).map(|(_, loss)| loss);
        let application = || form.get("ApplicationName").cloned().unwrap_or_default();
        let mut answer = match action {
            "CreateStorageLocation" => ok(action, |xml| {
                xml.el("S3Bucket", &self.config.bucket);
            }),
            "DescribeApplicationVersions" => self.describe_versions(&s, form),
            "CreateApplicationVersion" => {
                let answer = self.create_version(&mut s, form);
                if let Some(time) = s.faults.busy_for.take().filter(|_| answer.status == 200) {
                    let names: Vec<String> = s.environments.keys().cloned().collect();
                    drop(s);
                    for name in names {
                        self.someone_elses_update(&name, time);
                    }
                }
                answer
            }
            "DeleteApplicationVersion" => {
                let label = form.get("VersionLabel").cloned().unwrap_or_default();
                s.versions.remove(&(application(), label));
                ok(action, |_| {})
            }
            "DescribeEnvironments" => self.describe_environments(&s, form),
            "DescribeEvents" => self.describe_events(&s, form),
            "DescribeEnvironmentHealth" => self.environment_health(&s, form),
            "DescribeInstancesHealth" => self.instances_health(&s, form),
            "DescribeAccountAttributes" => ok(action, |xml| {
                xml.node("ResourceQuotas", |xml| {
                    xml.node("ApplicationVersionQuota", |xml| {
                        xml.el("Maximum", "1000");
                    });
                });
            }),
            "CheckDNSAvailability" => {
                // Taken: a live environment's prefix, or someone else's (the API
                // reference: "Checks if the specified CNAME is available").
                let prefix = form.get("CNAMEPrefix").cloned().unwrap_or_default();
                let taken = s.taken_cnames.contains(&prefix)
                    || s.environments.values().any(|e| e.cname_prefix == prefix);
                let fqdn = format!("{prefix}.{}.elasticbeanstalk.com", self.config.region);
                ok(action, |xml| {
                    xml.el("Available", if taken { "false" } else { "true" });
                    xml.el("FullyQualifiedCNAME", &fqdn);
                })
            }
            "CreateApplication" => self.create_application(&mut s, form),
            "DescribeApplications" => self.describe_applications(&s, form),
            "ListPlatformVersions" => self.list_platform_versions(form),
            "DescribePlatformVersion" => self.describe_platform_version(form),
            "ListPlatformBranches" => self.list_platform_branches(form),
            "UpdateEnvironment" => {
                drop(s);
                self.update_environment(form)
            }
            "CreateEnvironment" => {
                drop(s);
                self.create_environment(form)
            }
            "TerminateEnvironment" => {
                drop(s);
                self.terminate_environment(form)
            }
            "RequestEnvironmentInfo" => {
                drop(s);
                self.request_environment_info(form)
            }
            "RetrieveEnvironmentInfo" => {
                drop(s);
                self.retrieve_environment_info(form)
            }
            "DescribeConfigurationSettings" => {
                drop(s);
                self.describe_configuration_settings(form)
            }
            "SwapEnvironmentCNAMEs" => {
                drop(s);
                self.swap_cnames(form)
            }
            other => error(
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            ),
        };
        answer.loss = loss;
        answer
    }

    fn describe_versions(&self, s: &State, form: &Form) -> Answer {
        let application = form.get("ApplicationName");
        let wanted = members(form, "VersionLabels");
        // Newest first, as the service lists them.
        let mut listed: Vec<(&(String, String), &Version)> = s
            .versions
            .iter()
            .filter(|((app, _), _)| application.is_none_or(|a| a == app))
            .filter(|((_, label), _)| wanted.is_empty() || wanted.contains(label))
            .collect();
        listed.sort_by_key(|(_, v)| std::cmp::Reverse(v.created));
        let (listed, next) = page(form, &listed, self.config.page_size);
        ok("DescribeApplicationVersions", |xml| {
            xml.list("ApplicationVersions", listed, |xml, ((app, label), version)| {
                query::version(xml, app, label, version)
            });
            xml.opt("NextToken", next.as_deref());
        })
    }

    fn create_version(&self, s: &mut State, form: &Form) -> Answer {
        let label = form.get("VersionLabel").cloned().unwrap_or_default();
        // The model: VersionLabel is 1 to 100 characters; the service also refuses a '/'
        // (its pattern `[^/]+`, enforced though the model omits it).
        if label.is_empty() || label.chars().count() > 100 {
            return error(
                "ValidationError",
                &format!(
                    "1 validation error detected: Value '{label}' at 'versionLabel' failed to \
                     satisfy constraint: Member must have length less than or equal to 100"
                ),
            );
        }
        if label.contains('/') {
            return error(
                "ValidationError",
                &format!(
                    "1 validation error detected: Value '{label}' at 'versionLabel' failed to \
                     satisfy constraint: Member must satisfy regular expression pattern: [^/]+"
                ),
            );
        }
        // The version's application must exist (without AutoCreateApplication): "No
        // Application named '…' found." (EB CLI strings, beanstalk-deploy #63).
        let application = form.get("ApplicationName").cloned().unwrap_or_default();
        if !s.applications.contains(&application) {
            return error(
                "InvalidParameterValue",
                &format!("No Application named '{application}' found."),
            );
        }
        if s.faults.version_quota {
            return error(
                "TooManyApplicationVersionsException",
                "You cannot have more than 1000 Application Versions.",
            );
        }
        let key = (application.clone(), label.clone());
        if s.versions.contains_key(&key) {
            return error(
                "InvalidParameterValue",
                &format!("Application Version {label} already exists."),
            );
        }
        // The API reference: `Description`, length constraints 0 to 200; the service checks
        // them as AWS's query APIs do (botocore's model carries `max: 200`): a
        // ValidationError naming the member.
        let description = form.get("Description").cloned();
        if description.as_ref().is_some_and(|d| d.chars().count() > 200) {
            return error(
                "ValidationError",
                "1 validation error detected: Value at 'description' failed to satisfy \
                 constraint: Member must have length less than or equal to 200",
            );
        }
        let version = Version {
            bucket: form.get("SourceBundle.S3Bucket").cloned().unwrap_or_default(),
            key: form.get("SourceBundle.S3Key").cloned().unwrap_or_default(),
            created: self.now(),
            description,
        };
        let answer = ok("CreateApplicationVersion", |xml| {
            xml.node("ApplicationVersion", |xml| {
                query::version(xml, &application, &label, &version)
            });
        });
        s.versions.insert(key, version);
        answer
    }

    /// The API reference: `ApplicationName`, `EnvironmentNames` and `EnvironmentIds`
    /// filter; deleted (Terminated) environments are listed for a while when
    /// `IncludeDeleted` is true, its default. A description may be the one from before the
    /// last change (`Faults::stale_reads_for`).
    fn describe_environments(&self, s: &State, form: &Form) -> Answer {
        let application = form.get("ApplicationName");
        let names = members(form, "EnvironmentNames");
        let ids = members(form, "EnvironmentIds");
        let deleted = form.get("IncludeDeleted").is_none_or(|d| d != "false");
        let terminated = s.terminated.iter().filter(|_| deleted);
        let listed: Vec<_> = s
            .environments
            .values()
            .chain(terminated)
            .filter(|e| application.is_none_or(|a| *a == e.application))
            .filter(|e| names.is_empty() || names.contains(&e.name))
            .filter(|e| ids.is_empty() || ids.contains(&e.id))
            .map(|e| match &e.stale {
                Some((before, until)) if *until > Instant::now() => before.as_ref(),
                _ => e,
            })
            .collect();
        ok("DescribeEnvironments", |xml| {
            xml.list("Environments", &listed, |xml, e| query::environment(xml, &self.config, e));
        })
    }

    /// DescribeEvents as the API reference has it: newest first, `StartTime` inclusive,
    /// `EndTime` exclusive (both the service's clock), `Severity` a floor, `MaxRecords`
    /// per page and `NextToken`. Environment events carry no `VersionLabel` (AWS's
    /// DescribeEvents examples, botocore `examples-1.json`), though the filter works.
    fn describe_events(&self, s: &State, form: &Form) -> Answer {
        let field = |name: &str| form.get(name);
        let time = |name: &str| field(name).and_then(|t| parse_time(t));
        let (start, end) = (time("StartTime"), time("EndTime"));
        const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let level = |s: &str| LEVELS.iter().position(|l| *l == s).unwrap_or(0);
        let floor = field("Severity").map_or(0, |s| level(s));
        let matching: Vec<&Event> = s
            .events
            .iter()
            .rev()
            .filter(|e| field("ApplicationName").is_none_or(|a| *a == e.application))
            .filter(|e| field("EnvironmentName").is_none_or(|n| *n == e.environment))
            .filter(|e| field("RequestId").is_none_or(|r| e.request_id.as_ref() == Some(r)))
            .filter(|e| field("VersionLabel").is_none_or(|l| e.version_label.as_ref() == Some(l)))
            .filter(|e| start.is_none_or(|t| e.date >= t) && end.is_none_or(|t| e.date < t))
            .filter(|e| level(&e.severity) >= floor)
            .collect();
        let (listed, next) = page(form, &matching, self.config.page_size);
        ok("DescribeEvents", |xml| {
            xml.list("Events", listed, |xml, e| {
                xml.el("EventDate", &query::iso8601(e.date))
                    .el("Message", &e.message)
                    .el("ApplicationName", &e.application)
                    .el("EnvironmentName", &e.environment)
                    .opt("RequestId", e.request_id.as_deref())
                    .el("Severity", &e.severity);
            });
            xml.opt("NextToken", next.as_deref());
        })
    }

    /// Another deploy (another request) keeps the environment `Updating` for `time`.
    pub fn someone_elses_update(&self, name: &str, time: std::time::Duration) {
        let theirs = super::xml::request_id();
        self.set(name, |e| e.status = "Updating".into());
        self.event(name, "INFO", "Environment update is starting.", Some(&theirs));
        let world = self.clone();
        let name = name.to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(time);
            world.set(&name, |e| e.status = "Ready".into());
            world.event(&name, "INFO", "Environment update completed successfully.", Some(&theirs));
        });
    }

    /// A version made by someone else, `age` ago (its bundle is never read).
    pub fn add_version(&self, application: &str, label: &str, created: SystemTime) {
        let version = Version {
            bucket: "elsewhere".to_owned(),
            key: format!("{label}.json"),
            created,
            description: None,
        };
        self.lock().versions.insert((application.to_owned(), label.to_owned()), version);
    }
}
