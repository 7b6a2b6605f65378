// The write side of a server streaming reactor with at most one write in
// flight, that ends cleanly: a finish waits for the write in flight. The
// subclass keeps what waits to be written, guarded by `mu_`, and says how
// to write the next of it.
//
//   class Feed : public SerialWriter<Event> {
//    public:
//     void Push(Event e) {
//       std::lock_guard<std::mutex> lock(mu_);
//       if (finishing()) return;
//       queue_.push_back(std::move(e));
//       if (!writing()) WriteNextLocked();
//     }
//    private:
//     void WriteNextLocked() override {
//       if (!queue_.empty()) StartWriteLocked(&queue_.front());
//     }
//     void WrittenLocked() override { queue_.pop_front(); }
//     void OnDone() override { delete this; }
//     std::deque<Event> queue_;
//   };
#ifndef PARLEY_COMMON_SERIAL_WRITER_H_
#define PARLEY_COMMON_SERIAL_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"

namespace parley {

template <typename T>
class SerialWriter : public grpc::ServerWriteReactor<T> {
 public:
  // Finishes with `status` now, or after the write in flight.
  void Close(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(std::move(status));
  }

  void OnWriteDone(bool ok) final {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    WrittenLocked();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    } else if (!finishing_) {
      WriteNextLocked();
      return;
    }
    if (finishing_ && !finished_) {
      finished_ = true;
      this->Finish(final_status_);
    }
  }

  void OnCancel() final {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

 protected:
  // Starts the next write (StartWriteLocked) if anything waits.
  virtual void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // The write in flight completed, written or not.
  virtual void WrittenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

  void StartWriteLocked(const T* message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    this->StartWrite(message);
  }
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = std::move(status);
    if (!writing_) {
      finished_ = true;
      this->Finish(final_status_);
    }
  }
  bool writing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return writing_; }
  bool finishing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return finishing_;
  }

  std::mutex mu_;

 private:
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley

#endif  // PARLEY_COMMON_SERIAL_WRITER_H_
