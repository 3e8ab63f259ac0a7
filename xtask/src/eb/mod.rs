//! Elastic Beanstalk (and the S3 bucket beside it): the clients and how every call is made,
//! then what the commands do with them: look up environments, create application versions
//! that never change, create, update and terminate environments, and follow each operation
//! to its outcome.

pub mod create;
pub mod environments;
pub mod events;
pub mod follow;
pub mod judge;
pub mod outcome;
pub mod release;
pub mod terminate;
#[cfg(test)]
mod testing;
pub mod update;
pub mod versions;
pub mod wait;
