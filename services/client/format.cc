#include "services/client/format.h"

#include <time.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace parley::client {

namespace v1 = ::parley::v1;

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  const time_t t = static_cast<time_t>(ts.seconds());
  struct tm tm;
  if (localtime_r(&t, &tm) == nullptr) return absl::StrCat("@", ts.seconds());
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string EscapeForLine(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      // C1 control characters (U+0080..U+009F) can also drive terminals.
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x",
                    static_cast<unsigned char>(text[i + 1]));
      out += buf;
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string ChatTypeName(v1::ChatType type) {
  switch (type) {
    case v1::CHAT_TYPE_DIRECT:
      return "direct";
    case v1::CHAT_TYPE_GROUP:
      return "group";
    default:
      return "unknown";
  }
}

EventFormatter::EventFormatter(std::string self_user_id)
    : self_(std::move(self_user_id)) {}

std::string EventFormatter::UserLabel(const std::string& user_id) const {
  if (!self_.empty() && user_id == self_) return "you";
  return user_id.empty() ? "?" : user_id;
}

void EventFormatter::RememberChat(const v1::Chat& chat) {
  members_[chat.chat_id()] = std::set<std::string>(
      chat.member_user_ids().begin(), chat.member_user_ids().end());
}

std::string EventFormatter::MessageBody(const v1::Message& m) const {
  if (m.deleted()) return "(deleted)";
  std::string body;
  if (!m.reply_to_message_id().empty()) {
    absl::StrAppend(&body, "(reply to ", m.reply_to_message_id(), ") ");
  }
  absl::StrAppend(&body, EscapeForLine(m.text()));
  if (m.has_file() && !m.file().file_id().empty()) {
    if (!m.text().empty()) body += " ";
    absl::StrAppend(&body, "[file ", EscapeForLine(m.file().name()), ", ",
                    m.file().size_bytes(), " bytes, id ", m.file().file_id(),
                    "]");
  }
  if (m.has_edit_time()) body += " (edited)";
  if (m.reactions_size() > 0) {
    std::vector<std::string> parts;
    for (const v1::Reaction& r : m.reactions()) {
      parts.push_back(absl::StrCat(EscapeForLine(r.emoji()), " ", r.count()));
    }
    absl::StrAppend(&body, " [", absl::StrJoin(parts, ", "), "]");
  }
  return body;
}

std::string EventFormatter::FormatChatEvent(const v1::ChatEvent& e) {
  std::string line = absl::StrCat("[chat ", e.chat_id(), " #", e.seq(), "] ");
  switch (e.event_case()) {
    case v1::ChatEvent::kMessageCreated: {
      const v1::Message& m = e.message_created();
      absl::StrAppend(&line, UserLabel(m.sender_user_id()), ": ",
                      MessageBody(m));
      break;
    }
    case v1::ChatEvent::kMessageEdited: {
      const v1::Message& m = e.message_edited();
      absl::StrAppend(&line, UserLabel(m.sender_user_id()), " edited message ",
                      m.message_id(), " (#", m.seq(), "): ", MessageBody(m));
      break;
    }
    case v1::ChatEvent::kMessageDeleted: {
      const v1::Message& m = e.message_deleted();
      absl::StrAppend(&line, "message ", m.message_id(), " (#", m.seq(),
                      ") by ", UserLabel(m.sender_user_id()), " was deleted");
      break;
    }
    case v1::ChatEvent::kReactionChanged: {
      const v1::Message& m = e.reaction_changed();
      std::vector<std::string> parts;
      for (const v1::Reaction& r : m.reactions()) {
        parts.push_back(absl::StrCat(EscapeForLine(r.emoji()), " ", r.count()));
      }
      absl::StrAppend(
          &line, "reactions on message ", m.message_id(), " (#", m.seq(),
          "): ", parts.empty() ? "none" : absl::StrJoin(parts, ", "));
      break;
    }
    case v1::ChatEvent::kMembersChanged: {
      const v1::Chat& c = e.members_changed();
      std::set<std::string> now(c.member_user_ids().begin(),
                                c.member_user_ids().end());
      auto it = members_.find(c.chat_id().empty() ? e.chat_id() : c.chat_id());
      std::vector<std::string> changes;
      if (it != members_.end()) {
        for (const std::string& id : now) {
          if (!it->second.count(id)) {
            changes.push_back(absl::StrCat(UserLabel(id), " joined"));
          }
        }
        for (const std::string& id : it->second) {
          if (!now.count(id)) {
            changes.push_back(absl::StrCat(UserLabel(id), " left"));
          }
        }
      }
      std::vector<std::string> labels;
      for (const std::string& id : now) labels.push_back(UserLabel(id));
      if (!changes.empty()) {
        absl::StrAppend(&line, absl::StrJoin(changes, ", "), "; ");
      }
      absl::StrAppend(&line, "members (", now.size(),
                      "): ", absl::StrJoin(labels, ", "));
      members_[c.chat_id().empty() ? e.chat_id() : c.chat_id()] =
          std::move(now);
      break;
    }
    default:
      absl::StrAppend(&line, "(event of a kind this client does not know)");
      break;
  }
  return line;
}

std::string EventFormatter::FormatServerFrame(const v1::ServerFrame& f) {
  switch (f.frame_case()) {
    case v1::ServerFrame::kChatEvent:
      return FormatChatEvent(f.chat_event());
    case v1::ServerFrame::kTyping: {
      const v1::TypingEvent& t = f.typing();
      return absl::StrCat("[chat ", t.chat_id(), "] ", UserLabel(t.user_id()),
                          t.typing() ? " is typing..." : " stopped typing");
    }
    case v1::ServerFrame::kPresence: {
      const v1::Presence& p = f.presence();
      std::string line =
          absl::StrCat("[presence] ", UserLabel(p.user_id()), " is ",
                       p.online() ? "online" : "offline");
      if (!p.online() && p.has_last_seen_time()) {
        absl::StrAppend(&line, " (last seen ",
                        FormatTimestamp(p.last_seen_time()), ")");
      }
      return line;
    }
    case v1::ServerFrame::kReceipt: {
      const v1::ReceiptEvent& r = f.receipt();
      return absl::StrCat("[chat ", r.chat_id(), "] ", UserLabel(r.user_id()),
                          " received up to #", r.delivered_seq(),
                          ", read up to #", r.read_seq());
    }
    case v1::ServerFrame::kPong:
    default:
      return "";
  }
}

std::string EventFormatter::FormatHistoryLine(const v1::Message& m) const {
  return absl::StrCat("#", m.seq(), "  ", FormatTimestamp(m.create_time()),
                      "  ", UserLabel(m.sender_user_id()), ": ", MessageBody(m),
                      "  (id ", m.message_id(), ")");
}

std::string EventFormatter::TitleOrPeer(const v1::Chat& chat) const {
  if (chat.type() == v1::CHAT_TYPE_GROUP) return EscapeForLine(chat.title());
  std::vector<std::string> others;
  for (const std::string& id : chat.member_user_ids()) {
    if (self_.empty() || id != self_) others.push_back(id);
  }
  if (others.empty()) return "with you";
  return absl::StrCat("with ", absl::StrJoin(others, ", "));
}

std::string EventFormatter::DescribeChat(const v1::Chat& chat) const {
  if (chat.type() == v1::CHAT_TYPE_GROUP) {
    return absl::StrCat("chat ", chat.chat_id(), ": group \"",
                        EscapeForLine(chat.title()), "\", ",
                        chat.member_user_ids_size(), " members");
  }
  return absl::StrCat("chat ", chat.chat_id(), ": ", ChatTypeName(chat.type()),
                      " ", TitleOrPeer(chat));
}

std::string EventFormatter::FormatChatsTable(
    const std::vector<v1::Chat>& chats) const {
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"CHAT", "TYPE", "TITLE/PEER", "MEMBERS", "LAST_SEQ", "UNREAD"});
  for (const v1::Chat& c : chats) {
    rows.push_back({c.chat_id(), ChatTypeName(c.type()), TitleOrPeer(c),
                    absl::StrCat(c.member_user_ids_size()),
                    absl::StrCat(c.last_seq()),
                    absl::StrCat(c.unread_count())});
  }
  // Width in code points, so that UTF-8 titles line up.
  auto width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xc0) != 0x80;
    return n;
  };
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], width(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const bool numeric = i >= 3;  // right-align the counters
      const std::string pad(widths[i] - width(row[i]), ' ');
      if (i > 0) line += "  ";
      line += numeric ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : "");
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace parley::client
