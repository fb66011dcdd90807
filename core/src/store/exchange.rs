//! Bulk reads and writes for imports and exports (`muster import`,
//! `muster export`).

use super::Store;

impl Store {}
