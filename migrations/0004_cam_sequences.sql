-- iai-server schema, version 4: CAM identifiers are never given twice. A deleted sub-user's uin (and uid) or a
-- deleted policy's id went to the next AddUser or CreatePolicy (the next was MAX + 1), and with it whatever
-- still named the old one: the per-user QPS settings, the audit trail's principal, policies naming the uin.
-- The last identifier handed out is kept here and only ever grows.

CREATE TABLE cam_sequences (
    name            TEXT PRIMARY KEY,
    last            INTEGER NOT NULL
);

-- The ranges start where migration 0003's did (sub-users above 200000000000, custom policies above 100000000).
INSERT INTO cam_sequences (name, last)
    SELECT 'user_uin', MAX(COALESCE(MAX(uin), 0), 200000000000) FROM cam_users;
INSERT INTO cam_sequences (name, last)
    SELECT 'policy_id', MAX(COALESCE(MAX(policy_id), 0), 100000000) FROM cam_policies;
