-- File sharing: content-addressed blobs stored in chunks, and file rows.
-- Migrations are only ever added, never edited once released.

-- One stored content. A blob is written inside the upload's transaction
-- (sha256 NULL while staging, invisible to everyone else) and committed only
-- with its sha256 set, so identical content is stored once. ref_count is the
-- number of files rows pointing at it; CollectGarbage deletes blobs at 0.
CREATE TABLE blobs (
  blob_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256      bytea UNIQUE CHECK (sha256 IS NULL OR length(sha256) = 32),
  size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
  ref_count   bigint NOT NULL DEFAULT 0 CHECK (ref_count >= 0),
  create_time timestamptz NOT NULL DEFAULT now()
);
-- Garbage collection looks up unreferenced blobs only.
CREATE INDEX blobs_unreferenced_idx ON blobs (blob_id) WHERE ref_count = 0;

-- The content of a blob in fixed-size chunks: chunk i holds bytes
-- [i * 1 MiB, (i + 1) * 1 MiB); only the last chunk may be shorter, and an
-- empty blob has no chunks.
CREATE TABLE blob_chunks (
  blob_id     bigint NOT NULL REFERENCES blobs (blob_id) ON DELETE CASCADE,
  chunk_index integer NOT NULL CHECK (chunk_index >= 0),
  data        bytea NOT NULL,
  PRIMARY KEY (blob_id, chunk_index)
);
-- Files are mostly already compressed: skip pglz, and let substring() on
-- data fetch only the TOAST slices a ranged read needs.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- One uploaded file (what messages.file_id names). Several files may share
-- a blob; rows are only removed by DeleteFile, which keeps ref_count right
-- (hence no ON DELETE CASCADE from users or chats).
CREATE TABLE files (
  file_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uploader_user_id bigint NOT NULL REFERENCES users (user_id),
  chat_id          bigint NOT NULL REFERENCES chats (chat_id),
  name             text NOT NULL,
  content_type     text NOT NULL,
  size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
  sha256           bytea NOT NULL CHECK (length(sha256) = 32),
  blob_id          bigint NOT NULL REFERENCES blobs (blob_id),
  create_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_blob_id_idx ON files (blob_id);
CREATE INDEX files_chat_id_idx ON files (chat_id);
