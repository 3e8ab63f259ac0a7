//! How every AWS call is made (see the module's header in `aws`): raced against Ctrl-C,
//! bounded by the command's deadline, throttling waited out; a state-changing call never
//! resent blindly.

use std::fmt;
use std::future::Future;

use aws_sdk_elasticbeanstalk::error::{ProvideErrorMetadata, SdkError};

use super::error::{self, AwsError, is_throttling};
use super::{Clients, Deadline, Service, THROTTLE_BACKOFF};
use crate::run::Context;
use crate::run::exit::OutOfTime;
use crate::run::interrupt::Interrupted;

/// How a call that is never resent ended: answered, or its answer lost (why, in words).
#[derive(Debug)]
pub enum Once<T> {
    Answered(T),
    Lost(String),
}

impl Clients {
    /// One AWS call, `doing` saying what it is for (`describe environment acme-web-stg`):
    /// sent again after a backoff while the service throttles, until it answers or
    /// `deadline` passes; Ctrl-C ends it at once. A service error is an [`AwsError`]; a
    /// deadline that passes is [`OutOfTime`].
    pub async fn call<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        service: Service,
        doing: &str,
        deadline: Deadline,
        send: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        match self.attempts(ctx, service, doing, deadline, send, true).await? {
            Once::Answered(value) => Ok(value),
            Once::Lost(_) => unreachable!("a call that may be resent is never reported lost"),
        }
    }

    /// A call that changes state and is never resent blindly (see the module's header):
    /// sent once (again only after throttling), through a client without the SDK's
    /// retries. Its answer is [`Once::Lost`] when the request may have been carried out
    /// without the answer reaching us.
    pub async fn call_once<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        service: Service,
        doing: &str,
        deadline: Deadline,
        send: F,
    ) -> anyhow::Result<Once<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        self.attempts(ctx, service, doing, deadline, send, false).await
    }

    /// The attempts of one call: throttling waited out; a stalled or cut attempt tried
    /// again only when `resend` (else reported lost).
    async fn attempts<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        service: Service,
        doing: &str,
        deadline: Deadline,
        mut send: F,
        resend: bool,
    ) -> anyhow::Result<Once<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let mut backoff = THROTTLE_BACKOFF.0;
        let mut throttled = false;
        let mut answered = false;
        loop {
            let during = || format!("{doing} (a call to {service} was in flight)");
            if deadline.passed() {
                return Err(self.out_of_time(service, doing, deadline, !answered));
            }
            let answer = tokio::select! {
                answer = tokio::time::timeout(deadline.remaining(), send()) => answer,
                () = ctx.interrupt.signalled() => return Err(Interrupted { during: during() }.into()),
            };
            let err = match answer {
                Ok(Ok(value)) => return Ok(Once::Answered(value)),
                Ok(Err(err)) => err,
                Err(_elapsed) => return Err(self.out_of_time(service, doing, deadline, !answered)),
            };
            let lost = matches!(
                &err,
                SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_)
            );
            if lost && !resend {
                return Ok(Once::Lost(error::causes(&err)));
            }
            let stalled = matches!(&err, SdkError::TimeoutError(_))
                || matches!(&err, SdkError::DispatchFailure(f) if f.is_timeout());
            if !is_throttling(&err) && !stalled {
                return Err(AwsError::new(doing, &err).into());
            }
            answered |= is_throttling(&err);
            if is_throttling(&err) && !throttled {
                ctx.ui.info(format_args!(
                    "{service} is throttling this account ({}): {doing} again with backoff",
                    AwsError::new(doing, &err).detail
                ));
                throttled = true;
            }
            let pause = backoff.min(deadline.remaining());
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = ctx.interrupt.signalled() => return Err(Interrupted { during: doing.to_owned() }.into()),
            }
            backoff = (backoff * 2).min(THROTTLE_BACKOFF.1);
        }
    }

    /// Every page of a paginated call, in order: `send` gets the `NextToken` of the page
    /// before (none for the first), `next` reads it from a page. Each page is a [`call`].
    ///
    /// [`call`]: Clients::call
    pub async fn pages<T, E, R, F, Fut>(
        &self,
        ctx: &Context,
        (service, doing): (Service, &str),
        deadline: Deadline,
        mut send: F,
        next: impl Fn(&T) -> Option<&str>,
    ) -> anyhow::Result<Vec<T>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.call(ctx, service, doing, deadline, || send(token.clone())).await?;
            token = next(&page).map(str::to_owned);
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }

    /// The deadline passed during `doing`; `stalled` when the service had not answered any
    /// attempt of it.
    fn out_of_time(
        &self,
        service: Service,
        doing: &str,
        deadline: Deadline,
        stalled: bool,
    ) -> anyhow::Error {
        let timeout = deadline.timeout().as_secs();
        let message = if stalled {
            format!(
                "{service} at {} did not answer within {timeout}s (cannot {doing}): check the \
                 network and the endpoint ({}), or raise --timeout",
                self.endpoint(service),
                service.endpoint_var()
            )
        } else {
            format!("--timeout ({timeout}s) ran out during {doing}: raise --timeout")
        };
        OutOfTime { doing: doing.to_owned(), stalled, message }.into()
    }
}
