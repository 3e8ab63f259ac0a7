//! What the project says: the deploy settings (`Cargo.toml`, the EB CLI's config, the
//! environment), the two templates (options, Dockerrun) and what git knows of the work tree.

pub mod actor;
pub mod bundle;
pub mod dockerrun;
pub mod ebconfig;
pub mod envfile;
pub mod git;
pub mod launch;
pub mod options;
pub mod pairs;
pub mod settings;
pub mod targets;
