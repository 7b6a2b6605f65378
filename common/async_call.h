// Asynchronous unary calls to other services through the callback API, with
// a deadline on every call. The callback runs on a gRPC thread: keep it short
// and never block in it.
//
//   parley::CallAsync(stub->async(), &StorageService::Stub::async::GetChat,
//                     std::move(request), std::chrono::seconds(2),
//                     [reactor, out](absl::StatusOr<parley::v1::Chat> chat) {
//                       if (chat.ok()) *out = std::move(*chat);
//                       reactor->Finish(parley::ToGrpcStatus(chat.status()));
//                     });
//
// A callback may use objects that main() destroys when it returns. So at
// shutdown, once the server and whatever starts calls have stopped:
//
//   if (!parley::WaitForAsyncCalls(std::chrono::seconds(10))) { ... }
#ifndef PARLEY_COMMON_ASYNC_CALL_H_
#define PARLEY_COMMON_ASYNC_CALL_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "common/grpc_util.h"
#include "common/status_util.h"

namespace parley {

// Cancels every call started through CallAsync or CallBatch that has not
// finished: their callbacks run soon with CANCELLED. For shutdown, once
// nothing waits for their answers any more.
void CancelAsyncCalls();

// Waits until every call started through CallAsync or CallBatch has run its
// callback to the end; false if some still had not after `timeout` (every
// call has a deadline, so that means a callback is stuck).
bool WaitForAsyncCalls(std::chrono::milliseconds timeout);

namespace async_call_internal {
// A member of a call's shared state, next to its context: the call counts
// as running from Register until this goes (after its callback).
class Tracked {
 public:
  Tracked() = default;
  ~Tracked();
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

  // Counts the call, and lets CancelAsyncCalls reach `ctx` while `owner`
  // (the state holding this and `ctx`) lives.
  void Register(std::weak_ptr<void> owner, grpc::ClientContext* ctx);
};
}  // namespace async_call_internal

template <typename AsyncStub, typename Request, typename Response,
          typename Done>
void CallAsync(AsyncStub* async,
               void (AsyncStub::*method)(grpc::ClientContext*, const Request*,
                                         Response*,
                                         std::function<void(grpc::Status)>),
               Request request, std::chrono::milliseconds timeout,
               Done done) {
  struct State {
    async_call_internal::Tracked tracked;  // until the callback's end
    grpc::ClientContext ctx;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->tracked.Register(state, &state->ctx);
  state->request = std::move(request);
  SetTimeout(&state->ctx, timeout);
  (async->*method)(
      &state->ctx, &state->request, &state->response,
      [state, done = std::move(done)](grpc::Status status) mutable {
        // Locals, so that `done` and what it holds go first and the call
        // stops counting last, here rather than whenever gRPC drops this.
        auto call = std::move(state);
        auto callback = std::move(done);
        if (!status.ok()) {
          callback(absl::StatusOr<Response>(FromGrpcStatus(status)));
        } else {
          callback(absl::StatusOr<Response>(std::move(call->response)));
        }
      });
}

// The deadline for a downstream call made while serving a call with
// `deadline`: a little less than the time left (so the caller hears
// UNAVAILABLE from us rather than its own DEADLINE_EXCEEDED), capped at `cap`.
inline std::chrono::milliseconds RemainingOr(
    std::chrono::system_clock::time_point deadline,
    std::chrono::milliseconds cap) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::system_clock::now());
  left -= std::max(std::chrono::milliseconds(20), left / 10);
  if (left < std::chrono::milliseconds(1)) return std::chrono::milliseconds(1);
  return left < cap ? left : cap;
}

}  // namespace parley

#endif  // PARLEY_COMMON_ASYNC_CALL_H_
