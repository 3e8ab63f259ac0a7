//! The service's clock. Every time Elastic Beanstalk filters or stamps (an event's date,
//! `StartTime`, `DateUpdated`, `RefreshedAt`) is its own, and the SDK corrects clock skew
//! for signing only: on a laptop 30 s fast every call succeeds while a window computed from
//! the local clock misses events. So the offset between our clock and the service's is
//! read from the `Date` header of every answer (an interceptor on the clients), and times
//! sent to the service are the service's.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_elasticbeanstalk::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_elasticbeanstalk::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_elasticbeanstalk::primitives::{DateTime, DateTimeFormat as Format};
use aws_smithy_runtime_api::box_error::BoxError;

/// The service's time, as far as its answers told: our clock plus the offset of the last
/// `Date` header seen (our clock alone before any answer).
#[derive(Clone, Debug, Default)]
pub struct ServiceClock(Arc<Mutex<Option<i64>>>);

impl ServiceClock {
    /// The service's time now.
    pub fn now(&self) -> DateTime {
        self.from_local(SystemTime::now())
    }

    /// A moment of our clock on the service's.
    pub fn from_local(&self, local: SystemTime) -> DateTime {
        let millis = DateTime::from(local).to_millis().unwrap_or_default();
        DateTime::from_millis(millis + self.offset_millis().unwrap_or(0))
    }

    /// Service time minus ours, in milliseconds; `None` before any answer carried a date.
    pub fn offset_millis(&self) -> Option<i64> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes the `Date` header of an answer received at `received` (our clock). The header
    /// has whole seconds: the service's time was within the second after it.
    fn observe(&self, date: &str, received: SystemTime) {
        let Ok(date) = DateTime::from_str(date, Format::HttpDate) else { return };
        let service = date.to_millis().unwrap_or_default() + 500;
        let local = DateTime::from(received).to_millis().unwrap_or_default();
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(service - local);
    }

    /// The interceptor that keeps this clock set, for a client's configuration.
    pub fn interceptor(&self) -> DateHeader {
        DateHeader(self.clone())
    }
}

/// Reads the `Date` header of every answer into a [`ServiceClock`].
#[derive(Debug)]
pub struct DateHeader(ServiceClock);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "ServiceClock"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.observe(date, SystemTime::now());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_date_header_sets_the_offset_and_times_convert_both_ways() {
        let clock = ServiceClock::default();
        assert_eq!(clock.offset_millis(), None);
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // The service is 30 s ahead: its header says 30 s later than our clock.
        clock.observe("Mon, 12 Jan 1970 13:47:10 GMT", received);
        assert_eq!(clock.offset_millis(), Some(30_500));
        let service = clock.from_local(received);
        assert_eq!(service.to_millis().unwrap(), 1_000_030_500);
        clock.observe("not a date", received);
        assert_eq!(clock.offset_millis(), Some(30_500), "a bad header changes nothing");
    }
}
