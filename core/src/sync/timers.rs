//! The sessions' clocks, kept inside the sans-IO sessions as quinn-proto
//! keeps its own: a session says when it next needs the time
//! (`poll_timeout`), the driver sleeps until then or until a frame comes,
//! and calls `handle_timeout(now)`; pings the session wants sent come out
//! of `poll_ping`. So the simulation, which moves time itself, exercises
//! every timer the drivers run: the relay's hello timeout, pings and
//! silence limit, the device's reply timeout and idle ping, and the backoff
//! between reconnections ([`backoff`]).
//!
//! Times are milliseconds of a clock the driver chooses, as long as it is
//! the same for every call of one session and never goes backwards.

use rand::{Rng, RngExt};

use crate::model::Millis;

/// How long a relay waits for a new connection's `hello`.
pub const HELLO_TIMEOUT: Millis = 10_000;
/// After this long without hearing from a device (or pinging it), the
/// relay pings it.
pub const PING_EVERY: Millis = 30_000;
/// After this long without hearing anything from a device (pongs count),
/// the relay closes the connection.
pub const SILENCE_LIMIT: Millis = 90_000;
/// How long a device waits for the relay by default (see
/// [`ClientTimers`]).
pub const REPLY_TIMEOUT: Millis = 60_000;
/// The longest a device's idle connection stays silent before it pings
/// the relay (a third of its reply timeout if that is shorter).
pub const PING_AFTER: Millis = 20_000;
/// First retry delay; doubles per failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Millis = 500;
/// Longest retry delay.
pub const MAX_BACKOFF: Millis = 60_000;

/// The delay before reconnection attempt number `attempt` (from 1):
/// exponential from [`MIN_BACKOFF`] to [`MAX_BACKOFF`], with full jitter
/// (at least 50 ms), drawn from `rng`.
pub fn backoff(attempt: u32, rng: &mut impl Rng) -> Millis {
    let cap = MIN_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    rng.random_range(0..=cap).max(50)
}

/// The start of every timeout's message (see [`is_timeout`]).
pub(crate) const NO_ANSWER: &str = "no answer from ";

/// Whether an error is a timeout running out: the relay (or whatever
/// listens at its address) did not answer in time.
pub fn is_timeout(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Network(m) if m.starts_with(NO_ANSWER))
}

/// A duration in milliseconds for a message: whole seconds as `15`,
/// others as `0.5`.
pub(crate) fn seconds(ms: Millis) -> String {
    if ms % 1_000 == 0 {
        (ms / 1_000).to_string()
    } else {
        format!("{:.1}", ms as f64 / 1_000.0)
    }
}

/// The relay session's timers.
#[derive(Debug, Clone, Default)]
pub(crate) struct RelayTimers {
    /// When the connection opened; `None` until started (no timers run).
    pub started: Option<Millis>,
    pub last_heard: Millis,
    pub last_ping: Millis,
    pub ping_due: bool,
    /// The connection went silent past [`SILENCE_LIMIT`].
    pub silent: bool,
}

impl RelayTimers {
    pub fn start(&mut self, now: Millis) {
        self.started = Some(now);
        self.last_heard = now;
        self.last_ping = now;
    }

    pub fn heard(&mut self, now: Millis) {
        self.last_heard = self.last_heard.max(now);
    }

    /// The next deadline: the hello's (while `awaiting_hello`), the next
    /// ping, the silence limit.
    pub fn next(&self, awaiting_hello: bool) -> Option<Millis> {
        let started = self.started?;
        let ping = self.last_heard.max(self.last_ping) + PING_EVERY;
        let silence = self.last_heard + SILENCE_LIMIT;
        let mut next = ping.min(silence);
        if awaiting_hello {
            next = next.min(started + HELLO_TIMEOUT);
        }
        Some(next)
    }
}

/// The device session's timers: the relay gets `reply` to answer. While
/// the session awaits an answer (`ClientSession::awaiting_reply`) only
/// protocol messages count, counted from the last one or from when the
/// wait began; live and idle, any frame (a pong too) keeps the connection
/// alive, and after [`PING_AFTER`] (or a third of `reply`) of silence the
/// device pings.
#[derive(Debug, Clone)]
pub struct ClientTimers {
    /// How long the relay has to answer.
    pub reply: Millis,
    pub(crate) started: bool,
    pub(crate) last_heard: Millis,
    pub(crate) last_progress: Millis,
    pub(crate) was_awaiting: bool,
    pub(crate) pinged: bool,
    pub(crate) ping_due: bool,
}

impl Default for ClientTimers {
    fn default() -> Self {
        ClientTimers::with_reply(REPLY_TIMEOUT)
    }
}

impl ClientTimers {
    /// Timers giving the relay `reply` milliseconds to answer.
    pub fn with_reply(reply: Millis) -> ClientTimers {
        ClientTimers {
            reply,
            started: false,
            last_heard: 0,
            last_progress: 0,
            was_awaiting: false,
            pinged: false,
            ping_due: false,
        }
    }

    /// When an idle connection pings the relay.
    pub fn ping_after(&self) -> Millis {
        (self.reply / 3).min(PING_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for attempt in 1..40 {
            let cap = (MIN_BACKOFF << (attempt - 1).min(16)).min(MAX_BACKOFF);
            for _ in 0..50 {
                let d = backoff(attempt, &mut rng);
                assert!((50..=cap.max(50)).contains(&d), "attempt {attempt}: {d}");
            }
        }
        let late: Vec<Millis> = (0..200).map(|_| backoff(30, &mut rng)).collect();
        assert!(
            late.iter().any(|&d| d > MAX_BACKOFF / 2),
            "jitter spans the range"
        );
        assert!(late.iter().all(|&d| d <= MAX_BACKOFF));
    }

    #[test]
    fn seconds_read_as_people_write_them() {
        assert_eq!(seconds(15_000), "15");
        assert_eq!(seconds(500), "0.5");
    }
}
