// The message service: the write pipeline for chat events.
//
// SendMessage: validate -> assign a time-ordered id -> storage.AppendMessages
// (membership check, next seq, message and event rows; concurrent sends
// share one call, see CallBatcher, and storage commits them together)
// -> answer the caller -> find recipients' routes (in the RouteCache, else
// in presence) -> push the event to exactly the gateways that hold them
// (lookups are batched, see FanoutBatcher). If presence cannot answer,
// the event goes to every subscribed gateway, which deliver it only to local
// recipients; if even that fails, recipients catch up with SyncChat.
// A sent message also ends its sender's typing indicator in that chat when
// the gateway marks it (ends_typing: the indicator was started through it).
#ifndef PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
#define PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_

#include <chrono>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "common/call_batcher.h"
#include "common/fanout_hub.h"
#include "common/id_generator.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/message/chat_orderer.h"
#include "services/message/fanout_batcher.h"

namespace parley::message {

namespace internal = ::parley::internal::v1;

struct MessageServiceOptions {
  // Deadline of each call to storage.
  std::chrono::milliseconds storage_timeout{5000};
  // Deadline of each route lookup in presence.
  std::chrono::milliseconds presence_timeout{1000};
  // Most distinct emoji one message may hold.
  int max_reactions_per_message = 20;
  // Largest message text (sent or edited), in bytes.
  size_t max_text_bytes = 16 * 1024;
  // Route lookups; its timeout is presence_timeout.
  FanoutBatcherOptions fanout;
  // AppendMessages calls to storage in flight at once; sends arriving
  // meanwhile share the next call. 0: one AppendMessage call per send.
  int append_calls = 2;
  // Most sends one AppendMessages call carries (storage takes 1,024).
  size_t append_batch = 256;
  // Longest a chat's event waits for the seqs before it (results of batch
  // calls in flight come back in any order; see ChatOrderer). 0: events
  // are pushed as their results come.
  std::chrono::milliseconds order_hold{50};
};

class MessageServiceImpl final
    : public internal::MessageService::CallbackService {
 public:
  MessageServiceImpl(MessageServiceOptions options, IdGenerator* ids,
                     internal::StorageService::StubInterface* storage,
                     internal::PresenceService::StubInterface* presence,
                     FanoutHub* hub, RouteCache* route_cache = nullptr);

  // For shutdown, once the server has stopped: pushes the events still held
  // for their chat's order (see ChatOrderer; its timer stops). Their
  // fan-out starts calls of its own, which main cancels and waits for
  // (parley::CancelAsyncCalls, WaitForAsyncCalls); storage answers arriving
  // meanwhile may be held again, so main calls this twice.
  void ReleaseHeldEvents();

  grpc::ServerUnaryReactor* SendMessage(
      grpc::CallbackServerContext* ctx,
      const internal::AppendMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* SendMessages(
      grpc::CallbackServerContext* ctx,
      const internal::SendMessagesRequest* req,
      internal::SendMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* AddMembers(grpc::CallbackServerContext* ctx,
                                       const internal::AddMembersRequest* req,
                                       parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* ctx,
      const internal::RemoveMemberRequest* req,
      parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* EditMessage(grpc::CallbackServerContext* ctx,
                                        const internal::EditMessageRequest* req,
                                        parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* DeleteMessage(
      grpc::CallbackServerContext* ctx,
      const internal::DeleteMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* AddReaction(grpc::CallbackServerContext* ctx,
                                        const internal::ReactionRequest* req,
                                        parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* RemoveReaction(grpc::CallbackServerContext* ctx,
                                           const internal::ReactionRequest* req,
                                           parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* UpdateReceipt(
      grpc::CallbackServerContext* ctx,
      const internal::UpdateReceiptRequest* req,
      internal::UpdateReceiptResponse* resp) override;
  grpc::ServerWriteReactor<internal::Delivery>* Subscribe(
      grpc::CallbackServerContext* ctx,
      const internal::SubscribeRequest* req) override;

  // Pushes `frame` to the gateways holding `recipients`. Asynchronous.
  void Fanout(std::shared_ptr<const parley::v1::ServerFrame> frame,
              const google::protobuf::RepeatedField<int64_t>& recipients);
  // With `stop_typing`, a message_created event also ends its sender's
  // typing indicator (best effort). `skip` is the client stream the event's
  // send came in on, which gets the send's result instead. `chat_id` is the
  // event's chat as the request gave it. A chat's events go out in seq
  // order (see ChatOrderer); this ends the write BeginEvent started.
  void FanoutEvent(int64_t chat_id, const parley::v1::ChatEvent& event,
                   const google::protobuf::RepeatedField<int64_t>& recipients,
                   bool stop_typing = false, SkipStream skip = {});

 private:
  // Unless `valid` says otherwise, calls a storage method that appends one
  // event to a chat, answers with the event's message and fans the event out
  // (unless it was a no-op).
  using StorageAsync = internal::StorageService::StubInterface::async_interface;
  template <typename Request>
  grpc::ServerUnaryReactor* AppendEvent(
      grpc::CallbackServerContext* ctx, const absl::Status& valid,
      void (StorageAsync::*method)(grpc::ClientContext*, const Request*,
                                   internal::ChatEventResult*,
                                   std::function<void(grpc::Status)>),
      Request request, parley::v1::Message* resp);

  // A write that may make an event of the chat starts; it ends with
  // FanoutEvent, or with DropEvent when it made no new event (see
  // ChatOrderer).
  void BeginEvent(int64_t chat_id);
  void DropEvent(int64_t chat_id);
  using SendDone = std::function<void(absl::StatusOr<parley::v1::Message>)>;
  struct SendItem {
    const internal::AppendMessageRequest* req;  // read only inside SendAll
    SendDone answer;
  };
  // Validates and persists `sends`, the valid ones together (one batch
  // call when there is room: see CallBatcher::SubmitAll). Each answer gets
  // the stored message or the failure, and then the event fans out.
  void SendAll(std::vector<SendItem> sends, std::chrono::milliseconds timeout);
  using AppendBatcher =
      CallBatcher<internal::AppendMessageRequest, internal::ChatEventResult>;

  const MessageServiceOptions options_;
  IdGenerator* const ids_;
  internal::StorageService::StubInterface* const storage_;
  FanoutHub* const hub_;
  FanoutBatcher fanout_;
  // Null when options_.order_hold is 0. Between the two: batch calls that
  // finish at shutdown still submit to it, and its Stop pushes into fanout_.
  std::unique_ptr<ChatOrderer> orderer_;
  // Null when options_.append_calls is 0.
  std::unique_ptr<AppendBatcher> appends_;
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
