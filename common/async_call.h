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

template <typename AsyncStub, typename Request, typename Response,
          typename Done>
void CallAsync(AsyncStub* async,
               void (AsyncStub::*method)(grpc::ClientContext*, const Request*,
                                         Response*,
                                         std::function<void(grpc::Status)>),
               Request request, std::chrono::milliseconds timeout,
               Done done) {
  struct State {
    grpc::ClientContext ctx;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  SetTimeout(&state->ctx, timeout);
  (async->*method)(
      &state->ctx, &state->request, &state->response,
      [state, done = std::move(done)](grpc::Status status) mutable {
        if (!status.ok()) {
          done(absl::StatusOr<Response>(FromGrpcStatus(status)));
        } else {
          done(absl::StatusOr<Response>(std::move(state->response)));
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
