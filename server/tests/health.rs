//! The relay binary serves /healthz on loopback and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Starts `muster-server serve` on 127.0.0.1:0 with `data` and `extra`
/// flags; returns the process, the address its first log line names, and
/// the rest of its stderr.
fn start(data: &std::path::Path, extra: &[&str]) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muster-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first log line names the address actually bound.
    let mut out = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, addr, out)
}

#[test]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay-data");
    let (mut child, addr, mut out) = start(&data, &[]);
    let reply = get(&addr, "/healthz");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok\n"), "{reply}");
    assert!(get(&addr, "/nope").starts_with("HTTP/1.1 404"));
    assert!(data.is_dir(), "the data directory is created");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped cleanly"), "{rest}");
}

/// A second relay on the same data directory made devices see
/// intermittent storage errors and live sessions miss each other's pushes:
/// it is refused at once, with a message naming the first, and a relay
/// starts again once the first has stopped.
#[test]
fn a_second_relay_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay-data");
    let (mut first, _, _stderr) = start(&data, &["--no-dashboard"]);
    let mut second = Command::new(env!("CARGO_BIN_EXE_muster-server"))
        .args([
            "serve",
            "--no-dashboard",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without the lock it would serve; it has ten seconds to refuse.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            second.kill().unwrap();
            panic!("a second relay on the same data directory started serving");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("another muster-server is already serving"),
        "{err}"
    );
    assert!(err.contains(&format!("process {}", first.id())), "{err}");
    // Token commands still work beside the serving relay.
    let token = Command::new(env!("CARGO_BIN_EXE_muster-server"))
        .args(["token", "create", "--role", "coordinator", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );

    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(first.wait().unwrap().success());
    let (mut again, _, _stderr_again) = start(&data, &["--no-dashboard"]);
    again.kill().unwrap();
    again.wait().unwrap();
}
