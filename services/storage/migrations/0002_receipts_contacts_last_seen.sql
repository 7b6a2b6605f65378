-- Durable last-seen times, and the membership index that contacts and
-- presence visibility join on.
-- Migrations are only ever added, never edited once released.

-- When the user was last online; NULL if never recorded. Only ever moves
-- forward (RecordLastSeen keeps the later of the stored and the new time).
ALTER TABLE users ADD COLUMN last_seen_time timestamptz NULL;

-- The chats of a user with the chat id in the key, so "chats of user X"
-- (ListChats, ListContacts, GetVisibleUsers) never has to visit the heap
-- for the chat id. It covers every query chat_members_user_id_idx served.
CREATE INDEX chat_members_user_id_chat_id_idx ON chat_members (user_id, chat_id);
DROP INDEX chat_members_user_id_idx;
