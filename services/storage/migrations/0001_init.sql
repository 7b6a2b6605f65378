-- Initial schema of the storage service.
-- Migrations are only ever added, never edited once released.

CREATE TABLE users (
  user_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username      text NOT NULL UNIQUE,
  display_name  text NOT NULL,
  password_hash text NOT NULL,
  create_time   timestamptz NOT NULL DEFAULT now()
);

-- Only SHA-256 hashes of tokens are stored.
CREATE TABLE access_tokens (
  token_hash  bytea PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  create_time timestamptz NOT NULL DEFAULT now(),
  expire_time timestamptz NOT NULL
);
CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);

CREATE TABLE chats (
  chat_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- 1 direct, 2 group (parley.v1.ChatType).
  type            smallint NOT NULL CHECK (type IN (1, 2)),
  title           text NOT NULL DEFAULT '',
  -- "<min_user_id>:<max_user_id>" for direct chats, NULL for groups.
  direct_key      text UNIQUE,
  -- Seq of the latest chat_events row; bumped under the row lock.
  last_seq        bigint NOT NULL DEFAULT 0,
  -- Last activity, for ListChats ordering; creation time until then.
  last_event_time timestamptz NOT NULL DEFAULT now(),
  create_time     timestamptz NOT NULL DEFAULT now(),
  CHECK ((type = 1) = (direct_key IS NOT NULL))
);

CREATE TABLE chat_members (
  chat_id       bigint NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
  user_id       bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  -- 1 member, 2 admin.
  role          smallint NOT NULL DEFAULT 1 CHECK (role IN (1, 2)),
  -- Orders members by seniority (lowest = longest-standing).
  join_ordinal  bigint GENERATED ALWAYS AS IDENTITY,
  join_time     timestamptz NOT NULL DEFAULT now(),
  read_seq      bigint NOT NULL DEFAULT 0,
  delivered_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user_id_idx ON chat_members (user_id);

CREATE TABLE messages (
  message_id          bigint PRIMARY KEY,
  chat_id             bigint NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
  seq                 bigint NOT NULL,
  sender_id           bigint NOT NULL REFERENCES users (user_id),
  client_message_id   text NOT NULL,
  -- SHA-256 over chat, reply, file and text: tells a retry from a reuse.
  content_hash        bytea NOT NULL,
  text                text NOT NULL DEFAULT '',
  file_id             bigint,
  reply_to_message_id bigint,
  create_time         timestamptz NOT NULL DEFAULT now(),
  edit_time           timestamptz,
  deleted             boolean NOT NULL DEFAULT false,
  UNIQUE (chat_id, seq),
  UNIQUE (sender_id, client_message_id)
);

-- The ordered, gap-free event log of each chat.
CREATE TABLE chat_events (
  chat_id     bigint NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
  seq         bigint NOT NULL,
  -- 1 message_created, 2 message_edited, 3 message_deleted,
  -- 4 reaction_changed, 5 members_changed.
  kind        smallint NOT NULL CHECK (kind BETWEEN 1 AND 5),
  message_id  bigint REFERENCES messages (message_id) ON DELETE CASCADE,
  -- Serialized parley.v1.Chat for members_changed.
  payload     bytea,
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chat_id, seq)
);
