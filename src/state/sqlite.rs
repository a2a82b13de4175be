//! The SQLite state store (embedded default). To be written.
