//! The relay's data key, read from a file (`serve --key-file`,
//! `MUSTER_DATA_KEY_FILE`): the SQLCipher key of its database and of the
//! dashboard's store.

use std::path::Path;

use crate::ServerError;

/// The most a key file may hold: 64 hex digits and generous whitespace.
pub const MAX_KEY_FILE_BYTES: usize = 1024;

/// Reads the relay's data key from `path`: 64 hex digits (a 256-bit key),
/// surrounding whitespace ignored. The error never shows the file's content.
pub fn read_key_file(path: &Path) -> Result<[u8; 32], ServerError> {
    let bad = |why: &str| {
        ServerError::BadRequest(format!(
            "the key file {} {why}; it must hold the key as 64 hex digits (for example from `openssl rand -hex 32`)",
            path.display()
        ))
    };
    // A FIFO would block the start until something writes to it, and a
    // device such as /dev/zero would be read until memory runs out: only a
    // regular file, and only as much as a key file can hold.
    let meta = std::fs::metadata(path).map_err(|e| bad(&format!("cannot be read ({e})")))?;
    if !meta.is_file() {
        return Err(bad("is not a regular file"));
    }
    let mut text = Vec::with_capacity(MAX_KEY_FILE_BYTES + 1);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| bad(&format!("cannot be read ({e})")))?,
            MAX_KEY_FILE_BYTES as u64 + 1,
        ),
        &mut text,
    )
    .map_err(|e| bad(&format!("cannot be read ({e})")))?;
    if text.len() > MAX_KEY_FILE_BYTES {
        text.fill(0);
        return Err(bad(&format!(
            "is larger than a key file can be ({MAX_KEY_FILE_BYTES} bytes)"
        )));
    }
    let digits = text.trim_ascii();
    let key = if digits.len() == 64 {
        let mut key = [0u8; 32];
        let mut ok = true;
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            let hex = |c: u8| char::from(c).to_digit(16);
            match (hex(pair[0]), hex(pair[1])) {
                (Some(hi), Some(lo)) => *byte = (hi * 16 + lo) as u8,
                _ => ok = false,
            }
        }
        ok.then_some(key)
    } else {
        None
    };
    // Best effort: do not leave the key's text in freed memory.
    text.fill(0);
    std::hint::black_box(&text);
    key.ok_or_else(|| bad("does not hold 64 hex digits"))
}
