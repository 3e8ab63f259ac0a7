//! An AWS call that failed, as one line for a CI log: what we were doing, the service's
//! code and message, and the fix when the code says what it is (expired or wrong
//! credentials, a missing permission).

use std::fmt;

use aws_sdk_elasticbeanstalk::error::ProvideErrorMetadata;

/// A call the service answered with an error: what we were doing, the service's error code
/// (callers that tolerate one match on it), and the one line to show.
#[derive(Debug)]
pub struct AwsError {
    pub doing: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub(crate) detail: String,
}

impl AwsError {
    pub fn new<E>(doing: impl fmt::Display, err: &E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}{}", fix(code)),
            (Some(code), None) => format!("{code}{}", fix(code)),
            _ => causes(err),
        };
        AwsError {
            doing: doing.to_string(),
            code: err.code().map(str::to_owned),
            message: err.message().map(str::to_owned),
            detail,
        }
    }

    /// The service's error code of `err`, when it is an [`AwsError`] that has one.
    pub fn code_of(err: &anyhow::Error) -> Option<&str> {
        err.downcast_ref::<AwsError>().and_then(|e| e.code.as_deref())
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.doing, self.detail)
    }
}

impl std::error::Error for AwsError {}

/// The fix for the codes every AWS service may answer with. The codes differ by protocol:
/// `ExpiredToken` (query and XML services: Elastic Beanstalk, S3), `ExpiredTokenException`
/// (JSON services: ECR); AWS's "Common Errors" list the rest.
fn fix(code: &str) -> &'static str {
    match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            " (the AWS credentials have expired: renew them, e.g. `aws sso login`, or start the \
             CI job again for a fresh OIDC token)"
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            " (the identity of these AWS credentials lacks a permission: see the IAM \
             permissions in docs/aws.md)"
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId" => {
            " (the AWS credentials are wrong: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or the profile)"
        }
        _ => "",
    }
}

/// An error that is not the service's answer (no connection, no credentials, a timeout), as
/// one line: each cause's own words, without the debug dump the SDK's context adds, and the
/// fix when the cause is missing credentials.
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        // One line: some causes list what they tried, one per line.
        let text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !words.iter().any(|w| w.contains(&text)) {
            words.push(text);
        }
        next = cause.source();
    }
    let mut line = words.join(": ");
    if line.contains("loading credentials") || line.contains("no credentials found") {
        line.push_str(
            " (no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or AWS_PROFILE, or a role with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)",
        );
    }
    line
}

/// Whether an SDK error is the service saying "slow down".
pub fn is_throttling<E: ProvideErrorMetadata>(err: &E) -> bool {
    matches!(
        err.code(),
        Some(
            "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "SlowDown"
        )
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticbeanstalk::error::ErrorMetadata;

    use super::*;

    #[test]
    fn a_failure_without_an_answer_is_one_line_of_causes_with_the_fix() {
        let err =
            anyhow::anyhow!("no credentials found in chain. Attempted:\n  Environment: not set")
                .context("the credential provider was not enabled")
                .context("dispatch failure");
        let line = causes(err.as_ref());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(
            "dispatch failure: the credential provider was not enabled: no credentials found in \
             chain. Attempted: Environment: not set (no AWS credentials were found: set"
        ), "{line}");
        let refused =
            anyhow::anyhow!("connection refused").context("io").context("dispatch failure");
        assert_eq!(causes(refused.as_ref()), "dispatch failure: io: connection refused");
    }

    #[test]
    fn expired_and_denied_answers_carry_their_fix_in_both_protocols_spellings() {
        let answer = |code: &str, message: &str| {
            let answer = ErrorMetadata::builder().code(code).message(message).build();
            AwsError::new("get an ECR authorization token", &answer).to_string()
        };
        for code in ["ExpiredToken", "ExpiredTokenException"] {
            let line = answer(code, "The security token included in the request is expired");
            assert!(line.ends_with("or start the CI job again for a fresh OIDC token)"), "{line}");
        }
        let line = answer(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             ecr:GetAuthorizationToken on resource: *",
        );
        assert!(
            line.starts_with(
                "get an ECR authorization token: AccessDeniedException: User: \
             arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             ecr:GetAuthorizationToken on resource: * (the identity of these AWS credentials \
             lacks a permission"
            ),
            "{line}"
        );
        assert!(!answer("ValidationError", "bad").contains('('));
    }
}
