//! Elastic Beanstalk (and the S3 bucket beside it): the clients and how every call is made,
//! then what the commands do with them: look up environments, create application versions
//! that never change, update an environment and wait for the outcome.

pub mod environments;
pub mod events;
pub mod judge;
pub mod release;
#[cfg(test)]
mod testing;
pub mod update;
pub mod versions;
pub mod wait;
