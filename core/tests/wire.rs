//! Properties of the wire format: every message survives encode → decode,
//! and no byte string makes the decoder panic.

use muster_core::sync::wire::{self, Cursor, Entry, Form, Message, PushChange};
use proptest::prelude::*;
use serde_bytes::ByteBuf;

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (any::<u64>(), bytes(40), ".{0,20}", any::<u64>()).prop_map(|(seq, hash, epoch, vis)| Cursor {
        seq,
        hash,
        epoch,
        vis,
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        ".{0,40}",
        prop_oneof![Just(Form::Change), Just(Form::Snapshot), Just(Form::Forget)],
        bytes(200),
    )
        .prop_map(|(doc, form, data)| Entry { doc, form, data })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u64>(),
            ".{0,50}",
            ".{0,40}",
            prop::option::of(cursor()),
            prop::option::of(cursor())
        )
            .prop_map(|(protocol, token, device, cursor, acked)| Message::Hello {
                protocol,
                token,
                device,
                cursor,
                acked
            }),
        prop::collection::vec(
            (".{0,40}", bytes(100)).prop_map(|(doc, data)| PushChange { doc, data }),
            0..5
        )
        .prop_map(|changes| Message::Push { changes }),
        (".{0,40}", bytes(100)).prop_map(|(doc, message)| Message::DocSync { doc, message }),
        Just(Message::ResyncDone),
        ".{0,40}".prop_map(|doc| Message::Erase { doc }),
        ".{0,40}".prop_map(|doc| Message::Erased { doc }),
        (
            any::<u64>(),
            ".{0,20}",
            any::<u64>(),
            any::<bool>(),
            ".{0,12}"
        )
            .prop_map(
                |(protocol, epoch, head, cursor_trusted, role)| Message::Welcome {
                    protocol,
                    epoch,
                    head,
                    cursor_trusted,
                    role
                }
            ),
        (prop::collection::vec(entry(), 0..5), cursor(), any::<u64>()).prop_map(
            |(entries, cursor, remaining)| Message::Batch {
                entries,
                cursor,
                remaining
            }
        ),
        cursor().prop_map(|cursor| Message::CaughtUp { cursor }),
        (prop::collection::vec(entry(), 0..5), cursor())
            .prop_map(|(entries, cursor)| Message::Live { entries, cursor }),
        (prop::collection::vec(bytes(40), 0..5), cursor())
            .prop_map(|(hashes, upto)| Message::Ack { hashes, upto }),
        (".{0,40}", bytes(40), any::<u16>(), ".{0,60}").prop_map(|(doc, hash, code, message)| {
            Message::Rejected {
                doc,
                hash,
                code,
                message,
            }
        }),
        (any::<u16>(), ".{0,60}").prop_map(|(code, message)| Message::Error { code, message }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decode_of_encode_is_identity(m in message()) {
        prop_assert_eq!(wire::decode(&wire::encode(&m)).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::decode(&b);
    }

    #[test]
    fn damaged_messages_never_panic(m in message(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut b = wire::encode(&m);
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        let _ = wire::decode(&b);
        b.truncate(b.len() / 2);
        let _ = wire::decode(&b);
    }
}
