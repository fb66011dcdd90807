//! The queries behind the coordinator's reports (`muster report`).

use super::Store;

impl Store {}
