#include "services/message/message_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "common/async_call.h"
#include "common/batch_outcomes.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/validation.h"

namespace parley::message {
namespace {

absl::Status ValidateSend(const internal::AppendMessageRequest& req,
                          size_t max_text_bytes) {
  if (req.sender_user_id() <= 0) {
    return absl::InvalidArgumentError("sender_user_id: must be positive");
  }
  if (req.chat_id() <= 0) {
    return absl::InvalidArgumentError("chat_id: is not a valid id");
  }
  if (auto s = ValidateClientMessageId(req.client_message_id()); !s.ok()) {
    return s;
  }
  if (req.reply_to_message_id() < 0) {
    return absl::InvalidArgumentError("reply_to_message_id: is not a valid id");
  }
  if (req.file_id() < 0) {
    return absl::InvalidArgumentError("file_id: is not a valid id");
  }
  return ValidateMessageText(req.text(), /*required=*/req.file_id() == 0,
                             max_text_bytes);
}

absl::Status ValidateTarget(int64_t actor, int64_t chat_id,
                            int64_t message_id) {
  if (actor <= 0) {
    return absl::InvalidArgumentError("actor_user_id: must be positive");
  }
  if (chat_id <= 0) {
    return absl::InvalidArgumentError("chat_id: is not a valid id");
  }
  if (message_id <= 0) {
    return absl::InvalidArgumentError("message_id: is not a valid id");
  }
  return absl::OkStatus();
}

absl::Status ValidateReaction(const internal::ReactionRequest& req) {
  absl::Status valid =
      ValidateTarget(req.actor_user_id(), req.chat_id(), req.message_id());
  return valid.ok() ? ValidateEmoji(req.emoji()) : valid;
}

// The message an event carries, whatever its kind.
const parley::v1::Message* EventMessage(const parley::v1::ChatEvent& e) {
  switch (e.event_case()) {
    case parley::v1::ChatEvent::kMessageCreated:
      return &e.message_created();
    case parley::v1::ChatEvent::kMessageEdited:
      return &e.message_edited();
    case parley::v1::ChatEvent::kMessageDeleted:
      return &e.message_deleted();
    case parley::v1::ChatEvent::kReactionChanged:
      return &e.reaction_changed();
    default:
      return nullptr;
  }
}

}  // namespace

MessageServiceImpl::MessageServiceImpl(
    MessageServiceOptions options, IdGenerator* ids,
    internal::StorageService::StubInterface* storage,
    internal::PresenceService::StubInterface* presence, FanoutHub* hub,
    RouteCache* route_cache)
    : options_(options),
      ids_(ids),
      storage_(storage),
      hub_(hub),
      fanout_(presence, hub, route_cache, [&] {
        FanoutBatcherOptions o = options.fanout;
        o.timeout = options.presence_timeout;
        return o;
      }()) {
  if (options_.order_hold.count() > 0) {
    orderer_ = std::make_unique<ChatOrderer>(
        ChatOrderer::Options{.max_hold = options_.order_hold});
    orderer_->Start();
  }
  if (options_.append_calls > 0) {
    // A batch call lives as long as its most patient send, so a send that
    // gave up may still be written; a retry finds it by client_message_id.
    appends_ = std::make_unique<AppendBatcher>(
        AppendBatcher::Options{
            .max_in_flight = options_.append_calls,
            .max_batch = std::clamp<size_t>(options_.append_batch, 1,
                                            kMaxBatchRequests)},
        [this](std::vector<internal::AppendMessageRequest> requests,
               std::chrono::milliseconds timeout,
               AppendBatcher::Finish finish) {
          CallBatch(
              storage_->async(), &StorageAsync::AppendMessages,
              &StorageAsync::AppendMessage, std::move(requests), timeout,
              [](internal::AppendOutcome* o) {
                return std::move(*o->mutable_result());
              },
              std::move(finish));
        });
  }
}

void MessageServiceImpl::ReleaseHeldEvents() {
  if (orderer_ != nullptr) orderer_->Stop();
}

grpc::ServerUnaryReactor* MessageServiceImpl::SendMessage(
    grpc::CallbackServerContext* ctx, const internal::AppendMessageRequest* req,
    parley::v1::Message* resp) {
  auto* reactor = ctx->DefaultReactor();
  std::vector<SendItem> send;
  send.push_back({req, [reactor, resp](absl::StatusOr<parley::v1::Message> m) {
                    if (m.ok()) *resp = std::move(*m);
                    reactor->Finish(ToGrpcStatus(m.status()));
                  }});
  SendAll(std::move(send),
          RemainingOr(ctx->deadline(), options_.storage_timeout));
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::SendMessages(
    grpc::CallbackServerContext* ctx, const internal::SendMessagesRequest* req,
    internal::SendMessagesResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  const int n = req->requests_size();
  if (auto s = CheckBatchSize(n); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  auto record = RecordOutcomes<parley::v1::Message>(
      reactor, resp->mutable_outcomes(), n,
      [](internal::SendOutcome* out, parley::v1::Message m) {
        *out->mutable_message() = std::move(m);
      });
  // Once the last answer is in, the call (and `req`) may be gone: nothing
  // of it is read after SendAll.
  std::vector<SendItem> sends;
  sends.reserve(n);
  for (int i = 0; i < n; ++i) {
    sends.push_back(
        {&req->requests(i), [record, i](absl::StatusOr<parley::v1::Message> m) {
           record(i, std::move(m));
         }});
  }
  SendAll(std::move(sends),
          RemainingOr(ctx->deadline(), options_.storage_timeout));
  return reactor;
}

void MessageServiceImpl::SendAll(std::vector<SendItem> sends,
                                 std::chrono::milliseconds timeout) {
  std::vector<AppendBatcher::Entry> appends;
  appends.reserve(sends.size());
  for (SendItem& send : sends) {
    const internal::AppendMessageRequest& req = *send.req;
    if (auto s = ValidateSend(req, options_.max_text_bytes); !s.ok()) {
      send.answer(s);
      continue;
    }
    internal::AppendMessageRequest append = req;
    append.set_message_id(ids_->Next());
    BeginEvent(req.chat_id());
    appends.push_back(
        {std::move(append),
         [this, answer = std::move(send.answer),
          ends_typing = req.ends_typing(), chat_id = req.chat_id(),
          skip = SkipStream{req.origin_gateway_id(), req.origin_stream_id()}](
             absl::StatusOr<internal::ChatEventResult> r) mutable {
           if (!r.ok()) {
             DropEvent(chat_id);
             answer(r.status());
             return;
           }
           answer(r->event().message_created());
           // A retry is pushed again: the first attempt may have committed
           // and then lost its fan-out (an instance crash). Clients drop
           // an event whose seq they already hold.
           FanoutEvent(chat_id, r->event(), r->recipient_user_ids(),
                       /*stop_typing=*/ends_typing && !r->duplicate(),
                       std::move(skip));
         }});
  }
  if (appends.empty()) return;
  if (appends_ != nullptr) {
    // Together: the caller's answer waits for the last of them.
    appends_->SubmitAll(std::move(appends),
                        std::chrono::system_clock::now() + timeout);
    return;
  }
  for (AppendBatcher::Entry& a : appends) {
    CallAsync(storage_->async(), &StorageAsync::AppendMessage,
              std::move(a.item), timeout, std::move(a.done));
  }
}

grpc::ServerUnaryReactor* MessageServiceImpl::AddMembers(
    grpc::CallbackServerContext* ctx, const internal::AddMembersRequest* req,
    parley::v1::Chat* resp) {
  auto* reactor = ctx->DefaultReactor();
  BeginEvent(req->chat_id());
  CallAsync(
      storage_->async(),
      &internal::StorageService::StubInterface::async_interface::AddMembers,
      *req, RemainingOr(ctx->deadline(), options_.storage_timeout),
      [this, reactor, resp,
       chat_id = req->chat_id()](absl::StatusOr<internal::ChatEventResult> r) {
        if (!r.ok() || r->duplicate()) DropEvent(chat_id);
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *resp = r->chat();
        reactor->Finish(grpc::Status::OK);
        if (!r->duplicate()) {
          FanoutEvent(chat_id, r->event(), r->recipient_user_ids());
        }
      });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::RemoveMember(
    grpc::CallbackServerContext* ctx, const internal::RemoveMemberRequest* req,
    parley::v1::Chat* resp) {
  auto* reactor = ctx->DefaultReactor();
  BeginEvent(req->chat_id());
  CallAsync(
      storage_->async(),
      &internal::StorageService::StubInterface::async_interface::RemoveMember,
      *req, RemainingOr(ctx->deadline(), options_.storage_timeout),
      [this, reactor, resp,
       chat_id = req->chat_id()](absl::StatusOr<internal::ChatEventResult> r) {
        if (!r.ok() || r->duplicate()) DropEvent(chat_id);
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *resp = r->chat();
        reactor->Finish(grpc::Status::OK);
        if (!r->duplicate()) {
          FanoutEvent(chat_id, r->event(), r->recipient_user_ids());
        }
      });
  return reactor;
}

grpc::ServerWriteReactor<internal::Delivery>* MessageServiceImpl::Subscribe(
    grpc::CallbackServerContext* ctx, const internal::SubscribeRequest* req) {
  return hub_->Open(req->gateway_id());
}

template <typename Request>
grpc::ServerUnaryReactor* MessageServiceImpl::AppendEvent(
    grpc::CallbackServerContext* ctx, const absl::Status& valid,
    void (StorageAsync::*method)(grpc::ClientContext*, const Request*,
                                 internal::ChatEventResult*,
                                 std::function<void(grpc::Status)>),
    Request request, parley::v1::Message* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  const int64_t chat_id = request.chat_id();
  BeginEvent(chat_id);
  CallAsync(storage_->async(), method, std::move(request),
            RemainingOr(ctx->deadline(), options_.storage_timeout),
            [this, reactor, resp,
             chat_id](absl::StatusOr<internal::ChatEventResult> r) {
              // Every way out but the fan-out below ends the write here.
              absl::Cleanup no_event = [this, chat_id] { DropEvent(chat_id); };
              if (!r.ok()) {
                reactor->Finish(ToGrpcStatus(r.status()));
                return;
              }
              const parley::v1::Message* m = EventMessage(r->event());
              if (m == nullptr) {
                reactor->Finish(ToGrpcStatus(
                    absl::InternalError("storage returned no message")));
                return;
              }
              *resp = *m;
              reactor->Finish(grpc::Status::OK);
              if (!r->duplicate()) {
                std::move(no_event).Cancel();
                FanoutEvent(chat_id, r->event(), r->recipient_user_ids());
              }
            });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::EditMessage(
    grpc::CallbackServerContext* ctx, const internal::EditMessageRequest* req,
    parley::v1::Message* resp) {
  absl::Status valid =
      ValidateTarget(req->actor_user_id(), req->chat_id(), req->message_id());
  if (valid.ok()) {
    valid = ValidateMessageText(req->text(), /*required=*/true,
                                options_.max_text_bytes);
  }
  return AppendEvent(ctx, valid, &StorageAsync::EditMessage, *req, resp);
}

grpc::ServerUnaryReactor* MessageServiceImpl::DeleteMessage(
    grpc::CallbackServerContext* ctx, const internal::DeleteMessageRequest* req,
    parley::v1::Message* resp) {
  return AppendEvent(
      ctx,
      ValidateTarget(req->actor_user_id(), req->chat_id(), req->message_id()),
      &StorageAsync::DeleteMessage, *req, resp);
}

grpc::ServerUnaryReactor* MessageServiceImpl::AddReaction(
    grpc::CallbackServerContext* ctx, const internal::ReactionRequest* req,
    parley::v1::Message* resp) {
  internal::ReactionRequest r = *req;
  r.set_max_distinct_emoji(options_.max_reactions_per_message);
  return AppendEvent(ctx, ValidateReaction(*req), &StorageAsync::AddReaction,
                     std::move(r), resp);
}

grpc::ServerUnaryReactor* MessageServiceImpl::RemoveReaction(
    grpc::CallbackServerContext* ctx, const internal::ReactionRequest* req,
    parley::v1::Message* resp) {
  return AppendEvent(ctx, ValidateReaction(*req), &StorageAsync::RemoveReaction,
                     *req, resp);
}

grpc::ServerUnaryReactor* MessageServiceImpl::UpdateReceipt(
    grpc::CallbackServerContext* ctx, const internal::UpdateReceiptRequest* req,
    internal::UpdateReceiptResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  CallAsync(
      storage_->async(),
      &internal::StorageService::StubInterface::async_interface::UpdateReceipt,
      *req, RemainingOr(ctx->deadline(), options_.storage_timeout),
      [this, reactor, resp](absl::StatusOr<internal::UpdateReceiptResponse> r) {
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *resp = *r;
        reactor->Finish(grpc::Status::OK);
        if (!r->changed()) return;
        auto frame = std::make_shared<parley::v1::ServerFrame>();
        *frame->mutable_receipt() = r->receipt();
        Fanout(std::move(frame), r->recipient_user_ids());
      });
  return reactor;
}

void MessageServiceImpl::BeginEvent(int64_t chat_id) {
  if (orderer_ != nullptr) orderer_->Begin(chat_id);
}

void MessageServiceImpl::DropEvent(int64_t chat_id) {
  if (orderer_ != nullptr) orderer_->Cancel(chat_id);
}

void MessageServiceImpl::FanoutEvent(
    int64_t chat_id, const parley::v1::ChatEvent& event,
    const google::protobuf::RepeatedField<int64_t>& recipients,
    bool stop_typing, SkipStream skip) {
  auto frame = std::make_shared<parley::v1::ServerFrame>();
  *frame->mutable_chat_event() = event;
  std::optional<internal::TypingStop> typing;
  int64_t sender = 0;
  if (stop_typing && event.has_message_created() &&
      absl::SimpleAtoi(event.message_created().sender_user_id(), &sender)) {
    typing.emplace();
    typing->set_chat_id(chat_id);
    typing->set_user_id(sender);
    *typing->mutable_member_user_ids() = recipients;
  }
  std::vector<int64_t> to(recipients.begin(), recipients.end());
  if (orderer_ == nullptr) {
    fanout_.Fanout(std::move(frame), std::move(to), std::move(typing),
                   std::move(skip));
    return;
  }
  orderer_->Submit(
      chat_id, event.seq(),
      [this, frame = std::move(frame), to = std::move(to),
       typing = std::move(typing), skip = std::move(skip)]() mutable {
        fanout_.Fanout(std::move(frame), std::move(to), std::move(typing),
                       std::move(skip));
      });
}

void MessageServiceImpl::Fanout(
    std::shared_ptr<const parley::v1::ServerFrame> frame,
    const google::protobuf::RepeatedField<int64_t>& recipients) {
  fanout_.Fanout(std::move(frame),
                 std::vector<int64_t>(recipients.begin(), recipients.end()),
                 std::nullopt);
}

}  // namespace parley::message
