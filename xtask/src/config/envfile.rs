//! `--env-file` of `deploy --local`: `KEY=VALUE` lines that supply the options template's
//! variables before the environment does.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};

/// `KEY=VALUE` lines (`#` comments, blank lines, optional `export ` and quotes).
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read --env-file {}", path.display()))?;
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", path.display(), number + 1);
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.push((key.trim().to_owned(), unquoted.to_owned()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_dotenv() {
        let path = std::env::temp_dir().join(format!("xtask-env-{}", std::process::id()));
        fs::write(&path, "# comment\n\nexport A=1\nB = \"two words\"\nC='x=y'\n").unwrap();
        let vars = read_env_file(&path).unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
        fs::write(&path, "A=1\nnot a pair\n").unwrap();
        let err = read_env_file(&path).unwrap_err().to_string();
        assert!(err.ends_with(":2: expected KEY=VALUE"), "{err}");
        fs::remove_file(path).unwrap();
    }
}
