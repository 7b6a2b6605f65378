// The message service: the write pipeline for chat events.
//
// SendMessage: validate -> assign a time-ordered id -> storage.AppendMessage
// (membership check, next seq, message and event rows in one transaction)
// -> answer the caller -> look up recipients' routes in presence -> push the
// event to exactly the gateways that hold them. If presence cannot answer,
// the event goes to every subscribed gateway, which deliver it only to local
// recipients; if even that fails, recipients catch up with SyncChat.
#ifndef PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
#define PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_

#include <chrono>
#include <memory>

#include "common/id_generator.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/message/fanout_hub.h"

namespace parley::message {

struct MessageServiceOptions {
  // Deadline of each call to storage.
  std::chrono::milliseconds storage_timeout{5000};
  // Deadline of each route lookup in presence.
  std::chrono::milliseconds presence_timeout{1000};
};

class MessageServiceImpl final
    : public internal::MessageService::CallbackService {
 public:
  MessageServiceImpl(MessageServiceOptions options, IdGenerator* ids,
                     internal::StorageService::StubInterface* storage,
                     internal::PresenceService::StubInterface* presence,
                     FanoutHub* hub);

  grpc::ServerUnaryReactor* SendMessage(
      grpc::CallbackServerContext* ctx,
      const internal::AppendMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* AddMembers(grpc::CallbackServerContext* ctx,
                                       const internal::AddMembersRequest* req,
                                       parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* ctx,
      const internal::RemoveMemberRequest* req,
      parley::v1::Chat* resp) override;
  grpc::ServerWriteReactor<internal::Delivery>* Subscribe(
      grpc::CallbackServerContext* ctx,
      const internal::SubscribeRequest* req) override;

  // Pushes `event` to the gateways holding `recipients`. Asynchronous.
  void Fanout(const parley::v1::ChatEvent& event,
              const google::protobuf::RepeatedField<int64_t>& recipients);

 private:
  const MessageServiceOptions options_;
  IdGenerator* const ids_;
  internal::StorageService::StubInterface* const storage_;
  internal::PresenceService::StubInterface* const presence_;
  FanoutHub* const hub_;
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
