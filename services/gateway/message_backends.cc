#include "services/gateway/message_backends.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "common/batch_outcomes.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

MessageBackends::MessageBackends(const std::vector<std::string>& addresses,
                                 const TlsCredentials& tls,
                                 ConnectionRegistry* registry,
                                 MessageBackendOptions options) {
  for (const auto& a : addresses) {
    auto inst = std::make_unique<Instance>();
    inst->address = a;
    inst->channel = MakeChannel(a, tls, options.channel);
    inst->stub = internal::MessageService::NewStub(inst->channel);
    internal::MessageService::Stub* stub = inst->stub.get();
    inst->subscriber = std::make_unique<PushSubscriber>(
        "message " + a,
        [stub](grpc::ClientContext* ctx, const internal::SubscribeRequest* req,
               grpc::ClientReadReactor<internal::Delivery>* reactor) {
          stub->async()->Subscribe(ctx, req, reactor);
        },
        registry);
    if (options.send_calls > 0) {
      inst->sends = std::make_unique<SendBatcher>(
          SendBatcher::Options{.max_in_flight = options.send_calls,
                               .max_batch = std::clamp<size_t>(
                                   options.max_batch, 1, kMaxBatchRequests)},
          [stub](std::vector<internal::AppendMessageRequest> sends,
                 std::chrono::milliseconds timeout,
                 SendBatcher::Finish finish) {
            SendMessagesCall(stub, std::move(sends), timeout,
                             std::move(finish));
          });
    }
    instances_.push_back(std::move(inst));
  }
}

MessageBackends::~MessageBackends() { Stop(); }

void MessageBackends::Start() {
  for (auto& inst : instances_) inst->subscriber->Start();
}

void MessageBackends::Stop() {
  for (auto& inst : instances_) inst->subscriber->Stop();
}

int MessageBackends::live_subscriptions() const {
  int n = 0;
  for (const auto& inst : instances_) n += inst->subscriber->live();
  return n;
}

internal::MessageService::StubInterface* MessageBackends::ForChat(
    int64_t chat_id, int attempt) {
  return InstanceForChat(chat_id, attempt)->stub.get();
}

MessageBackends::Instance* MessageBackends::InstanceForChat(int64_t chat_id,
                                                            int attempt) {
  const size_t n = instances_.size();
  const size_t start = static_cast<size_t>(chat_id) % n;
  int skip = attempt;
  // Healthy (or not yet known) instances only.
  for (size_t k = 0; k < n; ++k) {
    Instance* inst = instances_[(start + k) % n].get();
    if (inst->channel->GetState(true) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      continue;
    }
    if (skip-- > 0) continue;
    return inst;
  }
  return instances_[(start + attempt) % n].get();
}

void MessageBackends::SendAll(int64_t chat_id, std::vector<SendEntry> sends,
                              std::chrono::milliseconds timeout, int attempt) {
  if (sends.empty()) return;
  if (attempt == 0 && instances_.size() > 1) {
    // Answers go out as they come, except UNAVAILABLE: those wait for the
    // whole group and are tried again together, in their order.
    struct Retry {
      std::mutex mu;
      size_t remaining;
      std::vector<std::optional<SendEntry>> unavailable;
    };
    auto retry = std::make_shared<Retry>();
    retry->remaining = sends.size();
    retry->unavailable.resize(sends.size());
    for (size_t i = 0; i < sends.size(); ++i) {
      SendEntry& e = sends[i];
      e.done = [this, retry, i, chat_id, timeout, send = e.item,
                done = std::move(e.done)](
                   absl::StatusOr<::parley::v1::Message> m) mutable {
        if (m.status().code() != absl::StatusCode::kUnavailable) {
          done(std::move(m));
        }
        std::vector<SendEntry> again;
        {
          std::lock_guard<std::mutex> lock(retry->mu);
          if (m.status().code() == absl::StatusCode::kUnavailable) {
            retry->unavailable[i] = SendEntry{std::move(send), std::move(done)};
          }
          if (--retry->remaining > 0) return;
          for (auto& u : retry->unavailable) {
            if (u.has_value()) again.push_back(std::move(*u));
          }
        }
        SendAll(chat_id, std::move(again), timeout, 1);
      };
    }
  }
  Instance* inst = InstanceForChat(chat_id, attempt);
  if (inst->sends != nullptr) {
    inst->sends->SubmitAll(std::move(sends),
                           std::chrono::system_clock::now() + timeout);
    return;
  }
  // Unbatched: still one call for the group.
  std::vector<internal::AppendMessageRequest> requests;
  auto dones = std::make_shared<std::vector<SendDone>>();
  requests.reserve(sends.size());
  dones->reserve(sends.size());
  for (SendEntry& e : sends) {
    requests.push_back(std::move(e.item));
    dones->push_back(std::move(e.done));
  }
  SendMessagesCall(
      inst->stub.get(), std::move(requests), timeout,
      [dones](absl::StatusOr<std::vector<absl::StatusOr<::parley::v1::Message>>>
                  results) {
        SendBatcher::AnswerEach(std::move(results), *dones);
      });
}

void MessageBackends::SendMessagesCall(
    internal::MessageService::StubInterface* stub,
    std::vector<internal::AppendMessageRequest> sends,
    std::chrono::milliseconds timeout, SendBatcher::Finish finish) {
  using Async = internal::MessageService::StubInterface::async_interface;
  CallBatch(
      stub->async(), &Async::SendMessages, &Async::SendMessage,
      std::move(sends), timeout,
      [](internal::SendOutcome* o) { return std::move(*o->mutable_message()); },
      std::move(finish));
}

}  // namespace parley::gateway
