//! End-to-end scenarios with a real relay. They arrive with the sync issue (#3).
