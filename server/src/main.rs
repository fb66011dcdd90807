//! `muster-server`: the relay's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "muster-server", version, about = "The Muster relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Manage device tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
    /// List tokens (never their secrets).
    List {
        /// The relay's data directory.
        #[arg(long, default_value = "./muster-data")]
        data: PathBuf,
    },
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { data, listen } => serve(data, listen),
        Command::Token { command } => match command {
            TokenCommand::Create { role, name, data } => {
                let storage = muster_server::SqliteRelay::open(&data)?;
                let (_id, secret) = storage.create_token(&role, &name, now_ms())?;
                println!("{secret}");
                Ok(())
            }
            TokenCommand::List { data } => {
                let storage = muster_server::SqliteRelay::open(&data)?;
                println!(
                    "{:<14} {:<12} {:<20} {:<14} {:<14} revoked",
                    "id", "role", "label", "created", "last seen"
                );
                for t in storage.list_tokens()? {
                    println!(
                        "{:<14} {:<12} {:<20} {:<14} {:<14} {}",
                        t.id,
                        t.role,
                        t.label,
                        t.created_at,
                        t.last_seen_at.map_or("never".into(), |v| v.to_string()),
                        t.revoked_at.map_or("no".into(), |v| v.to_string())
                    );
                }
                Ok(())
            }
        },
    }
}

fn serve(data: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = muster_server::AppState::open(&data)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(data = %data.display(), "muster-server listening on http://{addr}");
        muster_server::run(listener, state, shutdown_signal()).await?;
        tracing::info!("muster-server stopped cleanly");
        Ok(())
    })
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
