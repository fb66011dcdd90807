//! Everything a store shows, as one text: how tests (and the simulation
//! over every relay backend) tell whether two replicas converged.

use super::Store;
use crate::error::Result;
use crate::model::DocKind;

impl Store {
    /// Every document's heads and typed record, and the materialised lists
    /// (contacts, events, rosters), as text. Two replicas that converged
    /// have equal fingerprints; the text is for comparing, not for reading.
    pub fn fingerprint(&mut self) -> Result<String> {
        let mut out = String::new();
        for id in self.doc_ids()? {
            let mut heads = self.heads(&id)?;
            heads.sort();
            out += &format!("{id} heads {heads:?}\n");
            let record = match DocKind::of_id(&id) {
                Some(DocKind::Contact) => format!("{:?}", self.contact(&id)?),
                Some(DocKind::Event) => format!(
                    "{:?} roster {:?}",
                    self.event(&id)?,
                    self.roster(&id, None)?
                ),
                Some(DocKind::Feedback) => {
                    let f = self.feedback(&id)?;
                    format!("{f:?} {:?} {:?}", f.status(), f.first_response_at())
                }
                Some(DocKind::ContactPrivate) | None => String::new(),
            };
            out += &record;
            out.push('\n');
        }
        out += &format!("contacts {:?}\n", self.list_contacts(10_000, 0)?);
        out += &format!("events {:?}\n", self.list_events()?);
        let pages: Vec<(String, Option<String>, bool)> = self
            .conn
            .prepare("SELECT id, public_slug, public_open FROM events ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        out += &format!("pages {pages:?}\n");
        Ok(out)
    }
}
