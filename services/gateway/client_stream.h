// One client's Connect stream: reads ClientFrames, writes ServerFrames from a
// bounded queue with one write in flight, and never blocks a reactor thread.
//
// Lifecycle: authenticate -> registry.Add -> (route ready) StartRead ->
// ... -> Finish -> OnDone: registry.Remove, delete. Pings are read only once
// the route is registered, so the first Pong tells the client that live
// events will reach it.
#ifndef PARLEY_SERVICES_GATEWAY_CLIENT_STREAM_H_
#define PARLEY_SERVICES_GATEWAY_CLIENT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/owner_alarm.h"
#include "parley/v1/parley.pb.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/token_authenticator.h"

namespace parley::gateway {

// What a stream does with the client's typing, ack and send frames. Calls
// must not block and must not call back into the stream.
class ClientFrameSink {
 public:
  virtual ~ClientFrameSink() = default;
  virtual void OnTypingFrame(int64_t user_id,
                             const parley::v1::TypingFrame& frame) = 0;
  virtual void OnAckFrame(int64_t user_id, const parley::v1::AckFrame& frame) = 0;
  // Starts a send that came in on stream `stream_id`; `send` is valid only
  // during the call. `done` gets the send_result exactly once, on any
  // thread, perhaps before OnSendFrame returns.
  virtual void OnSendFrame(int64_t user_id, uint64_t stream_id,
                           const parley::v1::SendMessageRequest& send,
                           std::function<void(parley::v1::SendResult)> done) = 0;
};

struct ClientStreamOptions {
  // Frames queued for a client that does not read before it is dropped.
  size_t max_queue = 4096;
  // Bytes (serialized frames, the one being written included) queued for a
  // client before it is dropped. A single frame larger than this is still
  // sent when nothing else is queued.
  size_t max_queue_bytes = 4 << 20;
  // A dropped client gets its status after the frame being written, which
  // waits for the client to read (HTTP/2 flow control). One that does not
  // read within this time is cancelled.
  std::chrono::milliseconds stall_timeout{30000};
  // Send frames of one stream in flight at once; at the limit the stream is
  // not read until a result goes out (HTTP/2 flow control holds the client).
  int max_sends = 64;
  // Frames one batch frame may carry, whatever the client asks for; 1 sends
  // no batches.
  int max_batch_frames = 256;
  // Serialized bytes one batch may carry; a batch stops before the frame
  // that would pass it.
  size_t max_batch_bytes = 256 << 10;
};

// The batch size a client asks for with `parley-batch-frames` (see Connect
// in parley.proto): 1 when absent; INVALID_ARGUMENT naming the key when not
// an integer from 1 to 1024.
//
//   absl::StatusOr<int> n = BatchFramesOf(ctx->client_metadata());
absl::StatusOr<int> BatchFramesOf(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

class ClientStream final
    : public grpc::ServerBidiReactor<parley::v1::ClientFrame,
                                     parley::v1::ServerFrame>,
      public LocalStream {
 public:
  // Starts authentication; the object deletes itself in OnDone. Each
  // authenticated open takes a token of the user's bucket in
  // `connect_limiter` (optional).
  ClientStream(grpc::CallbackServerContext* ctx, TokenAuthenticator* auth,
               ConnectionRegistry* registry, ClientFrameSink* sink,
               RateLimiter* connect_limiter, ClientStreamOptions options);

  // LocalStream.
  void Push(absl::Span<const std::shared_ptr<const parley::v1::ServerFrame>>
                frames) override;
  void OnRouteReady() override;
  void Close(const grpc::Status& status) override;
  uint64_t stream_id() const override { return stream_id_; }
  bool ending() const override {
    return ending_.load(std::memory_order_acquire);
  }

  // Reactor.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void OnAuthenticated(absl::StatusOr<int64_t> user_id);
  // Hands the send frame just read to the sink and reads on, unless
  // max_sends are in flight.
  void OnSendRead();
  void OnSendDone(parley::v1::SendResult result);
  // Calls Finish once finishing and nothing (authentication, a write, a
  // send) still refers to the stream.
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels the call if the frame being written still has not gone out.
  void OnStallTimeout();
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a frame, and writes it unless a write is in flight or `hold`
  // (more frames follow at once).
  void PushLocked(std::shared_ptr<const parley::v1::ServerFrame> frame,
                  bool hold = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the front of the queue: one frame, or as many as the batch limits
  // allow in one batch frame when several wait.
  void StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const ctx_;
  ConnectionRegistry* const registry_;
  ClientFrameSink* const sink_;
  RateLimiter* const connect_limiter_;
  const ClientStreamOptions options_;
  const uint64_t stream_id_;
  parley::v1::ClientFrame incoming_;

  std::mutex mu_;
  int64_t user_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool authenticating_ ABSL_GUARDED_BY(mu_) = true;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;  // in the registry
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  // Sends handed to the sink and not answered yet.
  int sends_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Reading stopped at max_sends; the next answer resumes it.
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // finishing_, readable without mu_ (the registry holds its own lock when
  // it asks, and takes ours only after it).
  std::atomic<bool> ending_{false};
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  struct Queued {
    std::shared_ptr<const parley::v1::ServerFrame> frame;
    size_t bytes;  // serialized size
  };
  // The first `in_flight_` frames are being written while writing_.
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Frames per write the client accepts (1: no batches); set at the start.
  size_t batch_frames_ = 1;
  // The batch being written, when in_flight_ > 1.
  parley::v1::ServerFrame batch_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  OwnerAlarm stall_alarm_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_CLIENT_STREAM_H_
