#include "services/storage/storage_repository.h"

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/pg/pg_pool.h"
#include "common/validation.h"

namespace parley::storage {
namespace {

namespace iv1 = ::parley::internal::v1;
namespace pv1 = ::parley::v1;

constexpr int kChatDirect = 1;
constexpr int kRoleMember = 1;
constexpr int kRoleAdmin = 2;
constexpr int kEventMessageCreated = 1;
constexpr int kEventMessageEdited = 2;
constexpr int kEventMessageDeleted = 3;
constexpr int kEventReactionChanged = 4;
constexpr int kEventMembersChanged = 5;

// SQL for "microseconds since the Unix epoch" of a timestamptz expression.
// extract() yields numeric, so the value is exact.
#define PARLEY_US(expr) "(extract(epoch from " expr ") * 1000000)::bigint"

// Columns read by ReadMessage, in order; `m` is the messages table.
constexpr char kMessageColumns[] =
    "m.message_id, m.chat_id, m.seq, m.sender_id, m.client_message_id, "
    "m.text, m.file_id, m.reply_to_message_id, " PARLEY_US(
        "m.create_time") ", " PARLEY_US("m.edit_time") ", m.deleted";

google::protobuf::Timestamp TimestampFromUs(int64_t us) {
  int64_t seconds = us / 1000000;
  int64_t rest = us % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(rest * 1000));
  return t;
}

int64_t UsFromTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

// INVALID_ARGUMENT unless `t` is a valid google.protobuf.Timestamp
// (0001-01-01 to 9999-12-31, nanos in [0, 1e9)).
absl::Status ValidateTimestamp(absl::string_view field,
                               const google::protobuf::Timestamp& t) {
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a valid timestamp"));
  }
  return absl::OkStatus();
}

// A bigint[] literal for a `$n::bigint[]` parameter.
std::string IdArray(const std::vector<int64_t>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

absl::Status RequireId(absl::string_view field, int64_t id) {
  if (id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a positive id"));
  }
  return absl::OkStatus();
}

absl::Status RequireOptionalId(absl::string_view field, int64_t id) {
  if (id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not be negative"));
  }
  return absl::OkStatus();
}

int64_t PageSize(int32_t page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return std::min<int64_t>(page_size, kMaxPageSize);
}

int64_t ClampSeq(uint64_t seq) {
  return static_cast<int64_t>(std::min<uint64_t>(
      seq, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

std::vector<int64_t> Dedupe(const google::protobuf::RepeatedField<int64_t>& ids,
                            int64_t skip) {
  std::vector<int64_t> out;
  std::unordered_set<int64_t> seen;
  for (int64_t id : ids) {
    if (id == skip || !seen.insert(id).second) continue;
    out.push_back(id);
  }
  return out;
}

absl::Status ChatNotFound(int64_t chat_id) {
  return absl::NotFoundError(
      absl::StrCat("chat_id: chat ", chat_id, " not found"));
}

absl::Status NotAMember() {
  return absl::PermissionDeniedError(
      "chat_id: the caller is not a member of this chat");
}

// Returns the first of `wanted` that is not a user, or 0.
int64_t FirstUnknownUser(pqxx::work& tx, const std::vector<int64_t>& wanted) {
  std::set<int64_t> found;
  for (const auto& row : tx.exec_params(
           "SELECT user_id FROM users WHERE user_id = ANY($1::bigint[])",
           IdArray(wanted))) {
    found.insert(row[0].as<int64_t>());
  }
  for (int64_t id : wanted) {
    if (!found.count(id)) return id;
  }
  return 0;
}

struct Membership {
  int type = 0;
  int role = 0;  // 0 when not a member
};

// NOT_FOUND for an unknown chat, PERMISSION_DENIED for a non-member. With
// `lock` the chat row is locked FOR UPDATE, serialising membership changes.
absl::StatusOr<Membership> CheckMember(pqxx::work& tx, int64_t chat_id,
                                       int64_t user_id, bool lock) {
  const pqxx::result r =
      tx.exec_params(absl::StrCat("SELECT c.type, m.role FROM chats c "
                                  "LEFT JOIN chat_members m "
                                  "ON m.chat_id = c.chat_id AND m.user_id = $2 "
                                  "WHERE c.chat_id = $1",
                                  lock ? " FOR UPDATE OF c" : ""),
                     chat_id, user_id);
  if (r.empty()) return ChatNotFound(chat_id);
  if (r[0][1].is_null()) return NotAMember();
  return Membership{r[0][0].as<int>(), r[0][1].as<int>()};
}

// Loads chats as `viewer` sees them (unread_count is 0 for a non-member),
// keyed by id.
std::map<int64_t, pv1::Chat> LoadChats(pqxx::work& tx, int64_t viewer,
                                       const std::vector<int64_t>& ids) {
  std::map<int64_t, pv1::Chat> chats;
  if (ids.empty()) return chats;
  const std::string array = IdArray(ids);
  const pqxx::result r = tx.exec_params(
      "SELECT c.chat_id, c.type, c.title, c.last_seq, " PARLEY_US(
          "c.create_time") ", "
                           "(SELECT count(*) FROM messages x "
                           " WHERE x.chat_id = c.chat_id AND x.seq > m.read_seq"
                           " AND x.sender_id <> $1 AND NOT x.deleted) "
                           "FROM chats c LEFT JOIN chat_members m "
                           "ON m.chat_id = c.chat_id AND m.user_id = $1 "
                           "WHERE c.chat_id = ANY($2::bigint[])",
      viewer, array);
  for (const auto& row : r) {
    const int64_t id = row[0].as<int64_t>();
    pv1::Chat& chat = chats[id];
    chat.set_chat_id(FormatId(id));
    chat.set_type(static_cast<pv1::ChatType>(row[1].as<int>()));
    chat.set_title(row[2].as<std::string>());
    chat.set_last_seq(row[3].as<uint64_t>());
    *chat.mutable_create_time() = TimestampFromUs(row[4].as<int64_t>());
    chat.set_unread_count(row[5].is_null() ? 0 : row[5].as<uint64_t>());
  }
  const pqxx::result members = tx.exec_params(
      "SELECT chat_id, user_id, role FROM chat_members "
      "WHERE chat_id = ANY($1::bigint[]) ORDER BY chat_id, join_ordinal",
      array);
  for (const auto& row : members) {
    auto it = chats.find(row[0].as<int64_t>());
    if (it == chats.end()) continue;
    const std::string user = FormatId(row[1].as<int64_t>());
    it->second.add_member_user_ids(user);
    if (row[2].as<int>() == kRoleAdmin) it->second.add_admin_user_ids(user);
  }
  return chats;
}

absl::StatusOr<pv1::Chat> LoadChat(pqxx::work& tx, int64_t viewer,
                                   int64_t chat_id) {
  auto chats = LoadChats(tx, viewer, {chat_id});
  auto it = chats.find(chat_id);
  if (it == chats.end()) return ChatNotFound(chat_id);
  return std::move(it->second);
}

std::vector<int64_t> MemberIds(const pv1::Chat& chat) {
  std::vector<int64_t> ids;
  for (const auto& s : chat.member_user_ids()) {
    int64_t id = 0;
    if (absl::SimpleAtoi(s, &id)) ids.push_back(id);
  }
  return ids;
}

// Fills `msg` from kMessageColumns starting at column `at`.
void ReadMessage(const pqxx::row& row, int at, pv1::Message* msg) {
  msg->set_message_id(FormatId(row[at].as<int64_t>()));
  msg->set_chat_id(FormatId(row[at + 1].as<int64_t>()));
  msg->set_seq(row[at + 2].as<uint64_t>());
  msg->set_sender_user_id(FormatId(row[at + 3].as<int64_t>()));
  msg->set_client_message_id(row[at + 4].as<std::string>());
  const bool deleted = row[at + 10].as<bool>();
  msg->set_deleted(deleted);
  if (!deleted) {
    msg->set_text(row[at + 5].as<std::string>());
    if (!row[at + 6].is_null()) {
      msg->mutable_file()->set_file_id(FormatId(row[at + 6].as<int64_t>()));
    }
  }
  if (!row[at + 7].is_null()) {
    msg->set_reply_to_message_id(FormatId(row[at + 7].as<int64_t>()));
  }
  *msg->mutable_create_time() = TimestampFromUs(row[at + 8].as<int64_t>());
  if (!row[at + 9].is_null()) {
    *msg->mutable_edit_time() = TimestampFromUs(row[at + 9].as<int64_t>());
  }
}

// Fills the reactions of `msgs` (tombstones have none) with one query:
// per emoji {emoji, count, user_ids}, emoji by first reaction time then
// emoji, users in reaction order. A message may appear more than once.
void AttachReactions(pqxx::work& tx, const std::vector<pv1::Message*>& msgs) {
  std::map<int64_t, std::vector<pv1::Message*>> by_id;
  for (pv1::Message* msg : msgs) {
    msg->clear_reactions();
    int64_t id = 0;
    if (msg->deleted() || !absl::SimpleAtoi(msg->message_id(), &id)) continue;
    by_id[id].push_back(msg);
  }
  if (by_id.empty()) return;
  std::vector<int64_t> ids;
  for (const auto& [id, unused] : by_id) ids.push_back(id);
  const pqxx::result r = tx.exec_params(
      "SELECT message_id, emoji, count(*), "
      "string_agg(user_id::text, ',' ORDER BY create_time, ordinal) "
      "FROM reactions WHERE message_id = ANY($1::bigint[]) "
      "GROUP BY message_id, emoji "
      "ORDER BY message_id, min(create_time), emoji",
      IdArray(ids));
  for (const auto& row : r) {
    auto it = by_id.find(row[0].as<int64_t>());
    if (it == by_id.end()) continue;
    pv1::Reaction reaction;
    reaction.set_emoji(row[1].as<std::string>());
    reaction.set_count(row[2].as<uint64_t>());
    for (absl::string_view user :
         absl::StrSplit(row[3].as<std::string>(), ',', absl::SkipEmpty())) {
      reaction.add_user_ids(std::string(user));
    }
    for (pv1::Message* msg : it->second) *msg->add_reactions() = reaction;
  }
}

// Fills the file metadata of `msgs` whose file_id is set (by ReadMessage)
// with one query. A message may appear more than once.
void AttachFiles(pqxx::work& tx, const std::vector<pv1::Message*>& msgs) {
  std::map<int64_t, std::vector<pv1::Message*>> by_id;
  for (pv1::Message* msg : msgs) {
    int64_t id = 0;
    if (!msg->has_file() || !absl::SimpleAtoi(msg->file().file_id(), &id)) {
      continue;
    }
    by_id[id].push_back(msg);
  }
  if (by_id.empty()) return;
  std::vector<int64_t> ids;
  for (const auto& [id, unused] : by_id) ids.push_back(id);
  const pqxx::result r = tx.exec_params(
      "SELECT file_id, name, content_type, size_bytes, encode(sha256, 'hex') "
      "FROM files WHERE file_id = ANY($1::bigint[])",
      IdArray(ids));
  for (const auto& row : r) {
    auto it = by_id.find(row[0].as<int64_t>());
    if (it == by_id.end()) continue;
    for (pv1::Message* msg : it->second) {
      pv1::File* file = msg->mutable_file();
      file->set_name(row[1].as<std::string>());
      file->set_content_type(row[2].as<std::string>());
      file->set_size_bytes(row[3].as<int64_t>());
      file->set_sha256(row[4].as<std::string>());
    }
  }
}

// The Message slot of `event` for a message event kind, or nullptr.
pv1::Message* EventMessage(pv1::ChatEvent* event, int kind) {
  switch (kind) {
    case kEventMessageCreated:
      return event->mutable_message_created();
    case kEventMessageEdited:
      return event->mutable_message_edited();
    case kEventMessageDeleted:
      return event->mutable_message_deleted();
    case kEventReactionChanged:
      return event->mutable_reaction_changed();
    default:
      return nullptr;
  }
}

// The message a change applies to, read under the chat row lock.
struct TargetMessage {
  Membership member;
  int64_t sender = 0;
  bool deleted = false;
  bool has_file = false;
  std::string text;
};

// Locks the chat row (serialising every change of the chat), then checks
// membership and that the message belongs to the chat.
absl::StatusOr<TargetMessage> LockTarget(pqxx::work& tx, int64_t chat_id,
                                         int64_t actor, int64_t message_id) {
  absl::StatusOr<Membership> me = CheckMember(tx, chat_id, actor, true);
  if (!me.ok()) return me.status();
  const pqxx::result r = tx.exec_params(
      "SELECT sender_id, deleted, file_id IS NOT NULL, text FROM messages "
      "WHERE message_id = $1 AND chat_id = $2",
      message_id, chat_id);
  if (r.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "message_id: message ", message_id, " not found in this chat"));
  }
  TargetMessage target;
  target.member = *me;
  target.sender = r[0][0].as<int64_t>();
  target.deleted = r[0][1].as<bool>();
  target.has_file = r[0][2].as<bool>();
  target.text = r[0][3].as<std::string>();
  return target;
}

// Ends a message change: when `changed`, takes the chat's next seq and
// records an event of `kind`; fills `result` with the event carrying the
// current message, the chat as `actor` sees it and every member as
// recipient. Unchanged: no event, event.seq 0, duplicate=true.
absl::Status FinishMessageChange(pqxx::work& tx, int64_t chat_id,
                                 int64_t actor, int64_t message_id, int kind,
                                 bool changed, iv1::ChatEventResult* result) {
  pv1::ChatEvent* event = result->mutable_event();
  event->set_chat_id(FormatId(chat_id));
  if (changed) {
    // The chat row is already locked by LockTarget. Activity order
    // (last_event_time) follows messages and membership only.
    const pqxx::result bumped = tx.exec_params(
        "UPDATE chats SET last_seq = last_seq + 1 WHERE chat_id = $1 "
        "RETURNING last_seq",
        chat_id);
    if (bumped.empty()) return ChatNotFound(chat_id);
    const int64_t seq = bumped[0][0].as<int64_t>();
    const pqxx::result ev = tx.exec_params(
        "INSERT INTO chat_events (chat_id, seq, kind, message_id) "
        "VALUES ($1, $2, $3, $4) RETURNING " PARLEY_US("create_time"),
        chat_id, seq, kind, message_id);
    event->set_seq(static_cast<uint64_t>(seq));
    *event->mutable_create_time() = TimestampFromUs(ev[0][0].as<int64_t>());
  }
  const pqxx::result m = tx.exec_params(
      absl::StrCat("SELECT ", kMessageColumns,
                   " FROM messages m WHERE m.message_id = $1"),
      message_id);
  if (m.empty()) return absl::InternalError("changed message vanished");
  pv1::Message* msg = EventMessage(event, kind);
  if (msg == nullptr) return absl::InternalError("unknown event kind");
  ReadMessage(m[0], 0, msg);
  AttachReactions(tx, {msg});
  AttachFiles(tx, {msg});
  absl::StatusOr<pv1::Chat> chat = LoadChat(tx, actor, chat_id);
  if (!chat.ok()) return chat.status();
  for (int64_t id : MemberIds(*chat)) result->add_recipient_user_ids(id);
  *result->mutable_chat() = std::move(*chat);
  result->set_duplicate(!changed);
  return absl::OkStatus();
}

// Bumps the chat's seq, records a members_changed event carrying the chat
// after the change, and fills `result` for `actor`. `also_notify` (when
// non-zero) is added to the recipients.
absl::Status AppendMembersChanged(pqxx::work& tx, int64_t chat_id,
                                  int64_t actor, int64_t also_notify,
                                  iv1::ChatEventResult* result) {
  const pqxx::result bumped = tx.exec_params(
      "UPDATE chats SET last_seq = last_seq + 1, last_event_time = now() "
      "WHERE chat_id = $1 RETURNING last_seq",
      chat_id);
  if (bumped.empty()) return ChatNotFound(chat_id);
  const int64_t seq = bumped[0][0].as<int64_t>();
  // The event carries a viewer-neutral chat (unread_count 0).
  absl::StatusOr<pv1::Chat> neutral = LoadChat(tx, 0, chat_id);
  if (!neutral.ok()) return neutral.status();
  const std::string payload = neutral->SerializeAsString();
  const pqxx::result ev = tx.exec_params(
      "INSERT INTO chat_events (chat_id, seq, kind, payload) "
      "VALUES ($1, $2, $3, $4) RETURNING " PARLEY_US("create_time"),
      chat_id, seq, kEventMembersChanged,
      pqxx::binarystring(payload.data(), payload.size()));
  pv1::ChatEvent* event = result->mutable_event();
  event->set_chat_id(FormatId(chat_id));
  event->set_seq(static_cast<uint64_t>(seq));
  *event->mutable_create_time() = TimestampFromUs(ev[0][0].as<int64_t>());
  std::vector<int64_t> recipients = MemberIds(*neutral);
  if (also_notify != 0 && std::find(recipients.begin(), recipients.end(),
                                    also_notify) == recipients.end()) {
    recipients.push_back(also_notify);
  }
  *event->mutable_members_changed() = std::move(*neutral);
  absl::StatusOr<pv1::Chat> mine = LoadChat(tx, actor, chat_id);
  if (!mine.ok()) return mine.status();
  *result->mutable_chat() = std::move(*mine);
  for (int64_t id : recipients) result->add_recipient_user_ids(id);
  result->set_duplicate(false);
  return absl::OkStatus();
}

// Fills `result` with the message_created event of an existing message, as
// the answer to a retried AppendMessage.
absl::Status LoadOriginalMessage(pqxx::work& tx, int64_t message_id,
                                 int64_t sender, iv1::ChatEventResult* result) {
  const pqxx::result r = tx.exec_params(
      absl::StrCat("SELECT e.seq, " PARLEY_US("e.create_time") ", ",
                   kMessageColumns,
                   " FROM messages m JOIN chat_events e "
                   "ON e.chat_id = m.chat_id AND e.seq = m.seq "
                   "WHERE m.message_id = $1"),
      message_id);
  if (r.empty()) return absl::InternalError("message without its event");
  pv1::ChatEvent* event = result->mutable_event();
  ReadMessage(r[0], 2, event->mutable_message_created());
  AttachReactions(tx, {event->mutable_message_created()});
  AttachFiles(tx, {event->mutable_message_created()});
  event->set_chat_id(event->message_created().chat_id());
  event->set_seq(r[0][0].as<uint64_t>());
  *event->mutable_create_time() = TimestampFromUs(r[0][1].as<int64_t>());
  int64_t chat_id = 0;
  (void)absl::SimpleAtoi(event->chat_id(), &chat_id);
  absl::StatusOr<pv1::Chat> chat = LoadChat(tx, sender, chat_id);
  if (!chat.ok()) return chat.status();
  for (int64_t id : MemberIds(*chat)) result->add_recipient_user_ids(id);
  *result->mutable_chat() = std::move(*chat);
  result->set_duplicate(true);
  return absl::OkStatus();
}

}  // namespace

std::string MessageContentHash(int64_t chat_id, const std::string& text,
                               int64_t reply_to_message_id, int64_t file_id) {
  // Fixed-format numbers first, so the separator cannot be ambiguous.
  const std::string input =
      absl::StrCat(chat_id, "|", reply_to_message_id, "|", file_id, "|", text);
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size());
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

StorageRepository::StorageRepository(PgPool* pool) : pool_(pool) {}

absl::StatusOr<pv1::User> StorageRepository::CreateUser(
    const iv1::CreateUserRequest& req) {
  if (req.username().empty()) {
    return absl::InvalidArgumentError("username: must not be empty");
  }
  if (req.password_hash().empty()) {
    return absl::InvalidArgumentError("password_hash: must not be empty");
  }
  const std::string display_name =
      req.display_name().empty() ? req.username() : req.display_name();
  pv1::User user;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const pqxx::result r = tx.exec_params(
        "INSERT INTO users (username, display_name, password_hash) "
        "VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING "
        "RETURNING user_id",
        req.username(), display_name, req.password_hash());
    if (r.empty()) return absl::AlreadyExistsError("username: already taken");
    user.set_user_id(FormatId(r[0][0].as<int64_t>()));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  user.set_username(req.username());
  user.set_display_name(display_name);
  return user;
}

absl::StatusOr<iv1::UserCredentials> StorageRepository::GetUserCredentials(
    const iv1::GetUserCredentialsRequest& req) {
  iv1::UserCredentials creds;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const pqxx::result r = tx.exec_params(
        "SELECT user_id, username, display_name, password_hash FROM users "
        "WHERE username = $1",
        req.username());
    if (r.empty()) return absl::NotFoundError("username: user not found");
    pv1::User* user = creds.mutable_user();
    user->set_user_id(FormatId(r[0][0].as<int64_t>()));
    user->set_username(r[0][1].as<std::string>());
    user->set_display_name(r[0][2].as<std::string>());
    creds.set_password_hash(r[0][3].as<std::string>());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return creds;
}

absl::Status StorageRepository::CreateAccessToken(
    const iv1::CreateAccessTokenRequest& req) {
  if (auto s = RequireId("user_id", req.user_id()); !s.ok()) return s;
  if (req.token_hash().empty()) {
    return absl::InvalidArgumentError("token_hash: must not be empty");
  }
  if (!req.has_expire_time()) {
    return absl::InvalidArgumentError("expire_time: must be set");
  }
  const int64_t expire_us = UsFromTimestamp(req.expire_time());
  return pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    if (tx.exec_params("SELECT 1 FROM users WHERE user_id = $1", req.user_id())
            .empty()) {
      return absl::NotFoundError(
          absl::StrCat("user_id: user ", req.user_id(), " not found"));
    }
    const pqxx::result r = tx.exec_params(
        "INSERT INTO access_tokens (token_hash, user_id, expire_time) "
        "VALUES ($1, $2, timestamptz 'epoch' + $3::bigint * interval "
        "'1 microsecond') ON CONFLICT (token_hash) DO NOTHING RETURNING 1",
        pqxx::binarystring(req.token_hash().data(), req.token_hash().size()),
        req.user_id(), expire_us);
    if (r.empty()) {
      return absl::AlreadyExistsError("token_hash: already exists");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<iv1::ResolveAccessTokenResponse>
StorageRepository::ResolveAccessToken(
    const iv1::ResolveAccessTokenRequest& req) {
  const absl::Status unauthenticated =
      absl::UnauthenticatedError("access token is unknown or expired");
  if (req.token_hash().empty()) return unauthenticated;
  iv1::ResolveAccessTokenResponse resp;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const pqxx::result r = tx.exec_params(
        "SELECT user_id, " PARLEY_US("expire_time")
        " FROM access_tokens WHERE token_hash = $1 AND expire_time > now()",
        pqxx::binarystring(req.token_hash().data(), req.token_hash().size()));
    if (r.empty()) return unauthenticated;
    resp.set_user_id(r[0][0].as<int64_t>());
    *resp.mutable_expire_time() = TimestampFromUs(r[0][1].as<int64_t>());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<pv1::Chat> StorageRepository::CreateDirectChat(
    const iv1::CreateDirectChatRequest& req) {
  const int64_t user = req.user_id();
  const int64_t peer = req.peer_user_id();
  if (auto s = RequireId("user_id", user); !s.ok()) return s;
  if (auto s = RequireId("peer_user_id", peer); !s.ok()) return s;
  if (user == peer) {
    return absl::InvalidArgumentError(
        "peer_user_id: cannot start a direct chat with yourself");
  }
  const std::string key =
      absl::StrCat(std::min(user, peer), ":", std::max(user, peer));
  pv1::Chat chat;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const int64_t unknown = FirstUnknownUser(tx, {peer, user});
    if (unknown != 0) {
      return absl::NotFoundError(
          absl::StrCat(unknown == peer ? "peer_user_id" : "user_id", ": user ",
                       unknown, " not found"));
    }
    // A concurrent creator makes this wait for its commit and then do
    // nothing; the SELECT below (a new snapshot) then sees its chat.
    pqxx::result r = tx.exec_params(
        "INSERT INTO chats (type, direct_key) VALUES ($1, $2) "
        "ON CONFLICT (direct_key) DO NOTHING RETURNING chat_id",
        kChatDirect, key);
    int64_t chat_id = 0;
    if (!r.empty()) {
      chat_id = r[0][0].as<int64_t>();
      tx.exec_params(
          "INSERT INTO chat_members (chat_id, user_id, role) "
          "VALUES ($1, $2, $4), ($1, $3, $4)",
          chat_id, user, peer, kRoleMember);
    } else {
      r = tx.exec_params("SELECT chat_id FROM chats WHERE direct_key = $1",
                         key);
      if (r.empty()) return absl::AbortedError("direct chat creation raced");
      chat_id = r[0][0].as<int64_t>();
    }
    absl::StatusOr<pv1::Chat> loaded = LoadChat(tx, user, chat_id);
    if (!loaded.ok()) return loaded.status();
    chat = std::move(*loaded);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return chat;
}

absl::StatusOr<pv1::Chat> StorageRepository::CreateGroupChat(
    const iv1::CreateGroupChatRequest& req) {
  const int64_t creator = req.creator_user_id();
  if (auto s = RequireId("creator_user_id", creator); !s.ok()) return s;
  if (req.title().empty()) {
    return absl::InvalidArgumentError("title: must not be empty");
  }
  for (int64_t id : req.member_user_ids()) {
    if (auto s = RequireId("member_user_ids", id); !s.ok()) return s;
  }
  std::vector<int64_t> members = Dedupe(req.member_user_ids(), creator);
  members.insert(members.begin(), creator);
  if (req.max_members() > 0 &&
      members.size() > static_cast<size_t>(req.max_members())) {
    return absl::FailedPreconditionError(
        absl::StrCat("member_user_ids: a group can have at most ",
                     req.max_members(), " members"));
  }
  pv1::Chat chat;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const int64_t unknown = FirstUnknownUser(tx, members);
    if (unknown != 0) {
      return absl::NotFoundError(absl::StrCat(
          unknown == creator ? "creator_user_id" : "member_user_ids", ": user ",
          unknown, " not found"));
    }
    const int64_t chat_id =
        tx.exec_params1(
              "INSERT INTO chats (type, title) VALUES (2, $1) "
              "RETURNING chat_id",
              req.title())[0]
            .as<int64_t>();
    // Creator first, so join order is creator, then the list order.
    tx.exec_params(
        "INSERT INTO chat_members (chat_id, user_id, role) "
        "SELECT $1::bigint, t.u, CASE WHEN t.u = $2::bigint THEN $3::smallint "
        "ELSE $4::smallint END "
        "FROM unnest($5::bigint[]) WITH ORDINALITY AS t(u, ord) "
        "ORDER BY t.ord",
        chat_id, creator, kRoleAdmin, kRoleMember, IdArray(members));
    absl::StatusOr<pv1::Chat> loaded = LoadChat(tx, creator, chat_id);
    if (!loaded.ok()) return loaded.status();
    chat = std::move(*loaded);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return chat;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::AddMembers(
    const iv1::AddMembersRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  if (auto s = RequireId("actor_user_id", actor); !s.ok()) return s;
  if (auto s = RequireId("chat_id", chat_id); !s.ok()) return s;
  if (req.user_ids().empty()) {
    return absl::InvalidArgumentError("user_ids: must not be empty");
  }
  for (int64_t id : req.user_ids()) {
    if (auto s = RequireId("user_ids", id); !s.ok()) return s;
  }
  const std::vector<int64_t> wanted = Dedupe(req.user_ids(), 0);
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<Membership> me = CheckMember(tx, chat_id, actor, true);
    if (!me.ok()) return me.status();
    if (me->type == kChatDirect) {
      return absl::FailedPreconditionError(
          "chat_id: the members of a direct chat cannot change");
    }
    if (me->role != kRoleAdmin) {
      return absl::PermissionDeniedError("only admins can add members");
    }
    const int64_t unknown = FirstUnknownUser(tx, wanted);
    if (unknown != 0) {
      return absl::NotFoundError(
          absl::StrCat("user_ids: user ", unknown, " not found"));
    }
    std::set<int64_t> current;
    for (const auto& row : tx.exec_params(
             "SELECT user_id FROM chat_members WHERE chat_id = $1", chat_id)) {
      current.insert(row[0].as<int64_t>());
    }
    std::vector<int64_t> added;
    for (int64_t id : wanted) {
      if (!current.count(id)) added.push_back(id);
    }
    if (added.empty()) {
      absl::StatusOr<pv1::Chat> chat = LoadChat(tx, actor, chat_id);
      if (!chat.ok()) return chat.status();
      *result.mutable_chat() = std::move(*chat);
      result.set_duplicate(true);
      return absl::OkStatus();
    }
    if (req.max_members() > 0 && current.size() + added.size() >
                                     static_cast<size_t>(req.max_members())) {
      return absl::FailedPreconditionError(
          absl::StrCat("user_ids: a group can have at most ", req.max_members(),
                       " members"));
    }
    tx.exec_params(
        // Messages from before joining do not count as unread for a new
        // member (the history stays readable).
        "INSERT INTO chat_members (chat_id, user_id, role, read_seq, "
        "delivered_seq) "
        "SELECT $1::bigint, t.u, $2::smallint, c.last_seq, c.last_seq "
        "FROM unnest($3::bigint[]) WITH ORDINALITY AS t(u, ord), chats c "
        "WHERE c.chat_id = $1::bigint ORDER BY t.ord",
        chat_id, kRoleMember, IdArray(added));
    return AppendMembersChanged(tx, chat_id, actor, 0, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::RemoveMember(
    const iv1::RemoveMemberRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  const int64_t target = req.user_id();
  if (auto s = RequireId("actor_user_id", actor); !s.ok()) return s;
  if (auto s = RequireId("chat_id", chat_id); !s.ok()) return s;
  if (auto s = RequireId("user_id", target); !s.ok()) return s;
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<Membership> me = CheckMember(tx, chat_id, actor, true);
    if (!me.ok()) return me.status();
    if (me->type == kChatDirect) {
      return absl::FailedPreconditionError(
          "chat_id: the members of a direct chat cannot change");
    }
    if (target != actor && me->role != kRoleAdmin) {
      return absl::PermissionDeniedError(
          "only admins can remove other members");
    }
    if (tx.exec_params("DELETE FROM chat_members "
                       "WHERE chat_id = $1 AND user_id = $2 RETURNING role",
                       chat_id, target)
            .empty()) {
      return absl::NotFoundError(absl::StrCat("user_id: user ", target,
                                              " is not a member of this chat"));
    }
    // A group never stays without an admin while it has members: the
    // longest-standing member takes over.
    tx.exec_params(
        "UPDATE chat_members SET role = $2 "
        "WHERE chat_id = $1 AND user_id = ("
        "  SELECT user_id FROM chat_members WHERE chat_id = $1 "
        "  ORDER BY join_ordinal LIMIT 1) "
        "AND NOT EXISTS (SELECT 1 FROM chat_members "
        "  WHERE chat_id = $1 AND role = $2)",
        chat_id, kRoleAdmin);
    return AppendMembersChanged(tx, chat_id, actor, target, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<pv1::ListChatsResponse> StorageRepository::ListChats(
    const iv1::ListChatsRequest& req) {
  const int64_t user = req.user_id();
  if (auto s = RequireId("user_id", user); !s.ok()) return s;
  const int64_t page_size = PageSize(req.page_size());
  int64_t after_time_us = 0;
  int64_t after_chat_id = 0;
  const bool has_token = !req.page_token().empty();
  if (has_token) {
    if (auto s = DecodeChatPageToken(req.page_token(), &after_time_us,
                                     &after_chat_id);
        !s.ok()) {
      return s;
    }
  }
  pv1::ListChatsResponse resp;
  absl::Status s =
      pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
        resp.Clear();
        // Keyset pagination on (activity, chat_id); exact, since timestamptz
        // has microsecond resolution and the token carries microseconds.
        const std::string select = absl::StrCat(
        "SELECT c.chat_id, " PARLEY_US("c.last_event_time"),
        " FROM chat_members m JOIN chats c ON c.chat_id = m.chat_id "
        "WHERE m.user_id = $1 ",
        has_token ? "AND (" PARLEY_US("c.last_event_time")
                    ", c.chat_id) < ($3::bigint, $4::bigint) "
                  : "",
        "ORDER BY c.last_event_time DESC, c.chat_id DESC LIMIT $2");
        const pqxx::result r =
            has_token ? tx.exec_params(select, user, page_size + 1,
                                       after_time_us, after_chat_id)
                      : tx.exec_params(select, user, page_size + 1);
        std::vector<int64_t> ids;
        const int64_t n = std::min<int64_t>(page_size, r.size());
        for (int64_t i = 0; i < n; ++i) ids.push_back(r[i][0].as<int64_t>());
        if (static_cast<int64_t>(r.size()) > page_size) {
          resp.set_next_page_token(EncodeChatPageToken(
              r[n - 1][1].as<int64_t>(), r[n - 1][0].as<int64_t>()));
        }
        auto chats = LoadChats(tx, user, ids);
        for (int64_t id : ids) {
          auto it = chats.find(id);
          if (it != chats.end()) *resp.add_chats() = std::move(it->second);
        }
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<pv1::Chat> StorageRepository::GetChat(
    const iv1::GetChatRequest& req) {
  if (auto s = RequireId("user_id", req.user_id()); !s.ok()) return s;
  if (auto s = RequireId("chat_id", req.chat_id()); !s.ok()) return s;
  pv1::Chat chat;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    absl::StatusOr<Membership> me =
        CheckMember(tx, req.chat_id(), req.user_id(), false);
    if (!me.ok()) return me.status();
    absl::StatusOr<pv1::Chat> loaded =
        LoadChat(tx, req.user_id(), req.chat_id());
    if (!loaded.ok()) return loaded.status();
    chat = std::move(*loaded);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return chat;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::AppendMessage(
    const iv1::AppendMessageRequest& req) {
  return std::move(AppendMessages({&req})[0]);
}

namespace {

absl::Status ValidateAppend(const iv1::AppendMessageRequest& req) {
  if (auto s = RequireId("message_id", req.message_id()); !s.ok()) return s;
  if (auto s = RequireId("chat_id", req.chat_id()); !s.ok()) return s;
  if (auto s = RequireId("sender_user_id", req.sender_user_id()); !s.ok()) {
    return s;
  }
  if (auto s =
          RequireOptionalId("reply_to_message_id", req.reply_to_message_id());
      !s.ok()) {
    return s;
  }
  if (auto s = RequireOptionalId("file_id", req.file_id()); !s.ok()) return s;
  if (req.client_message_id().empty()) {
    return absl::InvalidArgumentError("client_message_id: must not be empty");
  }
  return absl::OkStatus();
}

// A PostgreSQL text[] literal: every element double-quoted, with `"` and `\`
// escaped, so any text without NUL (which text columns refuse anyway)
// round-trips.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

// Runs one of the batch transaction's statements as a prepared statement
// of its connection (prepared there on first use, then planned once):
// parsing and planning were a third of that transaction's PostgreSQL CPU.
template <typename... Args>
pqxx::result ExecPrepared(pqxx::work& tx, const char* name,
                          const std::string& sql, Args&&... args) {
  tx.conn().prepare(name, sql);  // no-op when already defined
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace

std::vector<absl::StatusOr<iv1::ChatEventResult>>
StorageRepository::AppendMessages(
    const std::vector<const iv1::AppendMessageRequest*>& reqs) {
  const size_t n = reqs.size();
  std::vector<absl::Status> invalid(n);
  std::vector<std::string> hashes(n);
  for (size_t i = 0; i < n; ++i) {
    const iv1::AppendMessageRequest& r = *reqs[i];
    invalid[i] = ValidateAppend(r);
    if (invalid[i].ok()) {
      hashes[i] = MessageContentHash(r.chat_id(), r.text(),
                                     r.reply_to_message_id(), r.file_id());
    }
  }
  // A key repeated within the batch (a retry queued behind its original)
  // is answered from its first occurrence once that one is done.
  std::vector<size_t> first_of(n);
  {
    std::map<std::pair<int64_t, std::string>, size_t> seen;
    for (size_t i = 0; i < n; ++i) {
      first_of[i] = i;
      if (!invalid[i].ok()) continue;
      auto [it, fresh] = seen.emplace(
          std::make_pair(reqs[i]->sender_user_id(),
                         reqs[i]->client_message_id()),
          i);
      if (!fresh) first_of[i] = it->second;
    }
  }
  std::vector<absl::StatusOr<iv1::ChatEventResult>> out(
      n, absl::InternalError("not appended"));
  bool raced = false;
  absl::Status s;
  // Most sends are not retries, so the first run does not look their keys
  // up: the insert skips a key already stored, and a short insert rolls
  // the run back (seqs included) for a run that looks them up. A
  // concurrent retry with the same key can also commit between a lookup
  // and the insert; the run after that finds and returns it.
  bool lookup_keys = false;
  for (int run = 0; run < 3; ++run) {
    raced = false;
    s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
      std::vector<size_t> pending;
      for (size_t i = 0; i < n; ++i) {
        out[i] = invalid[i].ok() ? absl::InternalError("not appended")
                                 : invalid[i];
        if (invalid[i].ok() && first_of[i] == i) pending.push_back(i);
      }
      if (pending.empty()) return absl::OkStatus();

      // 1. Retries: a key already stored answers with the original.
      if (lookup_keys) {
        std::vector<int64_t> senders;
        std::vector<std::string> keys;
        for (size_t i : pending) {
          senders.push_back(reqs[i]->sender_user_id());
          keys.push_back(reqs[i]->client_message_id());
        }
        // One index probe per key whatever the plan: the LIMIT keeps the
        // generic plan of the prepared statement from hashing all messages.
        static const std::string kPrior =
            "SELECT k.i, m.message_id, m.chat_id, m.content_hash, m.deleted "
            "FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS k(s, c, i) "
            "CROSS JOIN LATERAL (SELECT message_id, chat_id, content_hash, "
            "deleted FROM messages WHERE sender_id = k.s AND "
            "client_message_id = k.c LIMIT 1) m";
        const pqxx::result prior =
            ExecPrepared(tx, "append_prior", kPrior, IdArray(senders),
                         TextArray(keys));
        std::set<size_t> answered;
        for (const auto& row : prior) {
          const size_t i = pending[row[0].as<size_t>() - 1];
          const iv1::AppendMessageRequest& r = *reqs[i];
          answered.insert(i);
          // Deleting clears the content hash (it is derived from the text),
          // so a retry of a deleted message is only matched by chat.
          if (row[2].as<int64_t>() != r.chat_id() ||
              (!row[4].as<bool>() &&
               pqxx::binarystring(row[3]).str() != hashes[i])) {
            out[i] = absl::AlreadyExistsError(
                "client_message_id: already used for a different message");
            continue;
          }
          iv1::ChatEventResult original;
          absl::Status loaded = LoadOriginalMessage(
              tx, row[1].as<int64_t>(), r.sender_user_id(), &original);
          if (!loaded.ok()) return loaded;
          out[i] = std::move(original);
        }
        std::vector<size_t> rest;
        for (size_t i : pending) {
          if (!answered.count(i)) rest.push_back(i);
        }
        pending.swap(rest);
      }
      if (pending.empty()) return absl::OkStatus();

      // 2. Lock the chats (in id order, so concurrent batches cannot
      // deadlock) and read their members: the recipients, and who may send.
      std::set<int64_t> chat_ids;
      for (size_t i : pending) chat_ids.insert(reqs[i]->chat_id());
      const std::vector<int64_t> chat_list(chat_ids.begin(), chat_ids.end());
      std::set<int64_t> existing;
      static const std::string kLock =
          "SELECT chat_id FROM chats WHERE chat_id = ANY($1::bigint[]) "
          "ORDER BY chat_id FOR UPDATE";
      for (const auto& row :
           ExecPrepared(tx, "append_lock", kLock, IdArray(chat_list))) {
        existing.insert(row[0].as<int64_t>());
      }
      std::map<int64_t, std::vector<int64_t>> members;
      static const std::string kMembers =
          "SELECT chat_id, user_id FROM chat_members "
          "WHERE chat_id = ANY($1::bigint[]) ORDER BY chat_id, user_id";
      for (const auto& row :
           ExecPrepared(tx, "append_members", kMembers, IdArray(chat_list))) {
        members[row[0].as<int64_t>()].push_back(row[1].as<int64_t>());
      }
      std::map<int64_t, int64_t> reply_chat;  // message id -> its chat
      std::map<int64_t, std::pair<int64_t, int64_t>> files;  // -> uploader, chat
      {
        std::vector<int64_t> replies, file_ids;
        for (size_t i : pending) {
          if (reqs[i]->reply_to_message_id() != 0) {
            replies.push_back(reqs[i]->reply_to_message_id());
          }
          if (reqs[i]->file_id() != 0) file_ids.push_back(reqs[i]->file_id());
        }
        if (!replies.empty()) {
          for (const auto& row : tx.exec_params(
                   "SELECT message_id, chat_id FROM messages "
                   "WHERE message_id = ANY($1::bigint[])",
                   IdArray(replies))) {
            reply_chat[row[0].as<int64_t>()] = row[1].as<int64_t>();
          }
        }
        if (!file_ids.empty()) {
          for (const auto& row : tx.exec_params(
                   "SELECT file_id, uploader_user_id, chat_id FROM files "
                   "WHERE file_id = ANY($1::bigint[])",
                   IdArray(file_ids))) {
            files[row[0].as<int64_t>()] = {row[1].as<int64_t>(),
                                           row[2].as<int64_t>()};
          }
        }
      }
      std::vector<size_t> accepted;
      std::map<int64_t, int64_t> per_chat;  // chat -> messages accepted
      for (size_t i : pending) {
        const iv1::AppendMessageRequest& r = *reqs[i];
        const int64_t chat_id = r.chat_id();
        if (!existing.count(chat_id)) {
          out[i] = ChatNotFound(chat_id);
          continue;
        }
        const auto& m = members[chat_id];
        if (!std::binary_search(m.begin(), m.end(), r.sender_user_id())) {
          out[i] = NotAMember();
          continue;
        }
        if (r.reply_to_message_id() != 0) {
          auto it = reply_chat.find(r.reply_to_message_id());
          if (it == reply_chat.end() || it->second != chat_id) {
            out[i] = absl::NotFoundError(absl::StrCat(
                "reply_to_message_id: message ", r.reply_to_message_id(),
                " not found in this chat"));
            continue;
          }
        }
        if (r.file_id() != 0) {
          // The file must have been uploaded by the sender to this chat.
          auto it = files.find(r.file_id());
          if (it == files.end()) {
            out[i] = absl::NotFoundError(
                absl::StrCat("file_id: file ", r.file_id(), " not found"));
            continue;
          }
          if (it->second.first != r.sender_user_id() ||
              it->second.second != chat_id) {
            out[i] = absl::InvalidArgumentError(
                "file_id: the file was not uploaded by the sender to this "
                "chat");
            continue;
          }
        }
        accepted.push_back(i);
        ++per_chat[chat_id];
      }
      if (accepted.empty()) return absl::OkStatus();

      // 3. One statement takes the seqs (one bump per chat, handed out in
      // request order) and writes every message and its event.
      std::map<int64_t, int64_t> per_chat_pos;  // chat -> messages so far
      std::vector<int64_t> ids, chats, positions, senders, files_col, replies;
      std::vector<std::string> keys, hash_hex, texts;
      std::map<int64_t, size_t> by_message_id;
      for (size_t i : accepted) {
        const iv1::AppendMessageRequest& r = *reqs[i];
        ids.push_back(r.message_id());
        chats.push_back(r.chat_id());
        positions.push_back(++per_chat_pos[r.chat_id()]);
        senders.push_back(r.sender_user_id());
        keys.push_back(r.client_message_id());
        hash_hex.push_back(absl::BytesToHexString(hashes[i]));
        texts.push_back(r.text());
        files_col.push_back(r.file_id());
        replies.push_back(r.reply_to_message_id());
        by_message_id[r.message_id()] = i;
      }
      std::vector<int64_t> bump_chats, bump_counts;
      for (const auto& [chat, count] : per_chat) {
        bump_chats.push_back(chat);
        bump_counts.push_back(count);
      }
      // Columns: kMessageColumns, then the event's create_time.
      constexpr int kEventTimeColumn = 11;
      static const std::string kWrite =
          absl::StrCat(
              "WITH bump AS (UPDATE chats c SET last_seq = c.last_seq + n.k, "
              "last_event_time = now() "
              "FROM unnest($1::bigint[], $2::bigint[]) AS n(chat_id, k) "
              // The ANY gives the generic plan an index condition on chats
              // (otherwise it may hash a scan of the whole table).
              "WHERE c.chat_id = n.chat_id AND c.chat_id = ANY($1::bigint[]) "
              "RETURNING c.chat_id, c.last_seq - n.k AS base), "
              "ins AS (INSERT INTO messages AS m (message_id, chat_id, seq, "
              "sender_id, client_message_id, content_hash, text, file_id, "
              "reply_to_message_id) "
              "SELECT t.id, t.chat, b.base + t.pos, t.sender, t.cmid, "
              "decode(t.hash, 'hex'), t.body, NULLIF(t.file, 0), "
              "NULLIF(t.reply, 0) FROM unnest($3::bigint[], $4::bigint[], "
              "$5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], "
              "$10::bigint[], $11::bigint[]) "
              "AS t(id, chat, pos, sender, cmid, hash, body, file, reply) "
              "JOIN bump b ON b.chat_id = t.chat "
              "ON CONFLICT (sender_id, client_message_id) DO NOTHING "
              "RETURNING ",
              kMessageColumns,
              "), ev AS (INSERT INTO chat_events (chat_id, seq, kind, "
              "message_id) SELECT ins.chat_id, ins.seq, $12::smallint, "
              "ins.message_id FROM ins "
              "RETURNING message_id, " PARLEY_US("create_time") " AS t) "
              "SELECT ins.*, ev.t FROM ins JOIN ev USING (message_id)");
      const pqxx::result inserted = ExecPrepared(
          tx, "append_write", kWrite, IdArray(bump_chats), IdArray(bump_counts), IdArray(ids),
          IdArray(chats), IdArray(positions), IdArray(senders),
          TextArray(keys), TextArray(hash_hex), TextArray(texts),
          IdArray(files_col), IdArray(replies), kEventMessageCreated);
      if (inserted.size() != accepted.size()) {
        raced = true;
        return absl::AbortedError("client_message_id: a key already stored");
      }
      std::vector<pv1::Message*> with_files;
      for (const auto& row : inserted) {
        const int64_t message_id = row[0].as<int64_t>();
        const size_t i = by_message_id.at(message_id);
        iv1::ChatEventResult result;
        pv1::ChatEvent* event = result.mutable_event();
        ReadMessage(row, 0, event->mutable_message_created());
        event->set_chat_id(event->message_created().chat_id());
        event->set_seq(event->message_created().seq());
        *event->mutable_create_time() =
            TimestampFromUs(row[kEventTimeColumn].as<int64_t>());
        const int64_t chat_id = reqs[i]->chat_id();
        for (int64_t id : members[chat_id]) result.add_recipient_user_ids(id);
        result.mutable_chat()->set_chat_id(FormatId(chat_id));
        result.mutable_chat()->set_last_seq(event->seq());
        out[i] = std::move(result);
        if (reqs[i]->file_id() != 0) {
          with_files.push_back(
              out[i]->mutable_event()->mutable_message_created());
        }
      }
      if (!with_files.empty()) AttachFiles(tx, with_files);
      return absl::OkStatus();
    });
    if (!raced) break;
    lookup_keys = true;
  }
  if (!s.ok()) {
    for (auto& r : out) r = s;
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t first = first_of[i];
    if (first == i) continue;
    if (!out[first].ok()) {
      out[i] = out[first].status();
    } else if (reqs[first]->chat_id() != reqs[i]->chat_id() ||
               hashes[first] != hashes[i]) {
      out[i] = absl::AlreadyExistsError(
          "client_message_id: already used for a different message");
    } else {
      iv1::ChatEventResult again = *out[first];
      again.set_duplicate(true);
      out[i] = std::move(again);
    }
  }
  return out;
}

absl::StatusOr<pv1::ListMessagesResponse> StorageRepository::ListMessages(
    const iv1::ListMessagesRequest& req) {
  if (auto s = RequireId("user_id", req.user_id()); !s.ok()) return s;
  if (auto s = RequireId("chat_id", req.chat_id()); !s.ok()) return s;
  const int64_t page_size = PageSize(req.page_size());
  const int64_t before = req.before_seq() == 0
                             ? std::numeric_limits<int64_t>::max()
                             : ClampSeq(req.before_seq());
  pv1::ListMessagesResponse resp;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    resp.Clear();
    absl::StatusOr<Membership> me =
        CheckMember(tx, req.chat_id(), req.user_id(), false);
    if (!me.ok()) return me.status();
    const pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kMessageColumns,
                     " FROM messages m WHERE m.chat_id = $1 AND m.seq < $2 "
                     "ORDER BY m.seq DESC LIMIT $3"),
        req.chat_id(), before, page_size + 1);
    const int64_t n = std::min<int64_t>(page_size, r.size());
    for (int64_t i = 0; i < n; ++i) ReadMessage(r[i], 0, resp.add_messages());
    std::vector<pv1::Message*> page;
    for (pv1::Message& msg : *resp.mutable_messages()) page.push_back(&msg);
    AttachReactions(tx, page);
    AttachFiles(tx, page);
    if (static_cast<int64_t>(r.size()) > page_size) {
      resp.set_next_before_seq(resp.messages(n - 1).seq());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<pv1::SyncChatResponse> StorageRepository::SyncChat(
    const iv1::SyncChatRequest& req) {
  if (auto s = RequireId("user_id", req.user_id()); !s.ok()) return s;
  if (auto s = RequireId("chat_id", req.chat_id()); !s.ok()) return s;
  const int64_t page_size = PageSize(req.page_size());
  const int64_t after = ClampSeq(req.after_seq());
  pv1::SyncChatResponse resp;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    resp.Clear();
    absl::StatusOr<Membership> me =
        CheckMember(tx, req.chat_id(), req.user_id(), false);
    if (!me.ok()) return me.status();
    const pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT e.seq, e.kind, " PARLEY_US("e.create_time"),
                     ", e.payload, ", kMessageColumns,
                     " FROM chat_events e LEFT JOIN messages m "
                     "ON m.message_id = e.message_id "
                     "WHERE e.chat_id = $1 AND e.seq > $2 "
                     "ORDER BY e.seq LIMIT $3"),
        req.chat_id(), after, page_size + 1);
    const int64_t n = std::min<int64_t>(page_size, r.size());
    std::vector<pv1::Message*> with_message;
    for (int64_t i = 0; i < n; ++i) {
      const pqxx::row row = r[i];
      pv1::ChatEvent* event = resp.add_events();
      event->set_chat_id(FormatId(req.chat_id()));
      event->set_seq(row[0].as<uint64_t>());
      *event->mutable_create_time() = TimestampFromUs(row[2].as<int64_t>());
      const int kind = row[1].as<int>();
      if (kind == kEventMembersChanged) {
        if (row[3].is_null() ||
            !event->mutable_members_changed()->ParseFromString(
                pqxx::binarystring(row[3]).str())) {
          return absl::InternalError("corrupt members_changed event");
        }
        continue;
      }
      if (row[4].is_null()) return absl::InternalError("event without message");
      pv1::Message* msg = EventMessage(event, kind);
      if (msg == nullptr) return absl::InternalError("unknown event kind");
      ReadMessage(row, 4, msg);
      with_message.push_back(msg);
    }
    AttachReactions(tx, with_message);
    AttachFiles(tx, with_message);
    resp.set_has_more(static_cast<int64_t>(r.size()) > page_size);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

namespace {

// INVALID_ARGUMENT unless the actor, chat and message ids are positive.
absl::Status RequireTargetIds(int64_t actor, int64_t chat_id,
                              int64_t message_id) {
  if (auto s = RequireId("actor_user_id", actor); !s.ok()) return s;
  if (auto s = RequireId("chat_id", chat_id); !s.ok()) return s;
  return RequireId("message_id", message_id);
}

}  // namespace

absl::StatusOr<iv1::ChatEventResult> StorageRepository::EditMessage(
    const iv1::EditMessageRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  const int64_t message_id = req.message_id();
  if (auto s = RequireTargetIds(actor, chat_id, message_id); !s.ok()) return s;
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<TargetMessage> target =
        LockTarget(tx, chat_id, actor, message_id);
    if (!target.ok()) return target.status();
    if (target->sender != actor) {
      return absl::PermissionDeniedError(
          "actor_user_id: only the sender can edit a message");
    }
    if (target->deleted) {
      return absl::FailedPreconditionError(
          "message_id: a deleted message cannot be edited");
    }
    if (target->text == req.text()) {
      return FinishMessageChange(tx, chat_id, actor, message_id,
                                 kEventMessageEdited, false, &result);
    }
    if (req.text().empty() && !target->has_file) {
      return absl::InvalidArgumentError(
          "text: must not be empty for a message without a file");
    }
    // Keep the version being replaced, with the time it was written.
    tx.exec_params(
        "INSERT INTO message_edits (message_id, version, text, create_time) "
        "SELECT m.message_id, 1 + coalesce((SELECT max(e.version) "
        "  FROM message_edits e WHERE e.message_id = m.message_id), 0), "
        "m.text, coalesce(m.edit_time, m.create_time) "
        "FROM messages m WHERE m.message_id = $1",
        message_id);
    tx.exec_params(
        "UPDATE messages SET text = $2, edit_time = now() "
        "WHERE message_id = $1",
        message_id, req.text());
    return FinishMessageChange(tx, chat_id, actor, message_id,
                               kEventMessageEdited, true, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::DeleteMessage(
    const iv1::DeleteMessageRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  const int64_t message_id = req.message_id();
  if (auto s = RequireTargetIds(actor, chat_id, message_id); !s.ok()) return s;
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<TargetMessage> target =
        LockTarget(tx, chat_id, actor, message_id);
    if (!target.ok()) return target.status();
    const bool group_admin = target->member.type != kChatDirect &&
                             target->member.role == kRoleAdmin;
    if (target->sender != actor && !group_admin) {
      return absl::PermissionDeniedError(
          "actor_user_id: only the sender or a group admin can delete a "
          "message");
    }
    if (target->deleted) {
      return FinishMessageChange(tx, chat_id, actor, message_id,
                                 kEventMessageDeleted, false, &result);
    }
    // A tombstone: nothing derived from the content survives (the content
    // hash included); seq, sender, reply and times stay.
    tx.exec_params("DELETE FROM reactions WHERE message_id = $1", message_id);
    tx.exec_params("DELETE FROM message_edits WHERE message_id = $1",
                   message_id);
    tx.exec_params(
        "UPDATE messages SET text = '', file_id = NULL, deleted = true, "
        "content_hash = ''::bytea WHERE message_id = $1",
        message_id);
    return FinishMessageChange(tx, chat_id, actor, message_id,
                               kEventMessageDeleted, true, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::AddReaction(
    const iv1::ReactionRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  const int64_t message_id = req.message_id();
  if (auto s = RequireTargetIds(actor, chat_id, message_id); !s.ok()) return s;
  if (req.emoji().empty()) {
    return absl::InvalidArgumentError("emoji: must not be empty");
  }
  if (req.max_distinct_emoji() < 0) {
    return absl::InvalidArgumentError(
        "max_distinct_emoji: must not be negative");
  }
  const int64_t max_distinct = req.max_distinct_emoji() == 0
                                   ? kDefaultMaxDistinctEmoji
                                   : req.max_distinct_emoji();
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<TargetMessage> target =
        LockTarget(tx, chat_id, actor, message_id);
    if (!target.ok()) return target.status();
    if (target->deleted) {
      return absl::FailedPreconditionError(
          "message_id: cannot react to a deleted message");
    }
    const pqxx::row have = tx.exec_params1(
        "SELECT count(DISTINCT emoji), coalesce(bool_or(emoji = $2), false), "
        "coalesce(bool_or(emoji = $2 AND user_id = $3), false) "
        "FROM reactions WHERE message_id = $1",
        message_id, req.emoji(), actor);
    if (have[2].as<bool>()) {
      return FinishMessageChange(tx, chat_id, actor, message_id,
                                 kEventReactionChanged, false, &result);
    }
    if (!have[1].as<bool>() && have[0].as<int64_t>() >= max_distinct) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "emoji: at most ", max_distinct, " distinct reactions per message"));
    }
    tx.exec_params(
        "INSERT INTO reactions (message_id, user_id, emoji) "
        "VALUES ($1, $2, $3)",
        message_id, actor, req.emoji());
    return FinishMessageChange(tx, chat_id, actor, message_id,
                               kEventReactionChanged, true, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<iv1::ChatEventResult> StorageRepository::RemoveReaction(
    const iv1::ReactionRequest& req) {
  const int64_t actor = req.actor_user_id();
  const int64_t chat_id = req.chat_id();
  const int64_t message_id = req.message_id();
  if (auto s = RequireTargetIds(actor, chat_id, message_id); !s.ok()) return s;
  if (req.emoji().empty()) {
    return absl::InvalidArgumentError("emoji: must not be empty");
  }
  iv1::ChatEventResult result;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    result.Clear();
    absl::StatusOr<TargetMessage> target =
        LockTarget(tx, chat_id, actor, message_id);
    if (!target.ok()) return target.status();
    const bool removed =
        !tx.exec_params(
               "DELETE FROM reactions "
               "WHERE message_id = $1 AND user_id = $2 AND emoji = $3 "
               "RETURNING 1",
               message_id, actor, req.emoji())
             .empty();
    return FinishMessageChange(tx, chat_id, actor, message_id,
                               kEventReactionChanged, removed, &result);
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<iv1::UpdateReceiptResponse> StorageRepository::UpdateReceipt(
    const iv1::UpdateReceiptRequest& req) {
  const int64_t user = req.user_id();
  const int64_t chat_id = req.chat_id();
  if (auto s = RequireId("user_id", user); !s.ok()) return s;
  if (auto s = RequireId("chat_id", chat_id); !s.ok()) return s;
  const int64_t want_delivered = ClampSeq(req.delivered_seq());
  const int64_t want_read = ClampSeq(req.read_seq());
  iv1::UpdateReceiptResponse resp;
  absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    resp.Clear();
    // Locking the member row serialises concurrent updates of the same
    // watermarks; the chat row is only read, so senders are not blocked.
    // NO KEY UPDATE: no foreign key points at chat_members.
    const pqxx::result cur = tx.exec_params(
        "SELECT m.delivered_seq, m.read_seq, c.last_seq "
        "FROM chat_members m JOIN chats c ON c.chat_id = m.chat_id "
        "WHERE m.chat_id = $1 AND m.user_id = $2 FOR NO KEY UPDATE OF m",
        chat_id, user);
    if (cur.empty()) {
      if (tx.exec_params("SELECT 1 FROM chats WHERE chat_id = $1", chat_id)
              .empty()) {
        return ChatNotFound(chat_id);
      }
      return NotAMember();
    }
    const int64_t old_delivered = cur[0][0].as<int64_t>();
    const int64_t old_read = cur[0][1].as<int64_t>();
    const int64_t last_seq = cur[0][2].as<int64_t>();
    const int64_t read =
        std::max(old_read, std::min(want_read, last_seq));
    const int64_t delivered = std::max(
        {old_delivered, std::min(want_delivered, last_seq), read});
    const bool changed = read != old_read || delivered != old_delivered;
    if (changed) {
      tx.exec_params(
          "UPDATE chat_members SET delivered_seq = $3, read_seq = $4 "
          "WHERE chat_id = $1 AND user_id = $2",
          chat_id, user, delivered, read);
    }
    for (const auto& row : tx.exec_params(
             "SELECT user_id FROM chat_members "
             "WHERE chat_id = $1 AND user_id <> $2 ORDER BY join_ordinal",
             chat_id, user)) {
      resp.add_recipient_user_ids(row[0].as<int64_t>());
    }
    pv1::ReceiptEvent* receipt = resp.mutable_receipt();
    receipt->set_chat_id(FormatId(chat_id));
    receipt->set_user_id(FormatId(user));
    receipt->set_delivered_seq(static_cast<uint64_t>(delivered));
    receipt->set_read_seq(static_cast<uint64_t>(read));
    resp.set_changed(changed);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<iv1::ListContactsResponse> StorageRepository::ListContacts(
    const iv1::ListContactsRequest& req) {
  if (auto s = RequireId("user_id", req.user_id()); !s.ok()) return s;
  iv1::ListContactsResponse resp;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    resp.Clear();
    for (const auto& row : tx.exec_params(
             "SELECT DISTINCT o.user_id "
             "FROM chat_members me "
             "JOIN chats c ON c.chat_id = me.chat_id AND c.type = $2 "
             "JOIN chat_members o "
             "ON o.chat_id = me.chat_id AND o.user_id <> me.user_id "
             "WHERE me.user_id = $1 ORDER BY o.user_id",
             req.user_id(), kChatDirect)) {
      resp.add_user_ids(row[0].as<int64_t>());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<iv1::GetChatMembersResponse> StorageRepository::GetChatMembers(
    const iv1::GetChatMembersRequest& req) {
  const int64_t chat_id = req.chat_id();
  const int64_t user = req.user_id();
  if (auto s = RequireId("chat_id", chat_id); !s.ok()) return s;
  if (auto s = RequireOptionalId("user_id", user); !s.ok()) return s;
  iv1::GetChatMembersResponse resp;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    resp.Clear();
    // One row with a NULL member for a chat everyone has left.
    const pqxx::result r = tx.exec_params(
        "SELECT m.user_id FROM chats c LEFT JOIN chat_members m "
        "ON m.chat_id = c.chat_id WHERE c.chat_id = $1 "
        "ORDER BY m.join_ordinal",
        chat_id);
    if (r.empty()) return ChatNotFound(chat_id);
    bool is_member = false;
    for (const auto& row : r) {
      if (row[0].is_null()) continue;
      const int64_t id = row[0].as<int64_t>();
      if (id == user) is_member = true;
      resp.add_user_ids(id);
    }
    if (user != 0 && !is_member) return NotAMember();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::Status StorageRepository::RecordLastSeen(
    const iv1::RecordLastSeenRequest& req) {
  if (req.user_ids_size() > kMaxRecordLastSeenUsers) {
    return absl::InvalidArgumentError(
        absl::StrCat("user_ids: at most ", kMaxRecordLastSeenUsers));
  }
  if (!req.has_last_seen_time()) {
    return absl::InvalidArgumentError("last_seen_time: must be set");
  }
  if (auto s = ValidateTimestamp("last_seen_time", req.last_seen_time());
      !s.ok()) {
    return s;
  }
  // Sorted and unique: rows are locked in id order, so two overlapping
  // batches cannot deadlock.
  std::vector<int64_t> ids;
  for (int64_t id : req.user_ids()) {
    if (id > 0) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty()) return absl::OkStatus();
  const int64_t seen_us = UsFromTimestamp(req.last_seen_time());
  return pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    // Rows already at or past the time are neither locked nor rewritten;
    // after a lock wait the WHERE is re-checked on the newest row version.
    tx.exec_params(
        "WITH t AS (SELECT timestamptz 'epoch' + "
        "$2::bigint * interval '1 microsecond' AS ts), "
        "due AS (SELECT u.user_id FROM users u, t "
        "  WHERE u.user_id = ANY($1::bigint[]) "
        "  AND (u.last_seen_time IS NULL OR u.last_seen_time < t.ts) "
        "  ORDER BY u.user_id FOR NO KEY UPDATE OF u) "
        "UPDATE users u SET last_seen_time = "
        "GREATEST(coalesce(u.last_seen_time, '-infinity'), t.ts) "
        "FROM due, t WHERE u.user_id = due.user_id",
        IdArray(ids), seen_us);
    return absl::OkStatus();
  });
}

absl::StatusOr<iv1::GetVisibleUsersResponse>
StorageRepository::GetVisibleUsers(const iv1::GetVisibleUsersRequest& req) {
  const int64_t viewer = req.viewer_user_id();
  if (auto s = RequireId("viewer_user_id", viewer); !s.ok()) return s;
  if (req.user_ids_size() > kMaxVisibleUsers) {
    return absl::InvalidArgumentError(
        absl::StrCat("user_ids: at most ", kMaxVisibleUsers));
  }
  iv1::GetVisibleUsersResponse resp;
  if (req.user_ids().empty()) return resp;
  const std::vector<int64_t> wanted = Dedupe(req.user_ids(), 0);
  // Visible user -> last-seen microseconds (nullopt when never recorded).
  std::map<int64_t, std::optional<int64_t>> visible;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    visible.clear();
    const pqxx::result r = tx.exec_params(
        "SELECT u.user_id, " PARLEY_US("u.last_seen_time")
        " FROM users u WHERE u.user_id = ANY($2::bigint[]) "
        "AND (u.user_id = $1 OR EXISTS ("
        "  SELECT 1 FROM chat_members theirs JOIN chat_members mine "
        "  ON mine.chat_id = theirs.chat_id AND mine.user_id = $1 "
        "  WHERE theirs.user_id = u.user_id))",
        viewer, IdArray(wanted));
    for (const auto& row : r) {
      std::optional<int64_t> seen;
      if (!row[1].is_null()) seen = row[1].as<int64_t>();
      visible[row[0].as<int64_t>()] = seen;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (int64_t id : req.user_ids()) {
    iv1::VisibleUser* out = resp.add_users();
    out->set_user_id(id);
    auto it = visible.find(id);
    if (it == visible.end()) continue;
    out->set_visible(true);
    if (it->second.has_value()) {
      *out->mutable_last_seen_time() = TimestampFromUs(*it->second);
    }
  }
  return resp;
}

absl::Status StorageRepository::CheckFileAccess(int64_t user_id,
                                                int64_t file_id) {
  if (auto s = RequireId("user_id", user_id); !s.ok()) return s;
  if (auto s = RequireId("file_id", file_id); !s.ok()) return s;
  return pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    // A file is only ever attached in the chat it was uploaded to
    // (AppendMessage checks), so only that chat's messages can share it.
    const pqxx::result r = tx.exec_params(
        "SELECT f.uploader_user_id = $2 OR EXISTS ("
        "  SELECT 1 FROM messages m JOIN chat_members cm "
        "  ON cm.chat_id = m.chat_id AND cm.user_id = $2 "
        "  WHERE m.chat_id = f.chat_id AND m.file_id = f.file_id "
        "  AND NOT m.deleted) "
        "FROM files f WHERE f.file_id = $1",
        file_id, user_id);
    if (r.empty()) {
      return absl::NotFoundError(
          absl::StrCat("file_id: file ", file_id, " not found"));
    }
    if (!r[0][0].as<bool>()) {
      return absl::PermissionDeniedError(
          "file_id: the caller may not read this file");
    }
    return absl::OkStatus();
  });
}

}  // namespace parley::storage
