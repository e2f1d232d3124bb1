//! The audit trail's SQL (its own SQLite file).
