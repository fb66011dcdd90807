//! Opening the store's file: plain or encrypted (SQLCipher), and telling
//! a damaged, foreign or encrypted file apart from a store.

use super::*;

/// A connection to the store file at `path`, created if missing; nothing is
/// read or written yet.
pub(super) fn open_file(path: &Path) -> Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))
}

/// Turns SQLite's "not a database" and "corrupt" into [`Error::Corrupt`],
/// or [`Error::KeyRequired`] for a file that looks encrypted.
pub(super) fn classify(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) if looks_encrypted(path) => Error::KeyRequired {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => Error::Storage(e),
    }
}

/// The first 16 bytes of every plain SQLite database.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the file starts like a plain SQLite database.
fn has_plain_header(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == SQLITE_HEADER)
}

/// Whether the file looks like an encrypted database: whole pages (SQLCipher
/// pages are 512 bytes to 64 KiB) that do not start like a plain one, and
/// whose first bytes look random, as ciphertext does (text, zeros or a
/// document of another kind do not). A file of random bytes looks the
/// same; that is the point of encryption.
fn looks_encrypted(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.len() >= 512 && m.len() % 512 == 0)
        || has_plain_header(path)
    {
        return false;
    }
    let mut head = [0u8; 512];
    if std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_err()
    {
        return false;
    }
    // 512 random bytes hold about 222 distinct values (fewer than 180
    // happens about never); English text about 40.
    let mut seen = [false; 256];
    head.iter().for_each(|b| seen[usize::from(*b)] = true);
    seen.iter().filter(|s| **s).count() >= 180
}

/// Makes a just-opened connection to the database file `path` ready for use,
/// before anything else runs on it: with a key, sets it (SQLCipher, raw
/// 256-bit key) and checks that it decrypts the file; without one, checks
/// that the file is not encrypted. Reads the first page at most; writes
/// nothing. [`Store::open_encrypted`] and the relay's storage open through
/// this.
///
/// Errors: [`Error::WrongKey`] (the key does not decrypt the file),
/// [`Error::NotEncrypted`] (a key was given for a plain database),
/// [`Error::KeyRequired`] (no key for a file that looks encrypted),
/// [`Error::Corrupt`] (not a database, or damaged).
pub fn unlock(conn: &Connection, path: &Path, key: Option<&[u8; 32]>) -> Result<()> {
    if let Some(key) = key {
        // The key comes first: SQLCipher reads nothing until it is set.
        apply_key(conn, key)?;
    }
    // The first read of the file tells whether it can be decrypted.
    let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) else {
        return Ok(());
    };
    if key.is_none() || e.sqlite_error_code() != Some(rusqlite::ErrorCode::NotADatabase) {
        return Err(classify(path, e));
    }
    let path = path.to_path_buf();
    Err(if has_plain_header(&path) {
        Error::NotEncrypted { path }
    } else {
        Error::WrongKey { path }
    })
}

/// Sets the SQLCipher key: `PRAGMA key = "x'<64 hex digits>'"` (a raw key,
/// no derivation). Must be the first statement on the connection. Fails if
/// this build has no SQLCipher (plain SQLite would ignore the pragma and
/// write the data in the clear).
fn apply_key(conn: &Connection, key: &[u8; 32]) -> Result<()> {
    // SQLCipher logs a failed decryption (a wrong key) to stderr, logcat on
    // Android, as three "ERROR CORE" lines; the caller gets the error as
    // [`Error::WrongKey`], so the lines only alarm whoever reads the log.
    conn.execute_batch("PRAGMA cipher_log_level = NONE")?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut sql = String::with_capacity(84);
    sql.push_str("PRAGMA key = \"x'");
    for b in key {
        sql.push(char::from(HEX[usize::from(b >> 4)]));
        sql.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    sql.push_str("'\"");
    let keyed = conn.execute_batch(&sql);
    // Best effort: do not leave the key's text in freed memory.
    let mut text = sql.into_bytes();
    text.fill(0);
    std::hint::black_box(&text);
    keyed?;
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none() {
        return Err(Error::NotAllowed(
            "this build of Muster has no SQLCipher, so it cannot encrypt the store; build rusqlite with the bundled-sqlcipher feature"
                .into(),
        ));
    }
    Ok(())
}
