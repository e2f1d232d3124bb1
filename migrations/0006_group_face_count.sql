-- Each group's face count (a face counts once for each group that holds its person), kept by triggers in
-- the writing transaction: the per-group face limit is checked on it without scanning the group, and it is
-- right whichever server wrote (several replicas will share one database). Cascaded deletes (a person, a
-- group) fire these triggers too; whichever of a person's faces and memberships goes first, the other then
-- finds nothing more to subtract.
ALTER TABLE groups ADD COLUMN face_count INTEGER NOT NULL DEFAULT 0;
UPDATE groups SET face_count = (
    SELECT count(*) FROM group_members m JOIN faces f ON f.person_id = m.person_id
    WHERE m.group_id = groups.group_id);

CREATE TRIGGER group_face_count_face_in AFTER INSERT ON faces BEGIN
    UPDATE groups SET face_count = face_count + 1
    WHERE group_id IN (SELECT group_id FROM group_members WHERE person_id = NEW.person_id);
END;
CREATE TRIGGER group_face_count_face_out AFTER DELETE ON faces BEGIN
    UPDATE groups SET face_count = face_count - 1
    WHERE group_id IN (SELECT group_id FROM group_members WHERE person_id = OLD.person_id);
END;
CREATE TRIGGER group_face_count_member_in AFTER INSERT ON group_members BEGIN
    UPDATE groups SET face_count = face_count + (SELECT count(*) FROM faces WHERE person_id = NEW.person_id)
    WHERE group_id = NEW.group_id;
END;
CREATE TRIGGER group_face_count_member_out AFTER DELETE ON group_members BEGIN
    UPDATE groups SET face_count = face_count - (SELECT count(*) FROM faces WHERE person_id = OLD.person_id)
    WHERE group_id = OLD.group_id;
END;
