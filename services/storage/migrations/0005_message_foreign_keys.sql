-- Messages and chat events carry no foreign keys.
-- Migrations are only ever added, never edited once released.
--
-- Every message insert ran four referential checks (messages.chat_id,
-- messages.sender_id, chat_events.chat_id, chat_events.message_id), each a
-- locking index probe planned and run per row: a quarter of PostgreSQL's
-- CPU per message (docs/performance.md). Storage already guarantees what
-- they checked:
-- - every message and every event is written by a transaction that has
--   bumped its chat's last_seq (so the chat exists and is row-locked);
-- - a message's sender was read among the chat's members in that
--   transaction, and chat_members keeps its keys to chats and users;
-- - an event's message was read or written in that transaction;
-- - chats, users and messages are never deleted (deleting a message clears
--   it in place). Whatever comes to delete them must delete their rows here
--   in the same transaction.
-- message_edits and reactions keep their keys to messages.
ALTER TABLE messages
  DROP CONSTRAINT messages_chat_id_fkey,
  DROP CONSTRAINT messages_sender_id_fkey;
ALTER TABLE chat_events
  DROP CONSTRAINT chat_events_chat_id_fkey,
  DROP CONSTRAINT chat_events_message_id_fkey;
