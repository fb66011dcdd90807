//! The failed-login limit (PROTOCOL.md §6, code 9): checked at every
//! `hello`, whenever it comes, so opening sockets first does not get round
//! it; a right token still gets in from a locked-out address (behind one
//! proxy, every client shares it); and behind a trusted proxy the limit
//! counts per client, from `X-Forwarded-For`. In-process relay on
//! 127.0.0.1:0.

mod common;

use common::start_relay;
use futures_util::{SinkExt, StreamExt};
use muster_core::sync::wire::{self, Message, code};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to the relay, claiming to forward for `forwarded_for`.
async fn open(url: &str, forwarded_for: Option<&str>) -> Socket {
    let mut request = url.into_client_request().unwrap();
    if let Some(ip) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Sends `hello` with `token`; returns the relay's first answer.
async fn hello(socket: &mut Socket, token: &str, device: u32) -> Message {
    let hello = Message::Hello {
        protocol: wire::PROTOCOL_VERSION,
        token: token.to_owned(),
        device: format!("{device:032x}"),
        cursor: None,
        acked: None,
    };
    socket
        .send(Ws::Binary(wire::encode(&hello).into()))
        .await
        .unwrap();
    loop {
        match socket.next().await.unwrap().unwrap() {
            Ws::Binary(b) => return wire::decode(&b).unwrap(),
            _ => continue,
        }
    }
}

/// The error code a wrong token gets, sent from a connection claiming to
/// forward for `forwarded_for`, as device number `device`.
async fn guess(url: &str, forwarded_for: Option<&str>, device: u32) -> Option<u16> {
    let mut s = open(url, forwarded_for).await;
    error_code(&hello(&mut s, "mst_guess", device).await)
}

fn error_code(m: &Message) -> Option<u16> {
    match m {
        Message::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_is_checked_at_every_hello_and_a_right_token_still_gets_in() {
    let relay = start_relay(false).await;
    let good = relay.token("coordinator");
    // 200 sockets opened first, then 200 wrong tokens.
    let mut sockets = Vec::new();
    for _ in 0..200 {
        sockets.push(open(&relay.url, None).await);
    }
    let (mut unauthorized, mut limited) = (0, 0);
    for (i, s) in sockets.iter_mut().enumerate() {
        match error_code(&hello(s, &format!("mst_guess{i}"), i as u32).await) {
            Some(code::UNAUTHORIZED) => unauthorized += 1,
            Some(code::RATE_LIMITED) => limited += 1,
            other => panic!("a wrong token got {other:?}"),
        }
    }
    assert_eq!(unauthorized, muster_server::MAX_FAILED_LOGINS as usize);
    assert_eq!(limited, 200 - unauthorized);
    // The right token, from the same address, still gets in.
    let mut s = open(&relay.url, None).await;
    let answer = hello(&mut s, &good, 999).await;
    assert!(matches!(answer, Message::Welcome { .. }), "{answer:?}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_limit_counts_per_client() {
    let relay = start_relay(false).await;
    // Untrusted: the header is the client's word and is ignored, so a
    // guesser cannot dodge the limit by writing a new address each time.
    for i in 0..muster_server::MAX_FAILED_LOGINS {
        assert_eq!(
            guess(&relay.url, Some(&format!("203.0.113.{i}")), i).await,
            Some(code::UNAUTHORIZED)
        );
    }
    assert_eq!(
        guess(&relay.url, Some("198.51.100.1"), 50).await,
        Some(code::RATE_LIMITED),
        "the peer (127.0.0.1) is what counts"
    );
    relay.stop().await;

    // The relay behind a proxy on 127.0.0.1 that it trusts.
    let relay = start_relay(false).await;
    relay
        .state
        .trust_proxies(vec!["127.0.0.0/8".parse().unwrap()]);
    let good = relay.token("coordinator");
    for i in 0..muster_server::MAX_FAILED_LOGINS {
        assert_eq!(
            guess(&relay.url, Some("203.0.113.7"), i).await,
            Some(code::UNAUTHORIZED)
        );
    }
    assert_eq!(
        guess(&relay.url, Some("203.0.113.7"), 60).await,
        Some(code::RATE_LIMITED),
        "the guesser is locked out"
    );
    // Another client behind the same proxy is not.
    assert_eq!(
        guess(&relay.url, Some("203.0.113.8"), 61).await,
        Some(code::UNAUTHORIZED)
    );
    let mut s = open(&relay.url, Some("203.0.113.8")).await;
    assert!(matches!(
        hello(&mut s, &good, 62).await,
        Message::Welcome { .. }
    ));
    // A client cannot hide behind a forged left-most entry: the proxy
    // appends what it saw, and the right-most untrusted address counts.
    assert_eq!(
        guess(&relay.url, Some("198.51.100.9, 203.0.113.7"), 63).await,
        Some(code::RATE_LIMITED)
    );
    relay.stop().await;
}
