-- iai-server schema, version 1: the whole IAI domain.
-- Times are milliseconds since the Unix epoch. Ids are the client's strings (GroupId, PersonId) or
-- server-made decimal strings (FaceId, JobId). Rows are listed in creation order (rowid).

CREATE TABLE groups (
    group_id            TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL UNIQUE,
    tag                 TEXT NOT NULL DEFAULT '',
    -- JSON array of up to 5 custom field names (GroupExDescriptions), addressed by index.
    ex_descriptions     TEXT NOT NULL DEFAULT '[]',
    face_model_version  TEXT NOT NULL CHECK (face_model_version IN ('2.0', '3.0')),
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
);

-- A person is global to the account; groups share it and its faces.
CREATE TABLE persons (
    person_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    gender      INTEGER NOT NULL DEFAULT 0 CHECK (gender IN (0, 1, 2)),
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- Person-in-group membership with that group's custom field values.
CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    person_id   TEXT NOT NULL REFERENCES persons(person_id) ON DELETE CASCADE,
    -- JSON array of up to 5 values (PersonExDescription), index = GroupExDescriptionIndex; null = unset.
    ex_values   TEXT NOT NULL DEFAULT '[]',
    joined_ms   INTEGER NOT NULL,
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX group_members_by_person ON group_members(person_id);

CREATE TABLE faces (
    face_id     TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL REFERENCES persons(person_id) ON DELETE CASCADE,
    -- FaceRect in the source image (padded box, may start outside the image).
    rect_x      INTEGER NOT NULL,
    rect_y      INTEGER NOT NULL,
    rect_width  INTEGER NOT NULL,
    rect_height INTEGER NOT NULL,
    quality     REAL,
    -- A loose crop around the face (lossless PNG) and its 5 landmarks in crop pixels (JSON [[x,y],...]),
    -- kept so that embeddings can be recomputed for another model version without the original image.
    crop_png    BLOB NOT NULL,
    landmarks   TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX faces_by_person ON faces(person_id);

-- One embedding per face and model version (little-endian f32, L2-normalised).
CREATE TABLE face_embeddings (
    face_id             TEXT NOT NULL REFERENCES faces(face_id) ON DELETE CASCADE,
    face_model_version  TEXT NOT NULL CHECK (face_model_version IN ('2.0', '3.0')),
    embedding           BLOB NOT NULL,
    PRIMARY KEY (face_id, face_model_version)
);

-- Long-running jobs: group model upgrades and the legacy duplicate-person checks.
CREATE TABLE jobs (
    job_id      TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('upgrade_group', 'check_similar_person')),
    group_id    TEXT,
    -- JSON: the request that started the job (GroupIds, versions, controls).
    params      TEXT NOT NULL DEFAULT '{}',
    -- Upgrade: 0 running, 1 done, 2 rolled back. Similar-person: 0 done, 1 running, 2 failed.
    status      INTEGER NOT NULL,
    progress    REAL NOT NULL DEFAULT 0,
    -- JSON: what the job produced (failed faces, similar persons).
    result      TEXT,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX jobs_by_kind ON jobs(kind, started_ms);
