//! moto's CloudWatch Logs, as Elastic Beanstalk streams an environment's logs there: one
//! group per log file (`/aws/elasticbeanstalk/ENV/var/log/…`), one stream per instance.
//! The groups a test makes are deleted when it ends.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;

pub struct Groups {
    client: aws_sdk_cloudwatchlogs::Client,
    runtime: tokio::runtime::Runtime,
    names: Vec<String>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

impl Groups {
    pub fn new() -> Groups {
        let config = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", super::moto()))
            .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Groups {
            client: aws_sdk_cloudwatchlogs::Client::from_conf(config),
            runtime,
            names: Vec::new(),
        }
    }

    /// Puts `message` at `at` (ms) in `group`'s stream `instance`, both made when missing.
    pub fn put(&mut self, group: &str, instance: &str, at: i64, message: &str) {
        if !self.names.iter().any(|n| n == group) {
            self.runtime
                .block_on(self.client.create_log_group().log_group_name(group).send())
                .unwrap();
            self.names.push(group.to_owned());
        }
        let _ = self.runtime.block_on(
            self.client.create_log_stream().log_group_name(group).log_stream_name(instance).send(),
        );
        let event = InputLogEvent::builder().timestamp(at).message(message).build().unwrap();
        self.runtime
            .block_on(
                self.client
                    .put_log_events()
                    .log_group_name(group)
                    .log_stream_name(instance)
                    .log_events(event)
                    .send(),
            )
            .unwrap();
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for name in &self.names {
            let _ =
                self.runtime.block_on(self.client.delete_log_group().log_group_name(name).send());
        }
    }
}
