//! `muster-server`: the relay's command line.

use muster_core::model::now_ms;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use muster_core::sync::storage::Author;

#[derive(Parser)]
#[command(name = "muster-server", version, about = "The Muster relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The relay's data is encrypted with the key in this file: 64 hex
    /// digits (`openssl rand -hex 32`). Give it to every command that opens
    /// that data directory; without it an encrypted directory is refused.
    #[arg(long, global = true, env = "MUSTER_DATA_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Keep the relay's data in PostgreSQL instead of SQLite in `--data`:
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`. Any number of relay
    /// processes may serve one organisation from one database (each with a
    /// `--data` directory of its own, for its dashboard). Give it to every
    /// command that opens that relay's data.
    #[arg(long, global = true, env = "MUSTER_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the relay until SIGTERM or Ctrl-C.
    Serve {
        /// Where the relay keeps its data (SQLite, the embedded default).
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
        /// Address to listen on. Put TLS in front (a reverse proxy) before
        /// exposing it beyond this machine.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
        /// Do not serve the coordinators' web dashboard at `/` (nor keep
        /// its replica, `dashboard.muster` in the data directory, in sync).
        #[arg(long)]
        no_dashboard: bool,
        /// Open connections at most, WebSockets included; past it a new
        /// connection gets `503 Service Unavailable` and is closed. Lowered
        /// at startup if the open-file limit (`ulimit -n`) is too low.
        #[arg(long, value_name = "N",
              default_value_t = muster_server::listener::MAX_CONNECTIONS,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        max_connections: usize,
        /// Seconds a connection has to send a complete request head (from
        /// when it opened or its previous response ended) before it is
        /// closed. Established WebSockets are not affected.
        #[arg(long, value_name = "SECS",
              default_value_t = muster_server::listener::REQUEST_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        request_timeout: u64,
        /// Catch-up batches read and sent at once over all devices (each up
        /// to about 1 MiB): what bounds the relay's memory when many fresh
        /// devices sync at the same moment; the others wait their turn.
        #[arg(long, value_name = "N",
              default_value_t = muster_server::listener::CATCH_UP_BATCHES,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        catch_up_batches: usize,
        /// The size a catch-up batch aims at, in KiB (at most 1024, the
        /// protocol's). Every connection keeps a buffer as large as the
        /// largest frame it was sent while it stays open.
        #[arg(long, value_name = "KIB",
              default_value_t = (muster_server::listener::CATCH_UP_BATCH_BYTES >> 10) as u64,
              value_parser = clap::value_parser!(u64).range(16..=1024))]
        catch_up_batch_kib: u64,
        /// A reverse proxy (an address such as 127.0.0.1, or a network such
        /// as 10.0.0.0/8) whose `X-Forwarded-For` header names the client;
        /// repeat for several. The failed-login limit then counts per client,
        /// not per proxy. Trust only proxies you run: a client can write
        /// that header itself.
        #[arg(long = "trusted-proxy", value_name = "ADDR", value_parser = parse_proxy)]
        trusted_proxies: Vec<ipnet::IpNet>,
    },
    /// Manage device tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Who entered what: every log entry (or one record's) with the device
    /// and token that pushed it.
    Audit {
        /// Only this record.
        #[arg(long)]
        doc: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// Erase a contact and its private ledger (right to be forgotten):
    /// devices delete it at their next sync. Coordinators can also do this
    /// from `muster erase`.
    Erase {
        /// The contact's id (`c_…`).
        contact: String,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// Copy a SQLite relay into an empty PostgreSQL database (outgrowing
    /// one machine): the log with its hashes and epoch, snapshots, tokens,
    /// scopes, the visibility log, erasures and devices, so that enrolled
    /// devices carry on without a first sync. Stop the relay first; then
    /// serve with `--database`.
    Migrate {
        /// The SQLite relay's data directory (what `serve --data` used).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The empty PostgreSQL database: postgres://USER@HOST:PORT/DATABASE.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (one line on stdout). Shown once: only
    /// its hash is stored.
    Create {
        /// coordinator, volunteer or observer.
        #[arg(long)]
        role: String,
        /// A label to recognise the device by ("desk 2", "Ana's phone").
        #[arg(long, default_value = "")]
        name: String,
        /// For a volunteer token: an event it covers (repeat for several).
        #[arg(long = "event")]
        events: Vec<String>,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// List tokens: id, role, label, events, created, last seen (never
    /// their secrets).
    List {
        /// One JSON object per token.
        #[arg(long)]
        json: bool,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// Revoke a token (a lost phone): its devices are cut off at once and
    /// refused from then on.
    Revoke {
        /// The token's id (`tok_…`, from `token list`).
        id: String,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// Change the events a volunteer token covers (replaces them).
    Update {
        /// The token's id.
        id: String,
        /// An event it covers (repeat for several).
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let key = match &cli.key_file {
        Some(file) => Some(muster_server::key_file::read_key_file(file)?),
        None => None,
    };
    let database = cli.database;
    match cli.command {
        Command::Serve {
            data,
            listen,
            no_dashboard,
            max_connections,
            request_timeout,
            catch_up_batches,
            catch_up_batch_kib,
            trusted_proxies,
        } => {
            let limits = muster_server::Limits {
                max_connections,
                request_timeout: std::time::Duration::from_secs(request_timeout),
                catch_up_batches,
                catch_up_batch_bytes: (catch_up_batch_kib as usize) << 10,
            };
            serve(
                data,
                database,
                listen,
                key,
                !no_dashboard,
                limits,
                trusted_proxies,
            )
        }
        Command::Token { command } => match command {
            TokenCommand::Create {
                role,
                name,
                events,
                data,
            } => {
                let storage = open_backend(&data, &database, &key)?.storage;
                let (id, secret) = storage.create_token(&role, &name, &events, now_ms())?;
                eprintln!("token {id} ({role}) created; the secret below is shown once");
                println!("{secret}");
                Ok(())
            }
            TokenCommand::List { json, data } => {
                let storage = open_backend(&data, &database, &key)?.storage;
                let tokens = storage.list_tokens()?;
                if json {
                    for t in tokens {
                        println!(
                            "{}",
                            serde_json::json!({
                                "id": t.id,
                                "role": t.role,
                                "label": t.label,
                                "events": t.events,
                                "created_at": rfc3339(t.created_at),
                                "last_seen_at": t.last_seen_at.map(rfc3339),
                                "last_device": t.last_device,
                                "revoked_at": t.revoked_at.map(rfc3339),
                            })
                        );
                    }
                    return Ok(());
                }
                println!(
                    "{:<20} {:<12} {:<20} {:<21} {:<21} {:<21} events",
                    "id", "role", "label", "created", "last seen", "revoked"
                );
                for t in tokens {
                    println!(
                        "{:<20} {:<12} {:<20} {:<21} {:<21} {:<21} {}",
                        t.id,
                        t.role,
                        t.label,
                        rfc3339(t.created_at),
                        t.last_seen_at.map_or("never".into(), rfc3339),
                        t.revoked_at.map_or("no".into(), rfc3339),
                        if t.events.is_empty() {
                            "all".to_owned()
                        } else {
                            t.events.join(" ")
                        }
                    );
                }
                Ok(())
            }
            TokenCommand::Revoke { id, data } => {
                let storage = open_backend(&data, &database, &key)?.storage;
                if storage.revoke_token(&id, now_ms())? {
                    println!("revoked {id}; its devices are disconnected and refused");
                } else {
                    println!("{id} was already revoked");
                }
                Ok(())
            }
            TokenCommand::Update { id, events, data } => {
                let storage = open_backend(&data, &database, &key)?.storage;
                storage.set_token_events(&id, &events)?;
                println!("{id} now covers {}", events.join(" "));
                Ok(())
            }
        },
        Command::Audit { doc, json, data } => {
            let storage = open_backend(&data, &database, &key)?.storage;
            for e in storage.audit(doc.as_deref())? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "seq": e.seq,
                            "doc": e.doc,
                            "device": e.device,
                            "token_id": e.token_id,
                            "label": e.label,
                            "role": e.role,
                            "received_at": rfc3339(e.received_at),
                            "erased": e.erased,
                        })
                    );
                } else {
                    println!(
                        "{:>8} {} {} {} {} ({}){}",
                        e.seq,
                        rfc3339(e.received_at),
                        e.doc,
                        e.device,
                        e.label,
                        e.role,
                        if e.erased { " [erased]" } else { "" }
                    );
                }
            }
            Ok(())
        }
        Command::Migrate { from, to } => {
            let done = muster_server::migrate::migrate(&from, key.as_ref(), &to)?;
            for (table, rows) in &done.rows {
                println!("{table:<14} {rows:>10} rows");
            }
            println!(
                "migrated {} into PostgreSQL: log at {} (visibility log at {}), epoch {}; \
                 devices carry on with their cursors. Serve with --database now.",
                from.display(),
                done.head.seq,
                done.head.vis,
                done.epoch
            );
            Ok(())
        }
        Command::Erase { contact, data } => {
            let storage = open_backend(&data, &database, &key)?.storage;
            storage.erase(&contact, &Author::admin(), now_ms())?;
            if let Some(url) = &database {
                // PostgreSQL keeps old row versions until VACUUM.
                muster_server::PgRelay::open(url)?.vacuum()?;
            }
            println!("erased {contact}; devices delete it at their next sync");
            Ok(())
        }
    }
}

/// The relay's storage as the admin commands open it: PostgreSQL with
/// `--database`, SQLite in `--data` without.
fn open_backend(
    data: &std::path::Path,
    database: &Option<String>,
    key: &Option<[u8; 32]>,
) -> anyhow::Result<muster_server::backend::Backend> {
    Ok(muster_server::backend::Backend::open(
        data,
        database.as_deref(),
        key.as_ref(),
    )?)
}

/// Milliseconds since the epoch as an RFC 3339 time (UTC).
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn serve(
    data: PathBuf,
    database: Option<String>,
    listen: SocketAddr,
    key: Option<[u8; 32]>,
    dashboard: bool,
    limits: muster_server::Limits,
    trusted_proxies: Vec<ipnet::IpNet>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = tokio::task::block_in_place(|| {
            muster_server::AppState::open_with(&data, database.as_deref(), key.as_ref())
        })?;
        state.trust_proxies(trusted_proxies);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        // The first line on stderr, which scripts wait for.
        match state.database() {
            Some(db) => tracing::info!(data = %data.display(), database = %db, "muster-server listening on http://{addr}"),
            None => tracing::info!(data = %data.display(), "muster-server listening on http://{addr}"),
        }
        if dashboard {
            match state.enable_dashboard(key.as_ref()) {
                Ok(()) => tracing::info!(
                    "coordinators' dashboard at http://{addr}/ (log in with a coordinator token)"
                ),
                // Devices are served all the same; the dashboard's pages say why.
                Err(e) => tracing::error!(error = %e, "the coordinators' dashboard is unavailable"),
            }
        }
        muster_server::run_with_limits(listener, state, limits, shutdown_signal()).await?;
        tracing::info!("muster-server stopped cleanly");
        Ok(())
    })
}

/// `--trusted-proxy`: a network (`10.0.0.0/8`) or one address.
fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address (127.0.0.1) or a network (10.0.0.0/8)"))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing sessions");
}
