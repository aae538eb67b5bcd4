#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agbot/errc.h"
#include "agbot/version_range.h"

namespace hmq::agbot {
namespace {

// Protects Horizon's versionRange semantics: bare version = at least, brackets = interval.
TEST(agbot_version_range, matches_horizon_semantics_table) {
  struct row {
    const char* range;
    const char* version;
    bool in;
  };
  const row rows[] = {
      {"1.0.0", "1.0.0", true},
      {"1.0.0", "0.9.9", false},
      {"1.0.0", "7.3.1", true},
      {"[1.0.0,2.0.0)", "1.0.0", true},
      {"[1.0.0,2.0.0)", "1.9.99", true},
      {"[1.0.0,2.0.0)", "2.0.0", false},
      {"(1.0.0,2.0.0]", "1.0.0", false},
      {"(1.0.0,2.0.0]", "2.0.0", true},
      {"(1.0.0,2.0.0]", "2.0.1", false},
      {"[1.2,INFINITY)", "1.2.0", true},
      {"[1.2,INFINITY)", "99.0.0", true},
      {"[1.2,INFINITY)", "1.1.9", false},
      {"", "0.0.0", true},
      {" [1.0.0, 1.0.0] ", "1.0.0", true},
      {"1.10.0", "1.9.0", false},
      {"1.10.0", "1.10", true},
  };
  for (const auto& r : rows) {
    auto range = parse_version_range(r.range);
    ASSERT_TRUE(range) << r.range;
    auto v = parse_version(r.version);
    ASSERT_TRUE(v) << r.version;
    EXPECT_EQ(range->contains(*v), r.in) << r.range << " ? " << r.version;
  }
}

TEST(agbot_version_range, rejects_malformed_ranges_and_versions) {
  for (const char* bad : {"[1.0.0", "1.0.0)", "[1.0.0;2.0.0)", "[2.0.0,1.0.0)", "abc", "1..0",
                          "1.0.0.0", "-1.0.0", "[,2.0.0)", "{1.0.0,2.0.0}", "1.0.x"}) {
    auto r = parse_version_range(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.code(), make_error_code(errc::bad_version_range)) << bad;
    }
  }
  EXPECT_FALSE(parse_version("1.2.3.4"));
  EXPECT_FALSE(parse_version(""));
  EXPECT_FALSE(parse_version("1.a"));
  EXPECT_FALSE(parse_version("12345678901"));
}

TEST(agbot_version_range, picks_highest_published_version_in_range) {
  const std::vector<std::string> published = {"1.0.0", "1.2.0", "1.10.3", "2.0.0", "junk", "1.9"};
  auto pick = [&](const char* range) {
    auto r = parse_version_range(range);
    EXPECT_TRUE(r) << range;
    auto best = pick_highest(*r, published);
    return best ? *best : std::string("none");
  };
  EXPECT_EQ(pick("1.0.0"), "2.0.0");
  EXPECT_EQ(pick("[1.0.0,2.0.0)"), "1.10.3");
  EXPECT_EQ(pick("[1.0.0,1.10.0)"), "1.9");
  EXPECT_EQ(pick("(1.0.0,1.2.0]"), "1.2.0");
  EXPECT_EQ(pick("3.0.0"), "none");
}

}  // namespace
}  // namespace hmq::agbot
