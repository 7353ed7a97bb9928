#include "common/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vptq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using nlohmann::json;

const std::regex kTimestamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");

std::vector<std::string> Keys(const std::string& line) {
  std::vector<std::string> keys;
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  return keys;
}

TEST(FormatLogLineTest, JsonLineHasTsLevelMsgThenFields) {
  const std::string line = FormatLogLine(
      "info", "linear quantized",
      {{"job", "j1"}, {"layer", 3}, {"seconds", 1.5}, {"ok", true}}, true);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const json j = json::parse(line);
  EXPECT_TRUE(std::regex_match(j.at("ts").get<std::string>(), kTimestamp))
      << j.at("ts");
  EXPECT_EQ(j.at("level"), "info");
  EXPECT_EQ(j.at("msg"), "linear quantized");
  EXPECT_EQ(j.at("job"), "j1");
  EXPECT_EQ(j.at("layer"), 3);
  EXPECT_DOUBLE_EQ(j.at("seconds").get<double>(), 1.5);
  EXPECT_EQ(j.at("ok"), true);
  // ts, level, msg lead so lines read well with grep and tail.
  const std::vector<std::string> keys = Keys(line);
  ASSERT_GE(keys.size(), 3u);
  EXPECT_THAT(std::vector<std::string>(keys.begin(), keys.begin() + 3),
              ElementsAre("ts", "level", "msg"));
}

TEST(FormatLogLineTest, NoFieldsGivesOnlyTheThreeKeys) {
  EXPECT_THAT(Keys(FormatLogLine("warn", "m", nullptr, true)),
              ElementsAre("ts", "level", "msg"));
}

TEST(FormatLogLineTest, HostileTextStaysOneValidJsonLine) {
  const std::string msg = "quote\" backslash\\ newline\n tab\t bad utf8 \xff\xfe";
  const std::string line =
      FormatLogLine("error", msg, {{"path", "a\nb\xc0"}}, true);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const json j = json::parse(line);  // throws (fails the test) if invalid
  EXPECT_THAT(j.at("msg").get<std::string>(), StartsWith("quote\" backslash\\ newline\n"));
  EXPECT_THAT(j.at("path").get<std::string>(), StartsWith("a\nb"));
}

TEST(FormatLogLineTest, FieldsCannotOverwriteTsLevelOrMsg) {
  const json j = json::parse(FormatLogLine(
      "info", "real message",
      {{"msg", "fake"}, {"level", "error"}, {"ts", "0"}, {"job", "j"}}, true));
  EXPECT_EQ(j.at("msg"), "real message");
  EXPECT_EQ(j.at("level"), "info");
  EXPECT_NE(j.at("ts"), "0");
  EXPECT_EQ(j.at("field.msg"), "fake");
  EXPECT_EQ(j.at("field.level"), "error");
  EXPECT_EQ(j.at("field.ts"), "0");
}

TEST(FormatLogLineTest, NonObjectFieldsAreKept) {
  const json j = json::parse(FormatLogLine("info", "m", json::array({1, 2}), true));
  EXPECT_EQ(j.at("fields"), json::array({1, 2}));
}

TEST(FormatLogLineTest, HumanFormat) {
  const std::string line =
      FormatLogLine("info", "hello", {{"job", "j1"}, {"layer", 3}}, false);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      line, m, std::regex(R"((\S+) info hello job=j1 layer=3)")))
      << line;
  EXPECT_TRUE(std::regex_match(m[1].str(), kTimestamp));
  EXPECT_THAT(FormatLogLine("info", "m", "x", false), HasSubstr(" fields=x"));
}

class LoggerTest : public ::testing::Test {
 protected:
  void TearDown() override { InitLogging({.level = "warn"}); }  // test_main's
  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

TEST_F(LoggerTest, WritesJsonLinesToStderrAtOrAboveLevel) {
  InitLogging({.level = "info"});
  ::testing::internal::CaptureStderr();
  log::Debug("hidden");
  log::Info("shown", {{"task", 7}});
  log::Error("bad", {{"worker", "w0"}});
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  const json a = json::parse(lines[0]);
  EXPECT_EQ(a.at("level"), "info");
  EXPECT_EQ(a.at("msg"), "shown");
  EXPECT_EQ(a.at("task"), 7);
  const json b = json::parse(lines[1]);
  EXPECT_EQ(b.at("level"), "error");
  EXPECT_EQ(b.at("worker"), "w0");
}

TEST_F(LoggerTest, LevelChangesAndHumanMode) {
  InitLogging({.level = "error", .json = false});
  ::testing::internal::CaptureStderr();
  log::Warn("hidden");
  log::Error("plain", {{"k", "v"}});
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" error plain k=v"));
  EXPECT_THAT(lines[0], Not(StartsWith("{")));
}

TEST_F(LoggerTest, UnknownLevelFallsBackToInfoAndSaysSo) {
  ::testing::internal::CaptureStderr();
  InitLogging({.level = "verbose"});
  log::Info("still visible");
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  const json warning = json::parse(lines[0]);
  EXPECT_EQ(warning.at("level"), "warn");
  EXPECT_EQ(warning.at("level_given"), "verbose");
  EXPECT_EQ(json::parse(lines[1]).at("msg"), "still visible");
}

TEST_F(LoggerTest, OffSilencesEverything) {
  InitLogging({.level = "off"});
  ::testing::internal::CaptureStderr();
  log::Error("nothing");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace vptq
