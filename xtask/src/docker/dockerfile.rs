//! The web Dockerfile as each builder should see it. BuildKit builds only the stages a target
//! needs; Docker's legacy builder builds every stage written above the target. For the
//! legacy builder a build is therefore given the Dockerfile cut to the target's stages (the
//! `FROM … AS` chain and `COPY --from=` sources it needs), through stdin: it then builds what
//! BuildKit would, no test code for the deploy image and no release binary for the tests.

use anyhow::bail;

/// One `FROM` section: its name (when `AS` gives one), the stages it uses, and its text.
struct Stage<'a> {
    name: Option<String>,
    uses: Vec<String>,
    text: Vec<&'a str>,
}

/// `dockerfile` with only the stages `target` needs, in their order (global `ARG`s and
/// comments before the first `FROM` kept), and the names of those stages.
pub fn for_target(dockerfile: &str, target: &str) -> anyhow::Result<(String, Vec<String>)> {
    let mut header = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let instruction = words.first().map(|w| w.to_ascii_uppercase());
        if instruction.as_deref() == Some("FROM") {
            let args: Vec<&str> =
                words[1..].iter().copied().filter(|w| !w.starts_with("--")).collect();
            let name = match args.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                _ => None,
            };
            let base = args.first().map(|b| b.to_ascii_lowercase()).unwrap_or_default();
            stages.push(Stage { name, uses: vec![base], text: vec![line] });
            continue;
        }
        match stages.last_mut() {
            None => header.push(line),
            Some(stage) => {
                for word in &words {
                    if let Some(from) = word.strip_prefix("--from=") {
                        stage.uses.push(from.to_ascii_lowercase());
                    }
                }
                stage.text.push(line);
            }
        }
    }
    let target = target.to_ascii_lowercase();
    if !stages.iter().any(|s| s.name.as_deref() == Some(target.as_str())) {
        bail!("the Dockerfile has no stage named {target}");
    }
    let mut needed = vec![target];
    let mut keep = vec![false; stages.len()];
    while let Some(name) = needed.pop() {
        if let Some(i) = stages.iter().position(|s| s.name.as_deref() == Some(name.as_str()))
            && !keep[i]
        {
            keep[i] = true;
            needed.extend(stages[i].uses.iter().cloned());
        }
    }
    let mut out: Vec<&str> = header;
    let mut names = Vec::new();
    for (stage, kept) in stages.iter().zip(keep) {
        if kept {
            out.extend(&stage.text);
            names.extend(stage.name.clone());
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok((text, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "# comment\nARG BASE=debian\n\
        FROM ${BASE} AS deps\nRUN make deps\n\
        FROM deps AS test\nRUN make test\n\
        FROM deps as build\nRUN make\n\
        FROM scratch AS runtime\nCOPY --from=build /out /\n\
        FROM scratch AS other\nCOPY --from=test /x /\n";

    #[test]
    fn a_target_keeps_the_stages_it_needs_in_their_order() {
        let (text, stages) = for_target(DOCKERFILE, "runtime").unwrap();
        assert_eq!(stages, ["deps", "build", "runtime"]);
        assert_eq!(
            text,
            "# comment\nARG BASE=debian\nFROM ${BASE} AS deps\nRUN make deps\n\
             FROM deps as build\nRUN make\nFROM scratch AS runtime\nCOPY --from=build /out /\n"
        );
        assert_eq!(for_target(DOCKERFILE, "test").unwrap().1, ["deps", "test"]);
        assert_eq!(for_target(DOCKERFILE, "other").unwrap().1, ["deps", "test", "other"]);
        assert!(
            for_target(DOCKERFILE, "nope").unwrap_err().to_string().contains("no stage named nope")
        );
    }

    #[test]
    fn the_web_dockerfile_builds_no_test_code_for_the_deploy_image() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let text = std::fs::read_to_string(root.join(crate::docker::DOCKERFILE)).unwrap();
        assert_eq!(for_target(&text, "runtime").unwrap().1, ["release-deps", "build", "runtime"]);
        assert_eq!(for_target(&text, "front").unwrap().1, ["release-deps", "build", "front"]);
        assert_eq!(for_target(&text, "test").unwrap().1, ["release-deps", "test-deps", "test"]);
    }
}
