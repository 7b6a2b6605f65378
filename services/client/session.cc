#include "services/client/session.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace parley::client {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  const int err = errno;
  return absl::Status(err == ENOENT
                          ? absl::StatusCode::kNotFound
                          : (err == EACCES ? absl::StatusCode::kPermissionDenied
                                           : absl::StatusCode::kInternal),
                      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// mkdir -p with mode 0700 for the directories it creates.
absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  std::string partial;
  for (absl::string_view part : absl::StrSplit(dir, '/')) {
    partial += std::string(part);
    if (!part.empty() && mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError("cannot create directory", partial);
    }
    partial += "/";
  }
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string DefaultSessionPath() {
  if (const char* p = std::getenv("PARLEY_SESSION"); p != nullptr && *p) {
    return p;
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr && *home ? home : ".",
                      "/.config/parley/session");
}

std::string SerializeSession(const Session& session) {
  return absl::StrCat(
      "# Parley session: the access token below signs you in; keep it "
      "private.\n",
      "gateway=", session.gateway, "\n", "user_id=", session.user_id, "\n",
      "username=", session.username, "\n", "token=", session.access_token,
      "\n",
      session.tls_ca_file.empty()
          ? ""
          : absl::StrCat("tls_ca_file=", session.tls_ca_file, "\n"));
}

Session ParseSession(const std::string& text) {
  Session s;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    const absl::string_view key =
        absl::StripAsciiWhitespace(line.substr(0, eq));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (key == "gateway") {
      s.gateway = value;
    } else if (key == "user_id") {
      s.user_id = value;
    } else if (key == "username") {
      s.username = value;
    } else if (key == "token") {
      s.access_token = value;
    } else if (key == "tls_ca_file") {
      s.tls_ca_file = value;
    }
  }
  return s;
}

absl::StatusOr<Session> LoadSession(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoError("cannot read session", path);
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseSession(buf.str());
}

absl::Status SaveSession(const std::string& path, const Session& session) {
  if (absl::Status s = MakeDirs(DirName(path)); !s.ok()) return s;
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(
      tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot write session", tmp);
  // The umask may only narrow the mode; make it exactly 0600 regardless.
  fchmod(fd, 0600);
  const std::string text = SerializeSession(session);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = ErrnoError("cannot write session", tmp);
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    absl::Status s = ErrnoError("cannot write session", tmp);
    unlink(tmp.c_str());
    return s;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = ErrnoError("cannot write session", path);
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::Status DeleteSession(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("cannot remove session", path);
  }
  return absl::OkStatus();
}

}  // namespace parley::client
