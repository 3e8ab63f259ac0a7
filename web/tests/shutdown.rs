//! The real binary on an ephemeral port: SIGTERM lets an in-flight request finish, stops
//! accepting new ones, and the drain time is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra_env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_web"))
        .env_clear()
        .env("APP_ENV", "test")
        .env("PORT", "0")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the web binary");
    let (tx, log) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the binary logs its listening address within 10s");
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.rsplit(':').next().unwrap().trim().parse().unwrap();
        }
    };
    Server { child, port, log }
}

fn send_get(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    stream
}

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

fn wait_for_log(server: &Server, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = server
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line containing {needle:?} within 10s"));
        if line.contains(needle) {
            return;
        }
    }
}

#[test]
fn sigterm_lets_the_in_flight_request_complete() {
    let mut server = start(&[]);
    let mut slow = send_get(server.port, "/debug/sleep?ms=1500");
    // The request is in flight once the server has read it; give it that moment.
    thread::sleep(Duration::from_millis(300));
    sigterm(&server.child);
    wait_for_log(&server, "shutting down");

    // No new connection is accepted while draining.
    thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "the listener is closed during the drain"
    );

    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("slept 1500ms\n"), "{response}");

    let status = server.child.wait().unwrap();
    assert!(status.success(), "clean exit after the drain: {status}");
}

#[test]
fn drain_time_is_bounded() {
    let mut server = start(&[("SHUTDOWN_TIMEOUT_SECS", "1")]);
    let _stuck = send_get(server.port, "/debug/sleep?ms=30000");
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    sigterm(&server.child);
    let status = server.child.wait().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(5), "exited {took:?} after SIGTERM, want ~1s");
    assert!(took >= Duration::from_secs(1), "exited before the drain time: {took:?}");
}

#[test]
fn configuration_errors_stop_the_binary_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_web"))
        .env_clear()
        .env("APP_ENV", "production")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SECRET_KEY is not set"), "{stderr}");
}

#[test]
fn log_dir_receives_a_copy_of_the_log() {
    let dir = std::env::temp_dir().join(format!("web-log-test-{}", std::process::id()));
    let server = start(&[("LOG_DIR", dir.to_str().unwrap())]);
    let mut stream = send_get(server.port, "/health");
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    wait_for_log(&server, "GET /health 200");
    drop(server);
    let logged = std::fs::read_to_string(dir.join("web.log")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(logged.contains("listening on"), "{logged}");
    assert!(logged.contains("GET /health 200"), "{logged}");
}
