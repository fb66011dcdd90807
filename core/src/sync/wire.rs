//! The wire messages of PROTOCOL.md and their CBOR encoding.
//!
//! [`decode`] is the only door for bytes from the network: it checks the
//! frame size first, then decodes one CBOR map into a [`Message`]. It never
//! panics, whatever the bytes.

use crate::store::LogPosition;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Most changes in one `push`.
pub const MAX_PUSH_CHANGES: usize = 1_000;
/// Most bytes of change data in one `push`.
pub const MAX_PUSH_BYTES: usize = 4 << 20;
/// Largest single change.
pub const MAX_CHANGE_BYTES: usize = 1 << 20;
/// Most `push` messages a client keeps unacknowledged.
pub const PUSH_WINDOW: usize = 4;
/// Target size of a relay `batch`, in entries and in bytes.
pub const BATCH_ENTRIES: usize = 2_000;
/// Target size of a relay `batch`, in bytes.
pub const BATCH_BYTES: usize = 1 << 20;
/// Documents a relay holds in one fallback session while they wait for
/// changes they depend on (PROTOCOL.md §5); past it the session ends with
/// `too_large`.
pub const MAX_HELD_DOCS: usize = 64;
/// Bytes of `doc_sync` messages a relay holds in one fallback session for
/// such documents.
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// Documents whose fallback exchange a relay keeps open at once in one
/// session (a coordinator's device starts one for every document it holds).
pub const MAX_FALLBACK_DOCS: usize = 500_000;
/// Bytes of sync state (the last message of each open exchange) a relay
/// keeps in one fallback session.
pub const MAX_FALLBACK_STATE_BYTES: usize = 64 << 20;

/// A position in the relay's log: the `seq` and hash of the last entry a
/// device applied, and the relay's epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sequence number of the entry (0 for the empty log).
    pub seq: u64,
    /// Hash of the change at `seq` (32 zero bytes for the empty log).
    pub hash: ByteBuf,
    /// The relay's epoch.
    pub epoch: String,
    /// Position in the relay's visibility log (documents that entered or
    /// left this device's scope, erasures); 0 if absent.
    #[serde(default)]
    pub vis: u64,
}

/// The store keeps a cursor as its own [`LogPosition`] (the store knows
/// nothing of the wire).
impl From<&Cursor> for LogPosition {
    fn from(c: &Cursor) -> LogPosition {
        LogPosition {
            seq: c.seq,
            hash: c.hash.to_vec(),
            epoch: c.epoch.clone(),
            vis: c.vis,
        }
    }
}

impl From<LogPosition> for Cursor {
    fn from(p: LogPosition) -> Cursor {
        Cursor {
            seq: p.seq,
            hash: ByteBuf::from(p.hash),
            epoch: p.epoch,
            vis: p.vis,
        }
    }
}

/// How an entry's data is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// One Automerge change.
    Change,
    /// A saved document, possibly followed by changes.
    Snapshot,
    /// The document is gone for this device (erased, or out of its scope):
    /// delete it. `data` is empty.
    Forget,
}

/// One document's data in a `batch` or `live` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The document.
    pub doc: String,
    /// How to read `data`.
    pub form: Form,
    /// The bytes.
    pub data: ByteBuf,
}

/// One change in a `push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushChange {
    /// The document.
    pub doc: String,
    /// The encoded Automerge change.
    pub data: ByteBuf,
}

/// Every message of protocol version 1. See PROTOCOL.md §3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Client → relay: the first message.
    Hello {
        /// Must be [`PROTOCOL_VERSION`].
        protocol: u64,
        /// The device's token.
        token: String,
        /// The device's id (32 hex digits).
        device: String,
        /// Where the device stands in the log, if it synced before.
        #[serde(default)]
        cursor: Option<Cursor>,
        /// The log position of the device's latest acknowledged change, if
        /// any: lets the relay notice that it lost changes it had
        /// acknowledged (restored from a backup) even when `cursor` is older.
        #[serde(default)]
        acked: Option<Cursor>,
    },
    /// Client → relay: local changes to store.
    Push {
        /// The changes.
        changes: Vec<PushChange>,
    },
    /// Either way: one Automerge sync message for one document (fallback).
    DocSync {
        /// The document.
        doc: String,
        /// The Automerge sync message; empty when the sender has nothing.
        message: ByteBuf,
    },
    /// Client → relay: the fallback is finished.
    ResyncDone,
    /// Client → relay (coordinators): erase a contact everywhere, with its
    /// private ledger (right to be forgotten).
    Erase {
        /// The contact (`c_…`).
        doc: String,
    },
    /// Relay → client: the token is valid.
    Welcome {
        /// The protocol version in use.
        protocol: u64,
        /// The relay's epoch.
        epoch: String,
        /// The log's last sequence number.
        head: u64,
        /// Whether the client's cursor can be used.
        cursor_trusted: bool,
        /// The device's role.
        role: String,
    },
    /// Relay → client: part of the catch-up.
    Batch {
        /// What to apply.
        entries: Vec<Entry>,
        /// Where the client stands once they are applied.
        cursor: Cursor,
        /// Log entries still to come in this catch-up.
        remaining: u64,
    },
    /// Relay → client: catch-up complete.
    CaughtUp {
        /// The client's position.
        cursor: Cursor,
    },
    /// Relay → client: changes from other devices, after catch-up.
    Live {
        /// What to apply.
        entries: Vec<Entry>,
        /// Where the client stands once they are applied.
        cursor: Cursor,
    },
    /// Relay → client: these changes are on the relay's disk.
    Ack {
        /// Their hashes.
        hashes: Vec<ByteBuf>,
        /// The log position of the last of them.
        upto: Cursor,
    },
    /// Relay → client: one pushed change was refused.
    Rejected {
        /// Its document.
        doc: String,
        /// Its hash.
        hash: ByteBuf,
        /// Why (PROTOCOL.md §6).
        code: u16,
        /// In words.
        message: String,
    },
    /// Relay → client: the erasure of `doc` is done on the relay.
    Erased {
        /// The contact.
        doc: String,
    },
    /// Relay → client: fatal; the connection closes.
    Error {
        /// What went wrong (PROTOCOL.md §6).
        code: u16,
        /// In words.
        message: String,
    },
}

/// Fatal error codes (PROTOCOL.md §6).
pub mod code {
    /// `hello.protocol` is not supported.
    pub const UNSUPPORTED_PROTOCOL: u16 = 1;
    /// Not a valid message.
    pub const MALFORMED: u16 = 2;
    /// Over a size limit.
    pub const TOO_LARGE: u16 = 3;
    /// Unknown token.
    pub const UNAUTHORIZED: u16 = 4;
    /// Revoked token.
    pub const REVOKED: u16 = 5;
    /// No `hello` in time.
    pub const HANDSHAKE_TIMEOUT: u16 = 7;
    /// A message out of order.
    pub const UNEXPECTED: u16 = 8;
    /// Too many failed logins.
    pub const RATE_LIMITED: u16 = 9;
    /// The relay cannot serve now.
    pub const UNAVAILABLE: u16 = 10;
    /// Per-change: not a valid change for that document.
    pub const BAD_CHANGE: u16 = 20;
    /// Per-change: outside the device's write scope.
    pub const FORBIDDEN: u16 = 21;
}

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// The bytes are not one CBOR message of this protocol.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl WireError {
    /// The protocol error code to answer with.
    pub fn code(&self) -> u16 {
        match self {
            WireError::TooLarge(_) => code::TOO_LARGE,
            WireError::Malformed(_) => code::MALFORMED,
        }
    }
}

/// Encodes a message as one frame.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every field is serialisable.
    ciborium::into_writer(message, &mut out).expect("CBOR encoding into a Vec");
    out
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(frame.len()));
    }
    // A CBOR length prefix can claim more bytes than the frame holds; the
    // decoder reads them from the slice and fails at its end rather than
    // allocating what was claimed.
    let mut reader = frame;
    let message: Message = ciborium::de::from_reader_with_recursion_limit(&mut reader, 64)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !reader.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} bytes after the message",
            reader.len()
        )));
    }
    Ok(message)
}

/// The cursor of the empty log of a relay with this epoch.
pub fn start_cursor(epoch: &str) -> Cursor {
    Cursor {
        seq: 0,
        hash: ByteBuf::from(vec![0u8; 32]),
        epoch: epoch.to_owned(),
        vis: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cursor_reads_as_the_stores_position_and_back() {
        // Stores wrote the protocol's cursor as JSON before the store had
        // a type of its own: the same text must read the same.
        let cursor = Cursor {
            seq: 42,
            hash: ByteBuf::from(vec![7; 32]),
            epoch: "epoch-1".into(),
            vis: 3,
        };
        let json = serde_json::to_string(&cursor).unwrap();
        let stored: LogPosition = serde_json::from_str(&json).unwrap();
        assert_eq!(stored, LogPosition::from(&cursor));
        assert_eq!(serde_json::to_string(&stored).unwrap(), json);
        assert_eq!(Cursor::from(stored), cursor);
        let old: LogPosition =
            serde_json::from_str(r#"{"seq":1,"hash":[0,0],"epoch":"e"}"#).unwrap();
        assert_eq!(old.vis, 0, "written before positions had a vis");
    }

    fn roundtrip(m: Message) {
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn every_message_round_trips() {
        let cursor = Cursor {
            seq: 7,
            hash: ByteBuf::from(vec![9; 32]),
            epoch: "ep".into(),
            vis: 3,
        };
        roundtrip(Message::Hello {
            protocol: 1,
            token: "t".into(),
            device: "d".into(),
            cursor: Some(cursor.clone()),
            acked: Some(cursor.clone()),
        });
        roundtrip(Message::Hello {
            protocol: 1,
            token: "t".into(),
            device: "d".into(),
            cursor: None,
            acked: None,
        });
        roundtrip(Message::Push {
            changes: vec![PushChange {
                doc: "c_1".into(),
                data: ByteBuf::from(vec![1, 2, 3]),
            }],
        });
        roundtrip(Message::DocSync {
            doc: "c_1".into(),
            message: ByteBuf::from(vec![]),
        });
        roundtrip(Message::ResyncDone);
        roundtrip(Message::Erase { doc: "c_1".into() });
        roundtrip(Message::Erased { doc: "c_1".into() });
        roundtrip(Message::Welcome {
            protocol: 1,
            epoch: "ep".into(),
            head: 3,
            cursor_trusted: true,
            role: "coordinator".into(),
        });
        roundtrip(Message::Batch {
            entries: vec![Entry {
                doc: "e_1".into(),
                form: Form::Snapshot,
                data: ByteBuf::from(vec![0; 100]),
            }],
            cursor: cursor.clone(),
            remaining: 5,
        });
        roundtrip(Message::CaughtUp {
            cursor: cursor.clone(),
        });
        roundtrip(Message::Live {
            entries: vec![],
            cursor,
        });
        roundtrip(Message::Ack {
            hashes: vec![ByteBuf::from(vec![1; 32])],
            upto: start_cursor("ep"),
        });
        roundtrip(Message::Rejected {
            doc: "c_1".into(),
            hash: ByteBuf::from(vec![1; 32]),
            code: code::FORBIDDEN,
            message: "no".into(),
        });
        roundtrip(Message::Error {
            code: code::UNAUTHORIZED,
            message: "who?".into(),
        });
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_types_refused() {
        #[derive(Serialize)]
        struct Future {
            r#type: &'static str,
            protocol: u64,
            token: &'static str,
            device: &'static str,
            shiny_new_field: u64,
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &Future {
                r#type: "hello",
                protocol: 1,
                token: "t",
                device: "d",
                shiny_new_field: 5,
            },
            &mut bytes,
        )
        .unwrap();
        assert!(matches!(
            decode(&bytes).unwrap(),
            Message::Hello {
                cursor: None,
                acked: None,
                ..
            }
        ));

        let mut bytes = Vec::new();
        ciborium::into_writer(&serde_json::json!({"type": "teleport"}), &mut bytes).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Malformed(_))));
    }

    #[test]
    fn hostile_bytes_are_refused_without_panicking_or_allocating_what_they_claim() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff],
            b"hello".to_vec(),
            // A map claiming 2^64-1 entries.
            vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            // A byte string claiming 2^62 bytes.
            vec![0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
            // Deep nesting.
            vec![0x81; 10_000],
            // A valid message followed by garbage.
            [encode(&Message::ResyncDone), vec![0]].concat(),
        ];
        for bytes in cases {
            assert!(decode(&bytes).is_err(), "{bytes:?} accepted");
        }
        assert!(matches!(
            decode(&vec![0; MAX_FRAME_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
    }
}
