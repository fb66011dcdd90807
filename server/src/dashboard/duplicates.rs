//! The duplicate review queue: the cached candidate list, its background
//! recomputation, and the merge, unmerge and "not a duplicate" actions.
//!
//! Finding candidates reads every contact's keys (about 6 s at 100,000
//! contacts), too slow for a page load. The list is computed on a thread of
//! its own, over a read-only connection to the dashboard's store (so it
//! never holds the device's store lock), at start and again whenever
//! contacts changed, and the page shows the last list with the time it was
//! computed. Actions taken on the page update the cached list at once (a
//! merged pair leaves the queue) and ask for a recomputation.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query};
use axum::response::{IntoResponse, Response};
use muster_core::Store;
use muster_core::store::DuplicatePair;
use serde::Deserialize;

use super::auth::{Coordinator, form_or_400};
use maud::{Markup, html};

use super::html::{self, Script, Section, time};
use super::pages::{contact_id, ok_page, pager, unmerge_form};
use super::{DashboardError, blocking, now_ms};

/// Pairs shown per page of the queue.
pub const PAGE_SIZE: usize = 100;
/// Merged contacts listed under the queue.
const MERGED_SHOWN: usize = 200;
/// How long contacts must stay quiet before a recomputation starts, so a
/// burst of changes (a first sync) costs one run, not one per batch.
const SETTLE: Duration = Duration::from_millis(300);
/// The longest a recomputation waits for changes to settle.
const MAX_SETTLE: Duration = Duration::from_secs(10);

/// One computed candidate list.
#[derive(Debug, Clone)]
pub struct Computed {
    /// The pairs, best first.
    pub pairs: Vec<DuplicatePair>,
    /// When the computation started (its data is as of then).
    pub computed_at: i64,
    /// How long it took.
    pub took: Duration,
    /// Which run this is, from 1.
    pub run: u64,
}

#[derive(Debug, Default)]
struct State {
    dirty: bool,
    stop: bool,
    computing: bool,
    /// Decisions taken on the page since the running computation started
    /// (it may not see them): applied again to its result.
    decided: Vec<(Instant, Decision)>,
    runs: u64,
    result: Option<Computed>,
    error: Option<String>,
}

/// A decision that takes pairs out of the queue.
#[derive(Debug, Clone)]
pub enum Decision {
    /// This contact was merged into another: no pair with it is left.
    Merged(String),
    /// These two are not the same person.
    NotDuplicate(String, String),
}

impl Decision {
    fn keeps(&self, p: &DuplicatePair) -> bool {
        match self {
            Decision::Merged(id) => p.a != *id && p.b != *id,
            Decision::NotDuplicate(a, b) => !((p.a == *a && p.b == *b) || (p.a == *b && p.b == *a)),
        }
    }
}

/// The cached candidate list and its worker thread.
#[derive(Debug, Default)]
pub struct Cache {
    state: Mutex<State>,
    wake: Condvar,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the worker over the store at `path` (opened read-only for
    /// this purpose, with `key` if encrypted); the first list is computed
    /// at once.
    pub fn start(path: PathBuf, key: Option<[u8; 32]>) -> Arc<Cache> {
        let cache = Arc::new(Cache::default());
        cache.lock().dirty = true;
        let worker = cache.clone();
        let spawned = std::thread::Builder::new()
            .name("muster-duplicates".into())
            .spawn(move || worker.work(&path, key));
        if let Err(e) = spawned {
            cache.lock().error = Some(format!("cannot start the duplicate finder: {e}"));
        }
        cache
    }

    fn work(&self, path: &std::path::Path, key: Option<[u8; 32]>) {
        let mut store: Option<Store> = None;
        loop {
            {
                let mut st = self.lock();
                while !st.dirty && !st.stop {
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.stop {
                    return;
                }
            }
            // Let a burst of changes settle (but not forever: a list at
            // most MAX_SETTLE old is better than none).
            let asked = Instant::now();
            loop {
                std::thread::sleep(SETTLE);
                let mut st = self.lock();
                if st.stop {
                    return;
                }
                let more = std::mem::take(&mut st.dirty);
                // Nothing to show yet: compute now rather than wait.
                if !more || st.result.is_none() || asked.elapsed() >= MAX_SETTLE {
                    break;
                }
            }
            let started = Instant::now();
            self.lock().computing = true;
            let computed_at = now_ms();
            let result = (|| {
                if store.is_none() {
                    store = Some(match key {
                        Some(k) => Store::open_encrypted(path, &k)?,
                        None => Store::open(path)?,
                    });
                }
                match &store {
                    Some(s) => s.duplicate_candidates(),
                    None => Ok(Vec::new()),
                }
            })();
            let mut st = self.lock();
            st.computing = false;
            match result {
                Ok(mut pairs) => {
                    // What was decided while this ran may be missing from it.
                    for (_, d) in st.decided.iter().filter(|(at, _)| *at >= started) {
                        pairs.retain(|p| d.keeps(p));
                    }
                    st.decided.retain(|(at, _)| *at >= started);
                    st.runs += 1;
                    st.error = None;
                    let run = st.runs;
                    tracing::debug!(pairs = pairs.len(), took = ?started.elapsed(), "duplicate candidates computed");
                    st.result = Some(Computed {
                        pairs,
                        computed_at,
                        took: started.elapsed(),
                        run,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the dashboard could not compute duplicate candidates");
                    st.error = Some(e.to_string());
                    store = None;
                }
            }
        }
    }

    /// Contacts changed: compute the list again soon.
    pub fn mark_dirty(&self) {
        self.lock().dirty = true;
        self.wake.notify_all();
    }

    /// Ends the worker (the dashboard is closing).
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }

    /// Pairs waiting for review, once a list has been computed.
    pub fn pending(&self) -> Option<usize> {
        self.lock().result.as_ref().map(|r| r.pairs.len())
    }

    /// Takes pairs out of the cached list at once (a contact just merged,
    /// a pair marked not a duplicate), and out of the result of a
    /// computation already running; then asks for a new one.
    pub fn decided(&self, decision: Decision) {
        let mut st = self.lock();
        if let Some(r) = &mut st.result {
            r.pairs.retain(|p| decision.keeps(p));
        }
        st.decided.push((Instant::now(), decision));
        st.dirty = true;
        drop(st);
        self.wake.notify_all();
    }

    /// A page of the list (or `None` before the first run), whether a
    /// newer one is coming, and the last error.
    fn view(&self, offset: usize) -> (Option<(Computed, usize)>, bool, Option<String>) {
        let st = self.lock();
        let view = st.result.as_ref().map(|r| {
            (
                Computed {
                    pairs: r
                        .pairs
                        .iter()
                        .skip(offset)
                        .take(PAGE_SIZE)
                        .cloned()
                        .collect(),
                    computed_at: r.computed_at,
                    took: r.took,
                    run: r.run,
                },
                r.pairs.len(),
            )
        });
        (view, st.dirty || st.computing, st.error.clone())
    }

    fn state_json(&self) -> serde_json::Value {
        let st = self.lock();
        serde_json::json!({
            "run": st.result.as_ref().map_or(0, |r| r.run),
            "pending": st.result.as_ref().map(|r| r.pairs.len()),
            "computing": st.dirty || st.computing,
        })
    }
}

/// The queue page's query.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    offset: Option<usize>,
    /// A contact just merged (the page says so, with an undo button).
    #[serde(default)]
    merged: Option<String>,
}

/// `GET /duplicates`: the review queue and the merged contacts.
pub async fn page(who: Coordinator, query: Result<Query<PageQuery>, QueryRejection>) -> Response {
    let Ok(Query(query)) = query else {
        return DashboardError::BadRequest(
            "This address has a malformed query; open the duplicates page from the menu.".into(),
        )
        .into_response();
    };
    let offset = query.offset.unwrap_or(0);
    let dash = who.dash.clone();
    let merged_note = query.merged.filter(|m| contact_id(m).is_ok());
    let data = blocking(&dash, move |d| {
        d.device()
            .read(|s| {
                let merged = s.merged_contacts(MERGED_SHOWN, 0)?;
                let merged_total = s.merged_contact_count()?;
                let contacts = s.contact_count()?;
                // The note after a merge; nothing if the contact is gone or
                // was unmerged since.
                let note = match merged_note.as_deref().map(|id| s.contact(id)) {
                    Some(Ok(c)) => c.merged_into.as_ref().map(|into| {
                        let kept = s.contact(into).map_or_else(|_| into.clone(), |k| k.name);
                        (c.id.clone(), c.name.clone(), kept)
                    }),
                    _ => None,
                };
                Ok((merged, merged_total, contacts, note))
            })
            .map_err(DashboardError::from)
    })
    .await;
    let (merged, merged_total, contacts, note) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let (view, recomputing, error) = who.dash.duplicates.view(offset);
    let csrf = who.csrf.as_str();
    let run = view.as_ref().map_or(0, |(c, _)| c.run);
    let body = html! {
        h1 { "Duplicates" }
        @if let Some((id, name, into)) = &note {
            div class="notice" role="status" {
                "Merged " strong { (name) } " into " strong { (into) } ". "
                (unmerge_form(id, csrf, true, true, "link", "Undo"))
            }
        }
        @if let Some(e) = &error {
            p class="error" role="alert" { "The last search for duplicates failed: " (e) }
        }
        @match &view {
            None => {
                p class="notice" role="status" {
                    "Looking for duplicates among the contacts… this page reloads when the list is ready."
                }
            },
            Some((computed, total)) => {
                p class="sub" id="dup-status" {
                    (html::plural(*total, "pair", "pairs")) " to review among " (html::count(contacts)) " contacts · list computed "
                    (time(computed.computed_at)) " in " (format!("{:.1}", computed.took.as_secs_f64())) " s"
                    @if recomputing { " · contacts changed since; recomputing" }
                }
                p class="notice hidden" id="dup-newer" role="status" {
                    "Contacts changed: a newer list is ready. " a href="/duplicates" { "Refresh" }
                }
                @if computed.pairs.is_empty() {
                    p class="empty" { "No likely duplicates. 🎉" }
                } @else {
                    ul class="pairs" id="pairs" { @for p in &computed.pairs { (pair_item(p, csrf)) } }
                }
                (pager("/duplicates", offset, PAGE_SIZE, *total))
            },
        }
        h2 id="merged" { "Merged contacts " span class="sub" { "(" (html::count(merged_total)) ")" } }
        @if merged.is_empty() {
            p class="empty" { "No contact has been merged." }
        } @else {
            div class="table-wrap" { table class="merged" {
                thead { tr { th { "Duplicate" } th { "Merged into" } th {} } }
                tbody { @for m in &merged { tr data-id=(m.id) {
                    td { a href={ "/contacts/" (m.id) } { (m.name) } }
                    td { a href={ "/contacts/" (m.merged_into) } { (m.kept_name.as_deref().unwrap_or(&m.merged_into)) } }
                    td class="actions" { (unmerge_form(&m.id, csrf, true, false, "secondary", "Unmerge")) }
                } } }
            } }
            @if merged_total as usize > merged.len() {
                p class="sub" { "Showing the first " (merged.len()) " by name; open a contact to unmerge others." }
            }
        }
    };
    ok_page(
        &who,
        Section::Duplicates,
        "Duplicates",
        Script::Duplicates { run },
        body,
    )
    .await
}

fn pair_item(p: &DuplicatePair, csrf: &str) -> Markup {
    let merge = |keep: &str, dup: &str, label: &str, class: &str| {
        html! {
            form method="post" action="/duplicates/merge" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="keep" value=(keep);
                input type="hidden" name="duplicate" value=(dup);
                button type="submit" class=(class) { (label) }
            }
        }
    };
    html! {
        li class="pair" data-a=(p.a) data-b=(p.b) {
            div class="who" {
                div class="side" { span class="tag" { "A" } " " a href={ "/contacts/" (p.a) } { (p.a_name) } }
                div class="side" { span class="tag" { "B" } " " a href={ "/contacts/" (p.b) } { (p.b_name) } }
            }
            div class="why" {
                span class="score" title="how likely the two are one person" { (format!("{:.0}%", p.score * 100.0)) }
                ul class="reasons" { @for r in &p.reasons { li { (r) } } }
            }
            div class="actions" {
                (merge(&p.a, &p.b, "Merge (keep A)", "primary"))
                (merge(&p.b, &p.a, "Merge (keep B)", ""))
                form method="post" action="/duplicates/not-duplicate" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="a" value=(p.a);
                    input type="hidden" name="b" value=(p.b);
                    button type="submit" class="secondary" { "Not a duplicate" }
                }
            }
        }
    }
}

/// `GET /api/duplicates`: which list the cache holds, for the page's script.
pub async fn state_json(who: Coordinator) -> Response {
    html::json(who.dash.duplicates.state_json())
}

/// The merge form.
#[derive(Debug, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    keep: String,
    #[serde(default)]
    duplicate: String,
}

/// `POST /duplicates/merge`: merges `duplicate` into `keep`.
pub async fn merge(who: Coordinator, form: Result<Form<MergeForm>, FormRejection>) -> Response {
    let result = async {
        let form = form_or_400(form)?;
        who.check_csrf(form.csrf.as_deref())?;
        let keep = contact_id(&form.keep)?.to_owned();
        let duplicate = contact_id(&form.duplicate)?.to_owned();
        let dup = duplicate.clone();
        blocking(&who.dash, move |d| {
            d.device()
                .write(|s, now| s.merge_contacts(&keep, &dup, now))?;
            tracing::info!(keep = %keep, duplicate = %dup, "dashboard: contacts merged");
            d.duplicates.decided(Decision::Merged(dup.clone()));
            Ok(())
        })
        .await?;
        Ok::<_, DashboardError>(html::see_other(&format!(
            "/duplicates?merged={}",
            html::url_param(&duplicate)
        )))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The "not a duplicate" form.
#[derive(Debug, Deserialize)]
pub struct PairForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

/// `POST /duplicates/not-duplicate`: records that two contacts are two
/// people; the pair is never proposed again.
pub async fn not_duplicate(
    who: Coordinator,
    form: Result<Form<PairForm>, FormRejection>,
) -> Response {
    let result = async {
        let form = form_or_400(form)?;
        who.check_csrf(form.csrf.as_deref())?;
        let a = contact_id(&form.a)?.to_owned();
        let b = contact_id(&form.b)?.to_owned();
        blocking(&who.dash, move |d| {
            d.device()
                .write(|s, now| s.mark_not_duplicate(&a, &b, now))?;
            d.duplicates
                .decided(Decision::NotDuplicate(a.clone(), b.clone()));
            Ok(())
        })
        .await?;
        Ok::<_, DashboardError>(html::see_other("/duplicates"))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The unmerge form: where to go back to.
#[derive(Debug, Deserialize)]
pub struct UnmergeForm {
    #[serde(default)]
    csrf: Option<String>,
    /// `duplicates` to return to the queue; the contact's page otherwise.
    #[serde(default)]
    back: Option<String>,
}

/// `POST /contacts/{id}/unmerge`: the duplicate is a contact of its own
/// again, as it was before the merge.
pub async fn unmerge(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    form: Result<Form<UnmergeForm>, FormRejection>,
) -> Response {
    let result = async {
        let form = form_or_400(form)?;
        who.check_csrf(form.csrf.as_deref())?;
        let Ok(Path(id)) = id else {
            return Err(DashboardError::NotFound("No such contact.".into()));
        };
        let id = contact_id(&id)?.to_owned();
        let dup = id.clone();
        blocking(&who.dash, move |d| {
            d.device().write(|s, now| s.unmerge_contact(&dup, now))?;
            tracing::info!(contact = %dup, "dashboard: contact unmerged");
            d.duplicates.mark_dirty();
            Ok(())
        })
        .await?;
        Ok(html::see_other(
            match form.back.as_deref() {
                Some("duplicates") => "/duplicates#merged".to_owned(),
                _ => format!("/contacts/{id}"),
            }
            .as_str(),
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
