#include "services/gateway/chat_service.h"

#include <google/protobuf/util/time_util.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/async_call.h"
#include "common/status_util.h"
#include "common/validation.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;
namespace v1 = ::parley::v1;
using StorageAsync = internal::StorageService::StubInterface::async_interface;
using MessageAsync = internal::MessageService::StubInterface::async_interface;
using PresenceAsync = internal::PresenceService::StubInterface::async_interface;
using google::protobuf::util::TimeUtil;

constexpr int kMaxPresenceUsers = 500;

namespace {

// Finishes `reactor` with the outcome of a backend call, copying the
// response into `out` on success.
template <typename Response>
auto FinishWith(grpc::ServerUnaryReactor* reactor, Response* out) {
  return [reactor, out](absl::StatusOr<Response> r) {
    if (r.ok()) *out = std::move(*r);
    reactor->Finish(ToGrpcStatus(r.status()));
  };
}

void Fail(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

// Parses repeated decimal ids, naming the field and index in errors.
absl::Status ParseIds(absl::string_view field,
                      const google::protobuf::RepeatedPtrField<std::string>& in,
                      google::protobuf::RepeatedField<int64_t>* out) {
  for (int i = 0; i < in.size(); ++i) {
    auto id = ParseId(field, in.Get(i));
    if (!id.ok()) return id.status();
    out->Add(*id);
  }
  return absl::OkStatus();
}

// Parses the chat_id and message_id that message-level requests carry.
template <typename Request>
absl::Status ParseTarget(const Request& req, int64_t* chat_id,
                         int64_t* message_id) {
  auto chat = ParseId("chat_id", req.chat_id());
  if (!chat.ok()) return chat.status();
  auto message = ParseId("message_id", req.message_id());
  if (!message.ok()) return message.status();
  *chat_id = *chat;
  *message_id = *message;
  return absl::OkStatus();
}

// What storage answers for a group over the limit.
absl::Status GroupTooLarge(absl::string_view field, int max_members) {
  return absl::FailedPreconditionError(absl::StrCat(
      field, ": a group can have at most ", max_members, " members"));
}

RateLimiter::Options LimiterOptions(const RateLimit& limit) {
  return {.rate_per_s = limit.rate_per_s, .burst = limit.burst, .clock = {}};
}

}  // namespace

ChatServiceImpl::ChatServiceImpl(
    ChatOptions options, internal::StorageService::StubInterface* storage,
    internal::PresenceService::StubInterface* presence,
    MessageBackends* messages, TokenAuthenticator* auth,
    ConnectionRegistry* registry)
    : options_(options),
      storage_(storage),
      presence_(presence),
      messages_(messages),
      auth_(auth),
      registry_(registry),
      write_limiter_(LimiterOptions(options.writes)),
      typing_limiter_(LimiterOptions(options.typing)),
      receipt_limiter_(LimiterOptions(options.receipts)),
      connect_limiter_(LimiterOptions(options.connects)),
      sequencer_({}, [this](int64_t chat_id,
                            std::vector<SendSequencer::Send> group) {
        messages_->SendAll(chat_id, std::move(group), options_.backend_timeout);
      }) {}

template <typename Body>
grpc::ServerUnaryReactor* ChatServiceImpl::Authed(
    grpc::CallbackServerContext* ctx, Body body, RateLimiter* limiter,
    const char* what) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const auto timeout = RemainingOr(ctx->deadline(), options_.backend_timeout);
  auth_->Authenticate(
      ctx, [ctx, reactor, timeout, limiter, what,
            body = std::move(body)](absl::StatusOr<int64_t> user_id) mutable {
        if (!user_id.ok()) {
          Fail(reactor, user_id.status());
          return;
        }
        if (limiter != nullptr) {
          const RateLimiter::Decision d = limiter->TryAcquire(*user_id);
          if (!d.allowed) {
            reactor->Finish(
                ToGrpcStatus(RateLimitedError(what, d.retry_after), ctx));
            return;
          }
        }
        body(*user_id, reactor, timeout);
      });
  return reactor;
}

grpc::ServerBidiReactor<v1::ClientFrame, v1::ServerFrame>*
ChatServiceImpl::Connect(grpc::CallbackServerContext* ctx) {
  return new ClientStream(ctx, auth_, registry_, this, &connect_limiter_,
                          options_.stream);
}

grpc::ServerUnaryReactor* ChatServiceImpl::CreateDirectChat(
    grpc::CallbackServerContext* ctx, const v1::CreateDirectChatRequest* req,
    v1::Chat* resp) {
  return Authed(
      ctx, [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        auto peer = ParseId("peer_user_id", req->peer_user_id());
        if (!peer.ok()) return Fail(reactor, peer.status());
        if (*peer == user) {
          return Fail(reactor,
                      absl::InvalidArgumentError(
                          "peer_user_id: cannot start a chat with yourself"));
        }
        internal::CreateDirectChatRequest r;
        r.set_user_id(user);
        r.set_peer_user_id(*peer);
        CallAsync(storage_->async(), &StorageAsync::CreateDirectChat,
                  std::move(r), timeout, FinishWith(reactor, resp));
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::CreateGroupChat(
    grpc::CallbackServerContext* ctx, const v1::CreateGroupChatRequest* req,
    v1::Chat* resp) {
  return Authed(
      ctx, [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        if (auto s = ValidateGroupTitle(req->title()); !s.ok()) {
          return Fail(reactor, s);
        }
        // A cheap bound on the request; storage counts exactly (the creator
        // joins, duplicates collapse) with the same answer.
        if (req->member_user_ids_size() > options_.max_group_members) {
          return Fail(reactor, GroupTooLarge("member_user_ids",
                                             options_.max_group_members));
        }
        internal::CreateGroupChatRequest r;
        r.set_creator_user_id(user);
        r.set_title(req->title());
        r.set_max_members(options_.max_group_members);
        if (auto s = ParseIds("member_user_ids", req->member_user_ids(),
                              r.mutable_member_user_ids());
            !s.ok()) {
          return Fail(reactor, s);
        }
        CallAsync(storage_->async(), &StorageAsync::CreateGroupChat,
                  std::move(r), timeout, FinishWith(reactor, resp));
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::AddMembers(
    grpc::CallbackServerContext* ctx, const v1::AddMembersRequest* req,
    v1::Chat* resp) {
  return Authed(
      ctx,
      [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        auto chat = ParseId("chat_id", req->chat_id());
        if (!chat.ok()) return Fail(reactor, chat.status());
        if (req->user_ids_size() == 0) {
          return Fail(reactor,
                      absl::InvalidArgumentError("user_ids: is required"));
        }
        // The group has an admin already: this many can never fit.
        if (req->user_ids_size() >= options_.max_group_members) {
          return Fail(reactor,
                      GroupTooLarge("user_ids", options_.max_group_members));
        }
        internal::AddMembersRequest r;
        r.set_actor_user_id(user);
        r.set_chat_id(*chat);
        r.set_max_members(options_.max_group_members);
        if (auto s =
                ParseIds("user_ids", req->user_ids(), r.mutable_user_ids());
            !s.ok()) {
          return Fail(reactor, s);
        }
        CallAsync(messages_->ForChat(*chat)->async(), &MessageAsync::AddMembers,
                  std::move(r), timeout, FinishWith(reactor, resp));
      },
      &write_limiter_, "membership change");
}

grpc::ServerUnaryReactor* ChatServiceImpl::RemoveMember(
    grpc::CallbackServerContext* ctx, const v1::RemoveMemberRequest* req,
    v1::Chat* resp) {
  return Authed(
      ctx,
      [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        auto chat = ParseId("chat_id", req->chat_id());
        if (!chat.ok()) return Fail(reactor, chat.status());
        auto target = ParseId("user_id", req->user_id());
        if (!target.ok()) return Fail(reactor, target.status());
        internal::RemoveMemberRequest r;
        r.set_actor_user_id(user);
        r.set_chat_id(*chat);
        r.set_user_id(*target);
        CallAsync(messages_->ForChat(*chat)->async(),
                  &MessageAsync::RemoveMember, std::move(r), timeout,
                  FinishWith(reactor, resp));
      },
      &write_limiter_, "membership change");
}

grpc::ServerUnaryReactor* ChatServiceImpl::ListChats(
    grpc::CallbackServerContext* ctx, const v1::ListChatsRequest* req,
    v1::ListChatsResponse* resp) {
  return Authed(
      ctx, [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        auto page_size = NormalizePageSize(req->page_size());
        if (!page_size.ok()) return Fail(reactor, page_size.status());
        if (req->page_token().size() > 256) {
          return Fail(reactor,
                      absl::InvalidArgumentError("page_token: is invalid"));
        }
        internal::ListChatsRequest r;
        r.set_user_id(user);
        r.set_page_size(*page_size);
        r.set_page_token(req->page_token());
        CallAsync(storage_->async(), &StorageAsync::ListChats, std::move(r),
                  timeout, FinishWith(reactor, resp));
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::SendMessage(
    grpc::CallbackServerContext* ctx, const v1::SendMessageRequest* req,
    v1::Message* resp) {
  return Authed(
      ctx,
      [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        Send(user, *req, /*stream_id=*/0, timeout, FinishWith(reactor, resp));
      },
      &write_limiter_, "send");
}

void ChatServiceImpl::Send(
    int64_t user, const v1::SendMessageRequest& req, uint64_t stream_id,
    std::chrono::milliseconds timeout,
    std::function<void(absl::StatusOr<v1::Message>)> done) {
  // Load shedding: past the budget, refuse now instead of queueing.
  if (options_.max_inflight_sends > 0 &&
      sends_in_flight_.fetch_add(1, std::memory_order_relaxed) >=
          options_.max_inflight_sends) {
    sends_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return done(OverloadedError("gateway overloaded: too many sends in flight",
                                std::chrono::milliseconds(100)));
  }
  if (options_.max_inflight_sends > 0) {
    done = [this, done = std::move(done)](absl::StatusOr<v1::Message> m) {
      sends_in_flight_.fetch_sub(1, std::memory_order_relaxed);
      done(std::move(m));
    };
  }
  auto chat = ParseId("chat_id", req.chat_id());
  if (!chat.ok()) return done(chat.status());
  auto reply_to =
      ParseOptionalId("reply_to_message_id", req.reply_to_message_id());
  if (!reply_to.ok()) return done(reply_to.status());
  auto file = ParseOptionalId("file_id", req.file_id());
  if (!file.ok()) return done(file.status());
  internal::AppendMessageRequest r;
  r.set_chat_id(*chat);
  r.set_sender_user_id(user);
  r.set_client_message_id(req.client_message_id());
  r.set_text(req.text());
  r.set_reply_to_message_id(*reply_to);
  r.set_file_id(*file);
  r.set_ends_typing(typing_marks_.Take(user, *chat));
  if (stream_id != 0) {
    r.set_origin_gateway_id(registry_->gateway_id());
    r.set_origin_stream_id(stream_id);
  }
  const int64_t chat_id = *chat;
  if (stream_id != 0) {
    // Stored in the order the stream read them (see SendSequencer). A
    // stream send has no deadline of its own: its group takes
    // backend_timeout when it starts, which may be after a wait.
    sequencer_.Submit(stream_id, chat_id, {std::move(r), std::move(done)});
    return;
  }
  // A group of one (SendAll also tries another instance when the first is
  // unreachable).
  std::vector<MessageBackends::SendEntry> one;
  one.push_back({std::move(r), std::move(done)});
  messages_->SendAll(chat_id, std::move(one), timeout);
}

void ChatServiceImpl::OnSendFrame(int64_t user_id, uint64_t stream_id,
                                  const v1::SendMessageRequest& send,
                                  std::function<void(v1::SendResult)> done) {
  v1::SendResult result;
  result.set_chat_id(send.chat_id());
  result.set_client_message_id(send.client_message_id());
  auto answer = [result = std::move(result), done = std::move(done)](
                    absl::StatusOr<v1::Message> m) mutable {
    if (m.ok()) {
      *result.mutable_message() = std::move(*m);
    } else {
      const grpc::Status g = ToGrpcStatus(m.status());
      result.set_code(static_cast<int32_t>(g.error_code()));
      result.set_error_message(g.error_message());
      if (auto after = RetryAfter(m.status())) {
        result.set_retry_after_ms(after->count());
      }
    }
    done(std::move(result));
  };
  const RateLimiter::Decision d = write_limiter_.TryAcquire(user_id);
  if (!d.allowed) return answer(RateLimitedError("send", d.retry_after));
  Send(user_id, send, stream_id, options_.backend_timeout, std::move(answer));
}

grpc::ServerUnaryReactor* ChatServiceImpl::ListMessages(
    grpc::CallbackServerContext* ctx, const v1::ListMessagesRequest* req,
    v1::ListMessagesResponse* resp) {
  return Authed(ctx,
                [this, req, resp](int64_t user, auto* reactor, auto timeout) {
                  auto chat = ParseId("chat_id", req->chat_id());
                  if (!chat.ok()) return Fail(reactor, chat.status());
                  auto page_size = NormalizePageSize(req->page_size());
                  if (!page_size.ok()) return Fail(reactor, page_size.status());
                  internal::ListMessagesRequest r;
                  r.set_user_id(user);
                  r.set_chat_id(*chat);
                  r.set_before_seq(req->before_seq());
                  r.set_page_size(*page_size);
                  CallAsync(storage_->async(), &StorageAsync::ListMessages,
                            std::move(r), timeout, FinishWith(reactor, resp));
                });
}

grpc::ServerUnaryReactor* ChatServiceImpl::SyncChat(
    grpc::CallbackServerContext* ctx, const v1::SyncChatRequest* req,
    v1::SyncChatResponse* resp) {
  return Authed(ctx,
                [this, req, resp](int64_t user, auto* reactor, auto timeout) {
                  auto chat = ParseId("chat_id", req->chat_id());
                  if (!chat.ok()) return Fail(reactor, chat.status());
                  auto page_size = NormalizePageSize(req->page_size());
                  if (!page_size.ok()) return Fail(reactor, page_size.status());
                  internal::SyncChatRequest r;
                  r.set_user_id(user);
                  r.set_chat_id(*chat);
                  r.set_after_seq(req->after_seq());
                  r.set_page_size(*page_size);
                  CallAsync(storage_->async(), &StorageAsync::SyncChat,
                            std::move(r), timeout, FinishWith(reactor, resp));
                });
}

grpc::ServerReadReactor<v1::UploadFileRequest>* ChatServiceImpl::UploadFile(
    grpc::CallbackServerContext* ctx, v1::File* resp) {
  return StartUpload(ctx, resp, auth_, storage_, options_.files);
}

grpc::ServerWriteReactor<v1::DownloadFileResponse>*
ChatServiceImpl::DownloadFile(grpc::CallbackServerContext* ctx,
                              const v1::DownloadFileRequest* req) {
  return StartDownload(ctx, req, auth_, storage_, options_.files);
}

grpc::ServerUnaryReactor* ChatServiceImpl::EditMessage(
    grpc::CallbackServerContext* ctx, const v1::EditMessageRequest* req,
    v1::Message* resp) {
  return Authed(
      ctx,
      [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        int64_t chat = 0, message = 0;
        if (auto s = ParseTarget(*req, &chat, &message); !s.ok()) {
          return Fail(reactor, s);
        }
        internal::EditMessageRequest r;
        r.set_actor_user_id(user);
        r.set_chat_id(chat);
        r.set_message_id(message);
        r.set_text(req->text());
        CallAsync(messages_->ForChat(chat)->async(), &MessageAsync::EditMessage,
                  std::move(r), timeout, FinishWith(reactor, resp));
      },
      &write_limiter_, "edit");
}

grpc::ServerUnaryReactor* ChatServiceImpl::DeleteMessage(
    grpc::CallbackServerContext* ctx, const v1::DeleteMessageRequest* req,
    v1::Message* resp) {
  return Authed(
      ctx,
      [this, req, resp](int64_t user, auto* reactor, auto timeout) {
        int64_t chat = 0, message = 0;
        if (auto s = ParseTarget(*req, &chat, &message); !s.ok()) {
          return Fail(reactor, s);
        }
        internal::DeleteMessageRequest r;
        r.set_actor_user_id(user);
        r.set_chat_id(chat);
        r.set_message_id(message);
        CallAsync(messages_->ForChat(chat)->async(),
                  &MessageAsync::DeleteMessage, std::move(r), timeout,
                  FinishWith(reactor, resp));
      },
      &write_limiter_, "delete");
}

template <typename PublicRequest>
grpc::ServerUnaryReactor* ChatServiceImpl::React(
    grpc::CallbackServerContext* ctx, const PublicRequest* req,
    v1::Message* resp, bool add) {
  return Authed(
      ctx,
      [this, req, resp, add](int64_t user, auto* reactor, auto timeout) {
        int64_t chat = 0, message = 0;
        if (auto s = ParseTarget(*req, &chat, &message); !s.ok()) {
          return Fail(reactor, s);
        }
        internal::ReactionRequest r;
        r.set_actor_user_id(user);
        r.set_chat_id(chat);
        r.set_message_id(message);
        r.set_emoji(req->emoji());
        using Method = void (MessageAsync::*)(
            grpc::ClientContext*, const internal::ReactionRequest*,
            v1::Message*, std::function<void(grpc::Status)>);
        const Method method =
            add ? static_cast<Method>(&MessageAsync::AddReaction)
                : static_cast<Method>(&MessageAsync::RemoveReaction);
        CallAsync(messages_->ForChat(chat)->async(), method, std::move(r),
                  timeout, FinishWith(reactor, resp));
      },
      &write_limiter_, "reaction");
}

grpc::ServerUnaryReactor* ChatServiceImpl::AddReaction(
    grpc::CallbackServerContext* ctx, const v1::AddReactionRequest* req,
    v1::Message* resp) {
  return React(ctx, req, resp, /*add=*/true);
}

grpc::ServerUnaryReactor* ChatServiceImpl::RemoveReaction(
    grpc::CallbackServerContext* ctx, const v1::RemoveReactionRequest* req,
    v1::Message* resp) {
  return React(ctx, req, resp, /*add=*/false);
}

void ChatServiceImpl::Typing(int64_t user_id, int64_t chat_id, bool typing,
                             std::chrono::milliseconds timeout,
                             std::function<void(absl::Status)> done) {
  // Marked before the checks, so that a send right behind a start still
  // ends it; a mark of a refused start only costs a no-op stop.
  typing_marks_.Set(user_id, chat_id, typing);
  internal::GetChatMembersRequest members;
  members.set_chat_id(chat_id);
  members.set_user_id(user_id);
  CallAsync(storage_->async(), &StorageAsync::GetChatMembers,
            std::move(members), timeout,
            [this, user_id, chat_id, typing, timeout, done = std::move(done)](
                absl::StatusOr<internal::GetChatMembersResponse> m) mutable {
              if (!m.ok()) return done(m.status());
              internal::SetTypingRequest req;
              req.set_chat_id(chat_id);
              req.set_user_id(user_id);
              req.set_typing(typing);
              *req.mutable_member_user_ids() =
                  std::move(*m->mutable_user_ids());
              CallAsync(presence_->async(), &PresenceAsync::SetTyping,
                        std::move(req), timeout,
                        [done = std::move(done)](
                            absl::StatusOr<internal::SetTypingResponse> r) {
                          done(r.status());
                        });
            });
}

void ChatServiceImpl::Receipt(int64_t user_id, int64_t chat_id,
                              uint64_t delivered, uint64_t read,
                              std::chrono::milliseconds timeout,
                              std::function<void(absl::Status)> done) {
  internal::UpdateReceiptRequest req;
  req.set_user_id(user_id);
  req.set_chat_id(chat_id);
  req.set_delivered_seq(delivered);
  req.set_read_seq(read);
  CallAsync(messages_->ForChat(chat_id)->async(), &MessageAsync::UpdateReceipt,
            std::move(req), timeout,
            [done = std::move(done)](
                absl::StatusOr<internal::UpdateReceiptResponse> r) {
              done(r.status());
            });
}

grpc::ServerUnaryReactor* ChatServiceImpl::MarkRead(
    grpc::CallbackServerContext* ctx, const v1::MarkReadRequest* req,
    google::protobuf::Empty*) {
  return Authed(
      ctx,
      [this, req](int64_t user, auto* reactor, auto timeout) {
        auto chat = ParseId("chat_id", req->chat_id());
        if (!chat.ok()) return Fail(reactor, chat.status());
        Receipt(
            user, *chat, /*delivered=*/0, /*read=*/req->seq(), timeout,
            [reactor](absl::Status s) { reactor->Finish(ToGrpcStatus(s)); });
      },
      &receipt_limiter_, "read receipt");
}

grpc::ServerUnaryReactor* ChatServiceImpl::SetTyping(
    grpc::CallbackServerContext* ctx, const v1::SetTypingRequest* req,
    google::protobuf::Empty*) {
  return Authed(
      ctx,
      [this, req](int64_t user, auto* reactor, auto timeout) {
        auto chat = ParseId("chat_id", req->chat_id());
        if (!chat.ok()) return Fail(reactor, chat.status());
        Typing(user, *chat, req->typing(), timeout,
               [reactor](absl::Status s) { reactor->Finish(ToGrpcStatus(s)); });
      },
      &typing_limiter_, "typing");
}

void ChatServiceImpl::OnTypingFrame(int64_t user_id,
                                    const v1::TypingFrame& frame) {
  auto chat = ParseId("chat_id", frame.chat_id());
  if (!chat.ok() || !typing_limiter_.TryAcquire(user_id).allowed) return;
  // Non-members, failures and frames over the rate limit are ignored: a
  // stream frame has no answer.
  Typing(user_id, *chat, frame.typing(), options_.backend_timeout,
         [](absl::Status) {});
}

void ChatServiceImpl::OnAckFrame(int64_t user_id, const v1::AckFrame& frame) {
  auto chat = ParseId("chat_id", frame.chat_id());
  if (!chat.ok() || frame.seq() == 0) return;
  // Over the rate limit the frame is dropped; a later ack (watermarks only
  // move forward) or MarkRead carries the position.
  if (!receipt_limiter_.TryAcquire(user_id).allowed) return;
  Receipt(user_id, *chat, /*delivered=*/frame.seq(), /*read=*/0,
          options_.backend_timeout, [](absl::Status) {});
}

grpc::ServerUnaryReactor* ChatServiceImpl::GetPresence(
    grpc::CallbackServerContext* ctx, const v1::GetPresenceRequest* req,
    v1::GetPresenceResponse* resp) {
  return Authed(ctx, [this, req, resp](int64_t user, auto* reactor,
                                       auto timeout) {
    if (req->user_ids_size() > kMaxPresenceUsers) {
      return Fail(reactor,
                  absl::InvalidArgumentError("user_ids: at most 500 per call"));
    }
    internal::GetVisibleUsersRequest visible;
    visible.set_viewer_user_id(user);
    if (auto s =
            ParseIds("user_ids", req->user_ids(), visible.mutable_user_ids());
        !s.ok()) {
      return Fail(reactor, s);
    }
    CallAsync(
        storage_->async(), &StorageAsync::GetVisibleUsers, std::move(visible),
        timeout,
        [this, reactor, resp,
         timeout](absl::StatusOr<internal::GetVisibleUsersResponse> v) {
          if (!v.ok()) return Fail(reactor, v.status());
          // Everyone starts offline; visible users get their durable
          // last-seen, then live status where presence can tell.
          internal::GetPresenceRequest live;
          for (const auto& u : v->users()) {
            auto* p = resp->add_presences();
            p->set_user_id(FormatId(u.user_id()));
            if (!u.visible()) continue;
            if (u.has_last_seen_time()) {
              *p->mutable_last_seen_time() = u.last_seen_time();
            }
            live.add_user_ids(u.user_id());
          }
          if (live.user_ids_size() == 0)
            return reactor->Finish(grpc::Status::OK);
          auto users = std::make_shared<internal::GetVisibleUsersResponse>(
              std::move(*v));
          CallAsync(presence_->async(), &PresenceAsync::GetPresence,
                    std::move(live), timeout,
                    [reactor, resp,
                     users](absl::StatusOr<internal::GetPresenceResponse> p) {
                      // Presence down: answer with durable last-seen only.
                      if (p.ok()) {
                        int k = 0;
                        for (int i = 0; i < users->users_size(); ++i) {
                          if (!users->users(i).visible()) continue;
                          if (k >= p->presences_size()) break;
                          const v1::Presence& live = p->presences(k++);
                          v1::Presence* out = resp->mutable_presences(i);
                          out->set_online(live.online());
                          if (live.has_last_seen_time() &&
                              (!out->has_last_seen_time() ||
                               out->last_seen_time() < live.last_seen_time())) {
                            *out->mutable_last_seen_time() =
                                live.last_seen_time();
                          }
                        }
                      }
                      reactor->Finish(grpc::Status::OK);
                    });
        });
  });
}

}  // namespace parley::gateway
