//! How an operation on environments ends: one environment's success line or error; several
//! environments' summary (which succeeded) and the worst exit status among them.

use crate::eb::follow::Followed;
use crate::run::{Context, Failure, exit};

/// How one environment's operation ended.
pub struct Outcome {
    pub environment: String,
    pub url: Option<String>,
    pub result: anyhow::Result<()>,
}

impl Outcome {
    pub fn new(environment: &str, result: anyhow::Result<()>) -> Outcome {
        Outcome { environment: environment.to_owned(), url: None, result }
    }

    pub fn of(followed: Followed) -> Outcome {
        let result = match followed.outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(failure)) => Err(failure.into()),
            None => Err(anyhow::anyhow!(
                "internal error: {} was not followed to its end",
                followed.environment
            )),
        };
        Outcome { environment: followed.environment, url: followed.url, result }
    }
}

/// How bad an exit status is, to pick the worst of several environments': a failed
/// deployment, then one unhealthy, then one not done in time, then any other error.
fn severity(code: i32) -> u8 {
    match code {
        exit::DEPLOY_FAILED => 4,
        exit::UNHEALTHY => 3,
        exit::TIMED_OUT => 2,
        _ => 1,
    }
}

/// The end of an operation on one environment or several: alone, its success line or its
/// error; several, a summary line each, then success only if all succeeded, else an error
/// naming the failed ones with the worst exit status among them. `done` says what became
/// of a successful one, after its name ("runs v2, health Green: URL").
pub fn conclude(
    ctx: &Context,
    what: &str,
    outcomes: Vec<Outcome>,
    done: impl Fn(&Outcome) -> Option<String>,
) -> anyhow::Result<()> {
    if outcomes.len() == 1 {
        let outcome = outcomes
            .into_iter()
            .next()
            .map(|o| (done(&o).map(|line| format!("{} {line}", o.environment)), o.result));
        return match outcome {
            Some((line, Ok(()))) => {
                line.into_iter().for_each(|line| ctx.ui.success(line));
                Ok(())
            }
            Some((_, Err(err))) => Err(err),
            None => Ok(()),
        };
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    ctx.ui.step(format_args!(
        "summary of the {what}: {} of {} environments succeeded",
        outcomes.len() - failed,
        outcomes.len()
    ));
    let width = outcomes.iter().map(|o| o.environment.len()).max().unwrap_or(0);
    for o in &outcomes {
        match &o.result {
            Ok(()) => {
                let line = done(o).unwrap_or_default();
                ctx.ui.info(format_args!("succeeded  {:<width$}  {line}", o.environment))
            }
            Err(err) => ctx.ui.info(format_args!(
                "FAILED     {:<width$}  {err:#} (exit {})",
                o.environment,
                crate::run::exit::code(err)
            )),
        }
    }
    let worst = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .map(exit::code)
        .max_by_key(|code| severity(*code));
    match worst {
        None => {
            ctx.ui.success(format_args!("{what}: all {} environments succeeded", outcomes.len()));
            Ok(())
        }
        Some(code) => {
            let names: Vec<&str> = outcomes
                .iter()
                .filter(|o| o.result.is_err())
                .map(|o| o.environment.as_str())
                .collect();
            Err(Failure::new(
                code,
                format!(
                    "{what} failed on {failed} of {} environments: {} (see the summary above)",
                    outcomes.len(),
                    names.join(", ")
                ),
            )
            .into())
        }
    }
}

/// A wait error: Ctrl-C gets the hint on how to follow what goes on without us.
pub fn explain(err: anyhow::Error, operation: &str, environments: &[&str]) -> anyhow::Error {
    if crate::run::exit::code(&err) != exit::INTERRUPTED {
        return err;
    }
    let check = match environments {
        [one] => format!("`cargo xtask status {one}`"),
        _ => "`cargo xtask status`".to_owned(),
    };
    err.context(format!(
        "stopped waiting; Elastic Beanstalk continues {operation} on its own: check it with \
         {check}"
    ))
}
