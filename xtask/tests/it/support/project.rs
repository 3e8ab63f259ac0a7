//! A copy of the workspace in a git repository of its own: for the tests whose commands read
//! the commit (the deploy bundle, a version's description).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{TempDir, copy_of_workspace};

pub struct Project {
    pub dir: TempDir,
}

impl Project {
    /// The workspace's files (not its `deploy/`), committed.
    pub fn new(prefix: &str) -> Project {
        let dir = TempDir::new(prefix);
        copy_of_workspace(dir.path());
        let project = Project { dir };
        project.git(&["init", "-q"]);
        project.commit("the workspace");
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `path` (from the workspace root), executable or not; not committed.
    pub fn write(&self, path: &str, content: &[u8], executable: bool) {
        let file = self.path().join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, content).unwrap();
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Commits everything, as Ana Lima.
    pub fn commit(&self, subject: &str) {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=Ana Lima",
            "-c",
            "user.email=ana@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            subject,
        ]);
    }

    pub fn git(&self, args: &[&str]) {
        let out = Command::new("git").arg("-C").arg(self.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
