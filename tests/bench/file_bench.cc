// parley-file-bench: upload and download throughput of one large file
// through a running gateway, and the RSS of watched processes (sampled
// during the transfers, so the password hashing of the bench's own
// registration does not count).
//
//   parley-file-bench --gateway 127.0.0.1:50051 --mib 100
//       --watch gateway=$(pgrep -f parley-gateway),storage=$(pgrep -f parley-storage)
//
// The file is generated, hashed and sent chunk by chunk: the bench never
// holds it either.
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/grpc_util.h"
#include "parley/v1/parley.grpc.pb.h"

namespace {

namespace v1 = ::parley::v1;
using Clock = std::chrono::steady_clock;

long long RssKb(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Samples the RSS of watched processes every 2 ms while a transfer runs.
class RssSampler {
 public:
  explicit RssSampler(std::vector<std::pair<std::string, std::string>> watch)
      : watch_(std::move(watch)), before_(watch_.size()), peak_(watch_.size()) {
    for (size_t i = 0; i < watch_.size(); ++i) {
      before_[i] = peak_[i] = RssKb(watch_[i].second);
    }
    thread_ = std::thread([this] {
      while (!stop_) {
        for (size_t i = 0; i < watch_.size(); ++i) {
          peak_[i] = std::max(peak_[i], RssKb(watch_[i].second));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  void Stop() {
    stop_ = true;
    thread_.join();
  }
  void Print() const {
    for (size_t i = 0; i < watch_.size(); ++i) {
      std::printf("RSS %-9s %7.1f MiB before, peak %7.1f MiB during transfers\n",
                  watch_[i].first.c_str(), before_[i] / 1024.0,
                  peak_[i] / 1024.0);
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> watch_;
  std::vector<long long> before_, peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string Chunk(std::mt19937_64& rng, size_t n) {
  std::string c(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&c[i], &v, 8);
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string gateway = "127.0.0.1:50051";
  std::string tls_ca_file;
  int64_t mib = 100;
  std::vector<std::pair<std::string, std::string>> watch;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--gateway") {
      gateway = value;
    } else if (flag == "--tls_ca_file") {
      tls_ca_file = value;
    } else if (flag == "--mib") {
      if (!absl::SimpleAtoi(value, &mib) || mib < 1) return 2;
    } else if (flag == "--watch") {
      for (absl::string_view kv : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        std::vector<std::string> p = absl::StrSplit(kv, '=');
        if (p.size() == 2) watch.emplace_back(p[0], p[1]);
      }
    } else {
      std::fprintf(stderr,
                   "Usage: parley-file-bench [--gateway HOST:PORT] [--mib N] "
                   "[--watch name=pid,...] [--tls_ca_file FILE]\n");
      return 2;
    }
  }
  auto tls = parley::TlsCredentials::LoadClient(tls_ca_file);
  if (!tls.ok()) {
    std::fprintf(stderr, "error: %s\n", tls.status().ToString().c_str());
    return 2;
  }
  if (sodium_init() < 0) return 1;
  const int64_t size = mib << 20;
  auto channel = grpc::CreateChannel(gateway, tls->ChannelCredentials());
  auto auth = v1::AuthService::NewStub(channel);
  auto chat = v1::ChatService::NewStub(channel);

  v1::RegisterRequest reg;
  reg.set_username(absl::StrCat("filebench_", std::random_device{}() % 1000000));
  reg.set_password("file-bench-password");
  v1::RegisterResponse user;
  {
    grpc::ClientContext ctx;
    if (!auth->Register(&ctx, reg, &user).ok()) return 1;
  }
  v1::Chat group;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + user.access_token());
    v1::CreateGroupChatRequest req;
    req.set_title("file bench");
    if (!chat->CreateGroupChat(&ctx, req, &group).ok()) return 1;
  }
  // Hash first (same PRNG stream), so the upload itself is timed alone.
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  std::mt19937_64 rng(42);
  for (int64_t off = 0; off < size; off += 1 << 20) {
    std::string c = Chunk(rng, 1 << 20);
    crypto_hash_sha256_update(&h, reinterpret_cast<const unsigned char*>(c.data()),
                              c.size());
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&h, digest);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);

  rng.seed(42);
  RssSampler sampler(watch);
  const auto t0 = Clock::now();
  v1::File file;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + user.access_token());
    auto writer = chat->UploadFile(&ctx, &file);
    v1::UploadFileRequest req;
    req.mutable_metadata()->set_chat_id(group.chat_id());
    req.mutable_metadata()->set_name("bench.bin");
    req.mutable_metadata()->set_content_type("application/octet-stream");
    req.mutable_metadata()->set_size_bytes(size);
    req.mutable_metadata()->set_sha256(hex);
    writer->Write(req);
    for (int64_t off = 0; off < size; off += 1 << 20) {
      v1::UploadFileRequest c;
      c.set_chunk(Chunk(rng, 1 << 20));
      if (!writer->Write(c)) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) {
      std::fprintf(stderr, "upload failed: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  const auto t1 = Clock::now();
  int64_t received = 0;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + user.access_token());
    v1::DownloadFileRequest req;
    req.set_file_id(file.file_id());
    auto reader = chat->DownloadFile(&ctx, req);
    v1::DownloadFileResponse frame;
    crypto_hash_sha256_init(&h);
    while (reader->Read(&frame)) {
      if (!frame.has_chunk()) continue;
      received += frame.chunk().size();
      crypto_hash_sha256_update(
          &h, reinterpret_cast<const unsigned char*>(frame.chunk().data()),
          frame.chunk().size());
    }
    if (!reader->Finish().ok()) return 1;
  }
  const auto t2 = Clock::now();
  sampler.Stop();
  crypto_hash_sha256_final(&h, digest);
  char got[65];
  sodium_bin2hex(got, sizeof got, digest, sizeof digest);
  const double up = std::chrono::duration<double>(t1 - t0).count();
  const double down = std::chrono::duration<double>(t2 - t1).count();
  std::printf("parley file bench via %s: %lld MiB\n", gateway.c_str(),
              static_cast<long long>(mib));
  std::printf("upload    %8.1f MB/s  (%.2f s)\n", size / 1e6 / up, up);
  std::printf("download  %8.1f MB/s  (%.2f s)  content %s\n",
              received / 1e6 / down, down,
              std::strcmp(got, hex) == 0 && received == size ? "verified"
                                                             : "MISMATCH");
  sampler.Print();
  return std::strcmp(got, hex) == 0 ? 0 : 1;
}
