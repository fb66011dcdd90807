//! Who may see and write what, against a real relay: each role gets what
//! it should and nothing else (checked in every frame it receives and in
//! its whole store), refused pushes change nothing, scopes follow sign-ups
//! and token edits, revocation cuts a live connection, erasure reaches
//! devices, failed logins are rate-limited.

use std::collections::BTreeSet;
use std::time::Duration;

use automerge::transaction::Transactable;
use futures_util::{SinkExt, StreamExt};
use muster_core::sync::client::ClientSession;
use muster_core::sync::wire::{self, Form, Message, PushChange, code};
use muster_core::{Donation, NewContact, NewEvent, NewFeedback, Store};
use serde_bytes::ByteBuf;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::harness::*;

/// Runs `muster-server ARGS --data DIR`; returns (stdout, stderr).
fn admin(relay: &RelayProcess, args: &[&str]) -> (String, String) {
    let out = relay
        .admin_command(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "muster-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Creates a token; returns (its id, its secret).
fn token(relay: &RelayProcess, role: &str, events: &[&str]) -> (String, String) {
    let mut args = vec!["token", "create", "--role", role, "--name", role];
    for e in events {
        args.extend(["--event", e]);
    }
    let (out, err) = admin(relay, &args);
    let id = err
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .unwrap_or_else(|| panic!("no token id in {err:?}"))
        .to_owned();
    (id, out.trim().to_owned())
}

/// One sync driven frame by frame; returns every frame the relay sent.
async fn tapped_sync(store: &mut Store, url: &str, token: &str) -> Vec<Vec<u8>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut session = ClientSession::new(store, token).unwrap();
    let mut frames = Vec::new();
    loop {
        while let Some(f) = session.poll_transmit() {
            ws.send(Ws::Binary(f.into())).await.unwrap();
        }
        while session.poll_event().is_some() {}
        if session.is_settled(store).unwrap() {
            let _ = ws.close(None).await;
            return frames;
        }
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("the relay answers")
            .expect("the connection stays open")
            .unwrap();
        if let Ws::Binary(b) = next {
            frames.push(b.to_vec());
            session.handle_frame(store, &b, clock()).unwrap();
        }
    }
}

/// The documents a device was sent (whole or as changes), and those it was
/// told to forget.
fn docs_in(frames: &[Vec<u8>]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut sent, mut forgotten) = (BTreeSet::new(), BTreeSet::new());
    for f in frames {
        let entries = match wire::decode(f).unwrap() {
            Message::Batch { entries, .. } | Message::Live { entries, .. } => entries,
            _ => continue,
        };
        for e in entries {
            if e.form == Form::Forget {
                forgotten.insert(e.doc);
            } else {
                sent.insert(e.doc);
            }
        }
    }
    (sent, forgotten)
}

/// Asserts no frame holds any of `secrets` anywhere in its bytes.
fn assert_absent(frames: &[Vec<u8>], secrets: &[&str], who: &str) {
    for s in secrets {
        let needle = s.as_bytes();
        for f in frames {
            assert!(
                !f.windows(needle.len()).any(|w| w == needle),
                "{who} received {s:?}"
            );
        }
    }
}

fn ids(store: &Store) -> BTreeSet<String> {
    store.doc_ids().unwrap().into_iter().collect()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

fn person(name: &str) -> NewContact {
    NewContact::named(name)
}

fn event(title: &str) -> NewEvent {
    NewEvent {
        title: title.into(),
        starts_at: clock() + 86_400_000,
        ends_at: None,
        place: "Hall".into(),
        capacity: Some(50),
    }
}

/// A change to `doc` made under `actor` (32 hex digits), as a device that
/// does not hold the document could forge it.
fn forged_change(actor: &str, field: &str) -> Vec<u8> {
    let actor = automerge::ActorId::from(
        (0..16)
            .map(|i| u8::from_str_radix(&actor[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    );
    let mut doc = automerge::AutoCommit::new().with_actor(actor);
    doc.put(automerge::ROOT, field, "HACKED").unwrap();
    doc.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// Pushes raw changes as `device` after a normal handshake; returns the
/// relay's answer to each (`Rejected` or `Ack`).
async fn raw_push(
    url: &str,
    token: &str,
    device: &str,
    changes: Vec<(String, Vec<u8>)>,
) -> Vec<Message> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = Message::Hello {
        protocol: wire::PROTOCOL_VERSION,
        token: token.into(),
        device: device.into(),
        cursor: None,
        acked: None,
    };
    ws.send(Ws::Binary(wire::encode(&hello).into()))
        .await
        .unwrap();
    let want = changes.len();
    let push = Message::Push {
        changes: changes
            .into_iter()
            .map(|(doc, data)| PushChange {
                doc,
                data: ByteBuf::from(data),
            })
            .collect(),
    };
    ws.send(Ws::Binary(wire::encode(&push).into()))
        .await
        .unwrap();
    let mut answers = Vec::new();
    let mut answered = 0;
    while answered < want {
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Ws::Binary(b) = next else { continue };
        match wire::decode(&b).unwrap() {
            m @ Message::Rejected { .. } => {
                answered += 1;
                answers.push(m);
            }
            Message::Ack { hashes, upto } => {
                answered += hashes.len();
                answers.push(Message::Ack { hashes, upto });
            }
            Message::Error { code, message } => panic!("error {code}: {message}"),
            _ => {}
        }
    }
    answers
}

fn rejected_with(answers: &[Message], doc: &str) -> (u16, String) {
    answers
        .iter()
        .find_map(|m| match m {
            Message::Rejected {
                doc: d,
                code,
                message,
                ..
            } if d == doc => Some((*code, message.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rejection for {doc}: {answers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_what_it_should_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let url = relay.url();
    let (_, coord_token) = token(&relay, "coordinator", &[]);

    // The office sets up an organisation.
    let mut office = device(dir.path(), "office");
    let food = office.create_event(&event("Food bank"), clock()).unwrap();
    let gala = office.create_event(&event("Gala"), clock()).unwrap();
    let alma = office
        .create_contact(&person("Alma Inscope"), clock())
        .unwrap();
    let bruno = office
        .create_contact(&person("Bruno Outofscope"), clock())
        .unwrap();
    let cora = office
        .create_contact(&person("Cora Nobody"), clock())
        .unwrap();
    office.sign_up(&food, &alma, false, clock()).unwrap();
    office.sign_up(&gala, &bruno, false, clock()).unwrap();
    office
        .add_to_ledger(
            &alma,
            Donation {
                id: String::new(),
                amount_minor: 424_242,
                currency: "EUR".into(),
                date: clock(),
                method: "card".into(),
                note: Some("SECRETGIFT".into()),
                recorded_by: String::new(),
            },
            clock(),
        )
        .unwrap();
    let case = office
        .create_feedback(
            &NewFeedback {
                contact_id: Some(cora.clone()),
                channel: "phone".into(),
                category: "complaint".into(),
                text: "SECRETFEEDBACK".into(),
            },
            clock(),
        )
        .unwrap();
    sync(&mut office, &url, &coord_token).await.unwrap();
    let alma_private = muster_core::model::private_id_of(&alma);
    let everything = ids(&office);
    assert!(everything.contains(&alma_private));

    // --- A volunteer at the food bank: that event, its people, its own work.
    let (vol_id, vol_token) = token(&relay, "volunteer", &[&food]);
    let mut phone = device(dir.path(), "phone");
    let frames = tapped_sync(&mut phone, &url, &vol_token).await;
    assert!(
        frames.iter().any(|f| matches!(
            wire::decode(f),
            Ok(Message::Welcome { role, .. }) if role == "volunteer"
        )),
        "welcomed as a volunteer"
    );
    assert_eq!(docs_in(&frames).0, set(&[&food, &alma]), "frames");
    assert_eq!(ids(&phone), set(&[&food, &alma]), "store");
    assert_absent(
        &frames,
        &[
            &bruno,
            &cora,
            &gala,
            &case,
            &alma_private,
            "Bruno",
            "Cora",
            "SECRETGIFT",
            "SECRETFEEDBACK",
        ],
        "the volunteer",
    );
    assert_eq!(phone.contact(&alma).unwrap().name, "Alma Inscope");

    // It may edit its people and register walk-ins.
    phone
        .update_contact(&alma, clock(), |c| {
            c.tags.insert("needs-bag".into(), true);
            Ok(())
        })
        .unwrap();
    let walk_in = phone
        .create_contact(&person("Wanda Walkin"), clock())
        .unwrap();
    phone.sign_up(&food, &walk_in, true, clock()).unwrap();
    phone.check_in(&food, &walk_in, clock()).unwrap();
    let report = sync(&mut phone, &url, &vol_token).await.unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    assert_eq!(phone.pending_count().unwrap(), 0);
    sync(&mut office, &url, &coord_token).await.unwrap();
    assert!(
        office
            .contact(&alma)
            .unwrap()
            .tags
            .contains_key("needs-bag")
    );
    assert_eq!(office.contact(&walk_in).unwrap().name, "Wanda Walkin");

    // Writes outside its scope are refused and stored nowhere.
    let me = phone.device_id().to_owned();
    let answers = raw_push(
        &url,
        &vol_token,
        &me,
        vec![
            (bruno.clone(), forged_change(&me, "name")),
            (
                alma_private.clone(),
                forged_change(&alma_private[2..], "donations"),
            ),
            (gala.clone(), forged_change(&me, "title")),
            (
                alma.clone(),
                forged_change(office.device_id(), "preferred_name"),
            ),
        ],
    )
    .await;
    for doc in [&bruno, &alma_private, &gala, &alma] {
        let (code, why) = rejected_with(&answers, doc);
        assert_eq!(code, code::FORBIDDEN, "{doc}: {why}");
    }
    assert!(
        rejected_with(&answers, &alma).1.contains("made itself"),
        "a device cannot pass off another's changes"
    );
    let before = fingerprint(&mut office);
    sync(&mut office, &url, &coord_token).await.unwrap();
    assert_eq!(
        fingerprint(&mut office),
        before,
        "refused pushes change nothing"
    );
    let (audit, _) = admin(&relay, &["audit", "--json"]);
    for line in audit.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["device"] == me.as_str() {
            let doc = e["doc"].as_str().unwrap();
            assert!(
                [alma.as_str(), walk_in.as_str(), food.as_str()].contains(&doc),
                "the volunteer's entries are all in its scope: {line}"
            );
            assert_eq!(e["token_id"], vol_id.as_str(), "attributed to its token");
        }
    }

    // --- Scopes follow sign-ups and token edits.
    office.sign_up(&food, &cora, false, clock()).unwrap();
    sync(&mut office, &url, &coord_token).await.unwrap();
    let frames = tapped_sync(&mut phone, &url, &vol_token).await;
    let (sent, _) = docs_in(&frames);
    assert!(sent.contains(&cora), "a new sign-up reaches the volunteer");
    assert!(!sent.contains(&case), "but not the case about her");
    assert_eq!(phone.contact(&cora).unwrap().name, "Cora Nobody");

    admin(
        &relay,
        &[
            "token", "update", &vol_id, "--event", &food, "--event", &gala,
        ],
    );
    let frames = tapped_sync(&mut phone, &url, &vol_token).await;
    let (sent, _) = docs_in(&frames);
    assert!(sent.contains(&gala) && sent.contains(&bruno), "{sent:?}");
    assert_absent(&frames, &[&alma_private, &case, "SECRET"], "the volunteer");

    admin(&relay, &["token", "update", &vol_id, "--event", &gala]);
    let frames = tapped_sync(&mut phone, &url, &vol_token).await;
    let (_, forgotten) = docs_in(&frames);
    assert_eq!(forgotten, set(&[&food, &alma, &cora]));
    assert_eq!(
        ids(&phone),
        set(&[&gala, &bruno, &walk_in]),
        "what left the scope is gone from the phone; what it created stays"
    );
    let (list, _) = admin(&relay, &["token", "list", "--json"]);
    let listed: serde_json::Value = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|t| t["id"] == vol_id.as_str())
        .unwrap();
    assert_eq!(listed["role"], "volunteer");
    assert_eq!(listed["events"], serde_json::json!([gala]));
    assert_eq!(listed["last_device"], me.as_str());
    assert!(
        !list.contains(&vol_token),
        "token list never shows a secret"
    );

    // --- An observer reads everything but private ledgers, writes nothing.
    let (_, obs_token) = token(&relay, "observer", &[]);
    let mut board = device(dir.path(), "board");
    let frames = tapped_sync(&mut board, &url, &obs_token).await;
    let mut expected = ids(&office);
    expected.remove(&alma_private);
    assert_eq!(ids(&board), expected);
    assert_absent(&frames, &[&alma_private, "SECRETGIFT"], "the observer");
    board
        .create_contact(&person("Olga Observer"), clock())
        .unwrap();
    let report = sync(&mut board, &url, &obs_token).await.unwrap();
    assert_eq!(report.rejected, 1, "{report:?}");
    let before = ids(&office);
    sync(&mut office, &url, &coord_token).await.unwrap();
    assert_eq!(
        ids(&office),
        before,
        "the observer's contact is stored nowhere"
    );

    // --- Another coordinator device gets everything, private ledgers too.
    let mut laptop = device(dir.path(), "laptop");
    sync(&mut laptop, &url, &coord_token).await.unwrap();
    assert_eq!(ids(&laptop), ids(&office));
    assert_eq!(
        laptop.contact_private(&alma).unwrap().donations[0].amount_minor,
        424_242
    );

    // --- Erasure: gone from the relay and from every device that syncs.
    office.erase_contact(&alma).unwrap();
    assert!(!ids(&office).contains(&alma));
    assert_eq!(office.pending_erasures().unwrap(), vec![alma.clone()]);
    sync(&mut office, &url, &coord_token).await.unwrap();
    assert!(office.pending_erasures().unwrap().is_empty());
    sync(&mut laptop, &url, &coord_token).await.unwrap();
    sync(&mut board, &url, &obs_token).await.unwrap();
    for (who, store) in [("laptop", &laptop), ("board", &board)] {
        assert!(!ids(store).contains(&alma), "{who} still has her");
        assert!(
            !ids(store).contains(&alma_private),
            "{who} still has her gifts"
        );
        assert!(store.search_contacts("Inscope", 10).unwrap().is_empty());
    }
    let (audit, _) = admin(&relay, &["audit", "--doc", &alma, "--json"]);
    assert!(!audit.is_empty());
    assert!(
        audit.lines().all(|l| l.contains("\"erased\":true")),
        "the relay keeps no content of hers: {audit}"
    );
    let mut fresh = device(dir.path(), "fresh");
    let frames = tapped_sync(&mut fresh, &url, &coord_token).await;
    assert_absent(&frames, &["Alma", "SECRETGIFT"], "a new coordinator device");
    // A device that still had her cannot bring her back.
    let answers = raw_push(
        &url,
        &coord_token,
        laptop.device_id(),
        vec![(alma.clone(), forged_change(laptop.device_id(), "name"))],
    )
    .await;
    assert_eq!(rejected_with(&answers, &alma).0, code::FORBIDDEN);

    // --- Revocation. Work the phone made before it and never pushed is
    // refused with it (PROTOCOL.md §6): a lost phone is not trusted.
    let late = phone
        .create_contact(&person("Late Entry"), clock())
        .unwrap();
    assert_eq!(phone.pending_count().unwrap(), 1);
    admin(&relay, &["token", "revoke", &vol_id]);
    let err = sync(&mut phone, &url, &vol_token).await.unwrap_err();
    assert!(muster_core::client::is_permanent(&err), "{err}");
    assert!(err.to_string().contains("revoked"), "{err}");
    sync(&mut office, &url, &coord_token).await.unwrap();
    assert!(
        !ids(&office).contains(&late),
        "nothing of a revoked phone is accepted"
    );

    // A connected device is cut off at once.
    let (desk_id, desk_token) = token(&relay, "volunteer", &[&gala]);
    let desk = std::sync::Mutex::new(device(dir.path(), "desk"));
    let live = sync_live_until_error(&desk, &url, &desk_token);
    let revoke = async {
        // Once the desk is live and caught up (it holds its event)…
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let has = desk.lock().unwrap().doc_ids().unwrap().contains(&gala);
            if has {
                break;
            }
        }
        admin(&relay, &["token", "revoke", &desk_id]);
    };
    let (err, ()) = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(15), live).await },
        revoke
    );
    let err = err.expect("the live session ends soon after revocation");
    assert!(muster_core::client::is_permanent(&err), "{err}");
    assert!(err.to_string().contains("revoked"), "{err}");
}

async fn sync_live_until_error(
    store: &std::sync::Mutex<Store>,
    url: &str,
    token: &str,
) -> muster_core::Error {
    muster_core::client::sync_live(
        store,
        url,
        token,
        &clock,
        &mut |_| {},
        None,
        None,
        std::future::pending::<()>(),
    )
    .await
    .expect_err("live sync ends only on a permanent error here")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let url = relay.url();
    let (_, good) = token(&relay, "coordinator", &[]);
    let mut store = device(dir.path(), "d");
    for i in 0..10 {
        let err = sync(&mut store, &url, &format!("mst_guess{i}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown token"), "{err}");
    }
    // The eleventh wrong attempt from this address is refused as such...
    let err = sync(&mut store, &url, "mst_guess10").await.unwrap_err();
    assert!(
        matches!(err, muster_core::Error::Relay { code, .. } if code == code::RATE_LIMITED),
        "{err}"
    );
    // ...and a right token still gets in.
    sync(&mut store, &url, &good).await.unwrap();
}
