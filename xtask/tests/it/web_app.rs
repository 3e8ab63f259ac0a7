//! The web application under abuse, through its deploy image: malformed and oversized
//! requests get a 4xx, and SIGTERM drains the requests in flight.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crate::support::{Container, Image, docker, docker_lock, wait_healthy, xtask_in};

fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn the_web_app_answers_abuse_with_4xx_and_drains_on_sigterm() {
    let _lock = docker_lock();
    let image = Image::unique("xtask-it-abuse");
    xtask_in(
        &crate::support::root(),
        &["build", "--tag", "abuse"],
        &[("DEPLOY_IMAGE", image.0.trim_end_matches(":latest"))],
    )
    .assert_success();
    let reference = image.0.replace(":latest", ":abuse");
    let _image = Image(reference.clone());
    let container = Container::start("xtask-it-abuse", &reference, "test");
    let addr = container.host_port(80);
    wait_healthy(&addr, 10);

    let top = docker(&["top", &container.0, "-o", "user"]);
    let users = String::from_utf8_lossy(&top.stdout);
    assert!(users.lines().skip(1).all(|u| u.trim() == "10001"), "runs as non-root: {users}");

    let huge_header =
        format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    let huge_body =
        format!("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 50_000_000);
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", b"\x00\x01\x02 not http at all\r\n\r\n".to_vec()),
        ("bad request line", b"GET\r\n\r\n".to_vec()),
        ("oversized header", huge_header.into_bytes()),
        ("oversized body", huge_body.into_bytes()),
        (
            "bad chunked body",
            b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                .to_vec(),
        ),
    ];
    for (name, request) in &cases {
        let status = status_of(&raw(&addr, request));
        assert!(status == 0 || (400..500).contains(&status), "{name}: answered {status}");
    }

    // A bounded load of bad requests from 8 threads: never a 5xx, never a crash.
    let workers: Vec<_> = (0..8)
        .map(|n| {
            let addr = addr.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let request = match (n + i) % 3 {
                            // `Connection: close`: the answer ends the exchange, so the
                            // next request need not wait out a kept-alive connection.
                            0 => b"BREW /coffee HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                            1 => b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                            _ => b"POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
                        };
                        status_of(&raw(&addr, &request))
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for worker in workers {
        for status in worker.join().unwrap() {
            assert!((400..500).contains(&status), "a bad request answered {status}");
        }
    }
    wait_healthy(&addr, 5);
    let state =
        docker(&["inspect", "--format", "{{.State.Running}} {{.RestartCount}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "true 0");

    // SIGTERM while requests are in flight: every one of them completes.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let addr = addr.clone();
            thread::spawn(move || {
                raw(
                    &addr,
                    b"GET /debug/sleep?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    assert!(docker(&["stop", "--time", "20", &container.0]).status.success());
    for request in slow {
        let response = request.join().unwrap();
        assert_eq!(status_of(&response), 200, "{response}");
        assert!(response.ends_with("slept 1500ms\n"), "{response}");
    }
    let exit = docker(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&exit.stdout).trim(), "0", "a clean exit after the drain");
}
