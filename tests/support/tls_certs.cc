#include "tests/support/tls_certs.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/subprocess.h"

namespace parley::testing {
namespace {

// Extension sections for `openssl req -x509` (CA) and `openssl x509 -req`
// (leaves).
constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

class OpenSsl {
 public:
  explicit OpenSsl(std::string dir)
      : dir_(std::move(dir)),
        config_(dir_ + "/openssl.cnf"),
        log_(dir_ + "/openssl.log") {}

  absl::Status WriteConfig() {
    std::ofstream out(config_);
    out << kOpensslConfig;
    out.close();
    if (!out) return absl::InternalError("cannot write " + config_);
    return absl::OkStatus();
  }

  // A self-signed CA: NAME.pem and NAME.key.
  absl::Status Ca(const std::string& name, const std::string& cn) {
    return Run({"req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                Path(name, "key"), "-out", Path(name, "pem"), "-days", "2",
                "-subj", "/CN=" + cn, "-config", config_, "-extensions", "ca"});
  }

  // A leaf NAME.pem/NAME.key signed by CA, with the config section
  // `extensions`.
  absl::Status Leaf(const std::string& name, const std::string& ca,
                    const std::string& cn, const std::string& extensions) {
    absl::Status s = Run({"req", "-new", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                          Path(name, "key"), "-out", Path(name, "csr"), "-subj",
                          "/CN=" + cn, "-config", config_});
    if (!s.ok()) return s;
    return Run({"x509", "-req", "-in", Path(name, "csr"), "-CA", Path(ca, "pem"),
                "-CAkey", Path(ca, "key"), "-set_serial",
                absl::StrCat(++serial_), "-days", "2", "-out",
                Path(name, "pem"), "-extfile", config_, "-extensions",
                extensions});
  }

  std::string Path(const std::string& name, const std::string& ext) const {
    return absl::StrCat(dir_, "/", name, ".", ext);
  }

 private:
  absl::Status Run(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    if (RunCommand(args, log_) != 0) {
      return absl::InternalError(
          absl::StrCat("openssl ", args[1], " failed; see ", log_));
    }
    return absl::OkStatus();
  }

  std::string dir_;
  std::string config_;
  std::string log_;
  int serial_ = 1000;
};

}  // namespace

absl::StatusOr<TestCerts> TestCerts::Create(const std::string& dir) {
  OpenSsl ssl(dir);
  for (absl::Status s :
       {ssl.WriteConfig(), ssl.Ca("ca", "Parley Test CA"),
        ssl.Leaf("server", "ca", "localhost", "server"),
        ssl.Leaf("client", "ca", "parley-test-client", "client"),
        ssl.Ca("other_ca", "Unrelated Test CA"),
        ssl.Leaf("other", "other_ca", "localhost", "server")}) {
    if (!s.ok()) return s;
  }
  TestCerts c;
  c.ca = ssl.Path("ca", "pem");
  c.server_cert = ssl.Path("server", "pem");
  c.server_key = ssl.Path("server", "key");
  c.client_cert = ssl.Path("client", "pem");
  c.client_key = ssl.Path("client", "key");
  c.other_ca = ssl.Path("other_ca", "pem");
  c.other_cert = ssl.Path("other", "pem");
  c.other_key = ssl.Path("other", "key");
  return c;
}

}  // namespace parley::testing
