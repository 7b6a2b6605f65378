-- Message edit history and reactions.
-- Migrations are only ever added, never edited once released.

-- Earlier versions of edited messages, oldest first. Deleting a message
-- removes its rows (deleted text must be gone everywhere).
CREATE TABLE message_edits (
  message_id   bigint NOT NULL REFERENCES messages (message_id)
                 ON DELETE CASCADE,
  -- 1 is the text as sent, 2 the text after the first edit, ...
  version      bigint NOT NULL CHECK (version > 0),
  text         text NOT NULL,
  -- When this version was written (sent or edited).
  create_time  timestamptz NOT NULL,
  -- When the edit that replaced it happened.
  replace_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, version)
);

-- One row per (message, user, emoji). Written only under the chat row lock,
-- so ordinal and create_time follow the chat's event order.
CREATE TABLE reactions (
  message_id  bigint NOT NULL REFERENCES messages (message_id)
                ON DELETE CASCADE,
  user_id     bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  emoji       text NOT NULL,
  -- Taken after the lock (not the transaction start), so it is in order.
  create_time timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Tie-break for reactions within one microsecond.
  ordinal     bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (message_id, user_id, emoji)
);
