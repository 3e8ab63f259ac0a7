//! Image references as docker reads them: `repository:tag`, the registry host a repository
//! names, and docker's grammar for both, checked before anything runs.

use anyhow::{anyhow, bail};

/// `repository:tag`, both validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    pub fn new(repository: &str, tag: &str) -> anyhow::Result<ImageRef> {
        validate_repository(repository)?;
        validate_tag(tag)?;
        Ok(ImageRef { repository: repository.to_owned(), tag: tag.to_owned() })
    }

    /// The registry host (`quay.io`, `127.0.0.1:5000`), `docker.io` when the name has none.
    pub fn registry(&self) -> &str {
        registry_of(&self.repository)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

pub fn registry_of(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> anyhow::Result<()> {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok || tag.len() > 128 {
        bail!(
            "invalid image tag {tag:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', \
             not starting with '.' or '-' (pass --tag with such a value)"
        );
    }
    Ok(())
}

/// A repository without tag: an optional `host[:port]/`, then lowercase path components of
/// letters, digits and single separators (`.`, `_`, `__`, `-`).
pub fn validate_repository(repository: &str) -> anyhow::Result<()> {
    let invalid = |why: &str| {
        anyhow!(
            "invalid image repository {repository:?}: {why} \
             (set `image` in [workspace.metadata.deploy] or DEPLOY_IMAGE, e.g. quay.io/acme/web)"
        )
    };
    let path = match registry_of(repository) {
        "docker.io" if !repository.starts_with("docker.io/") => repository,
        host => {
            let rest = &repository[host.len()..];
            rest.strip_prefix('/').ok_or_else(|| invalid("no repository after the host"))?
        }
    };
    if path.contains('@') || path.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        return Err(invalid("give the repository without a tag or digest"));
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && !component.contains("..");
        if !ok {
            return Err(invalid(&format!(
                "path component {component:?} is not lowercase letters, digits and separators"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_found_as_docker_finds_them() {
        assert_eq!(registry_of("quay.io/acme/web"), "quay.io");
        assert_eq!(registry_of("127.0.0.1:5000/web"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/web"), "localhost");
        assert_eq!(registry_of("acme/web"), "docker.io");
        assert_eq!(registry_of("web"), "docker.io");
    }

    #[test]
    fn tags_follow_docker_grammar() {
        for good in ["0123abc", "v1.2.3", "_x", "a".repeat(128).as_str()] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a b", "sha:sha", "ü", "a".repeat(129).as_str()] {
            let err = validate_tag(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid image tag"), "{bad}: {err}");
        }
    }

    #[test]
    fn repositories_are_validated_with_the_fix() {
        for good in [
            "quay.io/acme/web",
            "127.0.0.1:5000/xtask-it/web-1",
            "acme/web",
            "web",
            "docker.io/library/web",
        ] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
        for bad in ["quay.io/Acme/web", "quay.io/acme/web:tag", "quay.io/", "web/", "a//b", "-web"]
        {
            let err = validate_repository(bad).unwrap_err().to_string();
            assert!(err.contains("DEPLOY_IMAGE"), "{bad}: {err}");
        }
    }
}
