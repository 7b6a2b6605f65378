// All SQL of the storage service: users, access tokens, chats, members,
// messages and the per-chat event log, over a PgPool. Plain C++ with proto
// messages in and out; every failure is an absl::Status whose message names
// the offending field and never quotes user text.
//
//   parley::PgPool pool({.url = url, .size = 8});
//   parley::storage::StorageRepository repo(&pool);
//   internal::v1::CreateUserRequest req;
//   req.set_username("alice");
//   ...
//   absl::StatusOr<parley::v1::User> user = repo.CreateUser(req);
//
// Every call blocks on the database; callers on gRPC reactor threads must
// hand it to a ThreadPool.
#ifndef PARLEY_SERVICES_STORAGE_STORAGE_REPOSITORY_H_
#define PARLEY_SERVICES_STORAGE_STORAGE_REPOSITORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parley/internal/v1/storage.pb.h"
#include "parley/v1/parley.pb.h"
#include "services/storage/page_token.h"

namespace parley {
class PgPool;
}  // namespace parley

namespace parley::storage {

// Request size limits of RecordLastSeen and GetVisibleUsers.
inline constexpr int kMaxRecordLastSeenUsers = 10000;
inline constexpr int kMaxVisibleUsers = 500;
// Distinct emoji per message when ReactionRequest.max_distinct_emoji is 0.
inline constexpr int kDefaultMaxDistinctEmoji = 20;

class StorageRepository {
 public:
  // `pool` must outlive the repository.
  explicit StorageRepository(PgPool* pool);

  // ALREADY_EXISTS "username: already taken".
  absl::StatusOr<v1::User> CreateUser(
      const internal::v1::CreateUserRequest& req);
  // NOT_FOUND when the username is unknown.
  absl::StatusOr<internal::v1::UserCredentials> GetUserCredentials(
      const internal::v1::GetUserCredentialsRequest& req);
  // NOT_FOUND for an unknown user.
  absl::Status CreateAccessToken(
      const internal::v1::CreateAccessTokenRequest& req);
  // UNAUTHENTICATED when the hash is unknown or the token expired.
  absl::StatusOr<internal::v1::ResolveAccessTokenResponse> ResolveAccessToken(
      const internal::v1::ResolveAccessTokenRequest& req);

  // One chat per unordered pair, also under concurrent creation.
  absl::StatusOr<v1::Chat> CreateDirectChat(
      const internal::v1::CreateDirectChatRequest& req);
  absl::StatusOr<v1::Chat> CreateGroupChat(
      const internal::v1::CreateGroupChatRequest& req);
  // duplicate=true and no event when every user is already a member.
  absl::StatusOr<internal::v1::ChatEventResult> AddMembers(
      const internal::v1::AddMembersRequest& req);
  // Recipients include the removed user.
  absl::StatusOr<internal::v1::ChatEventResult> RemoveMember(
      const internal::v1::RemoveMemberRequest& req);
  absl::StatusOr<v1::ListChatsResponse> ListChats(
      const internal::v1::ListChatsRequest& req);
  absl::StatusOr<v1::Chat> GetChat(const internal::v1::GetChatRequest& req);

  // Idempotent per (sender, client_message_id): a retry with the same
  // content returns the original message with duplicate=true. A file_id
  // must name a file the sender uploaded to this chat (NOT_FOUND
  // "file_id: ..." when unknown, else INVALID_ARGUMENT "file_id: ..."); the
  // text may then be empty. Messages read anywhere carry the file's
  // metadata in Message.file.
  // For a new message, `chat` carries only chat_id and last_seq (this
  // message's seq); a retry returns the chat as the sender sees it.
  absl::StatusOr<internal::v1::ChatEventResult> AppendMessage(
      const internal::v1::AppendMessageRequest& req);
  // Group commit: appends many messages in one transaction, so they share
  // one commit (one WAL flush) and a handful of statements. Results are in
  // request order, each what AppendMessage would answer for it alone; one
  // request failing does not affect the others. A database failure fails
  // them all. The same (sender, client_message_id) must not appear twice.
  std::vector<absl::StatusOr<internal::v1::ChatEventResult>> AppendMessages(
      const std::vector<const internal::v1::AppendMessageRequest*>& reqs);
  absl::StatusOr<v1::ListMessagesResponse> ListMessages(
      const internal::v1::ListMessagesRequest& req);
  absl::StatusOr<v1::SyncChatResponse> SyncChat(
      const internal::v1::SyncChatRequest& req);

  // Edits, deletes and reactions. Each change records one chat event (next
  // seq, same transaction) carrying the message's current state; a call
  // that changes nothing records none and answers duplicate=true with the
  // current message in the event (event.seq 0). Recipients are all members.
  // Common errors: INVALID_ARGUMENT for ids <= 0, NOT_FOUND "chat_id: ..."
  // for an unknown chat, PERMISSION_DENIED for a non-member, NOT_FOUND
  // "message_id: ..." for a message not in the chat.
  //
  // Sender only (else PERMISSION_DENIED); FAILED_PRECONDITION for a deleted
  // message. The replaced text is kept in message_edits. The same text again
  // is a duplicate.
  absl::StatusOr<internal::v1::ChatEventResult> EditMessage(
      const internal::v1::EditMessageRequest& req);
  // The sender, or an admin of a group chat (else PERMISSION_DENIED). Leaves
  // a tombstone (no text, file, reactions or edit history; seq, sender and
  // times kept). Deleting a deleted message is a duplicate.
  absl::StatusOr<internal::v1::ChatEventResult> DeleteMessage(
      const internal::v1::DeleteMessageRequest& req);
  // Idempotent per (user, message, emoji). FAILED_PRECONDITION for a deleted
  // message; RESOURCE_EXHAUSTED when the emoji is new and the message
  // already has max_distinct_emoji (0: kDefaultMaxDistinctEmoji) distinct
  // ones.
  absl::StatusOr<internal::v1::ChatEventResult> AddReaction(
      const internal::v1::ReactionRequest& req);
  // A duplicate when the user had no such reaction.
  absl::StatusOr<internal::v1::ChatEventResult> RemoveReaction(
      const internal::v1::ReactionRequest& req);

  // Moves the member's delivered/read watermarks forward, never back, also
  // under concurrent calls. Requested seqs are clamped to the chat's
  // last_seq; delivered is raised to at least read. Writes no chat event and
  // leaves last_seq alone. NOT_FOUND "chat_id: ..." for an unknown chat,
  // PERMISSION_DENIED for a non-member. Recipients are the other members.
  absl::StatusOr<internal::v1::UpdateReceiptResponse> UpdateReceipt(
      const internal::v1::UpdateReceiptRequest& req);
  // Distinct users sharing a direct chat with the user, ascending; empty for
  // an unknown user.
  absl::StatusOr<internal::v1::ListContactsResponse> ListContacts(
      const internal::v1::ListContactsRequest& req);
  // Members in join order. NOT_FOUND for an unknown chat; PERMISSION_DENIED
  // when req.user_id() is non-zero and not a member.
  absl::StatusOr<internal::v1::GetChatMembersResponse> GetChatMembers(
      const internal::v1::GetChatMembersRequest& req);
  // Sets each user's last_seen_time to the later of the stored one and the
  // given one. Unknown (and non-positive) ids are ignored; more than
  // kMaxRecordLastSeenUsers ids is INVALID_ARGUMENT "user_ids: ...".
  absl::Status RecordLastSeen(const internal::v1::RecordLastSeenRequest& req);
  // One entry per requested id, in request order (duplicates answered
  // each). Visible: the viewer itself, or a user currently sharing at least
  // one chat with the viewer; last_seen_time only when visible and known.
  // Unknown ids are not visible. More than kMaxVisibleUsers ids is
  // INVALID_ARGUMENT "user_ids: at most 500".
  absl::StatusOr<internal::v1::GetVisibleUsersResponse> GetVisibleUsers(
      const internal::v1::GetVisibleUsersRequest& req);

  // OK when `user_id` may read the file: its uploader, or a member of the
  // chat in which a message that is not deleted references it.
  // NOT_FOUND "file_id: ..." for an unknown file, else PERMISSION_DENIED.
  absl::Status CheckFileAccess(int64_t user_id, int64_t file_id);

 private:
  PgPool* const pool_;
};

// SHA-256 over the parts of a message that make a retry identical.
std::string MessageContentHash(int64_t chat_id, const std::string& text,
                               int64_t reply_to_message_id, int64_t file_id);

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_STORAGE_REPOSITORY_H_
