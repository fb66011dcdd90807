//! Bad clients get a clear error and a closed connection; the relay is
//! unaffected and keeps serving others.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use muster_core::NewContact;
use muster_core::sync::wire::{self, Message, code};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::harness::*;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str) -> Socket {
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .unwrap()
        .0
}

/// Reads until the relay's `error` message; returns its code and text, and
/// checks the connection is closed after it.
async fn expect_error(socket: &mut Socket) -> (u16, String) {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("the relay answers");
        match next {
            Some(Ok(Ws::Binary(b))) => {
                if let Ok(Message::Error { code, message }) = wire::decode(&b) {
                    // After the error, the relay closes.
                    let after = tokio::time::timeout(Duration::from_secs(5), socket.next())
                        .await
                        .unwrap();
                    assert!(
                        matches!(after, None | Some(Ok(Ws::Close(_))) | Some(Err(_))),
                        "connection still open after error: {after:?}"
                    );
                    return (code, message);
                }
            }
            Some(Ok(_)) => {}
            other => panic!("closed without an error message: {other:?}"),
        }
    }
}

fn hello(protocol: u64, token: &str) -> Vec<u8> {
    wire::encode(&Message::Hello {
        protocol,
        token: token.into(),
        device: "0123456789abcdef0123456789abcdef".into(),
        cursor: None,
        acked: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_clear_errors_and_the_relay_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = relay.url();
    let mut good = device(dir.path(), "good");

    let cases: Vec<(&str, Vec<Ws>, u16, &str)> = vec![
        (
            "garbage bytes",
            vec![Ws::Binary(vec![0xff, 0x00, 0x13].into())],
            code::MALFORMED,
            "malformed",
        ),
        (
            "a text frame",
            vec![Ws::Text("hello".into())],
            code::MALFORMED,
            "binary frames only",
        ),
        (
            "wrong protocol version",
            vec![Ws::Binary(hello(99, &token).into())],
            code::UNSUPPORTED_PROTOCOL,
            "protocol 99",
        ),
        (
            "unknown token",
            vec![Ws::Binary(hello(1, "mst_not-a-token").into())],
            code::UNAUTHORIZED,
            "unknown token",
        ),
        (
            "push before hello",
            vec![Ws::Binary(
                wire::encode(&Message::Push { changes: vec![] }).into(),
            )],
            code::UNEXPECTED,
            "first message must be hello",
        ),
        (
            "a second hello",
            vec![
                Ws::Binary(hello(1, &token).into()),
                Ws::Binary(hello(1, &token).into()),
            ],
            code::UNEXPECTED,
            "already",
        ),
        (
            "an oversized frame",
            vec![Ws::Binary(vec![0u8; wire::MAX_FRAME_BYTES + 1024].into())],
            code::TOO_LARGE,
            "over the",
        ),
    ];
    for (what, frames, expected, words) in cases {
        let mut socket = open(&url).await;
        for f in frames {
            // The relay may close before the last frame is fully written.
            let _ = socket.send(f).await;
        }
        let (code, message) = expect_error(&mut socket).await;
        assert_eq!(code, expected, "{what}: {message}");
        assert!(
            message.contains(words),
            "{what}: {message:?} lacks {words:?}"
        );
        // The relay still serves a good device.
        assert!(relay.is_running(), "{what} brought the relay down");
        good.create_contact(&NewContact::named(format!("After {what}")), clock())
            .unwrap();
        let report = sync(&mut good, &url, &token).await.unwrap();
        assert_eq!(report.acknowledged, 1, "{what}");
    }

    // A push of bytes that are not Automerge changes: refused one by one,
    // the session goes on, nothing stored.
    let mut socket = open(&url).await;
    socket
        .send(Ws::Binary(hello(1, &token).into()))
        .await
        .unwrap();
    let bad_push = Message::Push {
        changes: vec![
            wire::PushChange {
                doc: "c_0123456789abcdef0123456789abcdef".into(),
                data: vec![1, 2, 3].into(),
            },
            wire::PushChange {
                doc: "../etc/passwd".into(),
                data: vec![].into(),
            },
        ],
    };
    socket
        .send(Ws::Binary(wire::encode(&bad_push).into()))
        .await
        .unwrap();
    let mut rejected = 0;
    while rejected < 2 {
        let Some(Ok(Ws::Binary(b))) = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
        else {
            panic!("connection ended");
        };
        if let Message::Rejected { code, .. } = wire::decode(&b).unwrap() {
            assert_eq!(code, code::BAD_CHANGE);
            rejected += 1;
        }
    }
    let mut fresh = device(dir.path(), "fresh");
    sync(&mut fresh, &url, &token).await.unwrap();
    assert_eq!(
        fingerprint(&mut fresh),
        fingerprint(&mut good),
        "nothing of the bad push was stored"
    );
    relay.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_says_hello_is_closed_after_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let mut socket = open(&relay.url()).await;
    let (code, message) = expect_error(&mut socket).await;
    assert_eq!(code, code::HANDSHAKE_TIMEOUT, "{message}");
}
