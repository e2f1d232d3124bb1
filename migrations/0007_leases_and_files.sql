-- Leases: which server runs a kind of background work (moving groups, duplicate checks and the purges).
-- A worker takes its lease before each round and renews it while it runs; another server takes it over
-- once it has run out (its holder died) and resumes the work from what the store saved. With one SQLite
-- file there is one server and the lease is always its own; the table is the same for PostgreSQL.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    until_ms    INTEGER NOT NULL
);

-- Files every replica serves: jobs' result files (FailedFacesUrl, SimilarPersonsUrl) and the key that signs
-- their links. A SQLite server keeps them in its data directory instead (files/, url.key).
CREATE TABLE files (
    name        TEXT PRIMARY KEY NOT NULL,
    body        BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);
