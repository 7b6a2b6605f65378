// StorageRepository against a real PostgreSQL started for this binary.
#include "services/storage/storage_repository.h"

#include <grpcpp/grpcpp.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/batch_outcomes.h"
#include "common/grpc_util.h"
#include "common/pg/pg_pool.h"
#include "common/thread_pool.h"
#include "common/validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/storage/append_batcher.h"
#include "services/storage/migrations.h"
#include "services/storage/pg_blob_store.h"
#include "services/storage/storage_service.h"
#include "tests/support/test_postgres.h"

namespace parley::storage {
namespace {

namespace iv1 = ::parley::internal::v1;
namespace pv1 = ::parley::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// One PostgreSQL server and migrated database for the whole binary.
class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto pg = testing::TestPostgres::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = std::move(*pg);
    PgPoolOptions options;
    options.url = pg_->url();
    options.size = 16;
    pool_ = std::make_unique<PgPool>(options);
    auto applied = ApplyMigrations(*pool_, StorageMigrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    first_applied_ = *applied;
    repo_ = std::make_unique<StorageRepository>(pool_.get());
  }
  void TearDown() override {
    repo_.reset();
    pool_.reset();
    pg_.reset();
  }

  testing::TestPostgres& pg() { return *pg_; }
  PgPool& pool() { return *pool_; }
  StorageRepository& repo() { return *repo_; }
  int first_applied() const { return first_applied_; }

 private:
  std::unique_ptr<testing::TestPostgres> pg_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<StorageRepository> repo_;
  int first_applied_ = 0;
};

PostgresEnvironment* const g_env = static_cast<PostgresEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment));

// The blob store over the environment's database (never destroyed: it
// must not outlive the pool at exit).
PgBlobStore& Blobs() {
  static PgBlobStore* const store = [] {
    PgBlobStoreOptions options;
    options.url = g_env->pg().url();
    return new PgBlobStore(&g_env->pool(), options);
  }();
  return *store;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(
      digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

// Stores a file directly through the blob store; returns its id.
int64_t StoreFile(int64_t uploader, int64_t chat,
                  const std::string& content = "file content") {
  UploadMetadata meta;
  meta.uploader_user_id = uploader;
  meta.chat_id = chat;
  meta.name = "f.txt";
  meta.content_type = "text/plain";
  meta.size_bytes = static_cast<int64_t>(content.size());
  meta.sha256_hex = Sha256Hex(content);
  auto writer = Blobs().BeginUpload(meta);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return 0;
  absl::Status s = (*writer)->Append(content);
  EXPECT_TRUE(s.ok()) << s;
  auto file = (*writer)->Finish();
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? file->file_id : 0;
}

std::atomic<int64_t> g_next_user{0};
std::atomic<int64_t> g_next_message_id{1000};

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_env->pool().size(), 0) << "environment failed";
  }

  StorageRepository& repo() { return g_env->repo(); }

  int64_t NewUser() {
    iv1::CreateUserRequest req;
    req.set_username(absl::StrCat("user", g_next_user.fetch_add(1)));
    req.set_password_hash("$argon2id$fake");
    auto user = repo().CreateUser(req);
    EXPECT_TRUE(user.ok()) << user.status();
    if (!user.ok()) return 0;
    return ParseId("user_id", user->user_id()).value();
  }

  int64_t NewGroup(int64_t creator, const std::vector<int64_t>& members) {
    iv1::CreateGroupChatRequest req;
    req.set_creator_user_id(creator);
    req.set_title("group");
    for (int64_t m : members) req.add_member_user_ids(m);
    req.set_max_members(100);
    auto chat = repo().CreateGroupChat(req);
    EXPECT_TRUE(chat.ok()) << chat.status();
    if (!chat.ok()) return 0;
    return ParseId("chat_id", chat->chat_id()).value();
  }

  int64_t NewDirect(int64_t a, int64_t b) {
    iv1::CreateDirectChatRequest req;
    req.set_user_id(a);
    req.set_peer_user_id(b);
    auto chat = repo().CreateDirectChat(req);
    EXPECT_TRUE(chat.ok()) << chat.status();
    if (!chat.ok()) return 0;
    return ParseId("chat_id", chat->chat_id()).value();
  }

  iv1::AppendMessageRequest MessageRequest(int64_t chat, int64_t sender,
                                           const std::string& client_id,
                                           const std::string& text) {
    iv1::AppendMessageRequest req;
    req.set_message_id(g_next_message_id.fetch_add(1));
    req.set_chat_id(chat);
    req.set_sender_user_id(sender);
    req.set_client_message_id(client_id);
    req.set_text(text);
    return req;
  }

  // Sends and returns the seq; fails the test on error.
  uint64_t Send(int64_t chat, int64_t sender, const std::string& text = "hi") {
    static std::atomic<int64_t> n{0};
    auto r = repo().AppendMessage(
        MessageRequest(chat, sender, absl::StrCat("c", n.fetch_add(1)), text));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->event().seq() : 0;
  }

  absl::StatusOr<pv1::Chat> GetChat(int64_t user, int64_t chat) {
    iv1::GetChatRequest req;
    req.set_user_id(user);
    req.set_chat_id(chat);
    return repo().GetChat(req);
  }

  absl::StatusOr<pv1::ListMessagesResponse> ListMessages(int64_t user,
                                                         int64_t chat,
                                                         uint64_t before,
                                                         int32_t page) {
    iv1::ListMessagesRequest req;
    req.set_user_id(user);
    req.set_chat_id(chat);
    req.set_before_seq(before);
    req.set_page_size(page);
    return repo().ListMessages(req);
  }

  absl::StatusOr<pv1::SyncChatResponse> Sync(int64_t user, int64_t chat,
                                             uint64_t after, int32_t page) {
    iv1::SyncChatRequest req;
    req.set_user_id(user);
    req.set_chat_id(chat);
    req.set_after_seq(after);
    req.set_page_size(page);
    return repo().SyncChat(req);
  }

  absl::StatusOr<iv1::ChatEventResult> Add(int64_t actor, int64_t chat,
                                           const std::vector<int64_t>& users,
                                           int max = 100) {
    iv1::AddMembersRequest req;
    req.set_actor_user_id(actor);
    req.set_chat_id(chat);
    for (int64_t u : users) req.add_user_ids(u);
    req.set_max_members(max);
    return repo().AddMembers(req);
  }

  absl::StatusOr<iv1::ChatEventResult> Remove(int64_t actor, int64_t chat,
                                              int64_t user) {
    iv1::RemoveMemberRequest req;
    req.set_actor_user_id(actor);
    req.set_chat_id(chat);
    req.set_user_id(user);
    return repo().RemoveMember(req);
  }

  absl::StatusOr<iv1::UpdateReceiptResponse> Receipt(int64_t user, int64_t chat,
                                                     uint64_t delivered,
                                                     uint64_t read) {
    iv1::UpdateReceiptRequest req;
    req.set_user_id(user);
    req.set_chat_id(chat);
    req.set_delivered_seq(delivered);
    req.set_read_seq(read);
    return repo().UpdateReceipt(req);
  }

  uint64_t Unread(int64_t user, int64_t chat) {
    auto c = GetChat(user, chat);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->unread_count() : 999999;
  }

  absl::StatusOr<iv1::GetChatMembersResponse> Members(int64_t chat,
                                                      int64_t user) {
    iv1::GetChatMembersRequest req;
    req.set_chat_id(chat);
    req.set_user_id(user);
    return repo().GetChatMembers(req);
  }

  std::vector<int64_t> Contacts(int64_t user) {
    iv1::ListContactsRequest req;
    req.set_user_id(user);
    auto r = repo().ListContacts(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->user_ids().begin(), r->user_ids().end()};
  }

  absl::Status SeenAt(const std::vector<int64_t>& users, int64_t seconds,
                      int32_t nanos = 0) {
    iv1::RecordLastSeenRequest req;
    for (int64_t u : users) req.add_user_ids(u);
    req.mutable_last_seen_time()->set_seconds(seconds);
    req.mutable_last_seen_time()->set_nanos(nanos);
    return repo().RecordLastSeen(req);
  }

  absl::StatusOr<iv1::GetVisibleUsersResponse> Visible(
      int64_t viewer, const std::vector<int64_t>& users) {
    iv1::GetVisibleUsersRequest req;
    req.set_viewer_user_id(viewer);
    for (int64_t u : users) req.add_user_ids(u);
    return repo().GetVisibleUsers(req);
  }

  // Sends and returns the message id; fails the test on error.
  int64_t SendId(int64_t chat, int64_t sender, const std::string& text = "hi") {
    static std::atomic<int64_t> n{0};
    iv1::AppendMessageRequest req =
        MessageRequest(chat, sender, absl::StrCat("m", n.fetch_add(1)), text);
    auto r = repo().AppendMessage(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? req.message_id() : 0;
  }

  absl::StatusOr<iv1::ChatEventResult> Edit(int64_t actor, int64_t chat,
                                            int64_t message,
                                            const std::string& text) {
    iv1::EditMessageRequest req;
    req.set_actor_user_id(actor);
    req.set_chat_id(chat);
    req.set_message_id(message);
    req.set_text(text);
    return repo().EditMessage(req);
  }

  absl::StatusOr<iv1::ChatEventResult> Delete(int64_t actor, int64_t chat,
                                              int64_t message) {
    iv1::DeleteMessageRequest req;
    req.set_actor_user_id(actor);
    req.set_chat_id(chat);
    req.set_message_id(message);
    return repo().DeleteMessage(req);
  }

  iv1::ReactionRequest Reaction(int64_t actor, int64_t chat, int64_t message,
                                const std::string& emoji, int max = 0) {
    iv1::ReactionRequest req;
    req.set_actor_user_id(actor);
    req.set_chat_id(chat);
    req.set_message_id(message);
    req.set_emoji(emoji);
    req.set_max_distinct_emoji(max);
    return req;
  }

  absl::StatusOr<iv1::ChatEventResult> React(int64_t actor, int64_t chat,
                                             int64_t message,
                                             const std::string& emoji,
                                             int max = 0) {
    return repo().AddReaction(Reaction(actor, chat, message, emoji, max));
  }

  absl::StatusOr<iv1::ChatEventResult> Unreact(int64_t actor, int64_t chat,
                                               int64_t message,
                                               const std::string& emoji) {
    return repo().RemoveReaction(Reaction(actor, chat, message, emoji));
  }

  // The message as ListMessages shows it to `user`.
  pv1::Message Listed(int64_t user, int64_t chat, int64_t message) {
    auto page = ListMessages(user, chat, 0, 200);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const auto& m : page->messages()) {
        if (m.message_id() == FormatId(message)) return m;
      }
    }
    ADD_FAILURE() << "message " << message << " not listed";
    return pv1::Message();
  }

  // Runs SQL in the test database (for setting up states no RPC creates).
  void Sql(const std::string& sql) {
    absl::Status s = g_env->pool().Transact([&](pqxx::work& tx) {
      tx.exec(sql);
      return absl::OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s;
  }

  int64_t SqlInt(const std::string& sql) {
    int64_t value = -1;
    absl::Status s = g_env->pool().Transact([&](pqxx::work& tx) {
      value = tx.exec1(sql)[0].as<int64_t>();
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return value;
  }
};

std::string Id(int64_t id) { return FormatId(id); }

int64_t UsFromTimestampForTest(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

// A token hash no other test uses.
std::string NewTokenHash() {
  static std::atomic<int64_t> n{0};
  std::string hash(32, '\0');
  const std::string tag = absl::StrCat("token-", n.fetch_add(1), "-");
  hash.replace(0, tag.size(), tag);
  return hash;
}

// ---------------------------------------------------------------- migrations

TEST_F(StorageTest, MigrationsApplyFromEmptyOnceEvenConcurrently) {
  EXPECT_EQ(g_env->first_applied(),
            static_cast<int>(StorageMigrations().size()));
  ASSERT_FALSE(StorageMigrations().empty());
  EXPECT_EQ(StorageMigrations()[0].version, 1);
  EXPECT_EQ(StorageMigrations()[0].name, "init");
  for (size_t i = 0; i < StorageMigrations().size(); ++i) {
    EXPECT_EQ(StorageMigrations()[i].version, static_cast<int>(i + 1));
  }
  ASSERT_GE(StorageMigrations().size(), 2u);
  EXPECT_EQ(StorageMigrations()[1].name, "receipts_contacts_last_seen");
  ASSERT_GE(StorageMigrations().size(), 3u);
  EXPECT_EQ(StorageMigrations()[2].name, "edits_reactions");
  // Running again is a no-op.
  auto again = ApplyMigrations(g_env->pool(), StorageMigrations());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(StorageMigrations().size()));

  // A fresh empty database migrated by four "instances" at once: exactly one
  // applies everything, the others find nothing to do.
  const std::string db =
      absl::StrCat("migrate_race_", g_next_user.fetch_add(1));
  {
    pqxx::connection admin(g_env->pg().url());
    pqxx::nontransaction tx(admin);
    tx.exec(absl::StrCat("CREATE DATABASE ", db));
  }
  const std::string url =
      absl::StrReplaceAll(g_env->pg().url(), {{"/parley", "/" + db}});
  std::vector<int> applied(4, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      PgPoolOptions options;
      options.url = url;
      options.size = 1;
      PgPool pool(options);
      auto n = ApplyMigrations(pool, StorageMigrations());
      applied[i] = n.ok() ? *n : -100;
    });
  }
  for (auto& t : threads) t.join();
  std::sort(applied.begin(), applied.end());
  const int all = static_cast<int>(StorageMigrations().size());
  EXPECT_THAT(applied, ElementsAre(0, 0, 0, all));

  PgPoolOptions options;
  options.url = url;
  PgPool pool(options);
  int64_t tables = 0;
  ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                    tables = tx.exec1(
                                   "SELECT count(*) FROM information_schema."
                                   "tables WHERE table_schema = 'public'")[0]
                                 .as<int64_t>();
                    return absl::OkStatus();
                  })
                  .ok());
  // users, access_tokens, chats, chat_members, messages, chat_events,
  // schema_migrations, from 0003 message_edits and reactions, and from 0004
  // blobs, blob_chunks and files.
  EXPECT_EQ(tables, 12);
  // 0002: users.last_seen_time and the (user_id, chat_id) member index.
  int64_t columns = 0;
  int64_t indexes = 0;
  ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                    columns = tx.exec1(
                                    "SELECT count(*) FROM information_schema."
                                    "columns WHERE table_name = 'users' AND "
                                    "column_name = 'last_seen_time' AND "
                                    "is_nullable = 'YES'")[0]
                                  .as<int64_t>();
                    indexes =
                        tx.exec1(
                              "SELECT count(*) FROM pg_indexes WHERE "
                              "tablename = 'chat_members' AND "
                              "indexname IN ('chat_members_user_id_"
                              "chat_id_idx', 'chat_members_user_id_idx')")[0]
                            .as<int64_t>();
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(columns, 1);
  EXPECT_EQ(indexes, 1);  // the new one, the old one dropped
  // 0005: messages and chat_events reference nothing; the rows that
  // reference messages keep their keys.
  int64_t message_keys = -1;
  int64_t keys_to_messages = -1;
  ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                    const char* kKeys =
                        "SELECT count(*) FROM pg_constraint WHERE contype = "
                        "'f' AND ";
                    message_keys =
                        tx.exec1(absl::StrCat(kKeys,
                                              "conrelid IN ('messages'::"
                                              "regclass, 'chat_events'::"
                                              "regclass)"))[0]
                            .as<int64_t>();
                    keys_to_messages = tx.exec1(absl::StrCat(
                        kKeys, "confrelid = 'messages'::regclass"))[0]
                                           .as<int64_t>();
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(message_keys, 0);
  EXPECT_EQ(keys_to_messages, 2);  // message_edits and reactions
}

// --------------------------------------------------------- users and tokens

TEST_F(StorageTest, CreateUserAndCredentials) {
  iv1::CreateUserRequest req;
  req.set_username(absl::StrCat("alice", g_next_user.fetch_add(1)));
  req.set_password_hash("$argon2id$hash");
  auto user = repo().CreateUser(req);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->username(), req.username());
  EXPECT_EQ(user->display_name(), req.username());  // empty -> username
  EXPECT_TRUE(ParseId("user_id", user->user_id()).ok());

  auto dup = repo().CreateUser(req);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "username: already taken");

  iv1::GetUserCredentialsRequest get;
  get.set_username(req.username());
  auto creds = repo().GetUserCredentials(get);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->user().user_id(), user->user_id());
  EXPECT_EQ(creds->password_hash(), "$argon2id$hash");

  get.set_username("nobody-here");
  EXPECT_EQ(repo().GetUserCredentials(get).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StorageTest, AccessTokensResolveUntilExpiry) {
  const int64_t user = NewUser();
  const std::string hash = NewTokenHash();
  const int64_t now = time(nullptr);

  iv1::CreateAccessTokenRequest create;
  create.set_user_id(user);
  create.set_token_hash(hash);
  create.mutable_expire_time()->set_seconds(now + 3600);
  create.mutable_expire_time()->set_nanos(123456000);
  ASSERT_TRUE(repo().CreateAccessToken(create).ok());

  iv1::ResolveAccessTokenRequest resolve;
  resolve.set_token_hash(hash);
  auto r = repo().ResolveAccessToken(resolve);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->user_id(), user);
  EXPECT_EQ(r->expire_time().seconds(), now + 3600);
  EXPECT_EQ(r->expire_time().nanos(), 123456000);

  // Same hash again.
  EXPECT_EQ(repo().CreateAccessToken(create).code(),
            absl::StatusCode::kAlreadyExists);

  // Expired token.
  const std::string old_hash = NewTokenHash();
  create.set_token_hash(old_hash);
  create.mutable_expire_time()->set_seconds(now - 1);
  ASSERT_TRUE(repo().CreateAccessToken(create).ok());
  resolve.set_token_hash(old_hash);
  EXPECT_EQ(repo().ResolveAccessToken(resolve).status().code(),
            absl::StatusCode::kUnauthenticated);

  // Unknown token and unknown user.
  resolve.set_token_hash(NewTokenHash());
  EXPECT_EQ(repo().ResolveAccessToken(resolve).status().code(),
            absl::StatusCode::kUnauthenticated);
  create.set_user_id(987654321);
  create.set_token_hash(NewTokenHash());
  EXPECT_EQ(repo().CreateAccessToken(create).code(),
            absl::StatusCode::kNotFound);
}

// ------------------------------------------------------------ direct chats

TEST_F(StorageTest, DirectChatIsUniquePerPair) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();

  iv1::CreateDirectChatRequest req;
  req.set_user_id(a);
  req.set_peer_user_id(a);
  auto self = repo().CreateDirectChat(req);
  EXPECT_EQ(self.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(self.status().message()), HasSubstr("peer_user_id"));

  req.set_peer_user_id(987654321);
  auto unknown = repo().CreateDirectChat(req);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("peer_user_id"));

  req.set_peer_user_id(b);
  auto first = repo().CreateDirectChat(req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->type(), pv1::CHAT_TYPE_DIRECT);
  EXPECT_EQ(first->last_seq(), 0u);
  EXPECT_THAT(first->member_user_ids(), UnorderedElementsAre(Id(a), Id(b)));
  EXPECT_TRUE(first->admin_user_ids().empty());
  EXPECT_TRUE(first->has_create_time());

  auto again = repo().CreateDirectChat(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->chat_id(), first->chat_id());
  req.set_user_id(b);
  req.set_peer_user_id(a);
  auto reversed = repo().CreateDirectChat(req);
  ASSERT_TRUE(reversed.ok());
  EXPECT_EQ(reversed->chat_id(), first->chat_id());
}

TEST_F(StorageTest, ConcurrentDirectChatCreationYieldsOneChat) {
  for (int round = 0; round < 3; ++round) {
    const int64_t a = NewUser();
    const int64_t b = NewUser();
    std::vector<std::string> ids(8);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        iv1::CreateDirectChatRequest req;
        req.set_user_id(i % 2 ? a : b);
        req.set_peer_user_id(i % 2 ? b : a);
        auto chat = repo().CreateDirectChat(req);
        ids[i] = chat.ok() ? chat->chat_id() : chat.status().ToString();
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u)
        << ids[0] << " vs " << ids[1];
    EXPECT_EQ(
        SqlInt(absl::StrCat("SELECT count(*) FROM chats WHERE direct_key = '",
                            std::min(a, b), ":", std::max(a, b), "'")),
        1);
    EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM chat_members WHERE "
                                  "chat_id = ",
                                  ids[0])),
              2);
  }
}

// ------------------------------------------------------------- group chats

TEST_F(StorageTest, CreateGroupChat) {
  const int64_t creator = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();

  iv1::CreateGroupChatRequest req;
  req.set_creator_user_id(creator);
  req.set_title("Team");
  for (int64_t id : {c, b, creator, c}) req.add_member_user_ids(id);
  req.set_max_members(3);
  auto chat = repo().CreateGroupChat(req);
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->type(), pv1::CHAT_TYPE_GROUP);
  EXPECT_EQ(chat->title(), "Team");
  EXPECT_THAT(chat->member_user_ids(), ElementsAre(Id(creator), Id(c), Id(b)));
  EXPECT_THAT(chat->admin_user_ids(), ElementsAre(Id(creator)));
  EXPECT_EQ(chat->last_seq(), 0u);

  req.set_max_members(2);
  auto too_many = repo().CreateGroupChat(req);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kFailedPrecondition);

  req.set_max_members(10);
  req.add_member_user_ids(987654321);
  auto unknown = repo().CreateGroupChat(req);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(),
            "member_user_ids: user 987654321 not found");
}

// ------------------------------------------------------------- membership

TEST_F(StorageTest, AddMembersRules) {
  const int64_t admin = NewUser();
  const int64_t member = NewUser();
  const int64_t outsider = NewUser();
  const int64_t newbie = NewUser();
  const int64_t chat = NewGroup(admin, {member});

  auto by_member = Add(member, chat, {newbie});
  EXPECT_EQ(by_member.status().code(), absl::StatusCode::kPermissionDenied);
  auto by_outsider = Add(outsider, chat, {newbie});
  EXPECT_EQ(by_outsider.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Add(admin, 987654321, {newbie}).status().code(),
            absl::StatusCode::kNotFound);
  auto unknown = Add(admin, chat, {newbie, 987654321});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("user_ids"));
  EXPECT_EQ(Add(admin, chat, {newbie, outsider}, 3).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Nothing new: no event.
  auto nothing = Add(admin, chat, {member, admin});
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_TRUE(nothing->duplicate());
  EXPECT_FALSE(nothing->has_event());
  EXPECT_EQ(nothing->chat().last_seq(), 0u);

  Send(chat, member);  // seq 1
  auto added = Add(admin, chat, {newbie, member, newbie});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_FALSE(added->duplicate());
  EXPECT_EQ(added->event().seq(), 2u);
  EXPECT_EQ(added->event().chat_id(), Id(chat));
  ASSERT_TRUE(added->event().has_members_changed());
  EXPECT_THAT(added->event().members_changed().member_user_ids(),
              ElementsAre(Id(admin), Id(member), Id(newbie)));
  EXPECT_EQ(added->event().members_changed().last_seq(), 2u);
  EXPECT_EQ(added->chat().last_seq(), 2u);
  EXPECT_EQ(added->chat().unread_count(), 1u);  // the member's message
  EXPECT_THAT(added->recipient_user_ids(),
              UnorderedElementsAre(admin, member, newbie));

  // Direct chats never change members.
  const int64_t direct = NewDirect(admin, member);
  EXPECT_EQ(Add(admin, direct, {newbie}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Remove(admin, direct, member).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StorageTest, RemoveMemberAndLeave) {
  const int64_t admin = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewGroup(admin, {b, c});

  EXPECT_EQ(Remove(b, chat, c).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto not_member = Remove(admin, chat, outsider);
  EXPECT_EQ(not_member.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(not_member.status().message()), HasSubstr("user_id"));

  auto removed = Remove(admin, chat, c);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->event().seq(), 1u);
  EXPECT_THAT(removed->event().members_changed().member_user_ids(),
              ElementsAre(Id(admin), Id(b)));
  EXPECT_THAT(removed->recipient_user_ids(), UnorderedElementsAre(admin, b, c));

  // The removed member sees nothing more of the chat.
  EXPECT_EQ(GetChat(c, chat).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ListMessages(c, chat, 0, 10).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Sync(c, chat, 0, 10).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto send =
      repo().AppendMessage(MessageRequest(chat, c, "after-removal", "x"));
  EXPECT_EQ(send.status().code(), absl::StatusCode::kPermissionDenied);
  // ...and the refused send did not consume a seq.
  EXPECT_EQ(Send(chat, b), 2u);

  // A plain member may leave.
  auto left = Remove(b, chat, b);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(left->chat().member_user_ids(), ElementsAre(Id(admin)));
  EXPECT_THAT(left->recipient_user_ids(), UnorderedElementsAre(admin, b));
  EXPECT_EQ(GetChat(b, chat).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto chat_now = GetChat(admin, chat);
  ASSERT_TRUE(chat_now.ok());
  EXPECT_EQ(chat_now->last_seq(), 3u);
}

TEST_F(StorageTest, LastAdminLeavingHandsOverToLongestStandingMember) {
  const int64_t admin = NewUser();
  const int64_t early = NewUser();
  const int64_t late = NewUser();
  const int64_t chat = NewGroup(admin, {early});
  ASSERT_TRUE(Add(admin, chat, {late}).ok());

  auto left = Remove(admin, chat, admin);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(left->event().members_changed().admin_user_ids(),
              ElementsAre(Id(early)));

  // The new admin can now add people; the other member still cannot.
  const int64_t x = NewUser();
  EXPECT_EQ(Add(late, chat, {x}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Add(early, chat, {x}).ok());
}

TEST_F(StorageTest, HandoverFollowsJoinOrderNotUserId) {
  const int64_t admin = NewUser();
  const int64_t low = NewUser();
  const int64_t high = NewUser();
  ASSERT_LT(low, high);
  // `high` joins first.
  const int64_t chat = NewGroup(admin, {high, low});
  auto left = Remove(admin, chat, admin);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(left->chat().admin_user_ids(), ElementsAre(Id(high)));
  // Another admin left in place: no handover.
  const int64_t chat2 = NewGroup(admin, {high, low});
  auto by_admin = Remove(admin, chat2, high);
  ASSERT_TRUE(by_admin.ok());
  EXPECT_THAT(by_admin->chat().admin_user_ids(), ElementsAre(Id(admin)));
}

// --------------------------------------------------------------- messages

TEST_F(StorageTest, ConcurrentSendersGetGapFreeSeqs) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  const int64_t admin = NewUser();
  std::vector<int64_t> senders;
  for (int i = 0; i < kThreads; ++i) senders.push_back(NewUser());
  const int64_t chat = NewGroup(admin, senders);

  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = repo().AppendMessage(MessageRequest(
            chat, senders[t], absl::StrCat("conc-", chat, "-", t, "-", i),
            absl::StrCat("message ", i)));
        if (!r.ok() || r->duplicate()) {
          ++failures;
          continue;
        }
        seqs[t].push_back(r->event().seq());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<uint64_t> all;
  for (const auto& s : seqs) {
    // Each sender's own messages are in increasing order.
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);

  auto chat_now = GetChat(admin, chat);
  ASSERT_TRUE(chat_now.ok());
  EXPECT_EQ(chat_now->last_seq(), all.size());
  EXPECT_EQ(chat_now->unread_count(), all.size());
  auto sync = Sync(admin, chat, 0, 500);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->events_size(), kThreads * kPerThread);
  EXPECT_FALSE(sync->has_more());
  for (int i = 0; i < sync->events_size(); ++i) {
    EXPECT_EQ(sync->events(i).seq(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(sync->events(i).message_created().seq(),
              static_cast<uint64_t>(i + 1));
  }
}

TEST_F(StorageTest, AppendMessagesAnswersEachRequestOnItsOwn) {
  const int64_t a = NewUser(), b = NewUser(), c = NewUser(), d = NewUser();
  const int64_t outsider = NewUser();
  const int64_t group = NewGroup(a, {b});
  const int64_t direct = NewDirect(c, d);
  const std::string tricky =
      "quote \" back\\slash {brace}, comma 'apos' \u00e9";
  std::vector<iv1::AppendMessageRequest> reqs = {
      MessageRequest(group, a, "am-1", "first"),            // 0: seq 1
      MessageRequest(group, outsider, "am-2", "intruder"),  // 1: not a member
      MessageRequest(direct, c, "am-3", "other chat"),      // 2: seq 1 there
      MessageRequest(group, b, "am-4", tricky),             // 3: seq 2
      MessageRequest(987654321, a, "am-5", "nowhere"),      // 4: no such chat
      MessageRequest(group, a, "am-6", "bad reply"),        // 5: reply unknown
      MessageRequest(group, a, "am-1", "first"),            // 6: repeat of 0
      MessageRequest(group, a, "am-1", "changed"),          // 7: reuse of 0
      MessageRequest(group, a, "am-8", "last"),             // 8: seq 3
  };
  reqs[5].set_reply_to_message_id(123456789);
  reqs[6].set_message_id(reqs[0].message_id() + 100000);
  std::vector<const iv1::AppendMessageRequest*> ptrs;
  for (const auto& r : reqs) ptrs.push_back(&r);
  auto out = repo().AppendMessages(ptrs);
  ASSERT_EQ(out.size(), reqs.size());
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  EXPECT_EQ(out[0]->event().seq(), 1u);
  EXPECT_FALSE(out[0]->duplicate());
  EXPECT_THAT(out[0]->recipient_user_ids(),
              ::testing::UnorderedElementsAre(a, b));
  EXPECT_EQ(out[1].status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(out[2].ok()) << out[2].status();
  EXPECT_EQ(out[2]->event().seq(), 1u);
  ASSERT_TRUE(out[3].ok()) << out[3].status();
  EXPECT_EQ(out[3]->event().seq(), 2u);
  EXPECT_EQ(out[3]->event().message_created().text(), tricky);
  EXPECT_EQ(out[4].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(out[5].status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(out[5].status().message()),
              ::testing::HasSubstr("reply_to_message_id"));
  ASSERT_TRUE(out[6].ok()) << out[6].status();
  EXPECT_TRUE(out[6]->duplicate());
  EXPECT_EQ(out[6]->event().message_created().message_id(),
            out[0]->event().message_created().message_id());
  EXPECT_EQ(out[7].status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(out[8].ok()) << out[8].status();
  EXPECT_EQ(out[8]->event().seq(), 3u);

  // What was stored: gap-free, in request order, the text intact.
  auto sync = Sync(a, group, 0, 100);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->events_size(), 3);
  EXPECT_EQ(sync->events(0).message_created().text(), "first");
  EXPECT_EQ(sync->events(1).message_created().text(), tricky);
  EXPECT_EQ(sync->events(2).message_created().text(), "last");
  auto chat_now = GetChat(a, group);
  ASSERT_TRUE(chat_now.ok());
  EXPECT_EQ(chat_now->last_seq(), 3u);
  // No foreign key guards these rows (0005): the rejected sends left none.
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM messages WHERE chat_id "
                                "= 987654321 OR sender_id = ",
                                outsider)),
            0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM chat_events WHERE chat_id = "
                   "987654321"),
            0);

  // A later retry of a batched message is answered with the original.
  auto again = repo().AppendMessage(reqs[3]);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->event().seq(), 2u);
}

// A batch that waited for a chat's lock judges membership as of after the
// wait: a member removed meanwhile can no longer send and is no longer a
// recipient. This is why the lock and the member read are two statements:
// in READ COMMITTED one statement would read the members as of before it
// waited.
TEST_F(StorageTest, BatchThatWaitedForARemovalSeesIt) {
  const int64_t admin = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewGroup(admin, {b});

  // A membership change in progress, holding the chat's lock as
  // RemoveMember does.
  pqxx::connection conn(g_env->pg().url());
  pqxx::work removal(conn);
  removal.exec_params("SELECT 1 FROM chats WHERE chat_id = $1 FOR UPDATE",
                      chat);
  removal.exec_params(
      "DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2", chat, b);

  const iv1::AppendMessageRequest from_b =
      MessageRequest(chat, b, "waited-b", "from b");
  const iv1::AppendMessageRequest from_admin =
      MessageRequest(chat, admin, "waited-admin", "from admin");
  auto batch = std::async(std::launch::async, [&] {
    return repo().AppendMessages({&from_b, &from_admin});
  });
  // Commit only once the batch waits for the removal.
  const std::string blocked_by_removal =
      absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE ",
                   conn.backendpid(), " = ANY(pg_blocking_pids(pid))");
  bool waiting = false;
  for (int i = 0; i < 2000 && !waiting; ++i) {
    waiting = SqlInt(blocked_by_removal) > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!waiting) removal.abort();  // frees the batch before the test ends
  ASSERT_TRUE(waiting) << "the batch never waited for the chat's lock";
  removal.commit();

  auto out = batch.get();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].status().code(), absl::StatusCode::kPermissionDenied)
      << out[0].status();
  ASSERT_TRUE(out[1].ok()) << out[1].status();
  EXPECT_THAT(out[1]->recipient_user_ids(), ElementsAre(admin));
}

TEST_F(StorageTest, SendsSubmittedTogetherCommitInOneTransaction) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t chat1 = NewDirect(a, b);
  const int64_t chat2 = NewDirect(a, c);
  // Enough that a drain starting on the first would not find the last,
  // and far more than one transaction takes from separate submits.
  constexpr int kSends = 400;
  ThreadPool workers("append-test", 2, 100);
  AppendBatcher batcher(&repo(), &workers, {.lanes = 1, .max_batch = 16});
  std::vector<iv1::AppendMessageRequest> reqs;
  for (int i = 0; i < kSends; ++i) {
    reqs.push_back(MessageRequest(i % 2 ? chat2 : chat1, a,
                                  absl::StrCat("together-", i), "hi"));
  }
  std::vector<std::promise<absl::StatusOr<iv1::ChatEventResult>>> got(kSends);
  std::vector<AppendBatcher::Entry> entries;
  for (int i = 0; i < kSends; ++i) {
    entries.push_back(
        {&reqs[i], [&got, i](auto r) { got[i].set_value(std::move(r)); }});
  }
  batcher.SubmitAll(std::move(entries), std::chrono::system_clock::now() +
                                            std::chrono::seconds(30));
  std::set<int64_t> commit_times;
  std::map<int64_t, std::vector<uint64_t>> seqs;
  for (int i = 0; i < kSends; ++i) {
    auto r = got[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    // create_time is the transaction's start: one value, one transaction.
    commit_times.insert(
        r->event().message_created().create_time().seconds() * 1000000 +
        r->event().message_created().create_time().nanos() / 1000);
    seqs[reqs[i].chat_id()].push_back(r->event().seq());
  }
  EXPECT_EQ(commit_times.size(), 1u);
  // Each chat's sends took its seqs in the order they were submitted.
  for (auto& [chat, list] : seqs) {
    ASSERT_EQ(list.size(), static_cast<size_t>(kSends / 2));
    for (size_t k = 1; k < list.size(); ++k)
      EXPECT_EQ(list[k], list[k - 1] + 1);
  }
}

TEST_F(StorageTest, GroupCommitKeepsChatsGapFreeUnderConcurrentSends) {
  constexpr int kChats = 6;
  constexpr int kThreads = 6;
  constexpr int kPerThread = 60;
  const int64_t admin = NewUser();
  std::vector<int64_t> senders;
  for (int i = 0; i < kThreads; ++i) senders.push_back(NewUser());
  std::vector<int64_t> chats;
  for (int i = 0; i < kChats; ++i) chats.push_back(NewGroup(admin, senders));

  ThreadPool workers("append-test", 4, 1000);
  AppendBatcher batcher(&repo(), &workers, {.lanes = 3, .max_batch = 64});
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  int failures = 0;
  // chat -> sender -> seqs in the order the sender submitted.
  std::map<int64_t, std::map<int64_t, std::vector<uint64_t>>> seqs;
  std::map<int64_t, std::map<int64_t, std::vector<int>>> order;
  // The batcher reads requests in place: they outlive every answer.
  std::vector<std::vector<iv1::AppendMessageRequest>> reqs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      reqs[t].push_back(MessageRequest(chats[(t + i) % kChats], senders[t],
                                       absl::StrCat("gc-", t, "-", i),
                                       absl::StrCat("m", i)));
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t chat = reqs[t][i].chat_id();
        batcher.Submit(
            &reqs[t][i],
            std::chrono::system_clock::now() + std::chrono::seconds(30),
            [&, chat, t, i](absl::StatusOr<iv1::ChatEventResult> r) {
              std::lock_guard<std::mutex> lock(mu);
              if (!r.ok() || r->duplicate()) {
                ++failures;
              } else {
                seqs[chat][senders[t]].push_back(r->event().seq());
                order[chat][senders[t]].push_back(i);
              }
              ++done;
              cv.notify_all();
            });
      }
    });
  }
  for (auto& t : threads) t.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60),
                            [&] { return done == kThreads * kPerThread; }));
  }
  EXPECT_EQ(failures, 0);
  for (int64_t chat : chats) {
    std::vector<uint64_t> all;
    for (auto& [sender, list] : seqs[chat]) {
      // A sender's sends to one chat take seqs in the order it sent them.
      std::vector<std::pair<int, uint64_t>> by_order;
      for (size_t k = 0; k < list.size(); ++k) {
        by_order.emplace_back(order[chat][sender][k], list[k]);
      }
      std::sort(by_order.begin(), by_order.end());
      for (size_t k = 1; k < by_order.size(); ++k) {
        EXPECT_LT(by_order[k - 1].second, by_order[k].second);
      }
      all.insert(all.end(), list.begin(), list.end());
    }
    std::sort(all.begin(), all.end());
    for (size_t k = 0; k < all.size(); ++k) ASSERT_EQ(all[k], k + 1);
    auto sync = Sync(admin, chat, 0, 500);
    ASSERT_TRUE(sync.ok()) << sync.status();
    EXPECT_EQ(static_cast<size_t>(sync->events_size()), all.size());
  }
}

TEST_F(StorageTest, ClientMessageIdRetryReturnsOriginal) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  const int64_t other_chat = NewGroup(a, {b});

  iv1::AppendMessageRequest req = MessageRequest(chat, a, "retry-1", "hello");
  auto first = repo().AppendMessage(req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate());
  const pv1::Message& msg = first->event().message_created();
  EXPECT_EQ(msg.message_id(), Id(req.message_id()));
  EXPECT_EQ(msg.seq(), 1u);
  EXPECT_EQ(msg.text(), "hello");
  EXPECT_EQ(msg.sender_user_id(), Id(a));
  EXPECT_EQ(msg.client_message_id(), "retry-1");
  EXPECT_TRUE(msg.has_create_time());
  EXPECT_FALSE(msg.has_edit_time());
  EXPECT_THAT(first->recipient_user_ids(), UnorderedElementsAre(a, b));
  EXPECT_EQ(first->chat().last_seq(), 1u);

  Send(chat, b);  // seq 2

  // A retry, even with a new server-assigned message id.
  iv1::AppendMessageRequest retry = req;
  retry.set_message_id(g_next_message_id.fetch_add(1));
  auto second = repo().AppendMessage(retry);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->event().message_created().message_id(), msg.message_id());
  EXPECT_EQ(second->event().seq(), 1u);
  EXPECT_EQ(second->event().create_time().seconds(),
            first->event().create_time().seconds());
  EXPECT_EQ(second->chat().last_seq(), 2u);

  // Reuse for different content or another chat.
  iv1::AppendMessageRequest other_text = req;
  other_text.set_text("hello!");
  auto conflict = repo().AppendMessage(other_text);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(conflict.status().message(),
            "client_message_id: already used for a different message");
  iv1::AppendMessageRequest other_chat_req = req;
  other_chat_req.set_chat_id(other_chat);
  EXPECT_EQ(repo().AppendMessage(other_chat_req).status().code(),
            absl::StatusCode::kAlreadyExists);
  iv1::AppendMessageRequest other_reply = req;
  other_reply.set_reply_to_message_id(req.message_id());
  EXPECT_EQ(repo().AppendMessage(other_reply).status().code(),
            absl::StatusCode::kAlreadyExists);

  // The same key from another sender is a different message.
  iv1::AppendMessageRequest by_b = MessageRequest(chat, b, "retry-1", "hello");
  auto b_msg = repo().AppendMessage(by_b);
  ASSERT_TRUE(b_msg.ok()) << b_msg.status();
  EXPECT_FALSE(b_msg->duplicate());
  EXPECT_EQ(b_msg->event().seq(), 3u);
}

// The first run of a batch skips the key lookup; a retry in it rolls that
// run back and the next one answers it, leaving no gap in the seqs of the
// new messages beside it.
TEST_F(StorageTest, RetryInABatchOfNewSendsLeavesNoSeqGap) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  iv1::AppendMessageRequest stored = MessageRequest(chat, a, "gap-1", "one");
  auto first = repo().AppendMessage(stored);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->event().seq(), 1u);

  iv1::AppendMessageRequest fresh1 = MessageRequest(chat, b, "gap-2", "two");
  iv1::AppendMessageRequest retry = stored;
  retry.set_message_id(g_next_message_id.fetch_add(1));
  iv1::AppendMessageRequest fresh2 = MessageRequest(chat, a, "gap-3", "three");
  auto out = repo().AppendMessages({&fresh1, &retry, &fresh2});
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  ASSERT_TRUE(out[1].ok()) << out[1].status();
  ASSERT_TRUE(out[2].ok()) << out[2].status();
  EXPECT_FALSE(out[0]->duplicate());
  EXPECT_TRUE(out[1]->duplicate());
  EXPECT_FALSE(out[2]->duplicate());
  EXPECT_EQ(out[1]->event().seq(), 1u);
  EXPECT_EQ(out[0]->event().seq(), 2u);
  EXPECT_EQ(out[2]->event().seq(), 3u);
  EXPECT_EQ(out[2]->chat().last_seq(), 3u);

  // The next send follows on without a gap.
  auto next = repo().AppendMessage(MessageRequest(chat, b, "gap-4", "four"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->event().seq(), 4u);
}

TEST_F(StorageTest, ConcurrentRetriesStoreOneMessage) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  iv1::AppendMessageRequest req = MessageRequest(chat, a, "burst", "once");
  std::vector<absl::StatusOr<iv1::ChatEventResult>> results(
      8, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      iv1::AppendMessageRequest mine = req;
      mine.set_message_id(req.message_id() + 100000 * (i + 1));
      results[i] = repo().AppendMessage(mine);
    });
  }
  for (auto& t : threads) t.join();
  int originals = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    if (!r->duplicate()) ++originals;
    ids.insert(r->event().message_created().message_id());
    EXPECT_EQ(r->event().seq(), 1u);
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(ids.size(), 1u);
  auto chat_now = GetChat(a, chat);
  ASSERT_TRUE(chat_now.ok());
  EXPECT_EQ(chat_now->last_seq(), 1u);
}

TEST_F(StorageTest, AppendMessageErrors) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewDirect(a, b);
  const int64_t other = NewGroup(a, {});

  auto unknown = repo().AppendMessage(MessageRequest(987654321, a, "e1", "x"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("chat_id"));

  EXPECT_EQ(repo()
                .AppendMessage(MessageRequest(chat, outsider, "e2", "x"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);

  auto in_other = repo().AppendMessage(MessageRequest(other, a, "e3", "x"));
  ASSERT_TRUE(in_other.ok());
  iv1::AppendMessageRequest reply = MessageRequest(chat, a, "e4", "re");
  reply.set_reply_to_message_id(987654321);
  auto bad_reply = repo().AppendMessage(reply);
  EXPECT_EQ(bad_reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(bad_reply.status().message()),
              HasSubstr("reply_to_message_id"));
  reply.set_reply_to_message_id(
      ParseId("id", in_other->event().message_created().message_id()).value());
  EXPECT_EQ(repo().AppendMessage(reply).status().code(),
            absl::StatusCode::kNotFound);

  // Nothing above consumed a seq of `chat`.
  auto ok = repo().AppendMessage(MessageRequest(chat, a, "e5", "first"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->event().seq(), 1u);
  iv1::AppendMessageRequest good_reply = MessageRequest(chat, b, "e6", "re");
  good_reply.set_reply_to_message_id(
      ParseId("id", ok->event().message_created().message_id()).value());
  const int64_t file_id = StoreFile(b, chat);
  good_reply.set_file_id(file_id);
  auto replied = repo().AppendMessage(good_reply);
  ASSERT_TRUE(replied.ok()) << replied.status();
  EXPECT_EQ(replied->event().message_created().reply_to_message_id(),
            ok->event().message_created().message_id());
  EXPECT_EQ(replied->event().message_created().file().file_id(), Id(file_id));
  EXPECT_EQ(replied->event().seq(), 2u);
}

// ------------------------------------------------------------- pagination

TEST_F(StorageTest, ListMessagesPagesExactly) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  for (int i = 1; i <= 6; ++i) Send(chat, i % 2 ? a : b, absl::StrCat("m", i));

  auto page1 = ListMessages(b, chat, 0, 3);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->messages_size(), 3);
  EXPECT_EQ(page1->messages(0).seq(), 6u);
  EXPECT_EQ(page1->messages(0).text(), "m6");
  EXPECT_EQ(page1->messages(2).seq(), 4u);
  EXPECT_EQ(page1->next_before_seq(), 4u);

  auto page2 = ListMessages(b, chat, page1->next_before_seq(), 3);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->messages_size(), 3);
  EXPECT_EQ(page2->messages(0).seq(), 3u);
  EXPECT_EQ(page2->messages(2).seq(), 1u);
  EXPECT_EQ(page2->next_before_seq(), 0u);  // exactly 6: no empty third page

  auto page_big = ListMessages(a, chat, 0, 6);
  ASSERT_TRUE(page_big.ok());
  EXPECT_EQ(page_big->messages_size(), 6);
  EXPECT_EQ(page_big->next_before_seq(), 0u);
  auto page5 = ListMessages(a, chat, 0, 5);
  ASSERT_TRUE(page5.ok());
  EXPECT_EQ(page5->next_before_seq(), 2u);

  const int64_t outsider = NewUser();
  EXPECT_EQ(ListMessages(outsider, chat, 0, 3).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ListMessages(a, 987654321, 0, 3).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StorageTest, SyncChatPagesAndShowsCurrentState) {
  const int64_t admin = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t chat = NewGroup(admin, {b});
  Send(chat, admin, "one");                 // 1
  Send(chat, b, "two");                     // 2
  ASSERT_TRUE(Add(admin, chat, {c}).ok());  // 3
  Send(chat, c, "four");                    // 4
  // Turn message 2 into a tombstone behind the repository's back.
  Sql(absl::StrCat("UPDATE messages SET deleted = true WHERE chat_id = ", chat,
                   " AND seq = 2"));

  auto p1 = Sync(c, chat, 0, 2);
  ASSERT_TRUE(p1.ok()) << p1.status();
  ASSERT_EQ(p1->events_size(), 2);
  EXPECT_TRUE(p1->has_more());
  EXPECT_EQ(p1->events(0).seq(), 1u);
  EXPECT_EQ(p1->events(0).message_created().text(), "one");
  EXPECT_TRUE(p1->events(1).message_created().deleted());
  EXPECT_EQ(p1->events(1).message_created().text(), "");

  auto p2 = Sync(c, chat, 2, 2);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->events_size(), 2);
  EXPECT_FALSE(p2->has_more());  // exactly the last two
  EXPECT_EQ(p2->events(0).seq(), 3u);
  ASSERT_TRUE(p2->events(0).has_members_changed());
  EXPECT_THAT(p2->events(0).members_changed().member_user_ids(),
              ElementsAre(Id(admin), Id(b), Id(c)));
  EXPECT_EQ(p2->events(1).message_created().text(), "four");
  EXPECT_EQ(p2->events(1).chat_id(), Id(chat));

  auto p3 = Sync(c, chat, 4, 2);
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(p3->events_size(), 0);
  EXPECT_FALSE(p3->has_more());
}

TEST_F(StorageTest, ListChatsOrdersByActivityAndPagesExactly) {
  const int64_t me = NewUser();
  std::vector<int64_t> chats;
  for (int i = 0; i < 5; ++i) chats.push_back(NewDirect(me, NewUser()));
  // Activity order, most recent first: 2, 0, 4, 3, 1.
  Send(chats[1], me);
  Send(chats[3], me);
  Send(chats[4], me);
  Send(chats[0], me);
  Send(chats[2], me);
  const std::vector<std::string> expected = {
      Id(chats[2]), Id(chats[0]), Id(chats[4]), Id(chats[3]), Id(chats[1])};
  for (int page_size : {1, 2, 3, 5, 6}) {
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    do {
      iv1::ListChatsRequest req;
      req.set_user_id(me);
      req.set_page_size(page_size);
      req.set_page_token(token);
      auto resp = repo().ListChats(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      ASSERT_LE(resp->chats_size(), page_size);
      ASSERT_GT(resp->chats_size(), 0) << "empty page, size " << page_size;
      for (const auto& c : resp->chats()) seen.push_back(c.chat_id());
      token = resp->next_page_token();
      ASSERT_LT(++pages, 10);
    } while (!token.empty());
    EXPECT_EQ(seen, expected) << "page size " << page_size;
    EXPECT_EQ(pages, (5 + page_size - 1) / page_size);
  }

  iv1::ListChatsRequest bad;
  bad.set_user_id(me);
  bad.set_page_size(2);
  bad.set_page_token("not a token!");
  auto r = repo().ListChats(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("page_token"));
  bad.set_page_token(EncodeChatPageToken(5, -1));
  EXPECT_EQ(repo().ListChats(bad).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A user without chats.
  iv1::ListChatsRequest none;
  none.set_user_id(NewUser());
  auto empty = repo().ListChats(none);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->chats_size(), 0);
  EXPECT_TRUE(empty->next_page_token().empty());
}

TEST_F(StorageTest, ListChatsIncludesMembersAndUnread) {
  const int64_t me = NewUser();
  const int64_t peer = NewUser();
  const int64_t chat = NewDirect(me, peer);
  Send(chat, peer);
  iv1::ListChatsRequest req;
  req.set_user_id(me);
  auto resp = repo().ListChats(req);  // page_size 0 -> default
  ASSERT_TRUE(resp.ok()) << resp.status();
  ASSERT_EQ(resp->chats_size(), 1);
  EXPECT_EQ(resp->chats(0).unread_count(), 1u);
  EXPECT_EQ(resp->chats(0).last_seq(), 1u);
  EXPECT_THAT(resp->chats(0).member_user_ids(), ElementsAre(Id(me), Id(peer)));
}

TEST_F(StorageTest, UnreadCountsOthersUndeletedMessagesAboveReadSeq) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  Send(chat, b);  // 1
  Send(chat, a);  // 2
  Send(chat, b);  // 3
  Send(chat, b);  // 4
  Send(chat, a);  // 5

  auto for_a = GetChat(a, chat);
  ASSERT_TRUE(for_a.ok());
  EXPECT_EQ(for_a->unread_count(), 3u);
  auto for_b = GetChat(b, chat);
  ASSERT_TRUE(for_b.ok());
  EXPECT_EQ(for_b->unread_count(), 2u);

  Sql(absl::StrCat("UPDATE chat_members SET read_seq = 3 WHERE chat_id = ",
                   chat, " AND user_id = ", a));
  EXPECT_EQ(GetChat(a, chat)->unread_count(), 1u);
  Sql(absl::StrCat("UPDATE messages SET deleted = true WHERE chat_id = ", chat,
                   " AND seq = 4"));
  EXPECT_EQ(GetChat(a, chat)->unread_count(), 0u);
  EXPECT_EQ(GetChat(b, chat)->unread_count(), 2u);

  EXPECT_EQ(GetChat(NewUser(), chat).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(GetChat(a, 987654321).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StorageTest, EarlierHistoryIsNotUnreadForANewMember) {
  const int64_t admin = NewUser();
  const int64_t early = NewUser();
  const int64_t late = NewUser();
  const int64_t chat = NewGroup(admin, {early});
  Send(chat, admin);
  Send(chat, admin);
  ASSERT_TRUE(Add(admin, chat, {late}).ok());  // seq 3
  EXPECT_EQ(GetChat(late, chat)->unread_count(), 0u);
  EXPECT_EQ(GetChat(early, chat)->unread_count(), 2u);
  Send(chat, admin);  // seq 4
  EXPECT_EQ(GetChat(late, chat)->unread_count(), 1u);
  EXPECT_EQ(GetChat(early, chat)->unread_count(), 3u);
}

// --------------------------------------------------------------- receipts

TEST_F(StorageTest, ReceiptsNeverMoveBackwards) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  for (int i = 1; i <= 10; ++i) Send(chat, i % 2 ? a : b);
  const int64_t events = SqlInt(
      absl::StrCat("SELECT count(*) FROM chat_events WHERE chat_id = ", chat));

  auto r = Receipt(a, chat, 0, 5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->changed());
  EXPECT_EQ(r->receipt().chat_id(), Id(chat));
  EXPECT_EQ(r->receipt().user_id(), Id(a));
  EXPECT_EQ(r->receipt().delivered_seq(), 5u);  // read implies delivered
  EXPECT_EQ(r->receipt().read_seq(), 5u);
  EXPECT_THAT(r->recipient_user_ids(), ElementsAre(b));

  r = Receipt(a, chat, 0, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 5u);
  EXPECT_EQ(r->receipt().read_seq(), 5u);
  EXPECT_THAT(r->recipient_user_ids(), ElementsAre(b));

  r = Receipt(a, chat, 8, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 8u);
  EXPECT_EQ(r->receipt().read_seq(), 5u);

  r = Receipt(a, chat, 2, 4);  // both behind: nothing moves
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 8u);
  EXPECT_EQ(r->receipt().read_seq(), 5u);

  r = Receipt(a, chat, 0, 9);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 9u);
  EXPECT_EQ(r->receipt().read_seq(), 9u);

  r = Receipt(a, chat, 0, 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 10u);
  EXPECT_EQ(r->receipt().read_seq(), 10u);

  r = Receipt(a, chat, std::numeric_limits<uint64_t>::max(),
              std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 10u);
  EXPECT_EQ(r->receipt().read_seq(), 10u);

  r = Receipt(a, chat, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(r->receipt().read_seq(), 10u);

  // Stored as answered; the other member's watermarks are untouched; no
  // event and no seq were consumed.
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT read_seq * 100 + delivered_seq FROM "
                                "chat_members WHERE chat_id = ",
                                chat, " AND user_id = ", a)),
            1010);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT read_seq + delivered_seq FROM "
                                "chat_members WHERE chat_id = ",
                                chat, " AND user_id = ", b)),
            0);
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM chat_events WHERE chat_id = ", chat)),
            events);
  auto now = GetChat(a, chat);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->last_seq(), 10u);
  EXPECT_EQ(Send(chat, b), 11u);

  // Delivered alone, past last_seq, is clamped too.
  r = Receipt(b, chat, 50, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->receipt().delivered_seq(), 11u);
  EXPECT_EQ(r->receipt().read_seq(), 0u);
  EXPECT_THAT(r->recipient_user_ids(), ElementsAre(a));
}

TEST_F(StorageTest, ReceiptRecipientsAreTheOtherMembers) {
  const int64_t admin = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t chat = NewGroup(admin, {b, c});
  Send(chat, admin);
  auto r = Receipt(b, chat, 1, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipient_user_ids(), ElementsAre(admin, c));
  // Empty chat: everything clamps to 0, nothing changes.
  const int64_t empty = NewGroup(admin, {b});
  r = Receipt(b, empty, 3, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(r->receipt().delivered_seq(), 0u);
  EXPECT_EQ(r->receipt().read_seq(), 0u);
}

TEST_F(StorageTest, ConcurrentReceiptsEndAtTheMaximum) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  constexpr uint64_t kLastSeq = 40;
  const int64_t admin = NewUser();
  const int64_t reader = NewUser();
  const int64_t chat = NewGroup(admin, {reader});
  for (uint64_t i = 0; i < kLastSeq; ++i) Send(chat, admin);

  std::atomic<uint64_t> max_delivered{0};
  std::atomic<uint64_t> max_read{0};
  std::atomic<int> failures{0};
  std::atomic<int> went_back{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1234 + t * 7919 + chat);
      uint64_t seen_delivered = 0;
      uint64_t seen_read = 0;
      for (int i = 0; i < kPerThread; ++i) {
        // Sometimes above last_seq, sometimes 0 ("leave it").
        const uint64_t delivered = rng() % (kLastSeq + 10);
        const uint64_t read = rng() % (kLastSeq + 10);
        auto r = Receipt(reader, chat, delivered, read);
        if (!r.ok()) {
          ++failures;
          continue;
        }
        uint64_t d = std::min(delivered, kLastSeq);
        uint64_t m = max_delivered.load();
        while (d > m && !max_delivered.compare_exchange_weak(m, d)) {
        }
        uint64_t rd = std::min(read, kLastSeq);
        m = max_read.load();
        while (rd > m && !max_read.compare_exchange_weak(m, rd)) {
        }
        // What one caller observes never goes back either.
        if (r->receipt().delivered_seq() < seen_delivered ||
            r->receipt().read_seq() < seen_read ||
            r->receipt().delivered_seq() < r->receipt().read_seq()) {
          ++went_back;
        }
        seen_delivered = r->receipt().delivered_seq();
        seen_read = r->receipt().read_seq();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(went_back.load(), 0);
  auto final_state = Receipt(reader, chat, 0, 0);
  ASSERT_TRUE(final_state.ok()) << final_state.status();
  EXPECT_FALSE(final_state->changed());
  EXPECT_EQ(final_state->receipt().read_seq(), max_read.load());
  EXPECT_EQ(final_state->receipt().delivered_seq(),
            std::max(max_delivered.load(), max_read.load()));
  auto chat_now = GetChat(admin, chat);
  ASSERT_TRUE(chat_now.ok());
  EXPECT_EQ(chat_now->last_seq(), kLastSeq);
}

TEST_F(StorageTest, ReceiptErrors) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t outsider = NewUser();
  const int64_t direct = NewDirect(a, b);
  const int64_t group = NewGroup(a, {b, c});
  Send(direct, a);

  auto unknown = Receipt(a, 987654321, 1, 1);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()),
              ::testing::StartsWith("chat_id: "));
  EXPECT_EQ(Receipt(outsider, direct, 1, 1).status().code(),
            absl::StatusCode::kPermissionDenied);
  // A removed member is no longer one.
  ASSERT_TRUE(Remove(a, group, c).ok());
  EXPECT_EQ(Receipt(c, group, 1, 1).status().code(),
            absl::StatusCode::kPermissionDenied);

  auto no_user = Receipt(0, direct, 1, 1);
  EXPECT_EQ(no_user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_user.status().message()),
              ::testing::StartsWith("user_id: "));
  auto no_chat = Receipt(a, -4, 1, 1);
  EXPECT_EQ(no_chat.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_chat.status().message()),
              ::testing::StartsWith("chat_id: "));
}

TEST_F(StorageTest, UnreadCountFollowsReceipts) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t chat = NewDirect(a, b);
  Send(chat, b);  // 1
  Send(chat, a);  // 2
  Send(chat, b);  // 3
  Send(chat, a);  // 4
  Send(chat, b);  // 5
  EXPECT_EQ(Unread(a, chat), 3u);
  EXPECT_EQ(Unread(b, chat), 2u);  // own messages are never unread

  ASSERT_TRUE(Receipt(a, chat, 0, 3).ok());
  EXPECT_EQ(Unread(a, chat), 1u);
  ASSERT_TRUE(Receipt(a, chat, 0, 5).ok());
  EXPECT_EQ(Unread(a, chat), 0u);
  EXPECT_EQ(Unread(b, chat), 2u);
  // Delivery alone does not read.
  ASSERT_TRUE(Receipt(b, chat, 5, 0).ok());
  EXPECT_EQ(Unread(b, chat), 2u);

  Send(chat, b);  // 6
  Send(chat, a);  // 7
  Send(chat, b);  // 8
  EXPECT_EQ(Unread(a, chat), 2u);
  EXPECT_EQ(Unread(b, chat), 3u);
  ASSERT_TRUE(Receipt(b, chat, 0, 8).ok());
  EXPECT_EQ(Unread(b, chat), 0u);

  // Per caller, for every chat of a ListChats page (group included).
  const int64_t group = NewGroup(a, {b, c});
  Send(group, a);
  Send(group, b);
  Send(group, c);
  Send(group, c);
  ASSERT_TRUE(Receipt(c, group, 0, 2).ok());
  const std::map<int64_t, std::map<int64_t, uint64_t>> expected = {
      {a, {{chat, 2}, {group, 3}}},
      {b, {{chat, 0}, {group, 3}}},
      {c, {{group, 0}}},
  };
  for (const auto& [user, per_chat] : expected) {
    for (int page_size : {1, 50}) {
      std::map<int64_t, uint64_t> got;
      std::string token;
      do {
        iv1::ListChatsRequest req;
        req.set_user_id(user);
        req.set_page_size(page_size);
        req.set_page_token(token);
        auto resp = repo().ListChats(req);
        ASSERT_TRUE(resp.ok()) << resp.status();
        for (const auto& ch : resp->chats()) {
          got[ParseId("chat_id", ch.chat_id()).value()] = ch.unread_count();
        }
        token = resp->next_page_token();
      } while (!token.empty());
      EXPECT_EQ(got, per_chat) << "user " << user << " page " << page_size;
    }
    for (const auto& [chat_id, unread] : per_chat) {
      EXPECT_EQ(Unread(user, chat_id), unread);
    }
  }
  // A deleted message is not unread.
  Sql(absl::StrCat("UPDATE messages SET deleted = true WHERE chat_id = ", group,
                   " AND seq = 2"));
  EXPECT_EQ(Unread(a, group), 2u);
}

// ------------------------------------------------------ contacts, members

TEST_F(StorageTest, ListContactsIsDirectChatPeersOnly) {
  const int64_t me = NewUser();
  const int64_t p1 = NewUser();
  const int64_t p2 = NewUser();
  const int64_t group_only = NewUser();
  const int64_t x = NewUser();
  const int64_t y = NewUser();
  EXPECT_TRUE(Contacts(me).empty());
  NewDirect(me, p2);
  NewDirect(p1, me);
  NewDirect(me, p1);  // the same chat again
  NewGroup(me, {p1, group_only});
  NewGroup(group_only, {me});
  NewDirect(x, y);
  NewDirect(p1, y);
  std::vector<int64_t> want = {p1, p2};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Contacts(me), want);
  std::vector<int64_t> of_p1 = {me, y};
  std::sort(of_p1.begin(), of_p1.end());
  EXPECT_EQ(Contacts(p1), of_p1);
  EXPECT_TRUE(Contacts(group_only).empty());
  EXPECT_TRUE(Contacts(987654321).empty());

  iv1::ListContactsRequest bad;
  auto r = repo().ListContacts(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::StartsWith("user_id: "));
}

TEST_F(StorageTest, GetChatMembersCodes) {
  const int64_t admin = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewGroup(admin, {c, b});

  auto any = Members(chat, 0);
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_THAT(any->user_ids(), ElementsAre(admin, c, b));  // join order
  auto as_member = Members(chat, b);
  ASSERT_TRUE(as_member.ok()) << as_member.status();
  EXPECT_THAT(as_member->user_ids(), ElementsAre(admin, c, b));
  EXPECT_EQ(Members(chat, outsider).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto unknown = Members(987654321, 0);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()),
              ::testing::StartsWith("chat_id: "));
  EXPECT_EQ(Members(987654321, admin).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Members(0, admin).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Members(chat, -1).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A removed member is no longer listed nor allowed.
  ASSERT_TRUE(Remove(admin, chat, c).ok());
  EXPECT_EQ(Members(chat, c).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Members(chat, admin)->user_ids(), ElementsAre(admin, b));
  // A group everyone left still exists, with no members.
  ASSERT_TRUE(Remove(admin, chat, admin).ok());
  ASSERT_TRUE(Remove(b, chat, b).ok());
  auto empty = Members(chat, 0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->user_ids().empty());
  EXPECT_EQ(Members(chat, b).status().code(),
            absl::StatusCode::kPermissionDenied);

  const int64_t direct = NewDirect(outsider, b);
  EXPECT_THAT(Members(direct, outsider)->user_ids(),
              UnorderedElementsAre(outsider, b));
}

// ------------------------------------------------- last seen, visibility

TEST_F(StorageTest, RecordLastSeenKeepsTheLatest) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const std::string a_seen_sql = absl::StrCat(
      "SELECT coalesce((extract(epoch from last_seen_time) * 1000000)::bigint,"
      " -1) FROM users WHERE user_id = ");
  EXPECT_EQ(SqlInt(a_seen_sql + Id(a)), -1);

  // Unknown, non-positive and duplicate ids are ignored.
  ASSERT_TRUE(SeenAt({a, 987654321, a, 0, -5}, 1000000, 250000000).ok());
  EXPECT_EQ(SqlInt(a_seen_sql + Id(a)), 1000000250000);
  EXPECT_EQ(SqlInt(a_seen_sql + Id(b)), -1);

  ASSERT_TRUE(SeenAt({a, b}, 500).ok());  // earlier: a keeps its time
  EXPECT_EQ(SqlInt(a_seen_sql + Id(a)), 1000000250000);
  EXPECT_EQ(SqlInt(a_seen_sql + Id(b)), 500000000);
  ASSERT_TRUE(SeenAt({b, a}, 2000000, 1000).ok());
  EXPECT_EQ(SqlInt(a_seen_sql + Id(a)), 2000000000001);
  EXPECT_EQ(SqlInt(a_seen_sql + Id(b)), 2000000000001);
  ASSERT_TRUE(SeenAt({}, 3000000).ok());

  // Concurrent overlapping batches, in opposite orders: the maximum wins
  // and nothing deadlocks.
  std::vector<int64_t> users;
  for (int i = 0; i < 20; ++i) users.push_back(NewUser());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int64_t> mine = users;
      if (t % 2) std::reverse(mine.begin(), mine.end());
      for (int i = 0; i < 10; ++i) {
        if (!SeenAt(mine, 5000000 + (t * 37 + i * 11) % 97).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t want = 0;
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 10; ++i) {
      want = std::max<int64_t>(want, 5000000 + (t * 37 + i * 11) % 97);
    }
  }
  for (int64_t u : users) {
    EXPECT_EQ(SqlInt(a_seen_sql + Id(u)), want * 1000000);
  }

  std::vector<int64_t> too_many(kMaxRecordLastSeenUsers + 1, a);
  absl::Status big = SeenAt(too_many, 9000000);
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(big.message()), ::testing::StartsWith("user_ids: "));
  too_many.pop_back();
  EXPECT_TRUE(SeenAt(too_many, 9000000).ok());
  EXPECT_EQ(SqlInt(a_seen_sql + Id(a)), 9000000000000);

  iv1::RecordLastSeenRequest no_time;
  no_time.add_user_ids(a);
  absl::Status missing = repo().RecordLastSeen(no_time);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.message()),
              ::testing::StartsWith("last_seen_time: "));
  EXPECT_EQ(SeenAt({a}, 1, -1).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StorageTest, GetVisibleUsers) {
  const int64_t viewer = NewUser();
  const int64_t co_member = NewUser();
  const int64_t contact = NewUser();
  const int64_t stranger = NewUser();
  const int64_t former = NewUser();
  const int64_t admin = NewUser();
  const int64_t group = NewGroup(admin, {viewer, co_member, former});
  NewDirect(contact, viewer);
  NewGroup(stranger, {co_member});  // a friend of a friend is a stranger
  ASSERT_TRUE(Remove(admin, group, former).ok());
  ASSERT_TRUE(SeenAt({viewer, contact, stranger, former}, 1700000000).ok());

  const std::vector<int64_t> asked = {stranger,  contact, viewer, 987654321,
                                      co_member, contact, former, -3};
  auto r = Visible(viewer, asked);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->users_size(), static_cast<int>(asked.size()));
  const std::vector<bool> visible = {false, true, true,  false,
                                     true,  true, false, false};
  for (size_t i = 0; i < asked.size(); ++i) {
    const iv1::VisibleUser& u = r->users(static_cast<int>(i));
    EXPECT_EQ(u.user_id(), asked[i]) << i;
    EXPECT_EQ(u.visible(), visible[i]) << i;
    const bool has_time = visible[i] && asked[i] != co_member;
    EXPECT_EQ(u.has_last_seen_time(), has_time) << i;
    if (has_time) {
      EXPECT_EQ(u.last_seen_time().seconds(), 1700000000) << i;
    }
  }

  // Visibility is symmetric for shared chats; a stranger sees only itself.
  auto from_stranger = Visible(stranger, {viewer, stranger, co_member});
  ASSERT_TRUE(from_stranger.ok());
  EXPECT_FALSE(from_stranger->users(0).visible());
  EXPECT_FALSE(from_stranger->users(0).has_last_seen_time());
  EXPECT_TRUE(from_stranger->users(1).visible());
  EXPECT_TRUE(from_stranger->users(2).visible());

  auto none = Visible(viewer, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->users_size(), 0);

  std::vector<int64_t> many(kMaxVisibleUsers, contact);
  auto at_limit = Visible(viewer, many);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->users_size(), kMaxVisibleUsers);
  many.push_back(contact);
  auto over = Visible(viewer, many);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "user_ids: at most 500");
  EXPECT_EQ(Visible(0, {viewer}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------ gRPC wiring

// ------------------------------------------------ edits, deletes, reactions

using ReactionList =
    std::vector<std::pair<std::string, std::vector<std::string>>>;

// Reactions as (emoji, user ids) in message order; checks every count.
ReactionList Reactions(const pv1::Message& m) {
  ReactionList out;
  for (const auto& r : m.reactions()) {
    EXPECT_EQ(r.count(), static_cast<uint64_t>(r.user_ids_size())) << r.emoji();
    out.emplace_back(r.emoji(), std::vector<std::string>(r.user_ids().begin(),
                                                         r.user_ids().end()));
  }
  return out;
}

TEST_F(StorageTest, EditKeepsHistoryAndIsIdempotent) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  const int64_t msg = SendId(chat, a, "first");  // seq 1
  Send(chat, b, "other");                        // seq 2

  auto e1 = Edit(a, chat, msg, "second");
  ASSERT_TRUE(e1.ok()) << e1.status();
  EXPECT_FALSE(e1->duplicate());
  EXPECT_EQ(e1->event().seq(), 3u);
  EXPECT_EQ(e1->event().chat_id(), Id(chat));
  ASSERT_TRUE(e1->event().has_message_edited());
  const pv1::Message& edited = e1->event().message_edited();
  EXPECT_EQ(edited.text(), "second");
  EXPECT_EQ(edited.seq(), 1u);  // the message keeps its place
  EXPECT_TRUE(edited.has_edit_time());
  EXPECT_GE(UsFromTimestampForTest(edited.edit_time()),
            UsFromTimestampForTest(edited.create_time()));
  EXPECT_EQ(e1->chat().last_seq(), 3u);
  EXPECT_THAT(e1->recipient_user_ids(), UnorderedElementsAre(a, b));

  ASSERT_TRUE(Edit(a, chat, msg, "third").ok());
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM message_edits WHERE message_id = ", msg)),
            2);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM message_edits WHERE "
                                "message_id = ",
                                msg, " AND version = 1 AND text = 'first'")),
            1);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM message_edits WHERE "
                                "message_id = ",
                                msg, " AND version = 2 AND text = 'second'")),
            1);

  // The same text again is a retry: no event, the current message.
  auto same = Edit(a, chat, msg, "third");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->duplicate());
  EXPECT_EQ(same->event().seq(), 0u);
  EXPECT_EQ(same->event().message_edited().text(), "third");
  EXPECT_EQ(same->chat().last_seq(), 4u);
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM message_edits WHERE message_id = ", msg)),
            2);

  const pv1::Message listed = Listed(b, chat, msg);
  EXPECT_EQ(listed.text(), "third");
  EXPECT_TRUE(listed.has_edit_time());
  auto sync = Sync(b, chat, 0, 100);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->events_size(), 4);
  EXPECT_EQ(sync->events(2).message_edited().text(), "third");
  EXPECT_EQ(sync->events(3).message_edited().text(), "third");
  EXPECT_EQ(sync->events(0).message_created().text(), "third");

  // Editing does not touch unread counts: still the one message from a.
  EXPECT_EQ(Unread(b, chat), 1u);

  ASSERT_TRUE(Delete(a, chat, msg).ok());
  auto after = Edit(a, chat, msg, "fourth");
  EXPECT_EQ(after.status().code(), absl::StatusCode::kFailedPrecondition)
      << after.status();
  EXPECT_THAT(after.status().message(), HasSubstr("message_id: "));
}

TEST_F(StorageTest, EditAndDeletePermissionMatrix) {
  using absl::StatusCode;
  // Group: admin (creator, not the sender), sender, another member, and a
  // non-member.
  const int64_t admin = NewUser();
  const int64_t sender = NewUser();
  const int64_t member = NewUser();
  const int64_t outsider = NewUser();
  const int64_t group = NewGroup(admin, {sender, member});
  const int64_t gm = SendId(group, sender, "g");

  EXPECT_EQ(Edit(member, group, gm, "x").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Edit(admin, group, gm, "x").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Edit(outsider, group, gm, "x").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Edit(sender, group, gm, "x").ok());
  EXPECT_EQ(Delete(member, group, gm).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Delete(outsider, group, gm).status().code(),
            StatusCode::kPermissionDenied);
  auto by_admin = Delete(admin, group, gm);
  ASSERT_TRUE(by_admin.ok()) << by_admin.status();
  EXPECT_FALSE(by_admin->duplicate());
  EXPECT_TRUE(by_admin->event().message_deleted().deleted());
  // Repeating a delete still needs the right to delete.
  EXPECT_EQ(Delete(member, group, gm).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Delete(outsider, group, gm).status().code(),
            StatusCode::kPermissionDenied);
  auto again = Delete(sender, group, gm);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  const int64_t gm2 = SendId(group, sender, "g2");
  auto own = Delete(sender, group, gm2);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_FALSE(own->duplicate());
  // A sender who left is no longer allowed anything.
  const int64_t gm3 = SendId(group, sender, "g3");
  ASSERT_TRUE(Remove(sender, group, sender).ok());
  EXPECT_EQ(Edit(sender, group, gm3, "y").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Delete(sender, group, gm3).status().code(),
            StatusCode::kPermissionDenied);

  // Direct chat: only the sender, even if the peer were marked admin.
  const int64_t peer = NewUser();
  const int64_t direct = NewDirect(sender, peer);
  const int64_t dm = SendId(direct, sender, "d");
  EXPECT_EQ(Edit(peer, direct, dm, "x").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Edit(outsider, direct, dm, "x").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Delete(peer, direct, dm).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Delete(outsider, direct, dm).status().code(),
            StatusCode::kPermissionDenied);
  Sql(absl::StrCat("UPDATE chat_members SET role = 2 WHERE chat_id = ", direct,
                   " AND user_id = ", peer));
  EXPECT_EQ(Delete(peer, direct, dm).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Edit(sender, direct, dm, "x").ok());
  EXPECT_TRUE(Delete(sender, direct, dm).ok());

  // Nothing failed left a gap or an extra event.
  auto g = GetChat(admin, group);
  ASSERT_TRUE(g.ok());
  // 3 sends, 1 edit, 2 deletes, 1 member change.
  EXPECT_EQ(g->last_seq(), 7u);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM chat_events WHERE "
                                "chat_id = ",
                                group)),
            7);
}

TEST_F(StorageTest, ChangeErrors) {
  using absl::StatusCode;
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewGroup(a, {b});
  const int64_t other = NewGroup(a, {b});
  const int64_t msg = SendId(chat, a);
  const int64_t elsewhere = SendId(other, a);

  auto bad = Edit(0, chat, msg, "x");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("actor_user_id: "));
  bad = Delete(a, -1, msg);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("chat_id: "));
  bad = React(a, chat, 0, "👍");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("message_id: "));
  bad = Unreact(a, chat, msg, "");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("emoji: "));
  bad = React(a, chat, msg, "👍", -1);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);

  bad = React(a, 987654321, msg, "👍");
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(bad.status().message(), HasSubstr("chat_id: "));
  bad = Edit(outsider, chat, msg, "x");
  EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied);
  // A non-member learns nothing about message ids.
  EXPECT_EQ(React(outsider, chat, 987654321, "👍").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Unreact(outsider, chat, msg, "👍").status().code(),
            StatusCode::kPermissionDenied);
  for (int64_t wrong : {int64_t{987654321}, elsewhere}) {
    for (const auto& st :
         {Edit(a, chat, wrong, "x").status(), Delete(a, chat, wrong).status(),
          React(a, chat, wrong, "👍").status(),
          Unreact(a, chat, wrong, "👍").status()}) {
      EXPECT_EQ(st.code(), StatusCode::kNotFound) << st;
      EXPECT_THAT(st.message(), HasSubstr("message_id: "));
    }
  }
  // A text-only message cannot be edited to nothing.
  EXPECT_EQ(Edit(a, chat, msg, "").status().code(),
            StatusCode::kInvalidArgument);
  // None of it wrote anything.
  EXPECT_EQ(GetChat(a, chat)->last_seq(), 1u);
  EXPECT_EQ(Listed(a, chat, msg).text(), "hi");
}

TEST_F(StorageTest, DeleteLeavesATombstoneEverywhere) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewGroup(a, {b});
  iv1::AppendMessageRequest req =
      MessageRequest(chat, b, absl::StrCat("tomb-", chat), "secret one");
  req.set_file_id(StoreFile(b, chat));
  ASSERT_TRUE(repo().AppendMessage(req).ok());  // 1
  const int64_t msg = req.message_id();
  ASSERT_TRUE(Edit(b, chat, msg, "secret two").ok());  // 2
  ASSERT_TRUE(React(a, chat, msg, "👍").ok());          // 3
  ASSERT_TRUE(React(b, chat, msg, "🎉").ok());          // 4
  const int64_t kept = SendId(chat, b, "kept");        // 5
  ASSERT_TRUE(React(a, chat, kept, "👍").ok());         // 6
  EXPECT_EQ(Unread(a, chat), 2u);
  const pv1::Message before = Listed(a, chat, msg);
  ASSERT_TRUE(before.has_edit_time());

  auto del = Delete(b, chat, msg);  // 7
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_FALSE(del->duplicate());
  EXPECT_EQ(del->event().seq(), 7u);
  EXPECT_THAT(del->recipient_user_ids(), UnorderedElementsAre(a, b));
  const pv1::Message& tomb = del->event().message_deleted();
  EXPECT_TRUE(tomb.deleted());
  EXPECT_EQ(tomb.text(), "");
  EXPECT_FALSE(tomb.has_file());
  EXPECT_EQ(tomb.reactions_size(), 0);
  EXPECT_EQ(tomb.seq(), 1u);
  EXPECT_EQ(tomb.sender_user_id(), Id(b));
  EXPECT_EQ(tomb.create_time().seconds(), before.create_time().seconds());
  EXPECT_EQ(tomb.create_time().nanos(), before.create_time().nanos());
  EXPECT_EQ(tomb.edit_time().seconds(), before.edit_time().seconds());
  EXPECT_EQ(tomb.edit_time().nanos(), before.edit_time().nanos());

  // Gone from every table.
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM message_edits WHERE message_id = ", msg)),
            0);
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM reactions WHERE message_id = ", msg)),
            0);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM messages WHERE "
                                "message_id = ",
                                msg,
                                " AND text = '' AND file_id IS NULL AND "
                                "length(content_hash) = 0")),
            1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM message_edits WHERE text LIKE "
                   "'secret%'"),
            0);
  // The other message keeps its reaction; unread drops the tombstone.
  EXPECT_EQ(Reactions(Listed(a, chat, kept)), (ReactionList{{"👍", {Id(a)}}}));
  EXPECT_EQ(Unread(a, chat), 1u);

  // Every earlier event of the message now carries the tombstone.
  auto sync = Sync(a, chat, 0, 100);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->events_size(), 7);
  for (int i : {0, 1, 2, 3, 6}) {
    const pv1::ChatEvent& ev = sync->events(i);
    const pv1::Message* m = nullptr;
    switch (ev.event_case()) {
      case pv1::ChatEvent::kMessageCreated:
        m = &ev.message_created();
        break;
      case pv1::ChatEvent::kMessageEdited:
        m = &ev.message_edited();
        break;
      case pv1::ChatEvent::kMessageDeleted:
        m = &ev.message_deleted();
        break;
      case pv1::ChatEvent::kReactionChanged:
        m = &ev.reaction_changed();
        break;
      default:
        break;
    }
    ASSERT_NE(m, nullptr) << i;
    EXPECT_TRUE(m->deleted()) << i;
    EXPECT_EQ(m->text(), "") << i;
    EXPECT_FALSE(m->has_file()) << i;
    EXPECT_EQ(m->reactions_size(), 0) << i;
  }
  EXPECT_TRUE(sync->events(0).has_message_created());
  EXPECT_TRUE(sync->events(1).has_message_edited());
  EXPECT_TRUE(sync->events(6).has_message_deleted());
  EXPECT_EQ(Reactions(sync->events(5).reaction_changed()),
            (ReactionList{{"👍", {Id(a)}}}));

  // Idempotent: no new event, the tombstone again.
  auto again = Delete(b, chat, msg);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_TRUE(again->event().message_deleted().deleted());
  EXPECT_EQ(again->chat().last_seq(), 7u);
  // Reactions on a tombstone: adding fails, removing is a no-op.
  auto react = React(a, chat, msg, "👍");
  EXPECT_EQ(react.status().code(), absl::StatusCode::kFailedPrecondition);
  auto unreact = Unreact(a, chat, msg, "👍");
  ASSERT_TRUE(unreact.ok()) << unreact.status();
  EXPECT_TRUE(unreact->duplicate());
  // A retry of the original send finds the tombstone.
  auto retry = repo().AppendMessage(req);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate());
  EXPECT_TRUE(retry->event().message_created().deleted());
  EXPECT_EQ(GetChat(a, chat)->last_seq(), 7u);
}

TEST_F(StorageTest, ReactionsAggregateInOrderAndAreIdempotent) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t c = NewUser();
  const int64_t chat = NewGroup(a, {b, c});
  const int64_t msg = SendId(chat, a);  // 1

  auto r1 = React(a, chat, msg, "👍");  // 2
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_FALSE(r1->duplicate());
  EXPECT_EQ(r1->event().seq(), 2u);
  ASSERT_TRUE(r1->event().has_reaction_changed());
  EXPECT_EQ(Reactions(r1->event().reaction_changed()),
            (ReactionList{{"👍", {Id(a)}}}));
  EXPECT_THAT(r1->recipient_user_ids(), UnorderedElementsAre(a, b, c));
  ASSERT_TRUE(React(b, chat, msg, "❤️").ok());  // 3
  ASSERT_TRUE(React(c, chat, msg, "👍").ok());       // 4
  auto r4 = React(b, chat, msg, "👍");               // 5
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(Reactions(r4->event().reaction_changed()),
            (ReactionList{{"👍", {Id(a), Id(c), Id(b)}}, {"❤️", {Id(b)}}}));

  // Idempotent add and remove: no event, current state.
  auto dup = React(c, chat, msg, "👍");
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate());
  EXPECT_EQ(dup->event().seq(), 0u);
  EXPECT_EQ(dup->chat().last_seq(), 5u);
  EXPECT_EQ(Reactions(dup->event().reaction_changed()),
            Reactions(r4->event().reaction_changed()));
  auto none = Unreact(c, chat, msg, "🎉");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->duplicate());
  EXPECT_EQ(GetChat(a, chat)->last_seq(), 5u);

  // a re-reacts: now last among 👍, and 👍's first reaction is after
  // ❤️'s.
  auto un = Unreact(a, chat, msg, "👍");  // 6
  ASSERT_TRUE(un.ok());
  EXPECT_FALSE(un->duplicate());
  EXPECT_EQ(un->event().seq(), 6u);
  ASSERT_TRUE(React(a, chat, msg, "👍").ok());  // 7
  const ReactionList want = {{"❤️", {Id(b)}}, {"👍", {Id(c), Id(b), Id(a)}}};
  EXPECT_EQ(Reactions(Listed(c, chat, msg)), want);
  auto sync = Sync(c, chat, 0, 100);
  ASSERT_TRUE(sync.ok());
  ASSERT_EQ(sync->events_size(), 7);
  for (int i = 1; i < 7; ++i) {
    ASSERT_TRUE(sync->events(i).has_reaction_changed()) << i;
    EXPECT_EQ(Reactions(sync->events(i).reaction_changed()), want);
  }
  EXPECT_EQ(Reactions(sync->events(0).message_created()), want);
  // Reactions do not count as unread messages.
  EXPECT_EQ(Unread(c, chat), 1u);

  // Removing the last reaction of an emoji drops the entry.
  ASSERT_TRUE(Unreact(b, chat, msg, "❤️").ok());
  EXPECT_EQ(Reactions(Listed(c, chat, msg)),
            (ReactionList{{"👍", {Id(c), Id(b), Id(a)}}}));
}

TEST_F(StorageTest, ReactionLimitCountsDistinctEmoji) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewGroup(a, {b});
  const int64_t msg = SendId(chat, a);
  ASSERT_TRUE(React(a, chat, msg, "1", 2).ok());
  ASSERT_TRUE(React(a, chat, msg, "2", 2).ok());
  auto full = React(b, chat, msg, "3", 2);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.status().message(),
            "emoji: at most 2 distinct reactions per message");
  // Joining an existing emoji is fine, and so is a duplicate.
  ASSERT_TRUE(React(b, chat, msg, "2", 2).ok());
  auto dup = React(a, chat, msg, "1", 2);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate());
  // Once an emoji is gone, a new one fits.
  ASSERT_TRUE(Unreact(a, chat, msg, "1").ok());
  ASSERT_TRUE(React(b, chat, msg, "3", 2).ok());
  EXPECT_EQ(Reactions(Listed(a, chat, msg)),
            (ReactionList{{"2", {Id(a), Id(b)}}, {"3", {Id(b)}}}));

  // The default limit (0) is 20.
  const int64_t msg2 = SendId(chat, a);
  for (int i = 0; i < kDefaultMaxDistinctEmoji; ++i) {
    ASSERT_TRUE(React(a, chat, msg2, absl::StrCat("e", i)).ok()) << i;
  }
  auto over = React(b, chat, msg2, "e-extra");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.status().message(),
            "emoji: at most 20 distinct reactions per message");
  EXPECT_EQ(Listed(a, chat, msg2).reactions_size(), kDefaultMaxDistinctEmoji);
}

TEST_F(StorageTest, ListMessagesAttachesReactionsPerMessage) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewDirect(a, b);
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(SendId(chat, i % 2 ? a : b));
  ASSERT_TRUE(React(a, chat, ids[1], "x").ok());
  ASSERT_TRUE(React(b, chat, ids[1], "y").ok());
  ASSERT_TRUE(React(b, chat, ids[3], "x").ok());
  auto page = ListMessages(a, chat, 0, 3);  // seqs 5, 4, 3 of the messages
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages_size(), 3);
  EXPECT_EQ(page->messages(0).reactions_size(), 0);
  EXPECT_EQ(Reactions(page->messages(1)), (ReactionList{{"x", {Id(b)}}}));
  EXPECT_EQ(page->messages(2).reactions_size(), 0);
  page = ListMessages(a, chat, page->next_before_seq(), 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages_size(), 2);
  EXPECT_EQ(Reactions(page->messages(0)),
            (ReactionList{{"x", {Id(a)}}, {"y", {Id(b)}}}));
  EXPECT_EQ(page->messages(1).reactions_size(), 0);
}

TEST_F(StorageTest, ConcurrentReactionsAreExactAndGapFree) {
  constexpr int kUsers = 20;
  constexpr int kRounds = 4;
  std::vector<int64_t> users;
  for (int i = 0; i < kUsers; ++i) users.push_back(NewUser());
  const int64_t chat =
      NewGroup(users[0], std::vector<int64_t>(users.begin() + 1, users.end()));
  const int64_t msg = SendId(chat, users[0], "react to me");  // seq 1

  struct Op {
    bool add;
    std::string emoji;
  };
  // Per round; some are no-ops on purpose (repeat add, remove of absent).
  const std::vector<Op> round = {
      {true, "👍"}, {true, "❤️"}, {true, "👍"},       {false, "❤️"},
      {true, "🎉"}, {false, "🔥"},     {false, "❤️"}, {true, "❤️"}};
  std::vector<int> effective(kUsers, 0);
  std::vector<std::set<std::string>> final_state(kUsers);
  std::vector<std::vector<uint64_t>> seqs(kUsers);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kUsers; ++t) {
    threads.emplace_back([&, t] {
      std::set<std::string> mine;
      for (int r = 0; r < kRounds; ++r) {
        std::vector<Op> ops = round;
        // Odd rounds also take back 🎉 and ❤️ so the next round re-adds.
        if (r % 2 == 1 && (t + r) % 3 != 0) {
          ops.push_back({false, "🎉"});
          ops.push_back({false, "❤️"});
        }
        for (const Op& op : ops) {
          const bool changes =
              op.add ? !mine.count(op.emoji) : mine.count(op.emoji) > 0;
          auto res = op.add ? React(users[t], chat, msg, op.emoji)
                            : Unreact(users[t], chat, msg, op.emoji);
          if (!res.ok() || res->duplicate() == changes) {
            ++failures;
            continue;
          }
          if (op.add) {
            mine.insert(op.emoji);
          } else {
            mine.erase(op.emoji);
          }
          if (!changes) continue;
          ++effective[t];
          seqs[t].push_back(res->event().seq());
          // The event shows this very change.
          bool present = false;
          const pv1::Message& now = res->event().reaction_changed();
          for (const auto& reaction : now.reactions()) {
            if (reaction.emoji() != op.emoji) continue;
            for (const auto& u : reaction.user_ids()) {
              if (u == Id(users[t])) present = true;
            }
          }
          if (present != op.add) ++failures;
        }
      }
      final_state[t] = mine;
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  int total = 0;
  std::map<std::string, std::set<std::string>> want;
  std::vector<uint64_t> all_seqs;
  for (int t = 0; t < kUsers; ++t) {
    total += effective[t];
    for (const auto& e : final_state[t]) want[e].insert(Id(users[t]));
    EXPECT_TRUE(std::is_sorted(seqs[t].begin(), seqs[t].end()));
    all_seqs.insert(all_seqs.end(), seqs[t].begin(), seqs[t].end());
  }
  std::sort(all_seqs.begin(), all_seqs.end());
  ASSERT_EQ(all_seqs.size(), static_cast<size_t>(total));
  for (size_t i = 0; i < all_seqs.size(); ++i) {
    ASSERT_EQ(all_seqs[i], i + 2);  // seq 1 is the message
  }

  // Exact counts.
  const pv1::Message listed = Listed(users[0], chat, msg);
  std::map<std::string, std::set<std::string>> got;
  for (const auto& r : listed.reactions()) {
    EXPECT_EQ(r.count(), static_cast<uint64_t>(r.user_ids_size()));
    std::set<std::string> who(r.user_ids().begin(), r.user_ids().end());
    EXPECT_EQ(who.size(), static_cast<size_t>(r.user_ids_size()));
    got[r.emoji()] = who;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(SqlInt(absl::StrCat(
                "SELECT count(*) FROM reactions WHERE message_id = ", msg)),
            [&] {
              int64_t n = 0;
              for (const auto& [e, who] : want) n += who.size();
              return n;
            }());

  // Gap-free log: seqs exactly 1..last_seq.
  auto c = GetChat(users[0], chat);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->last_seq(), static_cast<uint64_t>(total + 1));
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT count(*) FROM chat_events WHERE "
                                "chat_id = ",
                                chat)),
            total + 1);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT min(seq) FROM chat_events WHERE "
                                "chat_id = ",
                                chat)),
            1);
  EXPECT_EQ(SqlInt(absl::StrCat("SELECT max(seq) FROM chat_events WHERE "
                                "chat_id = ",
                                chat)),
            total + 1);

  // Replaying SyncChat from 0 (in pages) rebuilds what ListMessages shows.
  std::map<std::string, pv1::Message> replayed;
  uint64_t after = 0;
  int reaction_events = 0;
  uint64_t expect_seq = 1;
  for (;;) {
    auto page = Sync(users[5], chat, after, 37);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& ev : page->events()) {
      ASSERT_EQ(ev.seq(), expect_seq++);
      if (ev.has_reaction_changed()) {
        ++reaction_events;
        replayed[ev.reaction_changed().message_id()] = ev.reaction_changed();
      } else {
        ASSERT_TRUE(ev.has_message_created());
        replayed[ev.message_created().message_id()] = ev.message_created();
      }
      after = ev.seq();
    }
    if (!page->has_more()) break;
  }
  EXPECT_EQ(reaction_events, total);
  EXPECT_EQ(after, c->last_seq());
  auto list = ListMessages(users[5], chat, 0, 100);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(replayed.size(), static_cast<size_t>(list->messages_size()));
  for (const auto& m : list->messages()) {
    ASSERT_TRUE(replayed.count(m.message_id()));
    const pv1::Message& r = replayed[m.message_id()];
    EXPECT_EQ(r.SerializeAsString(), m.SerializeAsString());
    EXPECT_EQ(Reactions(r), Reactions(m));
    EXPECT_EQ(r.text(), m.text());
    EXPECT_EQ(r.deleted(), m.deleted());
  }
}

TEST_F(StorageTest, ConcurrentNewEmojiRespectTheLimit) {
  constexpr int kUsers = 12;
  constexpr int kLimit = 5;
  std::vector<int64_t> users;
  for (int i = 0; i < kUsers; ++i) users.push_back(NewUser());
  const int64_t chat =
      NewGroup(users[0], std::vector<int64_t>(users.begin() + 1, users.end()));
  for (int round = 0; round < 3; ++round) {
    const int64_t msg = SendId(chat, users[0]);
    std::atomic<int> added{0};
    std::atomic<int> exhausted{0};
    std::atomic<int> other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kUsers; ++t) {
      threads.emplace_back([&, t] {
        auto r = React(users[t], chat, msg, absl::StrCat("emoji", t), kLimit);
        if (r.ok() && !r->duplicate()) {
          ++added;
        } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ++other;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(added.load(), kLimit);
    EXPECT_EQ(exhausted.load(), kUsers - kLimit);
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(Listed(users[1], chat, msg).reactions_size(), kLimit);
  }
}

// AppendMessages over gRPC, with group commit (lanes) and without: one
// outcome per request in request order, errors kept to their own request,
// a chat's seqs in request order.
TEST_F(StorageTest, AppendMessagesOverGrpcAnswersEachRequestInItsOutcome) {
  for (int lanes : {1, 0}) {
    SCOPED_TRACE(absl::StrCat("append lanes ", lanes));
    ThreadPool workers("storage-test", 2, 16);
    StorageServiceImpl service(&repo(), &workers);
    std::unique_ptr<AppendBatcher> batcher;
    if (lanes > 0) {
      batcher = std::make_unique<AppendBatcher>(
          &repo(), &workers, AppendBatcherOptions{.lanes = lanes});
      service.set_append_batcher(batcher.get());
    }
    auto server = StartServer(ServerOptions{}, {&service});
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = iv1::StorageService::NewStub(
        MakeChannel(absl::StrCat("127.0.0.1:", server->port)));
    auto call = [&](const iv1::AppendMessagesRequest& req,
                    iv1::AppendMessagesResponse* resp) {
      grpc::ClientContext ctx;
      SetTimeout(&ctx, std::chrono::seconds(10));
      return stub->AppendMessages(&ctx, req, resp);
    };

    const int64_t a = NewUser(), b = NewUser(), outsider = NewUser();
    const int64_t chat = NewDirect(a, b);
    const std::string tag = absl::StrCat("amg", lanes, "-");
    iv1::AppendMessagesRequest req;
    *req.add_requests() = MessageRequest(chat, a, tag + "1", "one");
    *req.add_requests() = MessageRequest(chat, outsider, tag + "2", "no");
    *req.add_requests() = MessageRequest(chat, b, tag + "3", "two");
    *req.add_requests() = MessageRequest(chat, a, tag + "1", "one");  // retry
    *req.add_requests() = MessageRequest(chat, a, tag + "4", "three");
    iv1::AppendMessagesResponse resp;
    grpc::Status s = call(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outcomes_size(), 5);
    const auto& o = resp.outcomes();
    EXPECT_EQ(o[0].code(), 0) << o[0].error_message();
    EXPECT_EQ(o[0].result().event().seq(), 1u);
    EXPECT_EQ(o[0].result().event().message_created().text(), "one");
    EXPECT_EQ(o[1].code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_FALSE(o[1].error_message().empty());
    EXPECT_FALSE(o[1].has_result());
    EXPECT_EQ(o[2].code(), 0) << o[2].error_message();
    EXPECT_EQ(o[2].result().event().seq(), 2u);
    EXPECT_EQ(o[3].code(), 0) << o[3].error_message();
    EXPECT_TRUE(o[3].result().duplicate());
    EXPECT_EQ(o[3].result().event().seq(), 1u);
    EXPECT_EQ(o[4].code(), 0) << o[4].error_message();
    EXPECT_EQ(o[4].result().event().seq(), 3u);
    EXPECT_THAT(o[4].result().recipient_user_ids(), UnorderedElementsAre(a, b));

    // An empty call is answered with nothing; an oversized one is refused
    // whole, naming the field, and writes nothing.
    iv1::AppendMessagesResponse empty;
    EXPECT_TRUE(call(iv1::AppendMessagesRequest(), &empty).ok());
    EXPECT_EQ(empty.outcomes_size(), 0);
    iv1::AppendMessagesRequest big;
    for (int i = 0; i < 1025; ++i) {
      *big.add_requests() =
          MessageRequest(chat, a, absl::StrCat(tag, "big", i), "x");
    }
    iv1::AppendMessagesResponse refused;
    s = call(big, &refused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("requests"));
    auto chat_now = GetChat(a, chat);
    ASSERT_TRUE(chat_now.ok()) << chat_now.status();
    EXPECT_EQ(chat_now->last_seq(), 3u);
    server->server->Shutdown();
  }
}

// A storage from before AppendMessages: the real service's AppendMessage
// and nothing else, as during a rolling upgrade.
class StorageWithoutBatches : public iv1::StorageService::CallbackService {
 public:
  explicit StorageWithoutBatches(StorageServiceImpl* real) : real_(real) {}
  grpc::ServerUnaryReactor* AppendMessage(grpc::CallbackServerContext* ctx,
                                          const iv1::AppendMessageRequest* req,
                                          iv1::ChatEventResult* resp) override {
    return real_->AppendMessage(ctx, req, resp);
  }

 private:
  StorageServiceImpl* const real_;
};

// CallBatch, the client side of the batch calls, over gRPC: against a
// storage with AppendMessages, and against one without it, where each
// request falls back to its own AppendMessage call. The answers are the
// same either way, one per request, in order.
TEST_F(StorageTest, CallBatchOverGrpcFallsBackToOneCallEachOnAnOlderPeer) {
  for (bool older : {false, true}) {
    SCOPED_TRACE(older ? "older storage" : "current storage");
    ThreadPool workers("storage-test", 2, 16);
    StorageServiceImpl service(&repo(), &workers);
    StorageWithoutBatches old_service(&service);
    auto server = StartServer(
        ServerOptions{},
        {older ? static_cast<grpc::Service*>(&old_service) : &service});
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = iv1::StorageService::NewStub(
        MakeChannel(absl::StrCat("127.0.0.1:", server->port)));
    using Async = iv1::StorageService::StubInterface::async_interface;
    Async* async =
        static_cast<iv1::StorageService::StubInterface*>(stub.get())->async();

    const int64_t a = NewUser(), b = NewUser(), outsider = NewUser();
    const int64_t chat = NewDirect(a, b);
    const std::string tag = absl::StrCat("cb", older, "-");
    std::vector<iv1::AppendMessageRequest> requests = {
        MessageRequest(chat, a, tag + "1", "one"),
        MessageRequest(chat, outsider, tag + "2", "no"),
        MessageRequest(chat, b, tag + "3", "two"),
    };
    std::promise<BatchResults<iv1::ChatEventResult>> answered;
    CallBatch(
        async, &Async::AppendMessages, &Async::AppendMessage,
        std::move(requests), std::chrono::seconds(10),
        [](iv1::AppendOutcome* o) { return std::move(*o->mutable_result()); },
        [&](BatchResults<iv1::ChatEventResult> r) {
          answered.set_value(std::move(r));
        });
    auto future = answered.get_future();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(15)),
              std::future_status::ready);
    BatchResults<iv1::ChatEventResult> results = future.get();
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->size(), 3u);
    ASSERT_TRUE((*results)[0].ok()) << (*results)[0].status();
    EXPECT_EQ((*results)[0]->event().message_created().text(), "one");
    EXPECT_EQ((*results)[1].status().code(),
              absl::StatusCode::kPermissionDenied);
    ASSERT_TRUE((*results)[2].ok()) << (*results)[2].status();
    EXPECT_EQ((*results)[2]->event().message_created().text(), "two");
    // Both stored, gap-free, whichever way they went.
    std::set<uint64_t> seqs = {(*results)[0]->event().seq(),
                               (*results)[2]->event().seq()};
    EXPECT_THAT(seqs, ElementsAre(1u, 2u));
    server->server->Shutdown();
  }
}

TEST_F(StorageTest, ServiceAnswersOverGrpc) {
  ThreadPool workers("storage-test", 2, 16);
  StorageServiceImpl service(&repo(), &workers);
  auto server = StartServer(ServerOptions{}, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = iv1::StorageService::NewStub(
      MakeChannel(absl::StrCat("127.0.0.1:", server->port)));

  iv1::CreateUserRequest req;
  req.set_username(absl::StrCat("grpc", g_next_user.fetch_add(1)));
  req.set_password_hash("h");
  pv1::User user;
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    grpc::Status s = stub->CreateUser(&ctx, req, &user);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(user.username(), req.username());
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    pv1::User again;
    grpc::Status s = stub->CreateUser(&ctx, req, &again);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_EQ(s.error_message(), "username: already taken");
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::CreateAccessTokenRequest token;
    token.set_user_id(ParseId("user_id", user.user_id()).value());
    token.set_token_hash(NewTokenHash());
    token.mutable_expire_time()->set_seconds(time(nullptr) + 60);
    iv1::CreateAccessTokenResponse resp;
    EXPECT_TRUE(stub->CreateAccessToken(&ctx, token, &resp).ok());
  }
  {
    // The new RPCs are wired: an unknown chat answers NOT_FOUND, not
    // UNIMPLEMENTED.
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::UpdateReceiptRequest receipt;
    receipt.set_user_id(ParseId("user_id", user.user_id()).value());
    receipt.set_chat_id(987654321);
    receipt.set_read_seq(1);
    iv1::UpdateReceiptResponse resp;
    grpc::Status s = stub->UpdateReceipt(&ctx, receipt, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::RecordLastSeenRequest seen;
    seen.add_user_ids(ParseId("user_id", user.user_id()).value());
    seen.mutable_last_seen_time()->set_seconds(1700000000);
    iv1::RecordLastSeenResponse resp;
    EXPECT_TRUE(stub->RecordLastSeen(&ctx, seen, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::GetVisibleUsersRequest vis;
    const int64_t me = ParseId("user_id", user.user_id()).value();
    vis.set_viewer_user_id(me);
    vis.add_user_ids(me);
    iv1::GetVisibleUsersResponse resp;
    grpc::Status s = stub->GetVisibleUsers(&ctx, vis, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.users_size(), 1);
    EXPECT_TRUE(resp.users(0).visible());
    EXPECT_EQ(resp.users(0).last_seen_time().seconds(), 1700000000);
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::ListContactsRequest contacts;
    contacts.set_user_id(ParseId("user_id", user.user_id()).value());
    iv1::ListContactsResponse resp;
    EXPECT_TRUE(stub->ListContacts(&ctx, contacts, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::GetChatMembersRequest members;
    members.set_chat_id(987654321);
    iv1::GetChatMembersResponse resp;
    EXPECT_EQ(stub->GetChatMembers(&ctx, members, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    // Edits and reactions are wired.
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::EditMessageRequest edit;
    edit.set_actor_user_id(ParseId("user_id", user.user_id()).value());
    edit.set_chat_id(987654321);
    edit.set_message_id(1);
    edit.set_text("x");
    iv1::ChatEventResult resp;
    EXPECT_EQ(stub->EditMessage(&ctx, edit, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    iv1::ReactionRequest react;
    react.set_actor_user_id(ParseId("user_id", user.user_id()).value());
    react.set_chat_id(987654321);
    react.set_message_id(1);
    react.set_emoji("x");
    iv1::DeleteMessageRequest del;
    del.set_actor_user_id(react.actor_user_id());
    del.set_chat_id(987654321);
    del.set_message_id(1);
    iv1::ChatEventResult resp;
    const grpc::Status s = i == 0   ? stub->AddReaction(&ctx, react, &resp)
                           : i == 1 ? stub->RemoveReaction(&ctx, react, &resp)
                                    : stub->DeleteMessage(&ctx, del, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << i;
  }
  ShutdownGracefully(server->server.get(), std::chrono::seconds(1));
}

// ------------------------------------------------------------ file sharing

constexpr int64_t kMiB = int64_t{1} << 20;

std::string Bytes(int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(static_cast<size_t>(size), '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

struct UploadOptions {
  std::string name = "photo.png";
  std::string content_type = "image/png";
  std::string sha256 = {};  // empty: the content's
  int64_t size_bytes = -1;  // negative: the content's
  int64_t max_file_bytes = 0;
  int64_t piece = kMiB;
};

struct UploadResult {
  grpc::Status status;
  pv1::File file;
};

struct DownloadResult {
  grpc::Status status;
  pv1::File metadata;
  std::string content;
  int frames = 0;
  size_t largest_chunk = 0;
};

// StorageServiceImpl with the blob store behind a real in-process server.
class FileServiceTest : public StorageTest {
 protected:
  void SetUp() override {
    StorageTest::SetUp();
    ASSERT_GE(sodium_init(), 0);
    workers_ = std::make_unique<ThreadPool>("file-test", 4, 64);
    service_ =
        std::make_unique<StorageServiceImpl>(&repo(), workers_.get(), &Blobs());
    auto server = StartServer(ServerOptions{}, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = iv1::StorageService::NewStub(
        MakeChannel(absl::StrCat("127.0.0.1:", server_.port)));
  }
  void TearDown() override {
    if (server_.server != nullptr) {
      server_.server->Shutdown(std::chrono::system_clock::now() +
                               std::chrono::seconds(2));
      server_.server->Wait();
    }
    workers_.reset();
    EXPECT_EQ(Blobs().active_uploads(), 0);
  }

  UploadResult Upload(int64_t uploader, int64_t chat,
                      const std::string& content, const UploadOptions& o = {}) {
    UploadResult result;
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(30));
    auto writer = stub_->UploadFile(&ctx, &result.file);
    iv1::UploadFileChunk frame;
    iv1::UploadFileBegin* begin = frame.mutable_begin();
    begin->set_uploader_user_id(uploader);
    begin->set_max_file_bytes(o.max_file_bytes);
    pv1::UploadFileMetadata* m = begin->mutable_metadata();
    m->set_chat_id(Id(chat));
    m->set_name(o.name);
    m->set_content_type(o.content_type);
    m->set_size_bytes(o.size_bytes >= 0 ? o.size_bytes
                                        : static_cast<int64_t>(content.size()));
    m->set_sha256(o.sha256.empty() ? Sha256Hex(content) : o.sha256);
    bool open = writer->Write(frame);
    for (size_t at = 0; open && at < content.size();
         at += static_cast<size_t>(o.piece)) {
      frame.Clear();
      frame.set_chunk(content.substr(at, static_cast<size_t>(o.piece)));
      open = writer->Write(frame);
    }
    if (open) writer->WritesDone();
    result.status = writer->Finish();
    return result;
  }

  DownloadResult Download(int64_t user, int64_t file_id, int64_t offset = 0) {
    DownloadResult result;
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(30));
    iv1::DownloadFileRequest req;
    req.set_user_id(user);
    req.set_file_id(file_id);
    req.set_offset(offset);
    auto reader = stub_->DownloadFile(&ctx, req);
    pv1::DownloadFileResponse frame;
    while (reader->Read(&frame)) {
      if (result.frames++ == 0) {
        EXPECT_TRUE(frame.has_metadata());
        result.metadata = frame.metadata();
      } else {
        EXPECT_EQ(frame.data_case(), pv1::DownloadFileResponse::kChunk);
        result.largest_chunk =
            std::max(result.largest_chunk, frame.chunk().size());
        result.content += frame.chunk();
      }
    }
    result.status = reader->Finish();
    return result;
  }

  // Rows of blobs, blob_chunks and files.
  std::vector<int64_t> Counts() {
    return {SqlInt("SELECT count(*) FROM blobs"),
            SqlInt("SELECT count(*) FROM blob_chunks"),
            SqlInt("SELECT count(*) FROM files")};
  }

  // Waits up to ~2 s for every server-side upload to end.
  void WaitForNoUploads() {
    for (int i = 0; i < 200 && Blobs().active_uploads() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(Blobs().active_uploads(), 0);
  }

  absl::StatusOr<iv1::ChatEventResult> SendFile(int64_t chat, int64_t sender,
                                                int64_t file_id,
                                                const std::string& text = "") {
    static std::atomic<int64_t> n{0};
    iv1::AppendMessageRequest req = MessageRequest(
        chat, sender, absl::StrCat("file-", n.fetch_add(1)), text);
    req.set_file_id(file_id);
    return repo().AppendMessage(req);
  }

  std::unique_ptr<ThreadPool> workers_;
  std::unique_ptr<StorageServiceImpl> service_;
  RunningServer server_;
  std::unique_ptr<iv1::StorageService::Stub> stub_;
};

TEST_F(FileServiceTest, UploadsAndDownloadsAtChunkBoundaries) {
  const int64_t a = NewUser();
  const int64_t chat = NewGroup(a, {});
  uint32_t seed = 1;
  for (int64_t size : {int64_t{0}, int64_t{1}, kMiB, kMiB + 1}) {
    SCOPED_TRACE(size);
    const std::string content = Bytes(size, seed++);
    UploadResult up = Upload(a, chat, content);
    ASSERT_TRUE(up.status.ok()) << up.status.error_message();
    EXPECT_FALSE(up.file.file_id().empty());
    EXPECT_EQ(up.file.name(), "photo.png");
    EXPECT_EQ(up.file.content_type(), "image/png");
    EXPECT_EQ(up.file.size_bytes(), size);
    EXPECT_EQ(up.file.sha256(), Sha256Hex(content));
    const int64_t file_id = ParseId("file_id", up.file.file_id()).value();
    DownloadResult down = Download(a, file_id);
    ASSERT_TRUE(down.status.ok()) << down.status.error_message();
    EXPECT_EQ(down.metadata.SerializeAsString(), up.file.SerializeAsString());
    EXPECT_TRUE(down.content == content);
    EXPECT_LE(down.largest_chunk, static_cast<size_t>(kMiB));
  }
}

TEST_F(FileServiceTest, DownloadResumesFromAnOffset) {
  const int64_t a = NewUser();
  const int64_t chat = NewGroup(a, {});
  const std::string content = Bytes(2 * kMiB + 100, 7);
  UploadResult up = Upload(a, chat, content, {.piece = 300000});
  ASSERT_TRUE(up.status.ok()) << up.status.error_message();
  const int64_t file_id = ParseId("file_id", up.file.file_id()).value();
  for (int64_t offset :
       {int64_t{1}, kMiB - 1, kMiB, 2 * kMiB + 99, 2 * kMiB + 100}) {
    SCOPED_TRACE(offset);
    DownloadResult down = Download(a, file_id, offset);
    ASSERT_TRUE(down.status.ok()) << down.status.error_message();
    EXPECT_EQ(down.metadata.size_bytes(), 2 * kMiB + 100);
    EXPECT_TRUE(down.content == content.substr(static_cast<size_t>(offset)));
  }
  DownloadResult past = Download(a, file_id, 2 * kMiB + 101);
  EXPECT_EQ(past.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(past.status.error_message(), HasSubstr("offset"));
  DownloadResult negative = Download(a, file_id, -1);
  EXPECT_EQ(negative.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(negative.status.error_message(), HasSubstr("offset"));
  DownloadResult unknown = Download(a, file_id + 1000000);
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.status.error_message(), HasSubstr("file_id"));
}

TEST_F(FileServiceTest, MismatchesLeaveNoRows) {
  const int64_t a = NewUser();
  const int64_t chat = NewGroup(a, {});
  const std::vector<int64_t> before = Counts();
  const std::string content = Bytes(kMiB + 5, 11);

  UploadResult bad_sha =
      Upload(a, chat, content, {.sha256 = Sha256Hex("something else")});
  EXPECT_EQ(bad_sha.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_sha.status.error_message(), HasSubstr("sha256"));
  EXPECT_EQ(Counts(), before);

  UploadResult too_short = Upload(a, chat, content, {.size_bytes = kMiB + 6});
  EXPECT_EQ(too_short.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_short.status.error_message(), HasSubstr("size_bytes"));
  EXPECT_EQ(Counts(), before);

  UploadResult too_long = Upload(a, chat, content, {.size_bytes = kMiB});
  EXPECT_EQ(too_long.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_long.status.error_message(), HasSubstr("size_bytes"));
  EXPECT_EQ(Counts(), before);

  UploadResult big_frame = Upload(a, chat, content, {.piece = kMiB + 1});
  EXPECT_EQ(big_frame.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(big_frame.status.error_message(), HasSubstr("chunk"));
  WaitForNoUploads();
  EXPECT_EQ(Counts(), before);
}

TEST_F(FileServiceTest, CancelledUploadLeavesNoRows) {
  const int64_t a = NewUser();
  const int64_t chat = NewGroup(a, {});
  const std::vector<int64_t> before = Counts();
  const std::string piece = Bytes(kMiB, 13);
  grpc::ClientContext ctx;
  SetTimeout(&ctx, std::chrono::seconds(30));
  pv1::File file;
  auto writer = stub_->UploadFile(&ctx, &file);
  iv1::UploadFileChunk frame;
  frame.mutable_begin()->set_uploader_user_id(a);
  pv1::UploadFileMetadata* m = frame.mutable_begin()->mutable_metadata();
  m->set_chat_id(Id(chat));
  m->set_name("big.bin");
  m->set_content_type("application/octet-stream");
  m->set_size_bytes(10 * kMiB);
  m->set_sha256(std::string(64, 'a'));
  ASSERT_TRUE(writer->Write(frame));
  for (int i = 0; i < 3; ++i) {
    frame.Clear();
    frame.set_chunk(piece);
    ASSERT_TRUE(writer->Write(frame));
  }
  // Let the server start the upload.
  for (int i = 0; i < 200 && Blobs().active_uploads() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Blobs().active_uploads(), 1);
  ctx.TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  WaitForNoUploads();
  EXPECT_EQ(Counts(), before);
}

TEST_F(FileServiceTest, UploadValidatesMetadata) {
  const int64_t a = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewGroup(a, {});
  const std::vector<int64_t> before = Counts();
  const std::string content = "hello";
  struct Case {
    UploadOptions options;
    grpc::StatusCode code;
    const char* field;
  };
  const std::vector<Case> cases = {
      {{.name = ""}, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {{.name = std::string(256, 'x')},
       grpc::StatusCode::INVALID_ARGUMENT,
       "name"},
      {{.name = "a/b"}, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {{.name = "a\\b"}, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {{.name = "a\nb"}, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {{.content_type = "png"},
       grpc::StatusCode::INVALID_ARGUMENT,
       "content_type"},
      {{.content_type = "image/"},
       grpc::StatusCode::INVALID_ARGUMENT,
       "content_type"},
      {{.content_type = "image/p ng"},
       grpc::StatusCode::INVALID_ARGUMENT,
       "content_type"},
      {{.sha256 = "abc"}, grpc::StatusCode::INVALID_ARGUMENT, "sha256"},
      {{.sha256 = std::string(64, 'g')},
       grpc::StatusCode::INVALID_ARGUMENT,
       "sha256"},
      {{.max_file_bytes = 4},
       grpc::StatusCode::RESOURCE_EXHAUSTED,
       "size_bytes"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    UploadResult r = Upload(a, chat, content, cases[i].options);
    EXPECT_EQ(r.status.error_code(), cases[i].code);
    EXPECT_THAT(r.status.error_message(), HasSubstr(cases[i].field));
  }
  UploadResult stranger = Upload(outsider, chat, content);
  EXPECT_EQ(stranger.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  UploadResult no_chat = Upload(a, chat + 1000000, content);
  EXPECT_EQ(no_chat.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(no_chat.status.error_message(), HasSubstr("chat_id"));
  EXPECT_TRUE(Upload(a, chat, content, {.max_file_bytes = 5}).status.ok());

  {  // A chunk before the metadata.
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    pv1::File file;
    auto writer = stub_->UploadFile(&ctx, &file);
    iv1::UploadFileChunk frame;
    frame.set_chunk("x");
    writer->Write(frame);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("metadata: must come first"));
  }
  {  // Two begin frames.
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    pv1::File file;
    auto writer = stub_->UploadFile(&ctx, &file);
    iv1::UploadFileChunk frame;
    frame.mutable_begin()->set_uploader_user_id(a);
    pv1::UploadFileMetadata* m = frame.mutable_begin()->mutable_metadata();
    m->set_chat_id(Id(chat));
    m->set_name("x.txt");
    m->set_content_type("text/plain");
    m->set_size_bytes(1);
    m->set_sha256(Sha256Hex("x"));
    writer->Write(frame);
    writer->Write(frame);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // Nothing at all.
    grpc::ClientContext ctx;
    SetTimeout(&ctx, std::chrono::seconds(10));
    pv1::File file;
    auto writer = stub_->UploadFile(&ctx, &file);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("metadata"));
  }
  WaitForNoUploads();
  EXPECT_EQ(Counts()[2], before[2] + 1);  // only the good one
}

TEST_F(FileServiceTest, DownloadNeedsAMessageSharingTheFile) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t outsider = NewUser();
  const int64_t chat = NewGroup(a, {b});
  const std::string content = Bytes(1000, 17);
  UploadResult up = Upload(a, chat, content);
  ASSERT_TRUE(up.status.ok()) << up.status.error_message();
  const int64_t file_id = ParseId("file_id", up.file.file_id()).value();

  EXPECT_TRUE(Download(a, file_id).status.ok());
  EXPECT_EQ(Download(b, file_id).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Download(outsider, file_id).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  auto sent = SendFile(chat, a, file_id);
  ASSERT_TRUE(sent.ok()) << sent.status();
  DownloadResult by_member = Download(b, file_id);
  ASSERT_TRUE(by_member.status.ok()) << by_member.status.error_message();
  EXPECT_TRUE(by_member.content == content);
  EXPECT_EQ(Download(outsider, file_id).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  const int64_t msg =
      ParseId("message_id", sent->event().message_created().message_id())
          .value();
  ASSERT_TRUE(Delete(a, chat, msg).ok());
  EXPECT_EQ(Download(b, file_id).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  DownloadResult by_uploader = Download(a, file_id);
  ASSERT_TRUE(by_uploader.status.ok()) << by_uploader.status.error_message();
  EXPECT_TRUE(by_uploader.content == content);
}

TEST_F(FileServiceTest, MessagesCarryTheirFile) {
  const int64_t a = NewUser();
  const int64_t b = NewUser();
  const int64_t chat = NewGroup(a, {b});
  const int64_t other = NewGroup(a, {b});
  UploadResult up =
      Upload(a, chat, "pdf bytes",
             {.name = "doc.pdf", .content_type = "application/pdf"});
  ASSERT_TRUE(up.status.ok()) << up.status.error_message();
  const int64_t file_id = ParseId("file_id", up.file.file_id()).value();

  auto sent = SendFile(chat, a, file_id);  // no text
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->event().message_created().file().SerializeAsString(),
            up.file.SerializeAsString());
  const int64_t msg =
      ParseId("message_id", sent->event().message_created().message_id())
          .value();
  const pv1::Message listed = Listed(b, chat, msg);
  EXPECT_EQ(listed.text(), "");
  EXPECT_EQ(listed.file().file_id(), Id(file_id));
  EXPECT_EQ(listed.file().name(), "doc.pdf");
  EXPECT_EQ(listed.file().content_type(), "application/pdf");
  EXPECT_EQ(listed.file().size_bytes(), 9);
  EXPECT_EQ(listed.file().sha256(), Sha256Hex("pdf bytes"));
  auto sync = Sync(b, chat, 0, 100);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_GE(sync->events_size(), 1);
  EXPECT_EQ(sync->events(sync->events_size() - 1)
                .message_created()
                .file()
                .SerializeAsString(),
            up.file.SerializeAsString());

  // From another chat, by another member, or unknown: rejected.
  auto elsewhere = SendFile(other, a, file_id);
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(elsewhere.status().message()), HasSubstr("file_id"));
  auto not_mine = SendFile(chat, b, file_id);
  EXPECT_EQ(not_mine.status().code(), absl::StatusCode::kInvalidArgument);
  auto unknown = SendFile(chat, a, file_id + 1000000);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("file_id"));
}

}  // namespace
}  // namespace parley::storage
