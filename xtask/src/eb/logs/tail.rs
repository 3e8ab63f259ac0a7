//! A tail as Elastic Beanstalk writes it (DESIGN, "Logs"): for each log file a section, a
//! line of dashes, the file's path, a line of dashes, then its last lines. And the lines of
//! it that explain a failed deployment.

/// One log file's lines in a tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    pub path: &'a str,
    pub lines: Vec<&'a str>,
}

/// How many lines before each `[ERROR]` of `eb-engine.log` go with it.
const BEFORE_ERROR: usize = 5;
/// At most this many lines of `eb-engine.log` around its errors (the last ones).
const ENGINE_LINES: usize = 40;
/// The last lines of the application's own output.
const APP_LINES: usize = 30;

fn dashes(line: &str) -> bool {
    line.len() >= 3 && line.trim_end().chars().all(|c| c == '-')
}

/// The sections of a tail; text before the first section (none on the service) is kept
/// under an empty path.
pub fn sections(text: &str) -> Vec<Section<'_>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut sections: Vec<Section<'_>> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if dashes(lines[i]) && i + 2 < lines.len() && dashes(lines[i + 2]) && !dashes(lines[i + 1])
        {
            sections.push(Section { path: lines[i + 1].trim(), lines: Vec::new() });
            i += 3;
            continue;
        }
        match sections.last_mut() {
            Some(section) => section.lines.push(lines[i]),
            None => sections.push(Section { path: "", lines: vec![lines[i]] }),
        }
        i += 1;
    }
    for section in &mut sections {
        while section.lines.last().is_some_and(|l| l.trim().is_empty()) {
            section.lines.pop();
        }
    }
    sections
}

/// What explains a failure: from `eb-engine.log`, each `[ERROR]` line with the lines before
/// it (the last [`ENGINE_LINES`]); the last [`APP_LINES`] of the application's output (the
/// Docker platform's `eb-docker/containers/eb-current-app/`). Each with its file's path.
pub fn why<'a>(sections: &[Section<'a>]) -> Vec<Section<'a>> {
    let mut picked = Vec::new();
    for section in sections {
        if section.path.ends_with("eb-engine.log") {
            let mut keep = vec![false; section.lines.len()];
            for (i, line) in section.lines.iter().enumerate() {
                if line.contains("[ERROR]") {
                    keep[i.saturating_sub(BEFORE_ERROR)..=i].iter_mut().for_each(|k| *k = true);
                }
            }
            let lines: Vec<&str> =
                section.lines.iter().zip(&keep).filter(|(_, k)| **k).map(|(l, _)| *l).collect();
            let lines = lines[lines.len().saturating_sub(ENGINE_LINES)..].to_vec();
            if !lines.is_empty() {
                picked.push(Section { path: section.path, lines });
            }
        } else if section.path.contains("eb-docker/containers/eb-current-app/") {
            let lines = &section.lines[section.lines.len().saturating_sub(APP_LINES)..];
            if !lines.is_empty() {
                picked.push(Section { path: section.path, lines: lines.to_vec() });
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: &str = "\
-------------------------------------
/var/log/eb-engine.log
-------------------------------------
2026/12/07 09:12:01.1 [INFO] a
2026/12/07 09:12:01.2 [INFO] b
2026/12/07 09:12:01.3 [INFO] c
2026/12/07 09:12:01.4 [INFO] d
2026/12/07 09:12:01.5 [INFO] e
2026/12/07 09:12:01.6 [INFO] f
2026/12/07 09:12:01.7 [INFO] g
2026/12/07 09:12:01.8 [ERROR] docker run: port 80 already allocated
2026/12/07 09:12:01.9 [INFO] after

-------------------------------------
/var/log/eb-docker/containers/eb-current-app/eb-1a2b-stdouterr.log
-------------------------------------
listening on 0.0.0.0:8080
panic: SECRET_KEY not set

-------------------------------------
/var/log/nginx/access.log
-------------------------------------
GET / 200
";

    #[test]
    fn a_tail_is_cut_into_its_files() {
        let sections = sections(TAIL);
        let paths: Vec<&str> = sections.iter().map(|s| s.path).collect();
        assert_eq!(
            paths,
            [
                "/var/log/eb-engine.log",
                "/var/log/eb-docker/containers/eb-current-app/eb-1a2b-stdouterr.log",
                "/var/log/nginx/access.log"
            ]
        );
        assert_eq!(sections[0].lines.len(), 9, "the blank line at its end dropped");
        assert_eq!(sections[2].lines, ["GET / 200"]);
    }

    #[test]
    fn the_why_is_each_error_with_five_lines_before_and_the_app_output() {
        let sections = sections(TAIL);
        let why = why(&sections);
        assert_eq!(why.len(), 2);
        assert_eq!(why[0].lines.len(), 6);
        assert!(why[0].lines[0].ends_with("[INFO] c"), "{:?}", why[0].lines);
        assert!(why[0].lines[5].contains("[ERROR] docker run: port 80 already allocated"));
        assert_eq!(why[1].lines, ["listening on 0.0.0.0:8080", "panic: SECRET_KEY not set"]);
        let many = format!("---\n/var/log/eb-engine.log\n---\n{}", "x\n[ERROR] y\n".repeat(30));
        assert_eq!(super::why(&super::sections(&many))[0].lines.len(), 40, "the last 40");
    }
}
