//! Where a merged contact counts: the one rule for following
//! `merged_into` links. The store's index (search, lists, rosters,
//! reports, writes), the relay's scopes and import matching all follow
//! links through [`follow`], so that they cannot disagree.
//!
//! A merge sets the duplicate's `merged_into` to the contact kept; a merge
//! of a kept contact into a third makes a chain (a→b→c: a and b count as
//! c). Two coordinators who merge one pair in opposite directions while
//! offline make a cycle (x→y and y→x, both CRDT changes that merge
//! cleanly): every replica then keeps the cycle's smallest id, so one
//! person stays visible and every replica agrees on which. Chains are
//! followed at most [`MAX_CHAIN`] links (no merge tool makes them that
//! long; the bound keeps a hostile document from making a walk endless).

/// The most links followed from one contact.
pub const MAX_CHAIN: usize = 16;

/// The contacts a walk from one contact reached, and where it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The contacts reached, nearest first; each at most once (a cycle
    /// ends the walk).
    pub links: Vec<String>,
    /// The contact the start counts as: the end of the chain, the
    /// smallest id of the cycle it ran into, or the start itself when it
    /// is not merged.
    pub kept: String,
}

/// Follows `merged_into` links from `start`; `link(id)` is the contact
/// `id` was merged into, if any (`None` also for a contact this replica
/// does not hold, or one to be left out, such as an erased one).
pub fn follow<E>(
    start: &str,
    mut link: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Chain, E> {
    let mut links: Vec<String> = Vec::new();
    let mut at = start.to_owned();
    while links.len() < MAX_CHAIN {
        let Some(next) = link(&at)? else {
            break;
        };
        let seen = if next == start {
            Some(0)
        } else {
            links.iter().position(|l| *l == next).map(|i| i + 1)
        };
        if let Some(from) = seen {
            // A cycle: the walk so far from `from` on (0 is the start).
            let kept = std::iter::once(start)
                .chain(links.iter().map(String::as_str))
                .skip(from)
                .min()
                .unwrap_or(start)
                .to_owned();
            return Ok(Chain { links, kept });
        }
        links.push(next.clone());
        at = next;
    }
    let kept = links.last().cloned().unwrap_or_else(|| start.to_owned());
    Ok(Chain { links, kept })
}

/// The contact `start` counts as ([`follow`] with an infallible `link`).
pub fn kept_contact(start: &str, mut link: impl FnMut(&str) -> Option<String>) -> String {
    match follow::<std::convert::Infallible>(start, |id| Ok(link(id))) {
        Ok(chain) => chain.kept,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn kept(links: &[(&str, &str)], start: &str) -> String {
        let map: HashMap<&str, &str> = links.iter().copied().collect();
        kept_contact(start, |id| map.get(id).map(|s| s.to_string()))
    }

    #[test]
    fn chains_lead_to_their_end() {
        let links = [("a", "b"), ("b", "c")];
        assert_eq!(kept(&links, "a"), "c");
        assert_eq!(kept(&links, "b"), "c");
        assert_eq!(kept(&links, "c"), "c");
        assert_eq!(kept(&links, "z"), "z", "not merged");
        // A link to a contact this replica lacks ends there.
        assert_eq!(kept(&[("a", "gone")], "a"), "gone");
    }

    #[test]
    fn a_cycle_keeps_its_smallest_id_whatever_the_start() {
        let opposite = [("x", "y"), ("y", "x")];
        assert_eq!(kept(&opposite, "x"), "x");
        assert_eq!(kept(&opposite, "y"), "x");
        let three = [("m", "q"), ("q", "k"), ("k", "m"), ("a", "m")];
        for start in ["m", "q", "k", "a"] {
            assert_eq!(kept(&three, start), "k", "from {start}");
        }
        assert_eq!(kept(&[("s", "s")], "s"), "s", "a link to itself");
    }

    #[test]
    fn a_walk_is_bounded() {
        let ids: Vec<String> = (0..100).map(|i| format!("c{i:03}")).collect();
        let links: HashMap<&str, &str> = ids
            .windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect();
        let chain = follow::<()>("c000", |id| Ok(links.get(id).map(|s| s.to_string()))).unwrap();
        assert_eq!(chain.links.len(), MAX_CHAIN);
        assert_eq!(chain.kept, ids[MAX_CHAIN]);
    }
}
