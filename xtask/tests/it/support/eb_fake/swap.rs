//! SwapEnvironmentCNAMEs. Sources: the API reference (source and destination by ID or by
//! name, in pairs: "If you specify the SourceEnvironmentId, you must specify the
//! DestinationEnvironmentId"); DESIGN's "Swap" (both environments Ready, in one
//! application); the EB developer guide's `eb swap` example (its events, in order, carrying
//! the request's RequestId). Only web server environments have a CNAME to swap; every
//! environment of this fake is one, so that rule has nothing to refuse here. While it runs
//! both environments are `Updating`; DescribeEnvironments shows the CNAMEs exchanged once
//! it completed (with `stale_reads_for`, a while after).

use std::thread;
use std::time::Duration;

use super::query::Form;
use super::state::{State, World};
use super::xml::{Answer, answer, error, request_id};

/// How long a swap takes unless `Faults::slow_swap` says otherwise.
const SWAP_TAKES: Duration = Duration::from_secs(1);

impl World {
    pub fn swap_cnames(&self, form: &Form) -> Answer {
        let s = self.lock();
        let source = match find(&s, form, "Source") {
            Ok(name) => name,
            Err(refused) => return refused,
        };
        let destination = match find(&s, form, "Destination") {
            Ok(name) => name,
            Err(refused) => return refused,
        };
        let (a, b) = (&s.environments[&source], &s.environments[&destination]);
        for env in [a, b] {
            if env.status != "Ready" {
                return error(
                    "InvalidParameterValue",
                    &format!(
                        "Environment named {} is in an invalid state for this operation. Must be \
                         Ready.",
                        env.name
                    ),
                );
            }
        }
        // The wording is ours: the service's for this case is not documented.
        if a.application != b.application {
            return error(
                "InvalidParameterValue",
                &format!(
                    "Environments {source} and {destination} belong to different applications: \
                     CNAMEs can be swapped only between environments of one application."
                ),
            );
        }
        let takes = s.faults.slow_swap.unwrap_or(SWAP_TAKES);
        drop(s);
        let request = request_id();
        for name in [&source, &destination] {
            self.set(name, |e| e.status = "Updating".into());
        }
        let swapping = format!("Swapping CNAMEs for environments '{source}' and '{destination}'.");
        self.event(&source, "INFO", "swapEnvironmentCNAMEs is starting.", Some(&request));
        self.event(&source, "INFO", &swapping, Some(&request));
        let world = self.clone();
        let id = request.clone();
        thread::spawn(move || {
            thread::sleep(takes);
            let prefix = |name: &str| world.lock().environments[name].cname_prefix.clone();
            let (from_source, from_destination) = (prefix(&source), prefix(&destination));
            world.set(&source, |e| e.cname_prefix = from_destination.clone());
            world.set(&destination, |e| e.cname_prefix = from_source.clone());
            for (name, prefix) in [(&source, &from_destination), (&destination, &from_source)] {
                let fqdn = format!("{prefix}.{}.elasticbeanstalk.com", world.config.region);
                let balancer = load_balancer(name, &world.config.region);
                let points = format!("'{fqdn}' now points to '{balancer}'.");
                world.event(&source, "INFO", &points, Some(&id));
            }
            for name in [&source, &destination] {
                world.set(name, |e| e.status = "Ready".into());
            }
            let done = format!(
                "Completed swapping CNAMEs for environments '{source}' and '{destination}'."
            );
            world.event(&source, "INFO", &done, Some(&id));
        });
        answer("SwapEnvironmentCNAMEs", &request, |_| {})
    }
}

/// The environment a request names as `role` (`Source`, `Destination`): by ID, else by name.
fn find(s: &State, form: &Form, role: &str) -> Result<String, Answer> {
    let by_id = form.get(&format!("{role}EnvironmentId"));
    let by_name = form.get(&format!("{role}EnvironmentName"));
    let found = match (by_id, by_name) {
        (Some(id), _) => s.environments.values().find(|e| &e.id == id).map(|e| e.name.clone()),
        (None, Some(name)) => s.environments.get(name).map(|e| e.name.clone()),
        (None, None) => {
            return Err(error(
                "MissingParameter",
                &format!("Either {role}EnvironmentId or {role}EnvironmentName must be specified."),
            ));
        }
    };
    found.ok_or_else(|| {
        let (what, value) = match by_id {
            Some(id) => ("EnvironmentId", id.as_str()),
            None => ("EnvironmentName", by_name.map_or("", String::as_str)),
        };
        error("InvalidParameterValue", &format!("No Environment found for {what} = '{value}'."))
    })
}

/// The name of an environment's load balancer in an event (the form of the guide's example).
fn load_balancer(environment: &str, region: &str) -> String {
    format!("awseb-{environment}-AWSEBLoa.{region}.elb.amazonaws.com")
}
