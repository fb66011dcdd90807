//! The WebSocket handshake of `/v1/sync` (RFC 6455 §4.2), done here rather
//! than by axum's extractor so that the relay holds the tungstenite stream
//! itself and can send a large message as fragments
//! ([`send_binary`]). Why: tungstenite keeps a write buffer as large as the
//! largest frame it ever wrote, for as long as the connection lives, so a
//! thousand phones that each took a 1 MiB catch-up batch kept a gigabyte
//! of buffers (BENCHMARKS.md, "fresh devices at once"). Sent as 64 KiB
//! fragments, the same batch leaves a 64 KiB buffer.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key};

/// A device's upgraded connection.
pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The largest WebSocket frame the relay writes; longer messages go as
/// several frames of this size.
pub const FRAGMENT_BYTES: usize = 64 << 10;

/// Checks the upgrade request and answers `101 Switching Protocols`; once
/// the connection has switched, `serve` runs on it. A request that is not
/// a WebSocket upgrade gets `400` or `426` saying what is missing.
pub(crate) fn accept<F, Fut>(mut request: Request, config: WebSocketConfig, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let headers = request.headers();
    if !header_has(headers, header::CONNECTION, "upgrade")
        || !header_has(headers, header::UPGRADE, "websocket")
    {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::UPGRADE, "websocket")],
            "/v1/sync is a WebSocket (PROTOCOL.md §2)\n",
        )
            .into_response();
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version must be 13\n",
        )
            .into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded\n",
        )
            .into_response();
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade failed"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade".to_owned()),
            (header::UPGRADE, "websocket".to_owned()),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// Whether a comma-separated header holds `token` (case ignored).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Why [`send_binary`] did not send.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection failed.
    Closed,
    /// One fragment did not go out within the time given: the device is
    /// not reading.
    Stalled,
}

/// Sends one binary message, as one frame up to [`FRAGMENT_BYTES`] and as
/// fragments of that size beyond (each flushed before the next is written,
/// so the write buffer never holds more than one). With `each_within`,
/// every fragment must go out in that time: a slow link makes progress
/// fragment by fragment, a device that stopped reading is found out.
pub(crate) async fn send_binary<S>(
    sink: &mut S,
    data: Vec<u8>,
    each_within: Option<std::time::Duration>,
) -> Result<(), SendError>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let send = async |sink: &mut S, m: Message| -> Result<(), SendError> {
        let sent = sink.send(m);
        match each_within {
            Some(limit) => match tokio::time::timeout(limit, sent).await {
                Ok(r) => r.map_err(|_| SendError::Closed),
                Err(_) => Err(SendError::Stalled),
            },
            None => sent.await.map_err(|_| SendError::Closed),
        }
    };
    if data.len() <= FRAGMENT_BYTES {
        return send(sink, Message::Binary(data.into())).await;
    }
    let data = bytes::Bytes::from(data);
    let last = (data.len() - 1) / FRAGMENT_BYTES;
    for i in 0..=last {
        let part = data.slice(i * FRAGMENT_BYTES..((i + 1) * FRAGMENT_BYTES).min(data.len()));
        let opcode = if i == 0 {
            OpCode::Data(Data::Binary)
        } else {
            OpCode::Data(Data::Continue)
        };
        send(
            sink,
            Message::Frame(Frame::message(part, opcode, i == last)),
        )
        .await?;
    }
    Ok(())
}
