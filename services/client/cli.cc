#include "services/client/cli.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/client/chat_client.h"
#include "services/client/client_status.h"
#include "services/client/format.h"
#include "services/client/health_check.h"
#include "services/client/session.h"
#include "services/client/watch.h"

namespace parley::client {
namespace {

// Options every command accepts (besides --help).
const char* const kGlobalOptions[] = {
    "gateway",       "token",         "session",      "timeout",
    "tls_ca_file",   "tls_cert_file", "tls_key_file", "tls_server_name"};

struct Env;
using CommandFn = int (*)(Env&);

struct CommandSpec {
  const char* name;
  const char* synopsis;  // arguments and options after the name
  const char* summary;
  int min_args;
  int max_args;  // -1: unbounded
  std::vector<std::string> options;
  bool needs_token;
  CommandFn run;
};

const std::vector<CommandSpec>& Commands();

const CommandSpec* FindCommand(const std::string& name) {
  for (const CommandSpec& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

bool IsKnownOption(const std::string& name) {
  for (const char* g : kGlobalOptions) {
    if (name == g) return true;
  }
  for (const CommandSpec& c : Commands()) {
    if (std::find(c.options.begin(), c.options.end(), name) != c.options.end())
      return true;
  }
  return false;
}

bool IsAllowedOption(const CommandSpec& spec, const std::string& name) {
  for (const char* g : kGlobalOptions) {
    if (name == g) return true;
  }
  return std::find(spec.options.begin(), spec.options.end(), name) !=
         spec.options.end();
}

const char* Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// Everything a command needs, resolved from flags, environment and session.
struct Env {
  CliIo io;
  ParsedArgs args;
  std::string session_path;
  bool has_session = false;
  Session session;
  std::string gateway;
  std::string token;
  std::string token_source;  // "--token", "PARLEY_TOKEN" or the session path
  std::string self_user_id;  // empty when the token is not the session's
  std::string self_username;
  std::chrono::milliseconds timeout = ChatClient::kDefaultTimeout;
  std::string tls_ca_file;  // empty: plaintext
  TlsCredentials tls;
  std::unique_ptr<ChatClient> client;

  std::ostream& out() { return *io.out; }
  std::ostream& err() { return *io.err; }
  const std::string* option(const std::string& name) const {
    auto it = args.options.find(name);
    return it == args.options.end() ? nullptr : &it->second;
  }
  // Prints "error: CODE: message" and returns the exit code.
  int Fail(const absl::Status& s) {
    err() << FormatError(s) << std::endl;
    return s.code() == absl::StatusCode::kInvalidArgument && !called_server
               ? kExitUsage
               : kExitError;
  }
  bool called_server = false;
  ChatClient& Client() {
    called_server = true;
    return *client;
  }
};

// ---------------------------------------------------------------- passwords

struct termios g_saved_termios;
volatile sig_atomic_t g_echo_off = 0;

void RestoreEchoAndExit(int sig) {
  if (g_echo_off) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  _exit(128 + sig);
}

// Reads one line from the terminal with echo off.
bool ReadHiddenLine(const std::string& prompt, std::ostream& err,
                    std::string* line) {
  err << prompt << std::flush;
  struct termios t;
  const bool have_tty = tcgetattr(STDIN_FILENO, &t) == 0;
  struct sigaction old_int, old_term, sa = {};
  if (have_tty) {
    g_saved_termios = t;
    sa.sa_handler = RestoreEchoAndExit;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    t.c_lflag |= ECHONL;
    g_echo_off = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
  }
  const bool ok = static_cast<bool>(std::getline(std::cin, *line));
  if (have_tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    g_echo_off = 0;
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
  return ok;
}

// --password, then $PARLEY_PASSWORD, then a no-echo prompt on a terminal,
// else one line of stdin.
absl::StatusOr<std::string> GetPassword(Env& env, bool confirm) {
  if (const std::string* p = env.option("password")) return *p;
  if (const char* p = Getenv("PARLEY_PASSWORD")) return std::string(p);
  std::string password;
  if (env.io.in == &std::cin && isatty(STDIN_FILENO)) {
    if (!ReadHiddenLine("Password: ", env.err(), &password)) {
      return absl::InvalidArgumentError("no password given");
    }
    if (confirm) {
      std::string again;
      if (!ReadHiddenLine("Repeat password: ", env.err(), &again) ||
          again != password) {
        return absl::InvalidArgumentError("the passwords do not match");
      }
    }
  } else if (!std::getline(*env.io.in, password)) {
    return absl::InvalidArgumentError(
        "no password: pass --password, set PARLEY_PASSWORD, or type it on a "
        "terminal");
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

// ---------------------------------------------------------------- commands

absl::Status SaveSignIn(Env& env, const v1::User& user,
                        const std::string& token) {
  Session s;
  s.gateway = env.gateway;
  s.user_id = user.user_id();
  s.username = user.username();
  s.access_token = token;
  s.tls_ca_file = env.tls_ca_file;
  return SaveSession(env.session_path, s);
}

int CmdRegister(Env& env) {
  const std::string& username = env.args.positionals[0];
  const std::string* display = env.option("display-name");
  absl::StatusOr<std::string> password = GetPassword(env, /*confirm=*/true);
  if (!password.ok()) return env.Fail(password.status());
  absl::StatusOr<v1::RegisterResponse> resp = env.Client().Register(
      username, *password, display != nullptr ? *display : "");
  if (!resp.ok()) return env.Fail(resp.status());
  if (absl::Status s = SaveSignIn(env, resp->user(), resp->access_token());
      !s.ok()) {
    return env.Fail(s);
  }
  env.out() << resp->user().user_id() << std::endl;
  env.err() << "registered " << resp->user().username() << " (user "
            << resp->user().user_id() << "); session saved to "
            << env.session_path << std::endl;
  return kExitOk;
}

int CmdLogin(Env& env) {
  absl::StatusOr<std::string> password = GetPassword(env, /*confirm=*/false);
  if (!password.ok()) return env.Fail(password.status());
  absl::StatusOr<v1::LoginResponse> resp =
      env.Client().Login(env.args.positionals[0], *password);
  if (!resp.ok()) return env.Fail(resp.status());
  if (absl::Status s = SaveSignIn(env, resp->user(), resp->access_token());
      !s.ok()) {
    return env.Fail(s);
  }
  env.out() << resp->user().user_id() << std::endl;
  env.err() << "logged in as " << resp->user().username() << " (user "
            << resp->user().user_id() << "); session saved to "
            << env.session_path << std::endl;
  return kExitOk;
}

int CmdLogout(Env& env) {
  if (absl::Status s = DeleteSession(env.session_path); !s.ok()) {
    return env.Fail(s);
  }
  env.err() << "signed out (removed " << env.session_path << ")" << std::endl;
  return kExitOk;
}

int CmdWhoami(Env& env) {
  // A cheap authenticated call proves the token is still accepted.
  absl::StatusOr<v1::ListChatsResponse> probe = env.Client().ListChats(1, "");
  if (!probe.ok()) return env.Fail(probe.status());
  if (!env.self_user_id.empty()) {
    env.out() << env.self_username << " (user " << env.self_user_id << ")\n";
  } else {
    env.out() << "unknown user (token from " << env.token_source << ")\n";
  }
  env.out() << "gateway: " << env.gateway << std::endl;
  return kExitOk;
}

int CmdChats(Env& env) {
  absl::StatusOr<std::vector<v1::Chat>> chats = env.Client().ListAllChats();
  if (!chats.ok()) return env.Fail(chats.status());
  EventFormatter f(env.self_user_id);
  env.out() << f.FormatChatsTable(*chats) << std::flush;
  return kExitOk;
}

int PrintNewChat(Env& env, const absl::StatusOr<v1::Chat>& chat) {
  if (!chat.ok()) return env.Fail(chat.status());
  env.out() << chat->chat_id() << std::endl;
  env.err() << EventFormatter(env.self_user_id).DescribeChat(*chat)
            << std::endl;
  return kExitOk;
}

int PrintChat(Env& env, const absl::StatusOr<v1::Chat>& chat) {
  if (!chat.ok()) return env.Fail(chat.status());
  env.out() << EventFormatter(env.self_user_id).DescribeChat(*chat)
            << std::endl;
  return kExitOk;
}

int CmdDirect(Env& env) {
  return PrintNewChat(env,
                      env.Client().CreateDirectChat(env.args.positionals[0]));
}

int CmdGroup(Env& env) {
  const std::vector<std::string> members(env.args.positionals.begin() + 1,
                                         env.args.positionals.end());
  return PrintNewChat(
      env, env.Client().CreateGroupChat(env.args.positionals[0], members));
}

int CmdAdd(Env& env) {
  const std::vector<std::string> users(env.args.positionals.begin() + 1,
                                       env.args.positionals.end());
  return PrintChat(env,
                   env.Client().AddMembers(env.args.positionals[0], users));
}

int CmdRemove(Env& env) {
  return PrintChat(env, env.Client().RemoveMember(env.args.positionals[0],
                                                  env.args.positionals[1]));
}

int CmdLeave(Env& env) {
  if (env.self_user_id.empty()) {
    return env.Fail(absl::FailedPreconditionError(
        "leave needs your user id, which is only known from a session: run "
        "'parley login USERNAME' first"));
  }
  absl::StatusOr<v1::Chat> chat =
      env.Client().RemoveMember(env.args.positionals[0], env.self_user_id);
  if (!chat.ok()) return env.Fail(chat.status());
  env.out() << "left chat " << env.args.positionals[0] << std::endl;
  return kExitOk;
}

int CmdSend(Env& env) {
  const std::vector<std::string> words(env.args.positionals.begin() + 1,
                                       env.args.positionals.end());
  std::string text = absl::StrJoin(words, " ");
  if (words.empty() || (words.size() == 1 && words[0] == "-")) {
    if (env.io.in == &std::cin && isatty(STDIN_FILENO)) {
      env.err() << "type the message; end it with Ctrl-D" << std::endl;
    }
    std::stringstream buf;
    buf << env.io.in->rdbuf();
    text = buf.str();
    if (!text.empty() && text.back() == '\n') text.pop_back();
  }
  if (text.empty()) {
    return env.Fail(absl::InvalidArgumentError("text: must not be empty"));
  }
  v1::SendMessageRequest req;
  req.set_chat_id(env.args.positionals[0]);
  req.set_client_message_id(NewClientMessageId());
  req.set_text(text);
  if (const std::string* r = env.option("reply-to")) {
    req.set_reply_to_message_id(*r);
  }
  absl::StatusOr<v1::Message> msg = env.Client().SendMessage(req);
  if (!msg.ok()) return env.Fail(msg.status());
  env.out() << msg->message_id() << std::endl;
  env.err() << "sent to chat " << msg->chat_id() << " as #" << msg->seq()
            << std::endl;
  return kExitOk;
}

absl::StatusOr<int64_t> NumberOption(Env& env, const std::string& name,
                                     int64_t default_value, int64_t min_value) {
  const std::string* v = env.option(name);
  if (v == nullptr) return default_value;
  int64_t n;
  if (!absl::SimpleAtoi(*v, &n) || n < min_value) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": expected a whole number of at least ",
                     min_value, ", got '", *v, "'"));
  }
  return n;
}

int CmdHistory(Env& env) {
  absl::StatusOr<int64_t> limit = NumberOption(env, "limit", 20, 1);
  if (!limit.ok()) return env.Fail(limit.status());
  const std::string& chat_id = env.args.positionals[0];
  std::vector<v1::Message> messages;  // newest first
  uint64_t before = 0;
  while (static_cast<int64_t>(messages.size()) < *limit) {
    const int64_t want =
        std::min<int64_t>(500, *limit - static_cast<int64_t>(messages.size()));
    absl::StatusOr<v1::ListMessagesResponse> page =
        env.Client().ListMessages(chat_id, before, static_cast<int32_t>(want));
    if (!page.ok()) return env.Fail(page.status());
    for (v1::Message& m : *page->mutable_messages()) {
      if (static_cast<int64_t>(messages.size()) >= *limit) break;
      messages.push_back(std::move(m));
    }
    if (page->next_before_seq() == 0 || page->messages_size() == 0 ||
        (before != 0 && page->next_before_seq() >= before)) {
      break;
    }
    before = page->next_before_seq();
  }
  EventFormatter f(env.self_user_id);
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    env.out() << f.FormatHistoryLine(*it) << "\n";
  }
  env.out() << std::flush;
  if (messages.empty()) env.err() << "no messages" << std::endl;
  return kExitOk;
}

int CmdSync(Env& env) {
  absl::StatusOr<int64_t> after = NumberOption(env, "after", 0, 0);
  if (!after.ok()) return env.Fail(after.status());
  const std::string& chat_id = env.args.positionals[0];
  EventFormatter f(env.self_user_id);
  uint64_t seen = static_cast<uint64_t>(*after);
  size_t count = 0;
  while (true) {
    absl::StatusOr<v1::SyncChatResponse> page =
        env.Client().SyncChat(chat_id, seen, 500);
    if (!page.ok()) return env.Fail(page.status());
    const uint64_t before = seen;
    for (const v1::ChatEvent& e : page->events()) {
      if (e.seq() <= seen) continue;
      env.out() << f.FormatChatEvent(e) << "\n";
      seen = e.seq();
      ++count;
    }
    if (!page->has_more() || seen == before) break;
  }
  env.out() << std::flush;
  env.err() << count << " event(s); chat " << chat_id << " is at #" << seen
            << std::endl;
  return kExitOk;
}

volatile sig_atomic_t g_stop_requested = 0;
void RequestStop(int) { g_stop_requested = 1; }

int CmdWatch(Env& env) {
  struct sigaction sa = {}, old_int, old_term;
  sa.sa_handler = RequestStop;
  sigemptyset(&sa.sa_mask);
  g_stop_requested = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  WatchOptions options;
  options.should_stop = [] { return g_stop_requested != 0; };
  env.called_server = true;
  Watcher watcher(env.client.get(), env.self_user_id, env.io.out, env.io.err,
                  options);
  env.err() << "watching as "
            << (env.self_user_id.empty()
                    ? std::string("unknown user")
                    : absl::StrCat(env.self_username, " (user ",
                                   env.self_user_id, ")"))
            << " on " << env.gateway << "; Ctrl-C to stop" << std::endl;
  const absl::Status s = watcher.Run();

  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!s.ok()) return env.Fail(s);
  env.err() << "watch: stopped" << std::endl;
  return kExitOk;
}

int CmdHealth(Env& env) {
  const std::string* service = env.option("service");
  // Scripts rely on a short answer: 2 s unless --timeout says otherwise.
  const std::chrono::milliseconds timeout =
      env.option("timeout") != nullptr ? env.timeout
                                       : std::chrono::milliseconds(2000);
  env.called_server = true;
  absl::StatusOr<HealthStatus> status =
      CheckHealth(env.args.positionals[0], service != nullptr ? *service : "",
                  timeout, env.tls);
  if (!status.ok()) return env.Fail(status.status());
  env.out() << HealthStatusName(*status) << std::endl;
  return *status == HealthStatus::kServing ? kExitOk : kExitError;
}

int CmdHelp(Env& env) {
  if (env.args.positionals.empty()) {
    env.out() << HelpText();
    return kExitOk;
  }
  if (FindCommand(env.args.positionals[0]) == nullptr) {
    return env.Fail(absl::InvalidArgumentError(
        absl::StrCat("unknown command '", env.args.positionals[0], "'")));
  }
  env.out() << CommandUsage(env.args.positionals[0]);
  return kExitOk;
}

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {"register",
       "USERNAME [--display-name NAME] [--password PASSWORD]",
       "create an account, sign in and save the session",
       1,
       1,
       {"display-name", "password"},
       false,
       CmdRegister},
      {"login",
       "USERNAME [--password PASSWORD]",
       "sign in and save the session",
       1,
       1,
       {"password"},
       false,
       CmdLogin},
      {"logout", "", "forget the saved session", 0, 0, {}, false, CmdLogout},
      {"whoami",
       "",
       "show who the session or token signs in as",
       0,
       0,
       {},
       true,
       CmdWhoami},
      {"chats", "", "list your chats", 0, 0, {}, true, CmdChats},
      {"direct",
       "USER_ID",
       "open the direct chat with a user (print its id)",
       1,
       1,
       {},
       true,
       CmdDirect},
      {"group",
       "TITLE [USER_ID...]",
       "create a group chat (print its id)",
       1,
       -1,
       {},
       true,
       CmdGroup},
      {"add",
       "CHAT_ID USER_ID...",
       "add members to a group chat",
       2,
       -1,
       {},
       true,
       CmdAdd},
      {"remove",
       "CHAT_ID USER_ID",
       "remove a member from a group chat",
       2,
       2,
       {},
       true,
       CmdRemove},
      {"leave", "CHAT_ID", "leave a group chat", 1, 1, {}, true, CmdLeave},
      {"send",
       "CHAT_ID TEXT... [--reply-to MESSAGE_ID]",
       "send a message (TEXT '-' or none: read stdin; print its id)",
       1,
       -1,
       {"reply-to"},
       true,
       CmdSend},
      {"history",
       "CHAT_ID [--limit N]",
       "show the latest N messages, oldest first (default 20)",
       1,
       1,
       {"limit"},
       true,
       CmdHistory},
      {"sync",
       "CHAT_ID [--after SEQ]",
       "replay a chat's events after SEQ",
       1,
       1,
       {"after"},
       true,
       CmdSync},
      {"watch",
       "",
       "print live events until Ctrl-C, reconnecting as needed",
       0,
       0,
       {},
       true,
       CmdWatch},
      {"health",
       "HOST:PORT [--service NAME]",
       "gRPC health check of any Parley server; exit 0 iff SERVING",
       1,
       1,
       {"service"},
       false,
       CmdHealth},
      {"help", "[COMMAND]", "show help", 0, 1, {}, false, CmdHelp},
  };
  return *commands;
}

// Reads the TLS files: the CA from --tls_ca_file, else PARLEY_TLS_CA_FILE,
// else `fallback_ca`; a client certificate only from the flags.
absl::Status LoadTls(Env& env, const std::string& fallback_ca) {
  TlsFiles files;
  if (const std::string* ca = env.option("tls_ca_file")) {
    files.ca = *ca;
  } else if (const char* ca = Getenv("PARLEY_TLS_CA_FILE")) {
    files.ca = ca;
  } else {
    files.ca = fallback_ca;
  }
  if (const std::string* v = env.option("tls_cert_file")) files.cert = *v;
  if (const std::string* v = env.option("tls_key_file")) files.key = *v;
  if (const std::string* v = env.option("tls_server_name")) {
    files.server_name = *v;
  }
  absl::StatusOr<TlsCredentials> tls =
      TlsCredentials::Load(files, TlsRole::kClient);
  if (!tls.ok()) return tls.status();
  env.tls = *std::move(tls);
  // Kept in the session as an absolute path, so it works from anywhere.
  env.tls_ca_file = files.ca;
  if (!files.ca.empty()) {
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(files.ca, ec);
    if (!ec) env.tls_ca_file = abs.string();
  }
  return absl::OkStatus();
}

// Resolves gateway, session and token; creates the client.
absl::Status Prepare(Env& env, const CommandSpec& spec) {
  if (const std::string* t = env.option("timeout")) {
    double seconds;
    if (!absl::SimpleAtod(*t, &seconds) || !(seconds > 0) || seconds > 86400) {
      return absl::InvalidArgumentError(
          absl::StrCat("--timeout: expected seconds > 0, got '", *t, "'"));
    }
    env.timeout = std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(seconds * 1000)));
  }
  if (spec.run == CmdHelp) return absl::OkStatus();
  if (spec.run == CmdHealth) return LoadTls(env, "");

  if (const std::string* p = env.option("session")) {
    env.session_path = *p;
  } else {
    env.session_path = DefaultSessionPath();
  }
  const bool signs_in = spec.run == CmdRegister || spec.run == CmdLogin;
  if (!signs_in && spec.run != CmdLogout) {
    absl::StatusOr<Session> s = LoadSession(env.session_path);
    if (s.ok()) {
      env.has_session = true;
      env.session = *s;
    } else if (!absl::IsNotFound(s.status())) {
      env.err() << "warning: " << s.status().message() << std::endl;
    }
  }

  std::string session_ca;  // the session's CA goes with its gateway
  if (const std::string* g = env.option("gateway")) {
    env.gateway = *g;
  } else if (const char* g = Getenv("PARLEY_GATEWAY")) {
    env.gateway = g;
  } else if (env.has_session && !env.session.gateway.empty()) {
    env.gateway = env.session.gateway;
    session_ca = env.session.tls_ca_file;
  } else {
    env.gateway = kDefaultGateway;
  }
  if (absl::Status s = LoadTls(env, session_ca); !s.ok()) return s;

  if (const std::string* t = env.option("token")) {
    env.token = *t;
    env.token_source = "--token";
  } else if (const char* t = Getenv("PARLEY_TOKEN")) {
    env.token = t;
    env.token_source = "PARLEY_TOKEN";
  } else if (env.has_session) {
    env.token = env.session.access_token;
    env.token_source = env.session_path;
  }
  if (env.has_session && !env.token.empty() &&
      env.token == env.session.access_token) {
    env.self_user_id = env.session.user_id;
    env.self_username = env.session.username;
  }
  if (spec.needs_token && env.token.empty()) {
    return absl::UnauthenticatedError(
        "not signed in: run 'parley login USERNAME' (or 'parley register "
        "USERNAME'), or pass --token / set PARLEY_TOKEN");
  }
  if (spec.run != CmdLogout) {
    env.client =
        ChatClient::Create(env.gateway, env.token, env.timeout, env.tls);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  std::vector<std::string> words;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positional) {
      words.push_back(a);
    } else if (a == "--") {
      only_positional = true;
    } else if (a == "-h" || a == "--help") {
      parsed.help = true;
    } else if (absl::StartsWith(a, "--") && a.size() > 2) {
      std::string name = a.substr(2);
      std::string value;
      const size_t eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (!IsKnownOption(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option --", name));
      }
      if (!inline_value) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("option --", name, " needs a value"));
        }
        value = args[++i];
      }
      parsed.options[name] = value;
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) {
    if (parsed.help) return parsed;
    return absl::InvalidArgumentError("no command given (see 'parley --help')");
  }
  parsed.command = words[0];
  parsed.positionals.assign(words.begin() + 1, words.end());
  const CommandSpec* spec = FindCommand(parsed.command);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command '", parsed.command, "' (see 'parley --help')"));
  }
  if (parsed.help) return parsed;
  for (const auto& [name, value] : parsed.options) {
    if (!IsAllowedOption(*spec, name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", spec->name, "' does not take --", name,
                       "; usage: parley ", spec->name, " ", spec->synopsis));
    }
  }
  const int n = static_cast<int>(parsed.positionals.size());
  if (n < spec->min_args || (spec->max_args >= 0 && n > spec->max_args)) {
    return absl::InvalidArgumentError(absl::StrCat("usage: parley ", spec->name,
                                                   *spec->synopsis ? " " : "",
                                                   spec->synopsis));
  }
  return parsed;
}

std::string HelpText() {
  std::string text =
      "parley: command-line client of the Parley chat service\n"
      "\n"
      "Usage: parley COMMAND [ARGUMENTS...] [OPTIONS...]\n"
      "\n"
      "Commands:\n";
  for (const CommandSpec& c : Commands()) {
    std::string head =
        absl::StrCat("  ", c.name, *c.synopsis ? " " : "", c.synopsis);
    absl::StrAppend(&text, head, "\n      ", c.summary, "\n");
  }
  absl::StrAppend(
      &text,
      "\n"
      "Options (any command):\n"
      "  --gateway HOST:PORT  gateway address (env PARLEY_GATEWAY; else the\n"
      "                       session's; else ",
      kDefaultGateway,
      ")\n"
      "  --token TOKEN        access token (env PARLEY_TOKEN; else the "
      "session's)\n"
      "  --session FILE       session file (env PARLEY_SESSION; default\n"
      "                       ~/.config/parley/session, mode 0600)\n"
      "  --timeout SECONDS    deadline of each call (default 10; health: 2)\n"
      "  --tls_ca_file FILE   use TLS, verifying the server's certificate\n"
      "                       against this PEM CA (env PARLEY_TLS_CA_FILE;\n"
      "                       else the session's); none: plaintext\n"
      "  --tls_cert_file FILE, --tls_key_file FILE\n"
      "                       PEM client certificate and key to present\n"
      "                       (health checks of internal mutual-TLS servers)\n"
      "  --tls_server_name NAME  name expected in the server's certificate\n"
      "                       instead of the host of the address\n"
      "  -h, --help           show help (also: parley COMMAND --help)\n"
      "\n"
      "Passwords come from --password, env PARLEY_PASSWORD, a no-echo prompt\n"
      "on a terminal, or else the first line of stdin.\n"
      "Errors print 'error: CODE: message'. Exit status: 0 success, 1 failed\n"
      "call (or health not SERVING), 2 bad command line.\n");
  return text;
}

std::string CommandUsage(const std::string& command) {
  const CommandSpec* c = FindCommand(command);
  if (c == nullptr) return HelpText();
  std::string text =
      absl::StrCat("Usage: parley ", c->name, *c->synopsis ? " " : "",
                   c->synopsis, "\n  ", c->summary, "\n");
  absl::StrAppend(&text,
                  "Options of every command: --gateway HOST:PORT, --token "
                  "TOKEN, --session FILE, --timeout SECONDS, --tls_ca_file "
                  "FILE, --tls_cert_file FILE, --tls_key_file FILE, "
                  "--tls_server_name NAME\n");
  return text;
}

int RunCli(const std::vector<std::string>& args, CliIo io) {
  if (args.empty()) {
    *io.err << HelpText();
    return kExitUsage;
  }
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args);
  if (!parsed.ok()) {
    *io.err << FormatError(parsed.status()) << std::endl;
    return kExitUsage;
  }
  if (parsed->help) {
    *io.out << (parsed->command.empty() ? HelpText()
                                        : CommandUsage(parsed->command));
    return kExitOk;
  }
  const CommandSpec* spec = FindCommand(parsed->command);
  Env env;
  env.io = io;
  env.args = std::move(*parsed);
  if (absl::Status s = Prepare(env, *spec); !s.ok()) {
    *io.err << FormatError(s) << std::endl;
    return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                          : kExitError;
  }
  return spec->run(env);
}

}  // namespace parley::client
