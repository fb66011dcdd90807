//! The one error type of the core layer.
//!
//! Every fallible call in `muster-core` returns [`Error`]. Each variant says
//! what went wrong in words a coordinator or an app developer can act on; the
//! bindings and the relay map these onto their own, smaller error sets.

use std::path::PathBuf;

/// Why a core call failed. A call that returns an error has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the user breaks a rule of the record (an email with
    /// no `@`, an empty name, a field over its size limit…).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as the user knows it (`email`, `name`, `notes`…).
        field: &'static str,
        /// What is wrong with the value, in plain words.
        reason: String,
        /// The value refused, where one entry of a list was (which of a
        /// contact's emails or phones), so an app can mark that one.
        value: Option<String>,
    },

    /// No record of that kind has that id on this device.
    #[error("{}", not_found(.kind, .id))]
    NotFound {
        /// The kind of record looked for (`contact`, `event`…).
        kind: &'static str,
        /// The id that was not found.
        id: String,
    },

    /// The operation is not allowed in the record's current state (for
    /// example checking in someone who never signed up).
    #[error("{0}")]
    NotAllowed(String),

    /// The file exists but is not a SQLite database, or its pages are damaged.
    #[error(
        "the store at {path} is damaged or is not a database ({detail}); restore it from a backup or re-enroll the device"
    )]
    Corrupt {
        /// The file that was opened.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },

    /// The file is a SQLite database, but one written by another program.
    #[error(
        "the file at {path} is a database of another application, not a Muster store; choose another path"
    )]
    ForeignDatabase {
        /// The file that was opened.
        path: PathBuf,
    },

    /// The store was written by a newer Muster whose schema this build does
    /// not know; opening it could damage it, so it is left untouched.
    #[error(
        "the store at {path} has schema version {found}, newer than the {supported} this build knows; update the app"
    )]
    NewerSchema {
        /// The file that was opened.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build supports.
        supported: i64,
    },

    /// The file looks encrypted and was opened without a key
    /// ([`crate::Store::open`] instead of [`crate::Store::open_encrypted`]).
    /// It is left untouched.
    #[error(
        "the store at {path} is encrypted: open it with its encryption key (if it was never a Muster store, choose another path)"
    )]
    KeyRequired {
        /// The file that was opened.
        path: PathBuf,
    },

    /// The key given to [`crate::Store::open_encrypted`] does not decrypt
    /// the file. It is left untouched.
    #[error("cannot open {path}: the encryption key is wrong, or the file is not a Muster store")]
    WrongKey {
        /// The file that was opened.
        path: PathBuf,
    },

    /// A key was given, but the store is a plain (unencrypted) database; it
    /// is not used unencrypted, and is left untouched.
    #[error(
        "the store at {path} is not encrypted, but a key was given; open it without a key, or choose another path for an encrypted store"
    )]
    NotEncrypted {
        /// The file that was opened.
        path: PathBuf,
    },

    /// Bytes that should hold an Automerge document or change do not.
    #[error("document {doc_id} cannot be decoded: {detail}")]
    BadDocument {
        /// The document concerned.
        doc_id: String,
        /// What the decoder reported.
        detail: String,
    },

    /// The database reported an error (disk full, file locked, I/O error…).
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),

    /// The relay ended the session with an error (PROTOCOL.md §6).
    #[error("the relay refused: {message}")]
    Relay {
        /// The protocol error code.
        code: u16,
        /// The relay's words.
        message: String,
    },

    /// The other side of a sync session broke the protocol (a malformed or
    /// out-of-order message). The session must be closed and retried.
    #[error("sync protocol error: {0}")]
    Protocol(String),

    /// The relay could not be reached, or the connection broke.
    #[error("cannot reach the relay: {0}")]
    Network(String),

    /// A schema migration failed.
    #[error("schema migration failed: {0}")]
    Migration(String),

    /// An export could not be written (disk full, the reader went away…).
    /// A file to import cannot be read as it is (the message says what to
    /// fix); nothing was imported.
    #[error("{0}")]
    BadImport(String),

    /// An import stopped part way: whole batches before it are written.
    #[error(
        "the import stopped after writing {written} of {total} rows (each batch of about {batch} rows is written whole or not at all; importing the file again matches what was written): {source}"
    )]
    ImportStopped {
        /// Rows written.
        written: usize,
        /// Rows to write.
        total: usize,
        /// Rows per batch.
        batch: usize,
        /// Why it stopped.
        source: Box<Error>,
    },

    #[error("cannot write the export: {0}")]
    Write(#[source] std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Write(e)
    }
}

impl From<csv::Error> for Error {
    fn from(e: csv::Error) -> Self {
        Error::Write(e.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Write(e.into())
    }
}

/// Shorthand for results of core calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
            value: None,
        }
    }

    /// [`Error::invalid`] naming the value refused.
    pub(crate) fn invalid_value(
        field: &'static str,
        value: &str,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
            value: Some(value.to_owned()),
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub(crate) fn bad_document(doc_id: &str, detail: impl std::fmt::Display) -> Self {
        Error::BadDocument {
            doc_id: doc_id.to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// [`Error::NotFound`]'s message: an empty id was never given.
fn not_found(kind: &str, id: &str) -> String {
    if id.trim().is_empty() {
        format!("no {kind} id was given")
    } else {
        format!("no {kind} with id {id} on this device")
    }
}
