#include <gtest/gtest.h>

#include <cstdlib>

#include "agbot/agreement_store.h"
#include "agbot/app.h"
#include "agbot/engine.h"

namespace hmq::agbot {
namespace {

using namespace std::chrono_literals;

TEST(agbot_config, parses_durations_with_units_and_rejects_junk) {
  EXPECT_EQ(*parse_duration("30"), 30s);
  EXPECT_EQ(*parse_duration("30s"), 30s);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("2m"), 120s);
  EXPECT_EQ(*parse_duration("1h"), 3600s);
  for (const char* bad : {"", "s", "-1s", "1d", "1.5s", "99999999999999s"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(agbot_config, flags_fill_config_and_token_falls_back_to_environment) {
  ::setenv("HMQ_AGBOT_TOKEN", "from-env", 1);
  const char* argv[] = {"hmq-agbot",
                        "--exchange-key",
                        "@/tmp/x.pub",
                        "--org",
                        "acme",
                        "--id",
                        "ab1",
                        "--reply-timeout",
                        "5s",
                        "--retry-backoff-min",
                        "1s",
                        "--max-concurrent",
                        "7"};
  app_config c;
  EXPECT_EQ(parse_args(13, argv, c), -1);
  EXPECT_EQ(c.org, "acme");
  EXPECT_EQ(c.token, "from-env");
  EXPECT_EQ(c.reply_timeout, 5s);
  EXPECT_EQ(c.retry_min, 1s);
  EXPECT_EQ(c.max_concurrent, 7u);
  ::unsetenv("HMQ_AGBOT_TOKEN");
}

TEST(agbot_config, missing_required_flag_or_token_is_an_error) {
  ::unsetenv("HMQ_AGBOT_TOKEN");
  const char* no_org[] = {"hmq-agbot", "--exchange-key", "k", "--id", "ab1", "--token", "t"};
  app_config c;
  EXPECT_GT(parse_args(7, no_org, c), 0);
  const char* no_token[] = {"hmq-agbot", "--exchange-key", "k", "--org", "o", "--id", "ab1"};
  app_config d;
  EXPECT_EQ(parse_args(7, no_token, d), 1);
}

// The store itself refuses a second live agreement for the same node and service.
TEST(agbot_store, refuses_two_live_agreements_for_one_slot) {
  auto s = agreement_store::open_memory();
  ASSERT_TRUE(s);
  agreement a;
  a.id = std::string(32, '1');
  a.node_org = "acme";
  a.node_id = "n1";
  a.pattern = "acme/gps";
  a.service_org = "acme";
  a.service_url = "gps";
  a.service_version = "1.0.0";
  a.arch = "amd64";
  a.state = fb::AgreementState::proposed;
  ASSERT_TRUE(s->insert(a));
  agreement b = a;
  b.id = std::string(32, '2');
  EXPECT_FALSE(s->insert(b));
  a.state = fb::AgreementState::cancelled;
  ASSERT_TRUE(s->update(a));
  EXPECT_TRUE(s->insert(b));
  auto unsettled = s->load_unsettled();
  ASSERT_TRUE(unsettled);
  EXPECT_EQ(unsettled->size(), 2u);  // b live; a cancelled but its cancel not yet confirmed
  ASSERT_TRUE(s->set_message_confirmed(a.id));
  ASSERT_TRUE(s->set_exchange_synced(a.id));
  EXPECT_EQ(s->load_unsettled()->size(), 1u);
}

}  // namespace
}  // namespace hmq::agbot

namespace hmq::agbot {
namespace {

TEST(agbot_ids, random_agreement_ids_are_32_lowercase_hex_and_distinct) {
  auto a = random_agreement_id();
  auto b = random_agreement_id();
  EXPECT_TRUE(valid_agreement_id(a)) << a;
  EXPECT_NE(a, b);
  EXPECT_FALSE(valid_agreement_id("ABCDEF0123456789ABCDEF0123456789"));
}

}  // namespace
}  // namespace hmq::agbot
