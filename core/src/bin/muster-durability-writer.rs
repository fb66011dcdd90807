//! Test helper for `tests/durability.rs`: writes to a store in a loop and
//! reports each write on stdout *after* the call returned, until killed.
//!
//! Usage: `muster-durability-writer STORE_PATH`. Lines printed:
//! `E <event>` (the event used), `C <contact> <i>` (created, named
//! `Person <i>`), `U <contact> <i>` (custom field `n` set to i), `S <event>
//! <contact>` (signed up), `N <contact> <i>` (`x<i>;` appended to the notes).

use std::io::Write;

use muster_core::{NewContact, NewEvent, Store};

fn main() -> Result<(), muster_core::Error> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: muster-durability-writer STORE_PATH");
    let mut store = Store::open(path)?;
    let mut out = std::io::stdout().lock();
    let now = 1_793_491_200_000;
    let event = match store.list_events()?.into_iter().next() {
        Some(e) => e.id,
        None => store.create_event(
            &NewEvent::new("Durability drill", now, "Lab", Some(50)),
            now,
        )?,
    };
    writeln!(out, "E {event}").ok();
    out.flush().ok();
    let start = store.contact_count()? as u64 * 4;
    let mut last: Option<(String, usize)> = None;
    for i in start.. {
        let line = match (i % 4, &last) {
            (0, _) | (_, None) => {
                let id = store
                    .create_contact(&NewContact::named(format!("Person {i}")), now + i as i64)?;
                last = Some((id.clone(), 0));
                format!("C {id} {i}")
            }
            (1, Some((id, _))) => {
                store.update_contact(id, now + i as i64, |c| {
                    c.custom.insert("n".into(), i.to_string());
                    Ok(())
                })?;
                format!("U {id} {i}")
            }
            (2, Some((id, _))) => {
                store.sign_up(&event, id, false, now + i as i64)?;
                format!("S {event} {id}")
            }
            (_, Some((id, len))) => {
                let text = format!("x{i};");
                store.splice_contact_notes(id, *len, 0, &text, now + i as i64)?;
                let id = id.clone();
                last = Some((id.clone(), len + text.chars().count()));
                format!("N {id} {i}")
            }
        };
        writeln!(out, "{line}").ok();
        out.flush().ok();
    }
    Ok(())
}
