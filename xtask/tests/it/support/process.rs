//! The real xtask as a terminal runs it (its own process group, output collected as it
//! comes), an endpoint that never answers, and a watch on every process's command line.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Run;

/// The real xtask in a process group of its own, as a terminal starts a foreground job,
/// its stdout and stderr into `writer`.
fn spawn_xtask(
    project: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    writer: os_pipe::PipeWriter,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("--project-dir")
        .arg(project)
        .args(args)
        .env_remove("TEST_IMAGE")
        .env_remove("TEST_IMAGE_CACHE")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .process_group(0);
    // Our copies of the pipe's write end go with `command`.
    command.spawn().unwrap()
}

/// Sends `signal` to the process group led by `child`, as a terminal does.
fn signal_group(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on the process group of a child we started and have not reaped.
    let sent = unsafe { libc::kill(-(child.id() as i32), signal) };
    assert_eq!(sent, 0, "kill(-{}, {signal})", child.id());
}

/// Waits until `output()` holds `needle`; panics with it after `secs`, or at once when the
/// child has ended.
fn wait_for_output(
    child: &mut std::process::Child,
    needle: &str,
    secs: u64,
    output: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !output().contains(needle) {
        let ended = child.try_wait().unwrap();
        assert!(
            ended.is_none() && std::time::Instant::now() < deadline,
            "{needle:?} not seen ({ended:?}, {secs}s at most); output:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end (killed and a panic with `output()` after `secs`).
fn wait_child(
    child: &mut std::process::Child,
    secs: u64,
    output: impl Fn() -> String,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {secs}s; output:\n{}", output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real xtask, started the way a terminal starts a foreground job: in a process group
/// of its own, so that a signal sent as a terminal sends Ctrl-C (to the whole group)
/// reaches it and its children alike. Its output is collected as it comes.
pub struct Started {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    started: std::time::Instant,
}

impl Started {
    pub fn new(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Started {
        use std::io::BufRead;
        let (reader, writer) = os_pipe::pipe().unwrap();
        let child = spawn_xtask(project, args, env, writer);
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = std::sync::Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let mut output = collected.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        });
        Started { child, output, reader: Some(reader), started: std::time::Instant::now() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output holds `needle` (panics with the output after `secs`, or at
    /// once when the xtask has ended).
    pub fn wait_for(&mut self, needle: &str, secs: u64) {
        let output = std::sync::Arc::clone(&self.output);
        wait_for_output(&mut self.child, needle, secs, || output.lock().unwrap().clone());
    }

    /// Sends `signal` to the whole process group, as a terminal sends Ctrl-C (`SIGINT`).
    pub fn signal_group(&self, signal: i32) {
        signal_group(&self.child, signal);
    }

    /// Waits for the command to end (panics after `secs`) and returns how it ended.
    pub fn wait(mut self, secs: u64) -> Run {
        let output = std::sync::Arc::clone(&self.output);
        let status = wait_child(&mut self.child, secs, || output.lock().unwrap().clone());
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        Run { code: status.code(), output: self.output() }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server on 127.0.0.1 that accepts every connection and never answers: a stalled AWS
/// endpoint. Returns its URL.
pub fn stalled_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

/// Watches every process's command line, from start to stop, for any of some secrets.
pub struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, usize)>,
}

impl ArgvWatch {
    pub fn start(secrets: Vec<String>) -> ArgvWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut scans = 0;
            while !stopped.load(Ordering::SeqCst) {
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
                        let cmdline = String::from_utf8_lossy(&cmdline);
                        if secrets.iter().any(|secret| cmdline.contains(secret.as_str())) {
                            seen.push(cmdline.replace('\0', " "));
                        }
                    }
                }
                scans += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (seen, scans)
        });
        ArgvWatch { stop, thread }
    }

    /// The command lines that held a secret, and how many scans of all processes ran.
    pub fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The real xtask with its stdout and stderr piped through `tee LOG`, both in one process
/// group, as a shell with job control runs `cargo xtask … 2>&1 | tee LOG`: a signal to the
/// group reaches `tee` too, which dies and leaves the xtask writing to a closed pipe.
pub struct Piped {
    child: std::process::Child,
    tee: std::process::Child,
    log: std::path::PathBuf,
}

impl Piped {
    pub fn new(project: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Piped {
        use std::os::unix::process::CommandExt;
        let (reader, writer) = os_pipe::pipe().unwrap();
        let child = spawn_xtask(project, args, env, writer);
        let tee = std::process::Command::new("tee")
            .arg(log)
            .stdin(reader)
            .stdout(std::process::Stdio::null())
            .process_group(child.id() as i32)
            .spawn()
            .unwrap();
        Piped { child, tee, log: log.to_path_buf() }
    }

    /// What `tee` wrote to the log.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` (panics with the log after `secs`, or at once when
    /// the xtask has ended).
    pub fn wait_for(&mut self, needle: &str, secs: u64) {
        let log = self.log.clone();
        wait_for_output(&mut self.child, needle, secs, || {
            fs::read_to_string(&log).unwrap_or_default()
        });
    }

    /// Sends `signal` to the pipeline's process group, as a terminal does.
    pub fn signal_group(&self, signal: i32) {
        signal_group(&self.child, signal);
    }

    /// Waits for the xtask to end (panics after `secs`); its output is the log's.
    pub fn wait(mut self, secs: u64) -> Run {
        let log = self.log.clone();
        let status =
            wait_child(&mut self.child, secs, || fs::read_to_string(&log).unwrap_or_default());
        Run { code: status.code(), output: self.output() }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.tee.kill();
        let _ = self.tee.wait();
    }
}
