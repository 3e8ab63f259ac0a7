//! The house rules, checked on the sources as rust-analyzer's `tidy` does: imports point
//! down the layers of `lib.rs`'s header (every `use` tree and every `crate::`/`super::` path
//! is read with `syn`, so `use crate::{docker, eb}` is seen), no command imports another,
//! nothing prints with a macro that panics on a closed pipe, and every file stays short.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Each layer and the layers it may import (itself included).
const LAYERS: [(&str, &[&str]); 9] = [
    ("run", &["run"]),
    ("aws", &["run", "aws"]),
    ("config", &["run", "aws", "config"]),
    ("docker", &["run", "aws", "config", "docker"]),
    ("eb", &["run", "aws", "config", "eb"]),
    ("release", &["run", "aws", "config", "docker", "eb", "release"]),
    ("flags", &["run", "flags"]),
    ("commands", &["run", "aws", "config", "docker", "eb", "release", "flags", "commands"]),
    ("tidy", &["tidy"]),
];

/// A source file: its path under `src/` and its text.
struct Source {
    path: String,
    text: String,
}

/// The module path of a file under `src/`: `eb/follow/mod.rs` is `["eb", "follow"]`.
fn module_of(path: &str) -> Vec<String> {
    let path = path.trim_end_matches(".rs");
    let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// Every path a file names that starts at `crate`, `super` or `self`, made absolute (the
/// segments after `crate`), outside `#[cfg(test)]` items; and the printing macros it calls.
#[derive(Default)]
struct Names {
    module: Vec<String>,
    /// Where a `use` inside an inline module resolves from.
    inline: Vec<String>,
    paths: BTreeSet<Vec<String>>,
    printing: BTreeSet<String>,
}

impl Names {
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String> = self.module.iter().chain(&self.inline).cloned().collect();
        let mut rest = segments;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("super") | Some("self") => {
                while let Some(first) = rest.first() {
                    match first.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.named(prefix, &name.ident),
            syn::UseTree::Rename(rename) => self.named(prefix, &rename.ident),
            syn::UseTree::Glob(_) => self.named_path(prefix.clone()),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.tree(prefix, tree);
                }
            }
        }
    }

    fn named(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut path = prefix.to_vec();
        if ident != "self" {
            path.push(ident.to_string());
        }
        self.named_path(path);
    }

    fn named_path(&mut self, path: Vec<String>) {
        if let Some(absolute) = self.absolute(&path) {
            self.paths.insert(absolute);
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_cfg_test(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        self.inline.push(module.ident.to_string());
        syn::visit::visit_item_mod(self, module);
        self.inline.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.named_path(segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Some(name) = mac.path.get_ident().map(|i| i.to_string())
            && ["println", "print", "eprintln", "eprint", "dbg"].contains(&name.as_str())
        {
            self.printing.insert(name);
        }
        syn::visit::visit_macro(self, mac);
    }
}

/// Every rule broken by `sources`, one line each.
fn violations(sources: &[Source]) -> Vec<String> {
    let commands: BTreeSet<String> = sources
        .iter()
        .filter(|s| s.path == "commands/mod.rs")
        .filter_map(|s| syn::parse_file(&s.text).ok())
        .flat_map(|file| file.items)
        .filter_map(|item| match item {
            syn::Item::Mod(m) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for source in sources {
        let file = match syn::parse_file(&source.text) {
            Ok(file) => file,
            Err(err) => {
                found.push(format!("{}: does not parse: {err}", source.path));
                continue;
            }
        };
        let mut names = Names { module: module_of(&source.path), ..Names::default() };
        names.visit_file(&file);
        // `lib.rs` and `main.rs` stand above every layer.
        let Some(layer) = names.module.first().cloned() else { continue };
        for name in &names.printing {
            found.push(format!(
                "{} calls {name}!, which panics when the output is closed: use `ui`",
                source.path
            ));
        }
        let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer) else {
            found.push(format!("{}: layer {layer} is not in tidy's LAYERS", source.path));
            continue;
        };
        for path in &names.paths {
            let Some(target) = path.first() else { continue };
            let shown = format!("crate::{}", path.join("::"));
            if !allowed.contains(&target.as_str()) {
                found.push(format!("{} ({layer}) uses {shown}", source.path));
                continue;
            }
            // A command imports no other command; what they share is in `commands` itself.
            if layer == "commands"
                && target == "commands"
                && let (Some(own), Some(other)) = (names.module.get(1), path.get(1))
                && commands.contains(other)
                && own != other
            {
                found.push(format!("{} (command {own}) uses command {shown}", source.path));
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn imports_point_down_only_and_nothing_prints_with_a_panicking_macro() {
    let src = crate_dir().join("src");
    let sources: Vec<Source> = rust_files(&src)
        .into_iter()
        .map(|path| Source {
            path: path.strip_prefix(&src).unwrap().to_string_lossy().into_owned(),
            text: fs::read_to_string(&path).unwrap(),
        })
        .collect();
    assert!(sources.len() > 40, "the sources were not found");
    let found = violations(&sources);
    assert!(found.is_empty(), "against the house rules: {found:#?}");
}

#[test]
fn the_rules_catch_grouped_upward_imports_commands_importing_commands_and_println() {
    let source = |path: &str, text: &str| Source { path: path.into(), text: text.into() };
    let sources = [
        source("commands/mod.rs", "pub mod deploy;\npub mod status;\nfn shared() {}"),
        source("eb/fixture.rs", "use crate::{docker, eb::events};\n"),
        source("run/fixture.rs", "fn f() { let _ = crate::aws::Clients::new; }\n"),
        source("docker/nested/fixture.rs", "use super::super::super::eb::Eb;\n"),
        source("commands/status.rs", "use super::{deploy::run, shared};\nuse crate::eb;\n"),
        source("commands/deploy/local.rs", "use super::super::shared;\nuse super::run;\n"),
        source(
            "config/fixture.rs",
            "fn f() { println!(\"x\"); }\n#[cfg(test)]\nmod tests { use crate::docker; fn g() { println!(); } }\n",
        ),
    ];
    let found = violations(&sources);
    assert_eq!(
        found,
        [
            "eb/fixture.rs (eb) uses crate::docker",
            "run/fixture.rs (run) uses crate::aws::Clients::new",
            "docker/nested/fixture.rs (docker) uses crate::eb::Eb",
            "commands/status.rs (command status) uses command crate::commands::deploy::run",
            "config/fixture.rs calls println!, which panics when the output is closed: use `ui`",
        ]
    );
}

/// Small enough to read in one go: no module over 400 lines, no command over 200, no test
/// file over 400.
#[test]
fn files_stay_small() {
    let root = crate_dir();
    let mut long = Vec::new();
    for dir in ["src", "tests"] {
        for path in rust_files(&root.join(dir)) {
            let lines = fs::read_to_string(&path).unwrap().lines().count();
            let limit = if path.starts_with(root.join("src/commands")) { 200 } else { 400 };
            if lines > limit {
                long.push(format!("{}: {lines} lines (at most {limit})", path.display()));
            }
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}
