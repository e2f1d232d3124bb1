-- iai-server schema, version 2: every embedding records the network (model file) that made it, and every group
-- which network its search index serves and where it is moving, so that a version's network can change (the
-- stored faces are embedded again in the background) and a group can move to another version (upgrade jobs)
-- while it keeps answering on the old one.

-- Embeddings by face and network (little-endian f32, L2-normalised). A face may have several while a group
-- moves, or when its person is in groups of both versions.
CREATE TABLE face_vectors (
    face_id     TEXT NOT NULL REFERENCES faces(face_id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    created_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (face_id, model)
);
-- Until now 3.0 was dlib's network and 2.0 MobileFace.
INSERT INTO face_vectors (face_id, model, embedding)
    SELECT face_id,
           CASE face_model_version WHEN '3.0' THEN 'faceapi_recognition_128.onnx'
                                   ELSE 'mobileface_recognition.onnx' END,
           embedding
    FROM face_embeddings;
DROP TABLE face_embeddings;
-- No index on model alone: SQLite would pick it for joins on (face_id, model) and read every vector of the
-- model for each face (quadratic; seen rebuilding a 100k-face index). The primary key serves those joins.

-- Faces a network could not embed from their stored crop (reported and counted, never deleted).
CREATE TABLE face_vector_failures (
    face_id     TEXT NOT NULL REFERENCES faces(face_id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    failed_ms   INTEGER NOT NULL,
    PRIMARY KEY (face_id, model)
);

-- The network whose embeddings the group's index holds (and which embeds its queries).
ALTER TABLE groups ADD COLUMN serving_model TEXT NOT NULL DEFAULT '';
UPDATE groups SET serving_model = CASE face_model_version WHEN '3.0' THEN 'faceapi_recognition_128.onnx'
                                                          ELSE 'mobileface_recognition.onnx' END;
-- Where the group is moving: the version and network it will serve once every face has an embedding of that
-- network, and the upgrade job moving it (NULL when the move is a network change within the version).
ALTER TABLE groups ADD COLUMN target_version TEXT;
ALTER TABLE groups ADD COLUMN target_model TEXT;
ALTER TABLE groups ADD COLUMN target_job TEXT;
-- What the group served before its last upgrade, for the one revert Tencent allows.
ALTER TABLE groups ADD COLUMN previous_version TEXT;
ALTER TABLE groups ADD COLUMN previous_model TEXT;
