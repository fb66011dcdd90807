//! What a connection may cost the relay (`muster_server::Limits`): sockets
//! that never finish a request head are closed after the request timeout,
//! idle keep-alive connections too, connections past the cap get a `503`,
//! and an upgraded WebSocket is held to neither the request timeout nor
//! released from the cap until it ends. In-process relay on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::start_relay_with;
use muster_server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn limits(max_connections: usize, request_timeout: Duration) -> Limits {
    Limits {
        max_connections,
        request_timeout,
        ..Limits::default()
    }
}

/// Reads until the peer closes (0 or an error); everything read, or `None`
/// if the connection was still open after `within`.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One `GET` on a fresh connection (`Connection: close`): the whole answer.
async fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let out = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("GET {path}: no answer within 5 s"));
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_healthy(reply: &str) {
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok\n"),
        "/healthz: {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_connections_are_closed_after_the_request_timeout() {
    let relay = start_relay_with(false, limits(4096, Duration::from_secs(1))).await;
    let addr = relay.addr.clone();
    let opened = Instant::now();

    // /healthz keeps answering while the slow sockets are open.
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let poller = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            while !*done_rx.borrow() {
                assert_healthy(&get(&addr, "/healthz").await);
                answered += 1;
                let _ = tokio::time::timeout(Duration::from_millis(200), done_rx.changed()).await;
            }
            answered
        })
    };

    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut tricklers = Vec::new();
    for _ in 0..10 {
        let addr = addr.clone();
        tricklers.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let start = Instant::now();
            let head = format!(
                "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n",
                "a".repeat(200)
            );
            let mut buf = [0u8; 1024];
            for byte in head.as_bytes() {
                if start.elapsed() > Duration::from_secs(5) {
                    break;
                }
                if s.write_all(&[*byte]).await.is_err() {
                    return Some(start.elapsed());
                }
                // Between two bytes, see whether the relay closed it.
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Err(_) => {}
                    Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
                    // hyper may say why before closing; keep reading.
                    Ok(Ok(_)) => {}
                }
            }
            None
        }));
    }

    // Every silent socket is closed by the relay, after the timeout and
    // within a few seconds of its opening.
    for (i, s) in silent.iter_mut().enumerate() {
        let left = Duration::from_secs(5).saturating_sub(opened.elapsed());
        assert!(
            read_until_closed(s, left).await.is_some(),
            "silent socket {i} still open after {:?}",
            opened.elapsed()
        );
    }
    let silent_closed = opened.elapsed();
    assert!(
        silent_closed >= Duration::from_millis(900),
        "closed before the timeout: {silent_closed:?}"
    );
    for (i, t) in tricklers.into_iter().enumerate() {
        let closed = t.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("trickling socket {i} sent its whole head"));
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_secs(4),
            "trickling socket {i} closed after {closed:?}"
        );
    }

    done_tx.send_replace(true);
    let answered = poller.await.unwrap();
    assert!(
        answered >= 5,
        "/healthz answered {answered} times in {:?}",
        opened.elapsed()
    );
    assert_healthy(&get(&addr, "/healthz").await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_request_timeout() {
    let relay = start_relay_with(false, limits(4096, Duration::from_secs(1))).await;
    let mut s = TcpStream::connect(&relay.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", relay.addr);
    let mut buf = [0u8; 4096];

    // Two requests on the kept-alive connection, each well within the
    // timeout of the previous answer but together past it: the timer starts
    // again at each answer.
    let mut answered_at = Instant::now();
    for pause in [600, 700] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        s.write_all(request.as_bytes()).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("an answer on the kept-alive connection")
            .unwrap();
        answered_at = Instant::now();
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert_healthy(&reply);
        assert!(!reply.contains("connection: close"), "{reply}");
    }

    // Then silence: closed about a timeout after the last answer.
    let rest = read_until_closed(&mut s, Duration::from_secs(4)).await;
    let idle = answered_at.elapsed();
    assert!(rest.is_some(), "an idle keep-alive connection stays open");
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed {idle:?} after the last answer"
    );
    relay.stop().await;
}

/// Asks `/healthz` until it is answered `200` (within 3 s, or the test
/// fails); returns the answer.
async fn answered_again(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = get(addr, "/healthz").await;
        if reply.starts_with("HTTP/1.1 200") {
            return reply;
        }
        assert!(Instant::now() < deadline, "still refused: {reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_a_503_until_some_close() {
    let relay = start_relay_with(false, limits(20, Duration::from_secs(30))).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&relay.addr).await.unwrap());
    }
    // Let the relay accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for _ in 0..3 {
        let reply = get(&relay.addr, "/healthz").await;
        assert!(
            reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{reply}"
        );
        assert!(
            reply.to_ascii_lowercase().contains("connection: close"),
            "{reply}"
        );
        assert!(
            reply.ends_with(
                "\r\n\r\nmuster-server: too many open connections (cap 20); try again shortly\n"
            ),
            "{reply}"
        );
    }

    // Once the idle sockets are gone, the relay answers again.
    drop(idle);
    assert_healthy(&answered_again(&relay.addr).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_request_timeout_and_holds_its_place_under_the_cap() {
    let relay = start_relay_with(false, limits(2, Duration::from_secs(1))).await;
    let mut ws = TcpStream::connect(&relay.addr).await.unwrap();
    ws.write_all(
        format!(
            "GET /v1/sync HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            relay.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(2), ws.read(&mut byte))
            .await
            .expect("an upgrade answer")
            .unwrap();
        assert_eq!(n, 1, "closed during the upgrade: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // Silent past the request timeout, but well within the protocol's own
    // hello timeout (10 s): the relay leaves it open.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(100), ws.read(&mut buf)).await;
    assert!(
        read.is_err(),
        "the WebSocket was closed or written to: {read:?}"
    );

    // The WebSocket and one more connection fill a cap of two.
    let _other = TcpStream::connect(&relay.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = get(&relay.addr, "/healthz").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("(cap 2)"), "{reply}");

    // The WebSocket's place is given back when it ends.
    drop(ws);
    answered_again(&relay.addr).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_within_small_limits() {
    use muster_core::{NewContact, Store};
    let relay = start_relay_with(false, limits(8, Duration::from_secs(1))).await;
    let token = relay
        .state
        .storage()
        .create_token("coordinator", "test", &[], common::T0)
        .unwrap()
        .1;
    let url = format!("ws://{}/v1/sync", relay.addr);
    let mut a = Store::open_in_memory().unwrap();
    let id = a
        .create_contact(&NewContact::named("Ana Silva"), common::T0)
        .unwrap();
    muster_core::client::sync_once(&mut a, &url, &token, &common::clock, &mut |_| {})
        .await
        .unwrap();
    // Past the request timeout: a second device still syncs everything.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut b = Store::open_in_memory().unwrap();
    muster_core::client::sync_once(&mut b, &url, &token, &common::clock, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(b.contact(&id).unwrap().name, "Ana Silva");
    relay.stop().await;
}
