-- The PostgreSQL schema: the SQLite schema of migrations/0001..0006 as it stands after them, in
-- PostgreSQL's types (ids compare byte by byte, COLLATE "C", as SQLite's do; `rowid`, implicit in SQLite,
-- is an identity column where the shared statements list rows in creation order), plus what several replicas share (the change log's notification, replicas' heartbeats,
-- job leases, result files and the link key, the audit trail). Applied once, in one transaction, by the
-- server that finds it missing (`schema_migrations` records it); add files, never edit an applied one.

CREATE TABLE groups (
    rowid               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    group_id            TEXT COLLATE "C" PRIMARY KEY,
    name                TEXT COLLATE "C" NOT NULL UNIQUE,
    tag                 TEXT NOT NULL DEFAULT '',
    ex_descriptions     TEXT NOT NULL DEFAULT '[]',
    face_model_version  TEXT NOT NULL CHECK (face_model_version IN ('2.0', '3.0')),
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL,
    serving_model       TEXT NOT NULL DEFAULT '',
    target_version      TEXT,
    target_model        TEXT,
    target_job          TEXT,
    previous_version    TEXT,
    previous_model      TEXT,
    face_count          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE persons (
    person_id   TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    gender      INTEGER NOT NULL DEFAULT 0 CHECK (gender IN (0, 1, 2)),
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE group_members (
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    group_id    TEXT COLLATE "C" NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
    person_id   TEXT COLLATE "C" NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    ex_values   TEXT NOT NULL DEFAULT '[]',
    joined_ms   BIGINT NOT NULL,
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX group_members_by_person ON group_members (person_id);

CREATE TABLE faces (
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    face_id     TEXT COLLATE "C" PRIMARY KEY,
    person_id   TEXT COLLATE "C" NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    rect_x      INTEGER NOT NULL,
    rect_y      INTEGER NOT NULL,
    rect_width  INTEGER NOT NULL,
    rect_height INTEGER NOT NULL,
    quality     DOUBLE PRECISION,
    crop_png    BYTEA NOT NULL,
    landmarks   TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX faces_by_person ON faces (person_id);

CREATE TABLE face_vectors (
    face_id     TEXT COLLATE "C" NOT NULL REFERENCES faces (face_id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    embedding   BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (face_id, model)
);

CREATE TABLE face_vector_failures (
    face_id     TEXT COLLATE "C" NOT NULL REFERENCES faces (face_id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    failed_ms   BIGINT NOT NULL,
    PRIMARY KEY (face_id, model)
);

CREATE TABLE jobs (
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    job_id      TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('upgrade_group', 'check_similar_person')),
    group_id    TEXT,
    params      TEXT NOT NULL DEFAULT '{}',
    status      INTEGER NOT NULL,
    progress    DOUBLE PRECISION NOT NULL DEFAULT 0,
    result      TEXT,
    started_ms  BIGINT NOT NULL,
    finished_ms BIGINT
);
CREATE INDEX jobs_by_kind ON jobs (kind, started_ms);

CREATE TABLE cam_users (
    uin             BIGINT PRIMARY KEY,
    uid             BIGINT NOT NULL UNIQUE,
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    remark          TEXT NOT NULL DEFAULT '',
    console_login   INTEGER NOT NULL DEFAULT 0,
    phone_num       TEXT NOT NULL DEFAULT '',
    country_code    TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    created_ms      BIGINT NOT NULL
);

CREATE TABLE cam_access_keys (
    secret_id       TEXT COLLATE "C" PRIMARY KEY,
    secret_key      TEXT NOT NULL,
    uin             BIGINT NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    description     TEXT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX cam_access_keys_by_uin ON cam_access_keys (uin);

CREATE TABLE cam_policies (
    policy_id       BIGINT PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    description     TEXT NOT NULL DEFAULT '',
    document        TEXT NOT NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);

CREATE TABLE cam_attachments (
    uin             BIGINT NOT NULL REFERENCES cam_users (uin) ON DELETE CASCADE,
    policy_id       BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL,
    PRIMARY KEY (uin, policy_id)
);
CREATE INDEX cam_attachments_by_policy ON cam_attachments (policy_id);

CREATE TABLE cam_sequences (
    name            TEXT COLLATE "C" PRIMARY KEY,
    last            BIGINT NOT NULL
);
INSERT INTO cam_sequences (name, last) VALUES ('user_uin', 200000000000), ('policy_id', 100000000);

-- Which replica runs a kind of background work (SQLite migration 0007): taken before each round, renewed
-- while it runs, taken over by another replica once it has run out.
CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    owner       TEXT NOT NULL,
    until_ms    BIGINT NOT NULL
);

-- Each group's face count, kept by triggers in the writing transaction (as SQLite's migration 0006):
-- limits are checked on it without scanning the group, whichever replica wrote.
CREATE FUNCTION group_face_count_face() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE groups SET face_count = face_count + 1
        WHERE group_id IN (SELECT group_id FROM group_members WHERE person_id = NEW.person_id);
    ELSE
        UPDATE groups SET face_count = face_count - 1
        WHERE group_id IN (SELECT group_id FROM group_members WHERE person_id = OLD.person_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER group_face_count_face AFTER INSERT OR DELETE ON faces
    FOR EACH ROW EXECUTE FUNCTION group_face_count_face();

CREATE FUNCTION group_face_count_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE groups SET face_count = face_count + (SELECT count(*) FROM faces WHERE person_id = NEW.person_id)
        WHERE group_id = NEW.group_id;
    ELSE
        UPDATE groups SET face_count = face_count - (SELECT count(*) FROM faces WHERE person_id = OLD.person_id)
        WHERE group_id = OLD.group_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER group_face_count_member AFTER INSERT OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION group_face_count_member();

-- The change log. Writers append under one transaction-scoped advisory lock taken before their first
-- statement, so numbers follow commit order with no gaps; the NOTIFY is delivered at commit.
CREATE TABLE change_log (
    seq     BIGINT PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    body    BYTEA NOT NULL
);

CREATE FUNCTION change_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('iai_change_log', NEW.seq::text);
    RETURN NULL;
END $$;
CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
    FOR EACH ROW EXECUTE FUNCTION change_log_notify();

-- Live replicas: what each has applied and when it last said so. The log is trimmed below the smallest
-- position of the replicas seen recently (or after a bound); QPS shares are divided among them.
CREATE TABLE replicas (
    replica_id  TEXT PRIMARY KEY,
    address     TEXT NOT NULL DEFAULT '',
    applied     BIGINT NOT NULL DEFAULT 0,
    started_ms  BIGINT NOT NULL,
    seen_ms     BIGINT NOT NULL
);

-- Result files of jobs (FailedFacesUrl, SimilarPersonsUrl) and secrets every replica shares (the link key).
CREATE TABLE files (
    name        TEXT COLLATE "C" PRIMARY KEY,
    body        BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- The audit trail of every replica, partitioned by day (time_ms) so that retention drops whole partitions.
CREATE TABLE audit_calls (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    time_ms     BIGINT NOT NULL,
    replica_id  TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL,
    principal   TEXT NOT NULL,
    secret_id   TEXT,
    action      TEXT,
    interface_group TEXT,
    groups      TEXT NOT NULL DEFAULT '[]',
    client      TEXT,
    code        TEXT NOT NULL,
    latency_us  BIGINT NOT NULL,
    face_num    BIGINT,
    candidates  TEXT
) PARTITION BY RANGE (time_ms);
CREATE INDEX audit_calls_by_time ON audit_calls (time_ms);

CREATE TABLE audit_stats (
    bucket_ms   BIGINT NOT NULL,
    action      TEXT NOT NULL,
    interface_group TEXT NOT NULL,
    calls       BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    latency     BYTEA NOT NULL,
    PRIMARY KEY (bucket_ms, action)
);
