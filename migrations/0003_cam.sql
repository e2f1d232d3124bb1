-- iai-server schema, version 3: CAM sub-accounts (Tencent's CAM API on the same endpoint). Users, their access
-- keys, custom policies and which policies are attached to which user. The main account is the configuration's
-- keys (never stored); the preset policies (QcloudFRFullAccess, QcloudFRReadOnlyAccess) are built in and only
-- referenced here by id.

CREATE TABLE cam_users (
    uin             INTEGER PRIMARY KEY,
    uid             INTEGER NOT NULL UNIQUE,
    name            TEXT NOT NULL UNIQUE,
    remark          TEXT NOT NULL DEFAULT '',
    console_login   INTEGER NOT NULL DEFAULT 0,
    phone_num       TEXT NOT NULL DEFAULT '',
    country_code    TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    created_ms      INTEGER NOT NULL
);

-- Keys of sub-users, and keys the main account created for itself (uin = the owner's uin). The secret is kept
-- as is: HMAC signatures need it.
CREATE TABLE cam_access_keys (
    secret_id       TEXT PRIMARY KEY,
    secret_key      TEXT NOT NULL,
    uin             INTEGER NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    description     TEXT,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX cam_access_keys_by_uin ON cam_access_keys (uin);

CREATE TABLE cam_policies (
    policy_id       INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL DEFAULT '',
    document        TEXT NOT NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

-- policy_id is a custom policy's or a preset's (no foreign key: presets are not rows).
CREATE TABLE cam_attachments (
    uin             INTEGER NOT NULL REFERENCES cam_users (uin) ON DELETE CASCADE,
    policy_id       INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    PRIMARY KEY (uin, policy_id)
);
CREATE INDEX cam_attachments_by_policy ON cam_attachments (policy_id);
