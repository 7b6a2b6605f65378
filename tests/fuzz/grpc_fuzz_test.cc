// Hostile input against a real cluster: thousands of random and malformed
// requests across every RPC of the public API (typed requests with random
// fields, streams with frames in the wrong order or cancelled midway, and raw
// bytes sent to each method path), then a check that every service still
// serves and a normal send/receive works.
//
// Verdicts: a request that decodes must get a clear status (never INTERNAL,
// UNKNOWN, UNIMPLEMENTED, DATA_LOSS or UNAVAILABLE); a payload that does not
// decode (or exceeds the largest message) gets whatever gRPC itself answers
// (for a unary method of the callback API that is UNIMPLEMENTED, for a
// stream the read fails as at a half-close); nothing may hang (every call
// has a deadline and DEADLINE_EXCEEDED is a failure). Writing after
// WritesDone cannot be expressed: the HTTP/2 stream is closed on the client
// side, and gRPC aborts the client process on such a write.
//
//   PARLEY_FUZZ_SEED=1234       reproduce a run (the seed is printed)
//   PARLEY_FUZZ_REQUESTS=50000  more requests (default 10000)
//   PARLEY_FUZZ_THREADS=1       one client thread: a fully ordered run
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/credentials.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "services/client/health_check.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using Stub = v1::ChatService::Stub;
using google::protobuf::Message;

constexpr size_t kMaxMessageBytes = 4 << 20;  // the services' receive limit
constexpr size_t kMaxChunkBytes = 1 << 20;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  uint64_t v = 0;
  const char* s = std::getenv(name);
  return s != nullptr && absl::SimpleAtoi(s, &v) ? v : fallback;
}

// How a request is judged.
enum class Kind {
  kWellFormed,   // decodes: the service must answer it cleanly
  kUndecodable,  // does not decode or is too large: gRPC's own answer
  kCancelled,    // the client cancelled it midway
};

struct Outcome {
  grpc::Status status;
  Kind kind = Kind::kWellFormed;
  std::string request;  // a short rendering, for failure reports
};

bool Acceptable(const Outcome& o) {
  const grpc::StatusCode code = o.status.error_code();
  if (code == grpc::StatusCode::DEADLINE_EXCEEDED) return false;  // a hang
  if (o.kind == Kind::kUndecodable) return true;
  switch (code) {
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::DATA_LOSS:
    // The cluster is healthy throughout: a backend that does not answer in
    // time (the gateway's UNAVAILABLE) is a hang one level down.
    case grpc::StatusCode::UNAVAILABLE:
      return false;
    case grpc::StatusCode::CANCELLED:
      return o.kind == Kind::kCancelled;
    default:
      return true;
  }
}

std::string Shorten(std::string s, size_t max = 240) {
  if (s.size() > max) s = absl::StrCat(s.substr(0, max), "...(", s.size(), " bytes)");
  return s;
}

// True if `wire` decodes as `prototype`'s type and fits in one message.
bool Decodes(const Message& prototype, const std::string& wire) {
  std::unique_ptr<Message> m(prototype.New());
  return wire.size() <= kMaxMessageBytes && m->ParseFromString(wire);
}

Kind KindOf(const Message& request) {
  return Decodes(request, request.SerializeAsString()) ? Kind::kWellFormed
                                                         : Kind::kUndecodable;
}

// Counts per RPC and status code, and the failures.
class Tally {
 public:
  void Record(const std::string& rpc, const Outcome& o, uint64_t thread_seed,
              int index) {
    std::lock_guard<std::mutex> lock(mu_);
    ++per_rpc_[rpc][o.status.error_code()];
    ++per_code_[o.status.error_code()];
    ++total_;
    if (!Acceptable(o) && failures_.size() < 50) {
      failures_.push_back(absl::StrCat(
          rpc, " -> ", CodeName(o.status.error_code()), " \"",
          Shorten(o.status.error_message(), 200), "\" (thread seed ",
          thread_seed, ", request #", index, "): ", o.request));
    }
    if (!Acceptable(o)) ++failed_;
  }

  static std::string CodeName(grpc::StatusCode code) {
    static const char* const kNames[] = {
        "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",    "DATA_LOSS",
        "UNAUTHENTICATED"};
    const int i = static_cast<int>(code);
    return i >= 0 && i < 17 ? kNames[i] : absl::StrCat(i);
  }

  void Print() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out = absl::StrCat("requests: ", total_, "\nper RPC:\n");
    for (const auto& [rpc, codes] : per_rpc_) {
      int n = 0;
      std::string detail;
      for (const auto& [code, count] : codes) {
        n += count;
        absl::StrAppend(&detail, " ", CodeName(code), "=", count);
      }
      absl::StrAppend(&out, "  ", rpc, ": ", n, " [", detail, " ]\n");
    }
    absl::StrAppend(&out, "per status code:\n");
    for (const auto& [code, count] : per_code_) {
      absl::StrAppend(&out, "  ", CodeName(code), ": ", count, "\n");
    }
    std::printf("%s", out.c_str());
  }

  int total() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }
  int failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::vector<std::string> failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  size_t rpcs_seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return per_rpc_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<grpc::StatusCode, int>> per_rpc_;
  std::map<grpc::StatusCode, int> per_code_;
  std::vector<std::string> failures_;
  int total_ = 0;
  int failed_ = 0;
};

// What exists before the fuzzing starts: users, chats between some of them
// (so every principal also holds ids of chats it is not in), messages and
// files.
struct World {
  std::vector<TestUser> users;  // alice, bob (group + direct), carol, dave
  std::vector<std::string> user_ids, chat_ids, message_ids, file_ids;
  std::vector<std::string> own_chat;  // a chat of users[i]
};

// Random values tuned for breaking things.
class Gen {
 public:
  Gen(uint64_t seed, const World* world) : rng_(seed), world_(world) {}

  uint64_t Next() { return rng_(); }
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int>(v.size()) - 1))];
  }

  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t r = rng_();
      for (size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(r >> (8 * k));
    }
    return s;
  }

  // Valid UTF-8 with a bias for what validators trip over: controls, NUL,
  // DEL, C1, combining marks, emoji, noncharacters, the highest code point.
  std::string Utf8(int code_points) {
    static const uint32_t kSpecial[] = {
        0x00, 0x01, 0x09, 0x0A, 0x1B, 0x7F, 0x80, 0x9F, 0xA0, 0x300, 0x200D,
        0x2028, 0xFE0F, 0xFEFF, 0xFFFD, 0xFFFF, 0x1F600, 0x1F44D, 0x1F1FA,
        0x10FFFF, '/', '\\', '%', '\'', '"', ':', ',', '.', '-'};
    std::string out;
    for (int i = 0; i < code_points; ++i) {
      uint32_t cp;
      switch (Int(0, 3)) {
        case 0: cp = static_cast<uint32_t>(Int(0x20, 0x7E)); break;
        case 1: cp = kSpecial[Int(0, std::size(kSpecial) - 1)]; break;
        case 2: cp = static_cast<uint32_t>(Int(0x80, 0xD7FF)); break;
        default: cp = static_cast<uint32_t>(Int(0xE000, 0x10FFFF)); break;
      }
      AppendUtf8(cp, &out);
    }
    return out;
  }

  // Malformed UTF-8: lone continuation bytes, overlong forms, surrogates,
  // truncated sequences, code points above U+10FFFF.
  std::string BadUtf8() {
    static const char* const kBad[] = {"\x80",         "\xC0\xAF", "\xE0\x80\xAF",
                                       "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                       "\xF0\x9F\x98", "\xFF",     "\xC3"};
    std::string s = Utf8(Int(0, 10));
    s.insert(s.size() / 2, kBad[Int(0, std::size(kBad) - 1)]);
    return s;
  }

  // Up to the largest message and a little beyond.
  std::string Huge() {
    const size_t n = static_cast<size_t>(
        Int(1 << 20, static_cast<int>(kMaxMessageBytes + (64 << 10))));
    return std::string(n, static_cast<char>('a' + Int(0, 25)));
  }

  // Any string field.
  std::string Str() {
    switch (Int(0, 12)) {
      case 0: return "";
      case 1: return Utf8(Int(1, 8));
      case 2: return Utf8(Int(1, 300));
      case 3: return Bytes(static_cast<size_t>(Int(1, 64)));
      case 4: return BadUtf8();
      case 5: return std::string(static_cast<size_t>(Int(16380, 16390)), 'x');
      case 6: return Chance(0.1) ? Huge() : Utf8(Int(300, 3000));
      case 7: return Id();
      case 8: return "\xF0\x9F\x91\x8D";  // one emoji
      case 9: return absl::StrCat("u", Next() % 100000);
      case 10: return std::string(1, '\0');
      default: return Utf8(Int(1, 40));
    }
  }

  // Any id field: known ids (also of chats the caller is not in), unknown
  // ids, and strings that are almost ids.
  std::string Id() {
    static const char* const kAlmost[] = {
        "0", "-1", "-9223372036854775808", "9223372036854775807",
        "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "99999999999999999999999", "00000000000000000001", "+1", " 1", "1 ",
        "1e3", "0x10", "1.0", "\xD9\xA1", "1\0" "2", "--1", "", "NaN"};
    switch (Int(0, 7)) {
      case 0: return Pick(world_->chat_ids);
      case 1: return Pick(world_->user_ids);
      case 2: return Pick(world_->message_ids);
      case 3: return Pick(world_->file_ids);
      case 4: return absl::StrCat(1 + Next() % std::numeric_limits<int64_t>::max());
      case 5: return absl::StrCat(Next() % 100000);
      case 6: {
        const int i = Int(0, std::size(kAlmost) - 1);
        // The entry with an embedded NUL is 3 bytes long.
        return i == 16 ? std::string(kAlmost[i], 3) : std::string(kAlmost[i]);
      }
      default: return Str();
    }
  }

  int64_t I64() {
    static const int64_t kEdge[] = {0, 1, -1, 2, 1 << 20, (1 << 20) + 1,
                                    std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min(),
                                    std::numeric_limits<int32_t>::max(),
                                    int64_t{100} << 20, (int64_t{100} << 20) + 1};
    return Chance(0.7) ? kEdge[Int(0, std::size(kEdge) - 1)]
                       : static_cast<int64_t>(Next());
  }
  uint64_t U64() { return static_cast<uint64_t>(I64()); }
  int32_t I32() {
    static const int32_t kEdge[] = {0, 1, -1, 50, 499, 500, 501,
                                    std::numeric_limits<int32_t>::max(),
                                    std::numeric_limits<int32_t>::min()};
    return Chance(0.8) ? kEdge[Int(0, std::size(kEdge) - 1)]
                       : static_cast<int32_t>(Next());
  }

  void Ids(google::protobuf::RepeatedPtrField<std::string>* out) {
    const int n = Chance(0.05) ? Int(490, 700) : Int(0, 6);
    for (int i = 0; i < n; ++i) *out->Add() = Id();
  }

  // The authorization header: a member's token, none, or a bad one.
  std::string Auth(int* user) {
    *user = Int(0, static_cast<int>(world_->users.size()) - 1);
    switch (Int(0, 9)) {
      case 0: return "";
      case 1: return "Bearer " + GenerateAccessToken();  // unknown
      case 2: {  // a real token with one character changed
        std::string t = world_->users[*user].token;
        t[static_cast<size_t>(Int(4, static_cast<int>(t.size()) - 1))] ^= 1;
        return "Bearer " + t;
      }
      case 3: {
        static const char* const kBad[] = {"Bearer", "Bearer ", "Basic abc",
                                           "bearer plt_", "Bearer  x"};
        return kBad[Int(0, std::size(kBad) - 1)];
      }
      default: return "Bearer " + world_->users[*user].token;
    }
  }

  const World& world() const { return *world_; }

 private:
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::mt19937_64 rng_;
  const World* world_;
};

std::chrono::system_clock::time_point DeadlineFor(size_t bytes) {
  // Multi-MiB requests get longer on a loaded machine; still bounded.
  return std::chrono::system_clock::now() +
         (bytes > (1 << 20) ? std::chrono::seconds(30) : std::chrono::seconds(10));
}

void Authorize(grpc::ClientContext* ctx, const std::string& header) {
  if (!header.empty()) ctx->AddMetadata("authorization", header);
}

// One client thread's view: its channel, stubs and generator.
class Fuzzer {
 public:
  Fuzzer(const std::string& gateway, uint64_t seed, const World* world)
      : channel_(grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials())),
        auth_(v1::AuthService::NewStub(channel_)),
        chat_(v1::ChatService::NewStub(channel_)),
        generic_(channel_),
        g_(seed, world) {}

  // Sends one random request; returns the RPC's name and the outcome.
  std::pair<std::string, Outcome> One() {
    if (g_.Chance(0.15)) return Raw();
    switch (g_.Int(0, 19)) {
      case 0: return {"Register", Register()};
      case 1: return {"Login", Login()};
      case 2: return {"CreateDirectChat", CreateDirectChat()};
      case 3: return {"CreateGroupChat", CreateGroupChat()};
      case 4: return {"AddMembers", AddMembers()};
      case 5: return {"RemoveMember", RemoveMember()};
      case 6: return {"ListChats", ListChats()};
      case 7: return {"SendMessage", SendMessage()};
      case 8: return {"ListMessages", ListMessages()};
      case 9: return {"SyncChat", SyncChat()};
      case 10: return {"EditMessage", EditMessage()};
      case 11: return {"DeleteMessage", DeleteMessage()};
      case 12: return {"AddReaction", Reaction(true)};
      case 13: return {"RemoveReaction", Reaction(false)};
      case 14: return {"MarkRead", MarkRead()};
      case 15: return {"SetTyping", SetTyping()};
      case 16: return {"GetPresence", GetPresence()};
      case 17: return {"Connect", Connect()};
      case 18: return {"UploadFile", UploadFile()};
      default: return {"DownloadFile", DownloadFile()};
    }
  }

 private:
  // A typed unary ChatService call with a random principal.
  template <typename Req, typename Resp>
  Outcome Chat(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&,
                                            Resp*),
               const Req& req) {
    int user;
    const std::string header = g_.Auth(&user);
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(req.ByteSizeLong()));
    Authorize(&ctx, header);
    Resp resp;
    Outcome o;
    o.kind = KindOf(req);
    // Now and then the client gives up while the call is under way.
    std::thread canceller;
    if (g_.Chance(0.03)) {
      canceller = std::thread([&ctx, delay_us = g_.Int(0, 3000)] {
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        ctx.TryCancel();
      });
      if (o.kind == Kind::kWellFormed) o.kind = Kind::kCancelled;
    }
    o.status = (chat_.get()->*method)(&ctx, req, &resp);
    if (canceller.joinable()) canceller.join();
    if (!Acceptable(o)) {
      o.request = absl::StrCat(Shorten(req.ShortDebugString()),
                               o.kind == Kind::kCancelled ? " (cancelled)" : "");
    }
    return o;
  }

  Outcome Register() {
    v1::RegisterRequest req;
    req.set_username(g_.Chance(0.3) ? absl::StrCat("fz", g_.Next() % 1000000000)
                                    : g_.Str());
    req.set_password(g_.Chance(0.3) ? "long enough password" : g_.Str());
    req.set_display_name(g_.Str());
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(req.ByteSizeLong()));
    v1::RegisterResponse resp;
    Outcome o{auth_->Register(&ctx, req, &resp), KindOf(req), ""};
    if (!Acceptable(o)) o.request = Shorten(req.ShortDebugString());
    return o;
  }

  Outcome Login() {
    v1::LoginRequest req;
    req.set_username(g_.Chance(0.3) ? g_.Pick(g_.world().users).username
                                    : g_.Str());
    req.set_password(g_.Str());
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(req.ByteSizeLong()));
    v1::LoginResponse resp;
    Outcome o{auth_->Login(&ctx, req, &resp), KindOf(req), ""};
    if (!Acceptable(o)) o.request = Shorten(req.ShortDebugString());
    return o;
  }

  Outcome CreateDirectChat() {
    v1::CreateDirectChatRequest req;
    req.set_peer_user_id(g_.Id());
    return Chat(&Stub::CreateDirectChat, req);
  }
  Outcome CreateGroupChat() {
    v1::CreateGroupChatRequest req;
    req.set_title(g_.Str());
    g_.Ids(req.mutable_member_user_ids());
    return Chat(&Stub::CreateGroupChat, req);
  }
  Outcome AddMembers() {
    v1::AddMembersRequest req;
    req.set_chat_id(g_.Id());
    g_.Ids(req.mutable_user_ids());
    return Chat(&Stub::AddMembers, req);
  }
  Outcome RemoveMember() {
    v1::RemoveMemberRequest req;
    req.set_chat_id(g_.Id());
    req.set_user_id(g_.Id());
    return Chat(&Stub::RemoveMember, req);
  }
  Outcome ListChats() {
    v1::ListChatsRequest req;
    req.set_page_size(g_.I32());
    req.set_page_token(g_.Chance(0.3) ? g_.Bytes(static_cast<size_t>(g_.Int(1, 120)))
                                      : g_.Str());
    return Chat(&Stub::ListChats, req);
  }
  Outcome SendMessage() {
    v1::SendMessageRequest req;
    req.set_chat_id(g_.Id());
    req.set_client_message_id(g_.Chance(0.5) ? absl::StrCat("c", g_.Next())
                                             : g_.Str());
    req.set_text(g_.Str());
    if (g_.Chance(0.3)) req.set_file_id(g_.Id());
    if (g_.Chance(0.3)) req.set_reply_to_message_id(g_.Id());
    return Chat(&Stub::SendMessage, req);
  }
  Outcome ListMessages() {
    v1::ListMessagesRequest req;
    req.set_chat_id(g_.Id());
    req.set_before_seq(g_.U64());
    req.set_page_size(g_.I32());
    return Chat(&Stub::ListMessages, req);
  }
  Outcome SyncChat() {
    v1::SyncChatRequest req;
    req.set_chat_id(g_.Id());
    req.set_after_seq(g_.U64());
    req.set_page_size(g_.I32());
    return Chat(&Stub::SyncChat, req);
  }
  Outcome EditMessage() {
    v1::EditMessageRequest req;
    req.set_chat_id(g_.Id());
    req.set_message_id(g_.Id());
    req.set_text(g_.Str());
    return Chat(&Stub::EditMessage, req);
  }
  Outcome DeleteMessage() {
    v1::DeleteMessageRequest req;
    req.set_chat_id(g_.Id());
    req.set_message_id(g_.Id());
    return Chat(&Stub::DeleteMessage, req);
  }
  Outcome Reaction(bool add) {
    v1::AddReactionRequest req;
    req.set_chat_id(g_.Id());
    req.set_message_id(g_.Id());
    req.set_emoji(g_.Chance(0.3) ? "\xE2\x9D\xA4" : g_.Str());
    if (add) return Chat(&Stub::AddReaction, req);
    v1::RemoveReactionRequest remove;
    remove.set_chat_id(req.chat_id());
    remove.set_message_id(req.message_id());
    remove.set_emoji(req.emoji());
    return Chat(&Stub::RemoveReaction, remove);
  }
  Outcome MarkRead() {
    v1::MarkReadRequest req;
    req.set_chat_id(g_.Id());
    req.set_seq(g_.U64());
    return Chat(&Stub::MarkRead, req);
  }
  Outcome SetTyping() {
    v1::SetTypingRequest req;
    req.set_chat_id(g_.Id());
    req.set_typing(g_.Chance(0.5));
    return Chat(&Stub::SetTyping, req);
  }
  Outcome GetPresence() {
    v1::GetPresenceRequest req;
    g_.Ids(req.mutable_user_ids());
    return Chat(&Stub::GetPresence, req);
  }

  v1::ClientFrame RandomClientFrame() {
    v1::ClientFrame f;
    switch (g_.Int(0, 3)) {
      case 0: f.mutable_ping()->set_nonce(g_.I64()); break;
      case 1:
        f.mutable_typing()->set_chat_id(g_.Id());
        f.mutable_typing()->set_typing(g_.Chance(0.5));
        break;
      case 2:
        f.mutable_ack()->set_chat_id(g_.Id());
        f.mutable_ack()->set_seq(g_.U64());
        break;
      default: break;  // no frame set
    }
    return f;
  }

  // Random frames, then a half-close or a cancel midway.
  Outcome Connect() {
    int user;
    const std::string header = g_.Auth(&user);
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(0));
    Authorize(&ctx, header);
    auto stream = chat_->Connect(&ctx);
    Outcome o;
    const int frames = g_.Chance(0.1) ? 0 : g_.Int(1, 12);
    const bool cancel = g_.Chance(0.25);
    for (int i = 0; i < frames; ++i) {
      const v1::ClientFrame f = RandomClientFrame();
      if (KindOf(f) == Kind::kUndecodable) o.kind = Kind::kUndecodable;
      absl::StrAppend(&o.request, Shorten(f.ShortDebugString(), 80), "; ");
      if (!stream->Write(f)) break;
    }
    v1::ServerFrame in;
    if (cancel) {
      if (g_.Chance(0.5)) stream->Read(&in);  // maybe after an answer
      ctx.TryCancel();
      if (o.kind == Kind::kWellFormed) o.kind = Kind::kCancelled;
      o.request += "cancel";
    } else {
      stream->WritesDone();
      o.request += "half-close";
    }
    while (stream->Read(&in)) {
    }
    o.status = stream->Finish();
    return o;
  }

  v1::UploadFileRequest RandomMetadata(const std::string& content) {
    v1::UploadFileRequest r;
    auto* m = r.mutable_metadata();
    const bool sane = g_.Chance(0.5);
    m->set_chat_id(sane ? g_.Pick(g_.world().chat_ids) : g_.Id());
    m->set_name(sane ? "notes.txt" : g_.Str());
    m->set_content_type(sane ? "text/plain" : g_.Str());
    m->set_size_bytes(sane ? static_cast<int64_t>(content.size()) : g_.I64());
    m->set_sha256(sane || g_.Chance(0.2) ? Sha256Hex(content) : g_.Str());
    return r;
  }

  v1::UploadFileRequest Chunk(std::string bytes) {
    v1::UploadFileRequest r;
    r.set_chunk(std::move(bytes));
    return r;
  }

  // Frame orders a well-behaved client would not send, and a few it would.
  Outcome UploadFile() {
    const std::string content = g_.Bytes(static_cast<size_t>(g_.Int(0, 3000)));
    std::vector<v1::UploadFileRequest> frames;
    bool cancel = false;
    std::string scenario;
    switch (g_.Int(0, 9)) {
      case 0:
        scenario = "chunk before metadata";
        frames = {Chunk(content), RandomMetadata(content)};
        break;
      case 1:
        scenario = "two metadata frames";
        frames = {RandomMetadata(content), RandomMetadata(content), Chunk(content)};
        break;
      case 2:
        scenario = "empty frame first";
        frames = {v1::UploadFileRequest(), Chunk(content)};
        break;
      case 3:
        scenario = "no frames";
        break;
      case 4:
        scenario = "metadata, then chunk over 1 MiB";
        frames = {RandomMetadata(content),
                  Chunk(std::string(kMaxChunkBytes + static_cast<size_t>(g_.Int(1, 4096)), 'z'))};
        break;
      case 5:
        scenario = "metadata, chunks, cancel";
        frames = {RandomMetadata(content), Chunk(content), Chunk(content)};
        cancel = true;
        break;
      case 6:
        scenario = "metadata, then more content than declared";
        frames = {RandomMetadata(content), Chunk(content), Chunk(g_.Bytes(10))};
        break;
      case 7:
        scenario = "metadata, then an empty frame";
        frames = {RandomMetadata(content), v1::UploadFileRequest(), Chunk(content)};
        break;
      case 8:
        scenario = "a frame over the message limit";
        frames = {RandomMetadata(content), Chunk(g_.Huge())};
        break;
      default:
        scenario = "metadata and content";
        frames = {RandomMetadata(content)};
        for (size_t off = 0; off < content.size(); off += 1000) {
          frames.push_back(Chunk(content.substr(off, 1000)));
        }
        break;
    }
    int user;
    const std::string header = g_.Auth(&user);
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(kMaxMessageBytes));
    Authorize(&ctx, header);
    v1::File file;
    auto writer = chat_->UploadFile(&ctx, &file);
    Outcome o;
    o.request = scenario;
    for (const auto& f : frames) {
      if (KindOf(f) == Kind::kUndecodable) o.kind = Kind::kUndecodable;
      if (f.has_metadata()) {
        absl::StrAppend(&o.request, "; ", Shorten(f.metadata().ShortDebugString(), 200));
      }
    }
    for (const auto& f : frames) {
      if (!writer->Write(f)) break;
    }
    if (cancel) {
      ctx.TryCancel();
      if (o.kind == Kind::kWellFormed) o.kind = Kind::kCancelled;
    } else {
      writer->WritesDone();
    }
    o.status = writer->Finish();
    return o;
  }

  Outcome DownloadFile() {
    v1::DownloadFileRequest req;
    req.set_file_id(g_.Chance(0.5) ? g_.Pick(g_.world().file_ids) : g_.Id());
    req.set_offset(g_.Chance(0.3) ? g_.Int(0, 3000) : g_.I64());
    const bool cancel = g_.Chance(0.2);
    int user;
    const std::string header = g_.Auth(&user);
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(0));
    Authorize(&ctx, header);
    auto reader = chat_->DownloadFile(&ctx, req);
    v1::DownloadFileResponse frame;
    Outcome o;
    o.kind = KindOf(req);
    if (cancel) {
      for (int n = g_.Int(1, 3); n > 0 && reader->Read(&frame); --n) {
      }
      // A slow reader: the server meanwhile waits on flow control.
      std::this_thread::sleep_for(std::chrono::microseconds(g_.Int(0, 5000)));
      ctx.TryCancel();
      if (o.kind == Kind::kWellFormed) o.kind = Kind::kCancelled;
    }
    while (reader->Read(&frame)) {
    }
    o.status = reader->Finish();
    o.request = absl::StrCat(Shorten(req.ShortDebugString()), cancel ? " cancel" : "");
    return o;
  }

  // Raw bytes to a method path through the generic stub: random bytes,
  // mutated or truncated encodings, zero or several messages to a unary
  // method, and paths that do not exist.
  std::pair<std::string, Outcome> Raw() {
    struct Method {
      const char* path;
      const Message* request;
      bool client_streaming;
    };
    static const v1::RegisterRequest kRegister;
    static const v1::LoginRequest kLogin;
    static const v1::ClientFrame kFrame;
    static const v1::CreateDirectChatRequest kDirect;
    static const v1::CreateGroupChatRequest kGroup;
    static const v1::AddMembersRequest kAdd;
    static const v1::RemoveMemberRequest kRemove;
    static const v1::ListChatsRequest kListChats;
    static const v1::SendMessageRequest kSend;
    static const v1::ListMessagesRequest kListMessages;
    static const v1::SyncChatRequest kSync;
    static const v1::EditMessageRequest kEdit;
    static const v1::DeleteMessageRequest kDelete;
    static const v1::AddReactionRequest kAddReaction;
    static const v1::RemoveReactionRequest kRemoveReaction;
    static const v1::MarkReadRequest kMarkRead;
    static const v1::SetTypingRequest kSetTyping;
    static const v1::GetPresenceRequest kPresence;
    static const v1::UploadFileRequest kUpload;
    static const v1::DownloadFileRequest kDownload;
    static const Method kMethods[] = {
        {"/parley.v1.AuthService/Register", &kRegister, false},
        {"/parley.v1.AuthService/Login", &kLogin, false},
        {"/parley.v1.ChatService/Connect", &kFrame, true},
        {"/parley.v1.ChatService/CreateDirectChat", &kDirect, false},
        {"/parley.v1.ChatService/CreateGroupChat", &kGroup, false},
        {"/parley.v1.ChatService/AddMembers", &kAdd, false},
        {"/parley.v1.ChatService/RemoveMember", &kRemove, false},
        {"/parley.v1.ChatService/ListChats", &kListChats, false},
        {"/parley.v1.ChatService/SendMessage", &kSend, false},
        {"/parley.v1.ChatService/ListMessages", &kListMessages, false},
        {"/parley.v1.ChatService/SyncChat", &kSync, false},
        {"/parley.v1.ChatService/EditMessage", &kEdit, false},
        {"/parley.v1.ChatService/DeleteMessage", &kDelete, false},
        {"/parley.v1.ChatService/AddReaction", &kAddReaction, false},
        {"/parley.v1.ChatService/RemoveReaction", &kRemoveReaction, false},
        {"/parley.v1.ChatService/MarkRead", &kMarkRead, false},
        {"/parley.v1.ChatService/SetTyping", &kSetTyping, false},
        {"/parley.v1.ChatService/GetPresence", &kPresence, false},
        {"/parley.v1.ChatService/UploadFile", &kUpload, true},
        {"/parley.v1.ChatService/DownloadFile", &kDownload, false},
        {"/parley.v1.ChatService/NoSuchMethod", nullptr, false},
    };
    const Method& m = kMethods[g_.Int(0, std::size(kMethods) - 1)];
    std::vector<std::string> messages;
    const int n = g_.Chance(0.85) ? 1 : g_.Int(0, 3);
    for (int i = 0; i < n; ++i) {
      std::string bytes;
      switch (g_.Int(0, 3)) {
        case 0: bytes = g_.Bytes(static_cast<size_t>(g_.Int(0, 200))); break;
        case 1: {  // a plausible encoding with a few bytes flipped
          bytes = g_.Bytes(4);
          bytes = absl::StrCat("\x0a", std::string(1, static_cast<char>(g_.Int(0, 40))),
                               g_.Str().substr(0, 40), bytes);
          for (int k = g_.Int(1, 3); k > 0 && !bytes.empty(); --k) {
            bytes[g_.Next() % bytes.size()] ^= static_cast<char>(1 << g_.Int(0, 7));
          }
          break;
        }
        case 2:  // a field header whose length runs past the end
          bytes = absl::StrCat("\x0a\xff\xff\xff\x0f", g_.Bytes(8));
          break;
        default: bytes = g_.Chance(0.05) ? g_.Huge() : g_.Bytes(static_cast<size_t>(g_.Int(200, 5000)));
      }
      messages.push_back(std::move(bytes));
    }
    Outcome o;
    if (m.request == nullptr) {
      o.kind = Kind::kWellFormed;  // must be UNIMPLEMENTED, checked below
    } else if (!m.client_streaming && n != 1) {
      o.kind = Kind::kUndecodable;  // not a valid call of the method
    } else {
      for (const auto& b : messages) {
        if (!Decodes(*m.request, b)) o.kind = Kind::kUndecodable;
      }
    }
    int user;
    const std::string header = g_.Auth(&user);
    o.status = RawCall(m.path, messages, header);
    if (m.request == nullptr &&
        o.status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      o.status = grpc::Status::OK;  // what an unknown method must answer
    }
    o.request = absl::StrCat(n, " raw message(s)");
    for (const auto& b : messages) absl::StrAppend(&o.request, " [", b.size(), " bytes]");
    std::string name = m.path;
    name = "raw " + name.substr(name.rfind('/') + 1);
    return {name, o};
  }

  grpc::Status RawCall(const std::string& method,
                       const std::vector<std::string>& messages,
                       const std::string& header) {
    size_t bytes = 0;
    for (const auto& m : messages) bytes += m.size();
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineFor(bytes));
    Authorize(&ctx, header);
    grpc::CompletionQueue cq;
    auto call = generic_.PrepareCall(&ctx, method, &cq);
    // One operation at a time, so the next event is the one just started.
    auto wait = [&cq] {
      void* tag = nullptr;
      bool ok = false;
      return cq.Next(&tag, &ok) && ok;
    };
    void* const tag = reinterpret_cast<void*>(1);
    call->StartCall(tag);
    bool alive = wait();
    for (const auto& m : messages) {
      if (!alive) break;
      grpc::Slice slice(m);
      grpc::ByteBuffer buffer(&slice, 1);
      call->Write(buffer, tag);
      alive = wait();
    }
    if (alive) {
      call->WritesDone(tag);
      wait();
    }
    grpc::ByteBuffer response;
    for (;;) {
      call->Read(&response, tag);
      if (!wait()) break;
    }
    grpc::Status status;
    call->Finish(&status, tag);
    wait();
    cq.Shutdown();
    void* ignored_tag;
    bool ignored_ok;
    while (cq.Next(&ignored_tag, &ignored_ok)) {
    }
    return status;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuthService::Stub> auth_;
  std::unique_ptr<v1::ChatService::Stub> chat_;
  grpc::GenericStub generic_;
  Gen g_;
};

TEST(GrpcFuzzTest, HostileRequestsGetCleanAnswersAndTheClusterSurvives) {
  // Invalid UTF-8 in proto3 strings makes protobuf log on every encode.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  const uint64_t seed = EnvOr("PARLEY_FUZZ_SEED", std::random_device{}());
  const int requests = static_cast<int>(EnvOr("PARLEY_FUZZ_REQUESTS", 10000));
  const int threads = static_cast<int>(std::max<uint64_t>(1, EnvOr("PARLEY_FUZZ_THREADS", 4)));
  std::printf("grpc fuzz: seed %llu (PARLEY_FUZZ_SEED=%llu reproduces), %d requests, %d threads\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed), requests, threads);

  auto cluster = testing::Cluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string gateway = (*cluster)->gateway_address(0);
  Api api(gateway);

  World world;
  for (const char* name : {"alice", "bob", "carol", "dave"}) {
    world.users.push_back(api.NewUser(name));
    world.user_ids.push_back(world.users.back().user_id);
  }
  const TestUser& alice = world.users[0];
  const TestUser& bob = world.users[1];
  const TestUser& carol = world.users[2];
  const TestUser& dave = world.users[3];
  const v1::Chat ab = api.Direct(alice, bob);
  const v1::Chat group_ab = api.Group(alice, "ab", {bob});
  const v1::Chat cd = api.Direct(carol, dave);
  const v1::Chat group_cd = api.Group(carol, "cd", {dave});
  ASSERT_FALSE(HasFailure());
  for (const v1::Chat* c : {&ab, &group_ab, &cd, &group_cd}) {
    world.chat_ids.push_back(c->chat_id());
  }
  world.message_ids.push_back(api.Send(alice, ab.chat_id(), "hi").message_id());
  world.message_ids.push_back(api.Send(bob, group_ab.chat_id(), "hey").message_id());
  world.message_ids.push_back(api.Send(carol, cd.chat_id(), "yo").message_id());
  world.message_ids.push_back(api.Send(dave, group_cd.chat_id(), "ho").message_id());
  // Small files, and one of several chunks so that downloads get
  // cancelled while chunks are on their way.
  const std::string big(3 << 20, 'b');
  for (const auto& [user, chat, content] :
       {std::tuple(&alice, &group_ab, "a file"), std::tuple(&carol, &group_cd, "a file"),
        std::tuple(&bob, &group_ab, big.c_str())}) {
    v1::File file;
    grpc::Status s = api.Upload(user->token, chat->chat_id(), content, &file);
    ASSERT_TRUE(s.ok()) << s.error_message();
    world.file_ids.push_back(file.file_id());
  }
  ASSERT_FALSE(HasFailure());

  Tally tally;
  std::atomic<int> next{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const uint64_t thread_seed = seed * 1000003 + static_cast<uint64_t>(t);
      Fuzzer fuzzer(gateway, thread_seed, &world);
      for (int i = 0; next.fetch_add(1) < requests; ++i) {
        auto [rpc, outcome] = fuzzer.One();
        tally.Record(rpc, outcome, thread_seed, i);
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  tally.Print();
  std::printf("%d requests in %.1f s\n", tally.total(), seconds);

  // On any failure the services' logs outlive the cluster.
  struct KeepLogsOnFailure {
    const testing::Cluster* cluster;
    ~KeepLogsOnFailure() {
      if (!::testing::Test::HasFailure()) return;
      setenv("PARLEY_KEEP_TEST_LOGS", "1", 1);
      std::printf("service logs kept in %s\n", cluster->dir().c_str());
    }
  } keep_logs{cluster->get()};
  EXPECT_EQ(tally.failed(), 0) << "seed " << seed;
  for (const auto& f : tally.failures()) ADD_FAILURE() << f;
  // 20 typed RPCs, and raw calls of each method path.
  EXPECT_GE(tally.rpcs_seen(), 40u);

  // Every service is still alive and serving.
  for (const char* name : {"storage", "presence", "message0", "gateway0"}) {
    ASSERT_TRUE((*cluster)->process(name)->running()) << name << " died";
    auto health = client::CheckHealth((*cluster)->address(name), "",
                                      std::chrono::seconds(5));
    ASSERT_TRUE(health.ok()) << name << ": " << health.status();
    EXPECT_EQ(*health, client::HealthStatus::kServing) << name;
  }
  // And an ordinary conversation works.
  const TestUser erin = api.NewUser("erin");
  const TestUser frank = api.NewUser("frank");
  const v1::Chat ef = api.Direct(erin, frank);
  auto live = LiveStream::Open(gateway, frank.token);
  ASSERT_NE(live, nullptr);
  const v1::Message sent = api.Send(erin, ef.chat_id(), "still here?");
  auto event = live->WaitForEvent(ef.chat_id(), sent.seq());
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->message_created().text(), "still here?");
}

}  // namespace
}  // namespace parley::e2e
