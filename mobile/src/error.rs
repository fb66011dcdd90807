//! The one public error of the bindings: a Kotlin exception
//! (`MusterException`), a Swift `Error`, a Python exception.
//!
//! Each variant carries `reason`, the message of the core error it came
//! from, written for a person ("invalid email: …", "no contact with id …
//! on this device"), and what an app needs to act on it without reading
//! that text: the field a value broke a rule of, the kind and id of a
//! record not found. Apps branch on the variant, highlight the field, and
//! show the reason (Kotlin's `message`, Python's `str(e)`: both are the
//! reason alone, see scripts/bindings).

use muster_core::Error as Core;

/// Why a call failed. A call that fails has changed nothing.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum MusterError {
    /// A value typed by the user breaks a rule (an email with no `@`, an
    /// empty name, a field over its size limit, a malformed relay URL…).
    #[error("{reason}")]
    Invalid {
        /// What is wrong, for a person.
        reason: String,
        /// The field whose value breaks the rule, as the records name it
        /// (`email`, `name`, `capacity`, `key`…); "" when it is no one
        /// field (a file to import).
        field: String,
        /// The value refused, where it was one entry of a list (which of
        /// a contact's emails or phones).
        value: Option<String>,
    },
    /// No record with that id is on this device.
    #[error("{reason}")]
    NotFound {
        /// What was not found, for a person.
        reason: String,
        /// The kind of record looked for (`contact`, `event`…).
        kind: String,
        /// The id looked for ("" when none was given).
        id: String,
    },
    /// The operation is not allowed now (checking in someone to a
    /// cancelled sign-up, syncing before enrolling, a closed store…).
    #[error("{reason}")]
    NotAllowed {
        /// Why, for a person.
        reason: String,
    },
    /// The relay refused the token (unknown or revoked) or this app's
    /// protocol version: a person must enroll the device again.
    #[error("{reason}")]
    Unauthorized {
        /// Why, for a person.
        reason: String,
    },
    /// The relay could not be reached, or it broke off, or a sync ran out
    /// of its time; trying later may work.
    #[error("{reason}")]
    Network {
        /// Why, for a person.
        reason: String,
    },
    /// The store could not be opened or written: damaged, encrypted with
    /// another key, from a newer app, disk full.
    #[error("{reason}")]
    Storage {
        /// Why, for a person.
        reason: String,
    },
}

impl MusterError {
    /// A [`MusterError::NotAllowed`] saying `reason`.
    pub(crate) fn not_allowed(reason: impl Into<String>) -> Self {
        MusterError::NotAllowed {
            reason: reason.into(),
        }
    }
}

impl From<Core> for MusterError {
    fn from(e: Core) -> Self {
        let reason = e.to_string();
        match e {
            Core::Invalid { field, value, .. } => MusterError::Invalid {
                reason,
                field: field.to_owned(),
                value,
            },
            Core::NotFound { kind, id } => MusterError::NotFound {
                reason,
                kind: kind.to_owned(),
                id,
            },
            Core::NotAllowed(_) => MusterError::NotAllowed { reason },
            Core::BadImport(_) => MusterError::Invalid {
                reason,
                field: String::new(),
                value: None,
            },
            Core::Relay { .. } if muster_core::client::is_permanent(&e) => {
                MusterError::Unauthorized { reason }
            }
            Core::Relay { .. } | Core::Protocol(_) | Core::Network(_) => {
                MusterError::Network { reason }
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
            | Core::Write(_) => MusterError::Storage { reason },
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
