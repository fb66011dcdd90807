//! `muster`, the office command line: the same core and store as a phone,
//! for coordinators and for scripts. Every command but `login` and `sync`
//! works offline, on the local store. `--json` output is a contract
//! (cli/JSON.md).

mod exchange;
mod json;
mod report_cmd;
mod sync_cmd;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use muster_core::model::ContactEdit;
use muster_core::{NewConsent, NewContact, NewEvent, SignupStatus, Store};

#[derive(Parser)]
#[command(name = "muster", version, about = "Muster, the office command line")]
struct Cli {
    /// The device store (created if missing).
    #[arg(
        long,
        global = true,
        env = "MUSTER_STORE",
        default_value = "muster.store"
    )]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// `--timeout SECS` of `login` and `sync`.
#[derive(Args, Clone, Copy)]
struct TimeoutArg {
    /// How long to wait for the relay before giving up, in seconds: for each
    /// answer it owes (its welcome, the catch-up, acknowledgements); the
    /// connection itself must open within 15 s, or SECS if less. With
    /// --watch, a connection that runs out is retried.
    #[arg(
        long = "timeout",
        value_name = "SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    secs: u64,
}

impl TimeoutArg {
    fn timeouts(self) -> muster_core::client::Timeouts {
        muster_core::client::Timeouts::within(std::time::Duration::from_secs(self.secs))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this store with a relay: checks the token and saves both.
    Login {
        /// The relay, e.g. ws://127.0.0.1:7878 or wss://relay.example.org.
        url: String,
        /// The token printed by `muster-server token create`.
        token: String,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Push local work and pull everyone else's, once; or stay live.
    Sync {
        /// Stay connected and print what happens until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Print what moved as JSON.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Events.
    #[command(subcommand)]
    Event(EventCommand),
    /// Sign a contact up to an event.
    Signup {
        event: String,
        contact: String,
        /// Registered at the door.
        #[arg(long)]
        walk_in: bool,
    },
    /// Check a contact in (a contact not signed up becomes a walk-in).
    Checkin { event: String, contact: String },
    /// Cancel a contact's sign-up.
    Cancel { event: String, contact: String },
    /// An event's sign-ups with their status, waitlist included.
    Roster {
        event: String,
        /// Only this status: registered, waitlisted, checked_in, cancelled, no_show.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every value a field holds after concurrent edits, the winner first
    /// (one JSON value per line). FIELD may name a nested field: address.city.
    Conflicts { id: String, field: String },
    /// Show, or set, the country whose numbering phone numbers typed
    /// without +country code follow (ISO 3166: GB, US, PT…); used to compare
    /// phones for duplicates and to export them in E.164. Default GB.
    PhoneRegion { region: Option<String> },
    /// Pairs of contacts that may be one person, best first, with a score
    /// and the reasons (same phone, same email, names alike).
    Duplicates {
        #[arg(long)]
        json: bool,
        /// Only pairs scoring at least this (0 to 1).
        #[arg(long, default_value_t = muster_core::store::MIN_SCORE)]
        min_score: f64,
    },
    /// Merge DUPLICATE into KEEP: the duplicate leaves lists and searches,
    /// its sign-ups and history count for KEEP; nothing is deleted, and
    /// `unmerge` undoes it.
    Merge { keep: String, duplicate: String },
    /// Undo a merge: DUPLICATE is a contact of its own again, as before.
    Unmerge { duplicate: String },
    /// Record that A and B are not the same person; they are not proposed
    /// as duplicates again.
    NotDuplicate { a: String, b: String },
    /// Import records from a file (a preview of the column mapping first).
    #[command(subcommand)]
    Import(exchange::ImportCommand),
    /// Export records as CSV or JSON on standard output.
    Export(exchange::ExportArgs),
    /// Reports for the office and the board (text, or --json).
    #[command(subcommand)]
    Report(report_cmd::ReportCommand),
    /// Erase a contact and its private ledger (right to be forgotten): gone
    /// from this store now, from the relay and every device after the next
    /// sync. Needs a coordinator's token.
    Erase { contact: String },
}

#[derive(Subcommand)]
enum ContactCommand {
    /// Register a contact; prints its id.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        phone: Vec<String>,
        #[arg(long)]
        email: Vec<String>,
        /// donor, volunteer, beneficiary, staff or other.
        #[arg(long)]
        role: Vec<String>,
        #[arg(long)]
        tag: Vec<String>,
    },
    /// Contacts by name.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Contacts whose name, phone or email contains the text.
    Search {
        text: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One contact, every field.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change fields of a contact. An empty value (`--organisation ""`)
    /// clears an optional field; a phone or email already there in another
    /// form is not added again.
    Edit(Box<EditArgs>),
}

#[derive(Args)]
struct EditArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    preferred_name: Option<String>,
    /// Replaces every phone with these.
    #[arg(long)]
    phone: Vec<String>,
    #[arg(long)]
    add_phone: Vec<String>,
    /// Replaces every email with these.
    #[arg(long)]
    email: Vec<String>,
    #[arg(long)]
    add_email: Vec<String>,
    #[arg(long)]
    street: Option<String>,
    #[arg(long)]
    city: Option<String>,
    #[arg(long)]
    postal_code: Option<String>,
    #[arg(long)]
    country: Option<String>,
    #[arg(long)]
    language: Option<String>,
    #[arg(long)]
    household: Option<String>,
    #[arg(long)]
    organisation: Option<String>,
    #[arg(long)]
    external_id: Option<String>,
    #[arg(long)]
    add_tag: Vec<String>,
    #[arg(long)]
    remove_tag: Vec<String>,
    #[arg(long)]
    add_role: Vec<String>,
    #[arg(long)]
    remove_role: Vec<String>,
    /// KEY=VALUE; repeatable.
    #[arg(long)]
    custom: Vec<String>,
    /// yes or no.
    #[arg(long)]
    consent: Option<String>,
    #[arg(long)]
    consent_channel: Vec<String>,
    #[arg(long)]
    consent_method: Option<String>,
}

#[derive(Subcommand)]
enum EventCommand {
    /// Create an event; prints its id.
    Add {
        #[arg(long)]
        title: String,
        /// RFC 3339, e.g. 2026-12-01T18:00:00Z.
        #[arg(long)]
        starts: String,
        #[arg(long)]
        ends: Option<String>,
        #[arg(long, default_value = "")]
        place: String,
        #[arg(long)]
        capacity: Option<i64>,
    },
    /// Events by start time, with counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Open the event's public registration page on the relay (`/r/SLUG`,
    /// live after the next `muster sync`); prints its address. Publishing
    /// again changes what it asks and when it closes, and keeps the address.
    Publish {
        /// The event (`e_…`).
        event: String,
        /// When registrations close, RFC 3339 (default: when it starts).
        #[arg(long)]
        closes: Option<String>,
        /// What the page asks besides the name, comma-separated: email,
        /// phone, language, consent (default: all of them).
        #[arg(long, value_delimiter = ',')]
        ask: Vec<String>,
    },
    /// Close the event's public page; registrations made stay.
    Unpublish {
        /// The event (`e_…`).
        event: String,
    },
}

/// `muster duplicates`.
fn duplicates(store: &Store, json: bool, min_score: f64) -> Result<()> {
    let pairs: Vec<_> = store
        .duplicate_candidates()?
        .into_iter()
        .filter(|p| p.score >= min_score)
        .collect();
    if json {
        return print_json(&pairs);
    }
    if pairs.is_empty() {
        println!("no likely duplicates");
    }
    for p in &pairs {
        println!(
            "{:.2}  {} {:?}  ~  {} {:?}  ({})",
            p.score,
            p.a,
            p.a_name,
            p.b,
            p.b_name,
            p.reasons.join(", ")
        );
    }
    Ok(())
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("muster: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut store = Store::open(&cli.store)
        .with_context(|| format!("cannot open the store {}", cli.store.display()))?;
    match cli.command {
        Command::Login {
            url,
            token,
            timeout,
        } => sync_cmd::login(&mut store, &url, &token, timeout.timeouts()),
        Command::Sync {
            watch: true,
            timeout,
            ..
        } => sync_cmd::sync_watch(store, timeout.timeouts()),
        Command::Sync { json, timeout, .. } => {
            sync_cmd::sync_once(&mut store, json, timeout.timeouts())
        }
        Command::Contact(c) => contact(&mut store, c),
        Command::Event(e) => event(&mut store, e),
        Command::Signup {
            event,
            contact,
            walk_in,
        } => Ok(store.sign_up(&event, &contact, walk_in, now())?),
        Command::Checkin { event, contact } => Ok(store.check_in(&event, &contact, now())?),
        Command::Cancel { event, contact } => Ok(store.cancel_signup(&event, &contact, now())?),
        Command::Roster {
            event,
            status,
            json,
        } => roster(&store, &event, status.as_deref(), json),
        Command::PhoneRegion { region: None } => {
            println!("{}", store.phone_region()?);
            Ok(())
        }
        Command::PhoneRegion {
            region: Some(region),
        } => {
            let region = region.trim().to_ascii_uppercase();
            if muster_core::duplicates::normalise_phone("+447700900123", &region).is_none() {
                bail!("{region:?} is not a country code such as GB, US or PT");
            }
            store.set_setting(muster_core::store::PHONE_REGION_SETTING, &region)?;
            println!("phone numbers without a country code are read as {region} numbers");
            Ok(())
        }
        Command::Duplicates { json, min_score } => duplicates(&store, json, min_score),
        Command::Merge { keep, duplicate } => {
            store.merge_contacts(&keep, &duplicate, now())?;
            println!("merged {duplicate} into {keep}; `muster unmerge {duplicate}` undoes it");
            Ok(())
        }
        Command::Unmerge { duplicate } => {
            store.unmerge_contact(&duplicate, now())?;
            println!("{duplicate} is a contact of its own again");
            Ok(())
        }
        Command::NotDuplicate { a, b } => {
            store.mark_not_duplicate(&a, &b, now())?;
            println!("{a} and {b} will not be proposed as duplicates again");
            Ok(())
        }
        Command::Import(c) => exchange::import(&mut store, c),
        Command::Export(a) => exchange::export(&mut store, a),
        Command::Report(c) => report_cmd::report(&mut store, c),
        Command::Erase { contact } => {
            store.erase_contact(&contact)?;
            println!(
                "erased {contact} here; run `muster sync` to erase it on the relay and every device"
            );
            Ok(())
        }
        Command::Conflicts { id, field } => {
            let path: Vec<&str> = field.split('.').collect();
            for value in store.field_conflicts(&id, &path)? {
                println!("{value}");
            }
            Ok(())
        }
    }
}

fn contact(store: &mut Store, command: ContactCommand) -> Result<()> {
    match command {
        ContactCommand::Add {
            name,
            phone,
            email,
            role,
            tag,
        } => {
            let new = NewContact {
                name,
                phones: phone,
                emails: email,
                roles: role,
                tags: tag,
                ..Default::default()
            };
            // Saved all the same; the warning helps catch a double entry.
            for maybe in store.possible_duplicates_of(&new)? {
                eprintln!(
                    "muster: maybe the same person as {} {:?} ({})",
                    maybe.a,
                    maybe.a_name,
                    maybe.reasons.join(", ")
                );
            }
            let id = store.create_contact(&new, now())?;
            println!("{id}");
        }
        ContactCommand::List {
            json,
            limit,
            offset,
        } => {
            list_contacts(store.list_contacts(limit, offset)?, json)?;
        }
        ContactCommand::Search { text, json, limit } => {
            list_contacts(store.search_contacts(&text, limit)?, json)?;
        }
        ContactCommand::Show { id, json } => {
            let detail = json::ContactDetail::from(store.contact(&id)?);
            if json {
                print_json(&detail)?;
            } else {
                let text = serde_json::to_value(&detail)?;
                if let serde_json::Value::Object(fields) = text {
                    for (k, v) in fields {
                        println!("{k:<20} {v}");
                    }
                }
            }
        }
        ContactCommand::Edit(args) => edit(store, *args)?,
    }
    Ok(())
}

fn list_contacts(rows: Vec<muster_core::ContactSummary>, json: bool) -> Result<()> {
    if json {
        return print_json(&rows);
    }
    for c in rows {
        println!(
            "{}  {:<30} {:<18} {}",
            c.id,
            c.name,
            c.phone.unwrap_or_default(),
            c.email.unwrap_or_default()
        );
    }
    Ok(())
}

fn edit(store: &mut Store, a: EditArgs) -> Result<()> {
    let mut custom = Vec::new();
    for kv in &a.custom {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--custom {kv:?}: write KEY=VALUE"))?;
        custom.push((k.to_owned(), v.to_owned()));
    }
    let consent = match a.consent.as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => bail!("--consent {other:?}: write yes or no"),
    };
    let at = now();
    let edit = ContactEdit {
        name: a.name,
        preferred_name: a.preferred_name,
        phones: (!a.phone.is_empty()).then_some(a.phone),
        add_phones: a.add_phone,
        emails: (!a.email.is_empty()).then_some(a.email),
        add_emails: a.add_email,
        street: a.street,
        city: a.city,
        postal_code: a.postal_code,
        country: a.country,
        preferred_language: a.language,
        household: a.household,
        organisation: a.organisation,
        external_id: a.external_id,
        add_roles: a.add_role,
        remove_roles: a.remove_role,
        add_tags: a.add_tag,
        remove_tags: a.remove_tag,
        custom: custom.into_iter().collect(),
        ..Default::default()
    };
    store.edit_contact(&a.id, &edit, at)?;
    if let Some(given) = consent {
        let consent = NewConsent {
            given,
            channels: a.consent_channel,
            method: a.consent_method,
        };
        store.record_consent(&a.id, &consent, at)?;
    }
    Ok(())
}

fn event(store: &mut Store, command: EventCommand) -> Result<()> {
    match command {
        EventCommand::Add {
            title,
            starts,
            ends,
            place,
            capacity,
        } => {
            let id = store.create_event(
                &NewEvent {
                    title,
                    starts_at: json::parse_time(&starts)?,
                    ends_at: ends.as_deref().map(json::parse_time).transpose()?,
                    place,
                    capacity,
                },
                now(),
            )?;
            println!("{id}");
        }
        EventCommand::List { json } => {
            let rows: Vec<json::EventLine> =
                store.list_events()?.into_iter().map(Into::into).collect();
            if json {
                return print_json(&rows);
            }
            for e in rows {
                let cap = e.capacity.map_or("no limit".to_owned(), |c| c.to_string());
                println!(
                    "{}  {}  {:<30} {} registered, {} waitlisted, {} checked in (capacity {cap})",
                    e.id, e.starts_at, e.title, e.registered, e.waitlisted, e.checked_in
                );
            }
        }
        EventCommand::Publish { event, closes, ask } => {
            let closes_at = closes.as_deref().map(json::parse_time).transpose()?;
            let page = store.publish_event(&event, closes_at, &ask, now())?;
            let e = store.event(&event)?;
            match store.setting(muster_core::client::URL_SETTING)? {
                Some(url) => println!("{}", muster_core::client::page_url(&url, &page.slug)),
                None => println!("/r/{}", page.slug),
            }
            let closes_at = page.closes_at.unwrap_or(e.starts_at);
            println!(
                "registrations close {}; the page asks for the name and: {}",
                json::time(closes_at),
                page.asks.join(", ")
            );
            match store.setting(muster_core::client::URL_SETTING)? {
                Some(_) => println!("the page opens on the relay at the next `muster sync`"),
                None => println!(
                    "this device is not enrolled: the page opens on the relay this store syncs with, at its next sync"
                ),
            }
        }
        EventCommand::Unpublish { event } => {
            if store.unpublish_event(&event, now())? {
                println!(
                    "unpublished: the page says registrations are closed after the next `muster sync`"
                );
            } else {
                println!("the page was not open: nothing changed");
            }
        }
    }
    Ok(())
}

fn roster(store: &Store, event: &str, status: Option<&str>, json: bool) -> Result<()> {
    let status = match status {
        None => None,
        Some(s) => Some(SignupStatus::parse(s).with_context(|| {
            format!("--status {s:?}: one of registered, waitlisted, checked_in, cancelled, no_show")
        })?),
    };
    let rows: Vec<json::RosterJson> = store
        .roster(event, status)?
        .into_iter()
        .map(Into::into)
        .collect();
    if json {
        return print_json(&rows);
    }
    println!(
        "{:<34} {:<26} {:<11} {:<25} waitlist",
        "contact", "name", "status", "registered"
    );
    for r in rows {
        println!(
            "{:<34} {:<26} {:<11} {:<25} {}",
            r.contact_id,
            r.name.unwrap_or_else(|| "(not on this device)".into()),
            r.status,
            r.registered_at,
            r.waitlist_position.map_or(String::new(), |p| p.to_string())
        );
    }
    Ok(())
}
