//! An event's public registration page under load (issue 17): a relay with
//! its dashboard on and its default settings, an event a desk published,
//! then people registering through the page, each opening it and sending
//! the form as a browser does, from many loopback addresses (the page
//! takes at most 10 forms per address in 10 minutes), a few at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use muster_core::model::now_ms;
use muster_core::{NewEvent, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sync_figures::{Figure, fig};

/// Distinct loopback addresses the people come from (127.0.0.2 on).
const ADDRESSES: usize = 250;
/// People registering at once.
const AT_ONCE: usize = 8;
/// The whole load stops after this, finished or not.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// One request from `local` (a loopback address) over a fresh connection:
/// the status, the response, and the time to its first byte.
async fn request(
    addr: std::net::SocketAddr,
    local: std::net::Ipv4Addr,
    text: String,
) -> Result<(u16, String, Duration)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(local.into(), 0))?;
    let mut s = socket.connect(addr).await?;
    let t = Instant::now();
    s.write_all(text.as_bytes()).await?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await?;
    let ttfb = t.elapsed();
    let mut raw = first.to_vec();
    s.read_to_end(&mut raw).await?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("a response without a status")?;
    Ok((status, raw, ttfb))
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

fn post(addr: std::net::SocketAddr, path: &str, cookie: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The form's cookie and the value of its `form` field, from the page.
fn form_of(page: &str) -> Result<(String, String)> {
    let cookie = page
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .context("the page set no cookie")?
        .to_owned();
    let at = page
        .find("name=\"form\" value=\"")
        .context("no form field")?
        + 19;
    let end = page[at..].find('"').context("a broken form field")?;
    Ok((cookie, page[at..at + end].to_owned()))
}

/// The figures for `n` people registering (at most 10 per address).
pub fn registration_figures(dir: &Path, n: usize) -> Result<Vec<Figure>> {
    anyhow::ensure!(n <= ADDRESSES * 10, "at most {} people", ADDRESSES * 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(figures(dir, n))
}

async fn figures(dir: &Path, n: usize) -> Result<Vec<Figure>> {
    let state = muster_server::AppState::open(&dir.join("relay"))?;
    state.enable_dashboard(None)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let state = state.clone();
        async move {
            muster_server::run_with_limits(
                listener,
                state,
                muster_server::Limits::default(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
        }
    });

    // A desk publishes an event without a capacity and syncs it.
    let (_, token) = state
        .storage()
        .create_token("coordinator", "bench desk", &[], now_ms())?;
    let mut desk = Store::open(dir.join("desk.muster"))?;
    let now = now_ms();
    let event = desk.create_event(
        &NewEvent::new("Food drive", now + 7 * 86_400_000, "Community hall", None),
        now,
    )?;
    let page = desk.publish_event(&event, None, &[], now)?;
    let url = format!("ws://{addr}/v1/sync");
    muster_core::client::sync_once(&mut desk, &url, &token, &now_ms, &mut |_| {}).await?;
    let path = format!("/r/{}", page.slug);
    let local = |i: usize| std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % ADDRESSES) as u8);
    let opened = Instant::now();
    while request(addr, local(0), get(addr, &path)).await?.0 != 200 {
        if opened.elapsed() > Duration::from_secs(30) {
            bail!("the relay never served the page");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Time to first byte of the page, one request at a time.
    let mut ttfb = Vec::new();
    for i in 0..200 {
        let (status, _, t) = request(addr, local(i), get(addr, &path)).await?;
        anyhow::ensure!(status == 200, "the page answered {status}");
        ttfb.push(t.as_secs_f64() * 1000.0);
    }
    ttfb.sort_by(f64::total_cmp);

    // The load: AT_ONCE workers, each person opening the page and sending it.
    eprintln!("registrations: {n} people through the page, {AT_ONCE} at a time");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..AT_ONCE {
        let (next, path) = (next.clone(), path.clone());
        workers.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= n || start.elapsed() > TIME_LIMIT {
                    return Ok::<_, anyhow::Error>(done);
                }
                let (_, page, _) = request(addr, local(i), get(addr, &path)).await?;
                let (cookie, nonce) = form_of(&page)?;
                let body = format!("form={nonce}&name=Person+{i}&email=person{i}%40example.org");
                let (status, answer, _) =
                    request(addr, local(i), post(addr, &path, &cookie, &body)).await?;
                if status != 200 || !answer.contains("You are registered") {
                    bail!("registration {i} answered {status}");
                }
                done += 1;
            }
        }));
    }
    let mut registered = 0;
    for w in workers {
        registered += w.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let held = state
        .dashboard()
        .context("the dashboard stopped")?
        .device()
        .read(|s| s.contact_count())?;
    anyhow::ensure!(
        held as usize == registered,
        "{registered} registrations answered, {held} contacts held"
    );
    let _ = stop.send(());
    let _ = server.await;
    let pct = |p: f64| ttfb[((ttfb.len() - 1) as f64 * p).round() as usize];
    Ok(vec![
        fig(
            format!(
                "registrations through the public page ({registered} people from {ADDRESSES} loopback addresses, {AT_ONCE} at a time; each opens the page, then sends it)"
            ),
            format!("{:.0}", registered as f64 / secs),
            "per s",
            "",
        ),
        fig(
            "public page time to first byte p50 / p99 (200 requests, one at a time)",
            format!("{:.2} / {:.2}", pct(0.5), pct(0.99)),
            "ms",
            "",
        ),
    ])
}
