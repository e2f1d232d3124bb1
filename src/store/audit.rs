//! The store's named operations on the audit trail (recording call batches, purging, the statistics and
//! search-log queries, export), backend-neutral. With SQLite the trail is a file of its own beside the
//! database.
