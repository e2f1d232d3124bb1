-- The change log: what every committed write changed, numbered in commit order with no gaps (the writing
-- transaction appends it). Whatever a server keeps in memory (the search index, the CAM directory) follows
-- it. `body` is the change, encoded by the server (postcard); old entries are trimmed.
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    body BLOB NOT NULL
);
