//! The Muster relay. Its code arrives with the sync issue (#3); see ARCHITECTURE.md.
