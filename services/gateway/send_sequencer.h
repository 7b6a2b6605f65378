// Keeps each stream's sends to one chat in the order the stream read them.
//
// Sends of one (stream, chat) pair that are in flight at once used to take
// separate batch calls, which run in parallel and reach storage in any
// order, so a burst could be stored (and numbered) out of the order it was
// sent. Here, while a pair has sends in flight, the next ones wait; when
// the last answer is in, all that waited leave together as one group, which
// every hop below keeps in one batch call (CallBatcher::SubmitAll) and
// storage in one transaction, in order. Sends of other chats or other
// streams never wait for each other, and an idle pair's send leaves at once.
//
//   SendSequencer sequencer(
//       {.max_group = 64},
//       [&](int64_t chat_id, std::vector<SendSequencer::Send> group) {
//         ...  // one call for the group, e.g. MessageBackends::SendAll
//       });
//   sequencer.Submit(stream_id, chat_id, {request, done});
#ifndef PARLEY_SERVICES_GATEWAY_SEND_SEQUENCER_H_
#define PARLEY_SERVICES_GATEWAY_SEND_SEQUENCER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/call_batcher.h"
#include "parley/internal/v1/message.pb.h"
#include "parley/v1/parley.pb.h"

namespace parley::gateway {

class SendSequencer {
 public:
  // A send (`item`) and what to call with its result (`done`): the entry
  // type of the batch calls below, so a group passes on as it is.
  using Send = CallBatcher<::parley::internal::v1::AppendMessageRequest,
                           ::parley::v1::Message>::Entry;
  // Starts a group of one chat's sends, in order. Must call each send's
  // `done` exactly once, on any thread (inline too), and must not block.
  using Start = std::function<void(int64_t chat_id, std::vector<Send> group)>;

  struct Options {
    // Most sends in one group; the rest wait for the next. The hops below
    // keep a group whole even past their batch sizes, so this bounds how
    // large their calls and transactions get.
    size_t max_group = 64;
  };

  SendSequencer(Options options, Start start);

  // Starts `send` now if the pair has nothing in flight, else queues it
  // behind the sends in flight.
  void Submit(uint64_t stream_id, int64_t chat_id, Send send);

  // (stream, chat) pairs with sends in flight or waiting.
  size_t active() const;

 private:
  using Key = std::pair<uint64_t, int64_t>;  // stream, chat
  struct Queue {
    size_t in_flight = 0;
    std::vector<Send> waiting;
  };

  // Starts `group` (counted in flight already), outside the lock.
  void StartGroup(Key key, std::vector<Send> group);
  void OnAnswered(Key key);

  const Options options_;
  const Start start_;
  mutable std::mutex mu_;
  absl::flat_hash_map<Key, Queue> queues_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_SEND_SEQUENCER_H_
