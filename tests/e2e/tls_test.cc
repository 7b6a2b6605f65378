// End-to-end tests of transport security: a cluster whose services talk
// mutual TLS to each other and whose gateway serves TLS, with certificates
// made for the run by openssl (tests/support/tls_certs).
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/client/cli.h"
#include "services/client/health_check.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"
#include "tests/support/subprocess.h"
#include "tests/support/tls_certs.h"

namespace parley::e2e {
namespace {

using ::testing::HasSubstr;

// Client credentials: verify the server against `ca`, present `cert`.
TlsCredentials ClientTls(const std::string& ca, const std::string& cert = "",
                         const std::string& key = "") {
  auto tls = TlsCredentials::LoadClient(ca, cert, key);
  EXPECT_TRUE(tls.ok()) << tls.status();
  return tls.ok() ? *tls : TlsCredentials();
}

class TlsTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() { StartCluster({.tls = true}); }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  const testing::TestCerts& certs() { return cluster_->certs(); }
  std::string gateway() { return cluster_->gateway_address(0); }

};


grpc::Status TryRegister(Api& api) {
  v1::RegisterRequest req;
  req.set_username(UniqueName("tls"));
  req.set_password("password-" + req.username());
  v1::RegisterResponse resp;
  return api.Register(req, &resp);
}

TEST_F(TlsTest, ClientTrustingTheCaChatsThroughTheTlsGateway) {
  // The client only trusts the CA; it presents no certificate.
  const auto creds = ClientTls(certs().ca).ChannelCredentials();
  Api api(gateway(), creds);
  TestUser alice = api.NewUser("alice");
  TestUser bob = api.NewUser("bob");
  ASSERT_FALSE(alice.token.empty());
  ASSERT_FALSE(bob.token.empty());
  auto bob_stream = LiveStream::Open(gateway(), bob.token, creds);
  ASSERT_NE(bob_stream, nullptr);

  // Send goes gateway -> message -> storage, the event message -> gateway
  // (Subscribe) after a route lookup in presence: every internal link is
  // mutual TLS, so the delivery proves they all work.
  v1::Chat chat = api.Direct(alice, bob);
  v1::Message sent = api.Send(alice, chat.chat_id(), "hello over tls");
  auto ev = bob_stream->WaitForEvent(chat.chat_id(), sent.seq());
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->has_message_created());
  EXPECT_EQ(ev->message_created().text(), "hello over tls");
  EXPECT_EQ(ev->message_created().sender_user_id(), alice.user_id);
}

TEST_F(TlsTest, PlaintextClientIsRefusedByTheTlsGateway) {
  Api api(gateway());
  EXPECT_EQ(TryRegister(api).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, ClientTrustingAnotherCaIsRefused) {
  Api api(gateway(), ClientTls(certs().other_ca).ChannelCredentials());
  EXPECT_EQ(TryRegister(api).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, InternalServersRequireAClientCertificateFromTheirCa) {
  // Refusals come at once; the deadline only bounds the accepted calls.
  constexpr auto kTimeout = std::chrono::seconds(10);
  for (const std::string name : {"storage", "presence", "message0"}) {
    SCOPED_TRACE(name);
    const std::string addr = cluster_->address(name);
    // Positive control: the CA's client certificate is accepted.
    auto ok = client::CheckHealth(addr, "", kTimeout, cluster_->client_tls());
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(*ok, client::HealthStatus::kServing);

    auto plaintext = client::CheckHealth(addr, "", kTimeout);
    EXPECT_TRUE(absl::IsUnavailable(plaintext.status())) << plaintext.status();

    auto no_cert = client::CheckHealth(addr, "", kTimeout, ClientTls(certs().ca));
    EXPECT_TRUE(absl::IsUnavailable(no_cert.status())) << no_cert.status();

    auto other_ca_cert = client::CheckHealth(
        addr, "", kTimeout,
        ClientTls(certs().ca, certs().other_cert, certs().other_key));
    EXPECT_TRUE(absl::IsUnavailable(other_ca_cert.status()))
        << other_ca_cert.status();

    // The client side verifies too: a good client certificate, but the
    // server's is not from the CA this client trusts.
    auto wrong_trust = client::CheckHealth(
        addr, "", kTimeout,
        ClientTls(certs().other_ca, certs().client_cert, certs().client_key));
    EXPECT_TRUE(absl::IsUnavailable(wrong_trust.status()))
        << wrong_trust.status();
  }
}

TEST_F(TlsTest, ServerNameOverrideIsWhatTheCertificateMustName) {
  auto with_name = [&](const std::string& name) {
    TlsFiles files;
    files.ca = certs().ca;
    files.cert = certs().client_cert;
    files.key = certs().client_key;
    files.server_name = name;
    auto tls = TlsCredentials::Load(files, TlsRole::kClient);
    EXPECT_TRUE(tls.ok()) << tls.status();
    return client::CheckHealth(cluster_->address("storage"), "",
                               std::chrono::seconds(10),
                               tls.ok() ? *tls : TlsCredentials());
  };
  // The certificate names localhost (and 127.0.0.1), not storage.example.
  auto named = with_name("localhost");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named, client::HealthStatus::kServing);
  EXPECT_TRUE(absl::IsUnavailable(with_name("storage.example").status()));
}

TEST_F(TlsTest, CliUsesTheCaFileAndKeepsItInTheSession) {
  const std::string dir = testing::MakeTempDir("parley-tls-cli-");
  const std::string session = dir + "/session";
  std::stringstream out, err;
  client::CliIo io{.out = &out, .err = &err};
  const std::string user = UniqueName("cli");
  ASSERT_EQ(client::RunCli({"register", user, "--password", "pw-" + user,
                            "--gateway", gateway(), "--tls_ca_file", certs().ca,
                            "--session", session},
                           io),
            client::kExitOk)
      << err.str();
  // Later commands take the gateway and its CA from the session.
  EXPECT_EQ(client::RunCli({"chats", "--session", session}, io),
            client::kExitOk)
      << err.str();
  EXPECT_EQ(client::RunCli({"health", gateway(), "--tls_ca_file", certs().ca,
                            "--timeout", "10"},
                           io),
            client::kExitOk)
      << err.str();

  // Without the CA the client speaks plaintext and is refused.
  err.str("");
  EXPECT_EQ(client::RunCli({"register", UniqueName("cli"), "--password", "pw",
                            "--gateway", gateway(), "--session",
                            dir + "/other"},
                           io),
            client::kExitError);
  EXPECT_THAT(err.str(), HasSubstr("UNAVAILABLE"));
  // Health checks of internal servers present a client certificate.
  EXPECT_EQ(client::RunCli({"health", cluster_->address("storage"),
                            "--tls_ca_file", certs().ca, "--tls_cert_file",
                            certs().client_cert, "--tls_key_file",
                            certs().client_key, "--timeout", "10"},
                           io),
            client::kExitOk)
      << err.str();
  EXPECT_EQ(client::RunCli({"health", cluster_->address("storage"),
                            "--tls_ca_file", certs().ca},
                           io),
            client::kExitError);
  testing::RemoveTree(dir);
}

// ------------------------------------------------ start-up configuration

class TlsStartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("parley-tls-start-");
    auto certs = testing::TestCerts::Create(dir_);
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *certs;
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  // Runs a service binary with `flags`; returns its exit code (or -1 if it
  // kept running) and its log in `log`.
  int Run(const std::string& binary, std::vector<std::string> flags,
          std::string* log) {
    const std::string log_path = absl::StrCat(dir_, "/", binary, ".log");
    std::remove(log_path.c_str());
    flags.insert(flags.begin(), testing::BinDir() + "/" + binary);
    flags.push_back("--listen=127.0.0.1:0");
    auto p = testing::Subprocess::Start(flags, log_path);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return -1;
    const int status = (*p)->Wait(std::chrono::seconds(20));
    std::ifstream in(log_path);
    std::stringstream text;
    text << in.rdbuf();
    *log = text.str();
    if (status < 0 || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

  std::string dir_;
  testing::TestCerts certs_;
};

TEST_F(TlsStartupTest, GatewayNeedsBothCertificateAndKey) {
  std::string log;
  EXPECT_EQ(Run("parley-gateway", {"--tls_cert_file=" + certs_.server_cert},
                &log),
            2);
  EXPECT_THAT(log, HasSubstr("--tls_cert_file is set but --tls_key_file is not"));
  EXPECT_EQ(Run("parley-gateway", {"--tls_key_file=" + certs_.server_key}, &log),
            2);
  EXPECT_THAT(log, HasSubstr("--tls_key_file is set but --tls_cert_file is not"));
}

TEST_F(TlsStartupTest, MissingOrWrongFilesAreNamed) {
  std::string log;
  EXPECT_EQ(Run("parley-gateway",
                {"--tls_cert_file=" + certs_.server_cert,
                 "--tls_key_file=" + dir_ + "/missing.key"},
                &log),
            2);
  EXPECT_THAT(log, HasSubstr("--tls_key_file: cannot read " + dir_ +
                             "/missing.key"));
  // A certificate where the key belongs.
  EXPECT_EQ(Run("parley-gateway",
                {"--tls_cert_file=" + certs_.server_cert,
                 "--tls_key_file=" + certs_.server_cert},
                &log),
            2);
  EXPECT_THAT(log, HasSubstr("holds no PEM private key"));
}

TEST_F(TlsStartupTest, InternalTlsNeedsAllThreeFiles) {
  std::string log;
  for (const std::string binary :
       {"parley-storage", "parley-presence", "parley-message", "parley-gateway"}) {
    SCOPED_TRACE(binary);
    EXPECT_EQ(Run(binary, {"--internal_tls_ca_file=" + certs_.ca}, &log), 2);
    EXPECT_THAT(log, HasSubstr("mutual TLS needs all of --internal_tls_ca_file, "
                               "--internal_tls_cert_file and "
                               "--internal_tls_key_file"));
  }
}

}  // namespace
}  // namespace parley::e2e
