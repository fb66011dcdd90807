//! The one public error of the bindings: a Kotlin exception
//! (`MusterException`), a Swift `Error`, a Python exception.
//!
//! It is flat: each variant carries only the message of the core error it
//! came from, which is written for a person ("invalid email: …", "no
//! contact with id … on this device"). Apps branch on the variant and show
//! the message.

use muster_core::Error as Core;

/// Why a call failed. A call that fails has changed nothing.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum MusterError {
    /// A value typed by the user breaks a rule (an email with no `@`, an
    /// empty name, a field over its size limit, a malformed relay URL…).
    #[error("{0}")]
    Invalid(String),
    /// No record with that id is on this device.
    #[error("{0}")]
    NotFound(String),
    /// The operation is not allowed now (checking in someone to a
    /// cancelled sign-up, syncing before enrolling…).
    #[error("{0}")]
    NotAllowed(String),
    /// The relay refused the token (unknown or revoked) or this app's
    /// protocol version: a person must enroll the device again.
    #[error("{0}")]
    Unauthorized(String),
    /// The relay could not be reached, or it broke off; trying later may
    /// work.
    #[error("{0}")]
    Network(String),
    /// The store could not be opened or written: damaged, encrypted with
    /// another key, from a newer app, disk full.
    #[error("{0}")]
    Storage(String),
}

impl From<Core> for MusterError {
    fn from(e: Core) -> Self {
        let message = e.to_string();
        match e {
            Core::Invalid { .. } => MusterError::Invalid(message),
            Core::NotFound { .. } => MusterError::NotFound(message),
            Core::NotAllowed(_) => MusterError::NotAllowed(message),
            Core::BadImport(_) => MusterError::Invalid(message),
            Core::Relay { .. } if muster_core::client::is_permanent(&e) => {
                MusterError::Unauthorized(message)
            }
            Core::Relay { .. } | Core::Protocol(_) | Core::Network(_) => {
                MusterError::Network(message)
            }
            Core::Corrupt { .. }
            | Core::ForeignDatabase { .. }
            | Core::NewerSchema { .. }
            | Core::KeyRequired { .. }
            | Core::WrongKey { .. }
            | Core::NotEncrypted { .. }
            | Core::BadDocument { .. }
            | Core::Storage(_)
            | Core::Migration(_)
            | Core::ImportStopped { .. }
            | Core::Write(_) => MusterError::Storage(message),
        }
    }
}

/// What a listener's method may throw. Whatever an app's listener throws
/// (any exception) arrives as this: the engine tells the listener once,
/// through `on_sync_warning`, and goes on delivering notices.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum ListenerError {
    /// The listener threw.
    #[error("{0}")]
    Failed(String),
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ListenerError::Failed(e.reason)
    }
}

/// Shorthand for results of the bindings.
pub type Result<T, E = MusterError> = std::result::Result<T, E>;
