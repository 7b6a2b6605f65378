#include "common/validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parley {
namespace {

using ::testing::HasSubstr;

void ExpectInvalid(const absl::Status& s, const std::string& field) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(field + ":"));
}

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));            // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));            // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));        // 😀
  EXPECT_EQ(Utf8Length("h\xC3\xA9\xF0\x9F\x98\x80"), 3u);
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xC3"));                  // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));              // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));          // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));      // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("a\x80"));                 // stray continuation
}

TEST(ValidationTest, Username) {
  EXPECT_TRUE(ValidateUsername("alice").ok());
  EXPECT_TRUE(ValidateUsername("a.b-c_9").ok());
  EXPECT_TRUE(ValidateUsername(std::string(32, 'a')).ok());
  ExpectInvalid(ValidateUsername("ab"), "username");
  ExpectInvalid(ValidateUsername(std::string(33, 'a')), "username");
  ExpectInvalid(ValidateUsername("Alice"), "username");
  ExpectInvalid(ValidateUsername("al ice"), "username");
  ExpectInvalid(ValidateUsername("al\xC3\xA9"), "username");
}

TEST(ValidationTest, Password) {
  EXPECT_TRUE(ValidatePassword("12345678").ok());
  ExpectInvalid(ValidatePassword("1234567"), "password");
  ExpectInvalid(ValidatePassword(""), "password");
  ExpectInvalid(ValidatePassword(std::string(2000, 'x')), "password");
  ExpectInvalid(ValidatePassword("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"),
                "password");
}

TEST(ValidationTest, DisplayName) {
  EXPECT_EQ(*NormalizeDisplayName("", "alice"), "alice");
  EXPECT_EQ(*NormalizeDisplayName("Alice A.", "alice"), "Alice A.");
  std::string sixty_four_emoji;
  for (int i = 0; i < 64; ++i) sixty_four_emoji += "\xF0\x9F\x98\x80";
  EXPECT_TRUE(NormalizeDisplayName(sixty_four_emoji, "a").ok());
  ExpectInvalid(NormalizeDisplayName(sixty_four_emoji + "x", "a").status(),
                "display_name");
  ExpectInvalid(NormalizeDisplayName("a\nb", "a").status(), "display_name");
  ExpectInvalid(NormalizeDisplayName("a\xC2\x85" "b", "a").status(),
                "display_name");  // C1 control
  ExpectInvalid(NormalizeDisplayName("\xC3", "a").status(), "display_name");
}

TEST(ValidationTest, MessageText) {
  EXPECT_TRUE(ValidateMessageText("x").ok());
  EXPECT_TRUE(ValidateMessageText("line\nline\ttab").ok());
  EXPECT_TRUE(ValidateMessageText(std::string(kMaxTextBytes, 'a')).ok());
  ExpectInvalid(ValidateMessageText(""), "text");
  EXPECT_TRUE(ValidateMessageText("", /*required=*/false).ok());
  ExpectInvalid(ValidateMessageText(std::string(kMaxTextBytes + 1, 'a')),
                "text");
  // A configured limit replaces 16 KiB and is named in the error.
  EXPECT_TRUE(ValidateMessageText(std::string(100, 'a'), true, 100).ok());
  EXPECT_EQ(ValidateMessageText(std::string(101, 'a'), true, 100).message(),
            "text: must be at most 100 bytes");
  ExpectInvalid(ValidateMessageText(std::string("a\0b", 3)), "text");
  ExpectInvalid(ValidateMessageText("\xED\xA0\x80"), "text");
}

TEST(ValidationTest, ClientMessageId) {
  EXPECT_TRUE(ValidateClientMessageId("c-1").ok());
  EXPECT_TRUE(ValidateClientMessageId(std::string(64, 'z')).ok());
  ExpectInvalid(ValidateClientMessageId(""), "client_message_id");
  ExpectInvalid(ValidateClientMessageId(std::string(65, 'z')),
                "client_message_id");
  ExpectInvalid(ValidateClientMessageId("a\tb"), "client_message_id");
}

TEST(ValidationTest, GroupTitle) {
  EXPECT_TRUE(ValidateGroupTitle("Friends").ok());
  EXPECT_TRUE(ValidateGroupTitle(std::string(200, 't')).ok());
  ExpectInvalid(ValidateGroupTitle(""), "title");
  ExpectInvalid(ValidateGroupTitle(std::string(201, 't')), "title");
  ExpectInvalid(ValidateGroupTitle("a\x01"), "title");
}

TEST(ValidationTest, Emoji) {
  for (const char* ok : {
           "\xF0\x9F\x91\x8D",                      // 👍
           "\xE2\x9D\xA4\xEF\xB8\x8F",             // ❤️ (with VS16)
           "\xE2\x9D\xA4",                          // ❤ (bare)
           "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",  // 👍🏽 skin tone
           "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",  // 🇫🇷 flag
           "1\xEF\xB8\x8F\xE2\x83\xA3",           // 1️⃣ keycap
           // 👩‍💻 ZWJ sequence
           "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB",
       }) {
    EXPECT_TRUE(ValidateEmoji(ok).ok()) << ValidateEmoji(ok) << " " << ::testing::PrintToString(std::string(ok));
  }
  for (const char* bad : {
           "", "a", "1", "#", ":)", "\xF0\x9F\x91\x8D\xF0\x9F\x91\x8D",  // two
           "\xF0\x9F\x91\x8D ",                     // trailing space
           " \xF0\x9F\x91\x8D",
           "\xF0\x9F\x91",                          // truncated
           "\xC3\xA9",                               // é
           "\xE2\x80\x8D",                          // lone ZWJ
       }) {
    ExpectInvalid(ValidateEmoji(bad), "emoji");
  }
  ExpectInvalid(ValidateEmoji(std::string(33, 'a')), "emoji");
  ExpectInvalid(ValidateEmoji(std::string("\xF0\x9F\x91\x8D\0", 5)),
                "emoji");
}

TEST(ValidationTest, PageSize) {
  EXPECT_EQ(*NormalizePageSize(0), 50);
  EXPECT_EQ(*NormalizePageSize(1), 1);
  EXPECT_EQ(*NormalizePageSize(500), 500);
  EXPECT_EQ(*NormalizePageSize(501), 500);
  ExpectInvalid(NormalizePageSize(-1).status(), "page_size");
}

TEST(ValidationTest, Ids) {
  EXPECT_EQ(*ParseId("chat_id", "42"), 42);
  EXPECT_EQ(*ParseId("chat_id", "9223372036854775807"),
            int64_t{9223372036854775807});
  ExpectInvalid(ParseId("chat_id", "").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "0").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "-5").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "+5").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", " 5").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "12a").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "9223372036854775808").status(), "chat_id");
  ExpectInvalid(ParseId("chat_id", "99999999999999999999").status(), "chat_id");
  EXPECT_EQ(*ParseOptionalId("reply_to_message_id", ""), 0);
  ExpectInvalid(ParseOptionalId("reply_to_message_id", "x").status(),
                "reply_to_message_id");
  EXPECT_EQ(FormatId(1234567890123), "1234567890123");
}

}  // namespace
}  // namespace parley
