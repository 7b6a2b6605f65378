// Human-readable rendering of chats, messages and stream frames.
//
//   EventFormatter f(/*self_user_id=*/"17");
//   f.RememberChat(chat);                 // member baseline for diffs
//   std::cout << f.FormatServerFrame(frame) << "\n";
//   // [chat 12 #5] 42: hello
#ifndef PARLEY_SERVICES_CLIENT_FORMAT_H_
#define PARLEY_SERVICES_CLIENT_FORMAT_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"
#include "parley/v1/parley.pb.h"

namespace parley::client {

// Local time "2024-05-01 12:00:03"; "-" when unset.
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);

// Makes text safe for one terminal line: control characters (newlines,
// escape sequences) become visible escapes like \n and \x1b.
std::string EscapeForLine(absl::string_view text);

// "direct", "group".
std::string ChatTypeName(parley::v1::ChatType type);

class EventFormatter {
 public:
  explicit EventFormatter(std::string self_user_id = "");

  // How a user is shown: "you" for the caller, else the id.
  std::string UserLabel(const std::string& user_id) const;

  // Records a chat's members so later membership events show a diff.
  void RememberChat(const parley::v1::Chat& chat);

  // "[chat 12 #5] 42: hello"; also updates the member baseline.
  std::string FormatChatEvent(const parley::v1::ChatEvent& event);

  // One line per frame; empty for frames not worth showing (pongs).
  std::string FormatServerFrame(const parley::v1::ServerFrame& frame);

  // "#5  2024-05-01 12:00:03  42: hello" for `parley history`.
  std::string FormatHistoryLine(const parley::v1::Message& message) const;

  // "chat 12: group \"team\", 3 members" / "chat 9: direct with 42".
  std::string DescribeChat(const parley::v1::Chat& chat) const;

  // Aligned table: CHAT TYPE TITLE/PEER MEMBERS LAST_SEQ UNREAD.
  std::string FormatChatsTable(
      const std::vector<parley::v1::Chat>& chats) const;

 private:
  // Text, file, reply and edit markers of a message.
  std::string MessageBody(const parley::v1::Message& message) const;
  std::string TitleOrPeer(const parley::v1::Chat& chat) const;

  std::string self_;
  std::map<std::string, std::set<std::string>> members_;
};

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_FORMAT_H_
