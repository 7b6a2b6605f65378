// Streaming file transfer through the gateway, chunk by chunk with flow
// control in both directions: a chunk is forwarded only after the previous
// one was accepted downstream, so one transfer holds at most one chunk in
// memory however large the file.
#ifndef PARLEY_SERVICES_GATEWAY_FILE_TRANSFER_H_
#define PARLEY_SERVICES_GATEWAY_FILE_TRANSFER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>

#include "parley/internal/v1/storage.grpc.pb.h"
#include "parley/v1/parley.grpc.pb.h"
#include "services/gateway/token_authenticator.h"

namespace parley::gateway {

struct FileTransferOptions {
  // Largest file accepted.
  int64_t max_file_bytes = 100LL << 20;
  // An upload or download still running this long after it started is
  // ended with DEADLINE_EXCEEDED (or cancelled, when a chunk waits for a
  // client that does not read), and its call to storage with it.
  std::chrono::milliseconds max_transfer_time = std::chrono::hours(1);
};

// Starts an upload: client stream in, storage client stream out.
grpc::ServerReadReactor<parley::v1::UploadFileRequest>* StartUpload(
    grpc::CallbackServerContext* ctx, parley::v1::File* response,
    TokenAuthenticator* auth,
    ::parley::internal::v1::StorageService::StubInterface* storage,
    FileTransferOptions options);

// Starts a download: storage server stream in, client server stream out.
grpc::ServerWriteReactor<parley::v1::DownloadFileResponse>* StartDownload(
    grpc::CallbackServerContext* ctx,
    const parley::v1::DownloadFileRequest* request, TokenAuthenticator* auth,
    ::parley::internal::v1::StorageService::StubInterface* storage,
    FileTransferOptions options);

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_FILE_TRANSFER_H_
