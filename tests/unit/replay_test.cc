// hmq-replay: the recording file format (round trip, truncation, foreign files, versions), key
// handling, re-sealing and the inspect output. No sockets: files in a temp dir, manual clock.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "tests/support/temp_dir.h"
#include "tools/replay/commands.h"
#include "tools/replay/keys.h"
#include "tools/replay/message_json.h"
#include "tools/replay/recording.h"

namespace hmq::tools::replay {
namespace {

namespace crypto = core::crypto;
namespace wire = core::wire;
namespace fb = ::hmq::wire::fb;
using json = nlohmann::json;

record sample(int i) {
  record r;
  r.received_us = 1'700'000'000'000'000 + i * 1500;
  r.msg.topic = "hmq/v1/mb/abc" + std::to_string(i);
  r.msg.payload = {1, 2, 3, static_cast<uint8_t>(i), 0, 255};
  r.msg.qos = i % 3;
  r.msg.retained = i % 2 == 1;
  return r;
}

std::vector<uint8_t> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Writes records 0..n-1 and returns the file's path.
std::filesystem::path write_recording(const test::temp_dir& dir, int n,
                                      const std::string& name = "r.hmqrec") {
  auto path = dir / name;
  file_header h;
  h.created_us = 1'700'000'000'000'000;
  auto w = writer::create(path, h);
  EXPECT_TRUE(w) << w.err().message();
  for (int i = 0; i < n; ++i) EXPECT_TRUE(w->append(sample(i)));
  EXPECT_TRUE(w->close());
  return path;
}

TEST(replay_recording, round_trips_every_field_including_v5_properties) {
  // The recorder must keep everything a player needs to republish the message as it was.
  test::temp_dir dir("replay");
  record r = sample(1);
  r.msg.message_expiry_s = 42;
  r.msg.content_type = "application/x-hmq";
  r.msg.response_topic = "hmq/v1/mb/reply";
  r.msg.correlation_data = {9, 8, 7};
  r.msg.payload_utf8 = true;
  r.msg.user_props = {{"k", "v1"}, {"k", "v2"}, {"other", ""}};
  file_header h;
  h.created_us = 123456789;
  auto path = dir / "r.hmqrec";
  {
    auto w = writer::create(path, h);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(r));
    ASSERT_TRUE(w->append(sample(2)));
    ASSERT_TRUE(w->close());
    EXPECT_EQ(w->records(), 2u);
    EXPECT_EQ(w->bytes(), std::filesystem::file_size(path));
  }
  auto all = read_all(path);
  ASSERT_FALSE(all.error) << all.error->message();
  EXPECT_EQ(all.header.version, format_version);
  EXPECT_EQ(all.header.created_us, 123456789);
  EXPECT_EQ(all.header.flags & flag_mqtt_v5, flag_mqtt_v5);
  ASSERT_EQ(all.records.size(), 2u);
  const auto& got = all.records[0];
  EXPECT_EQ(got.received_us, r.received_us);
  EXPECT_EQ(got.msg.topic, r.msg.topic);
  EXPECT_EQ(got.msg.payload, r.msg.payload);
  EXPECT_EQ(got.msg.qos, r.msg.qos);
  EXPECT_EQ(got.msg.retained, r.msg.retained);
  EXPECT_EQ(got.msg.message_expiry_s, 42u);
  EXPECT_EQ(got.msg.content_type, r.msg.content_type);
  EXPECT_EQ(got.msg.response_topic, r.msg.response_topic);
  EXPECT_EQ(got.msg.correlation_data, r.msg.correlation_data);
  EXPECT_TRUE(got.msg.payload_utf8);
  EXPECT_EQ(got.msg.user_props, r.msg.user_props);
  EXPECT_EQ(all.records[1].msg.topic, sample(2).msg.topic);
}

TEST(replay_recording, empty_recording_reads_as_zero_records) {
  test::temp_dir dir("replay");
  auto all = read_all(write_recording(dir, 0));
  EXPECT_FALSE(all.error);
  EXPECT_TRUE(all.records.empty());
}

TEST(replay_recording,
     every_cut_inside_a_record_is_reported_as_truncated_with_its_number_and_offset) {
  // A recorder killed mid-write leaves a partial last record: the reader names it exactly.
  test::temp_dir dir("replay");
  auto path = write_recording(dir, 3);
  auto bytes = file_bytes(path);
  const size_t third =
      header_size + encode_record(sample(0)).size() + encode_record(sample(1)).size();
  ASSERT_EQ(bytes.size(), third + encode_record(sample(2)).size());
  for (size_t cut = third + 1; cut < bytes.size(); ++cut) {
    write_bytes(path, {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)});
    auto all = read_all(path);
    ASSERT_TRUE(all.error) << "cut at " << cut;
    EXPECT_EQ(all.error->code, errc::truncated) << "cut at " << cut;
    EXPECT_NE(all.error->detail.find("truncated at record 3, byte offset " + std::to_string(third)),
              std::string::npos)
        << all.error->detail;
    EXPECT_EQ(all.records.size(), 2u);  // the whole records before it are still there
  }
}

TEST(replay_recording, cut_inside_the_header_is_truncated_not_foreign) {
  test::temp_dir dir("replay");
  auto path = write_recording(dir, 1);
  auto bytes = file_bytes(path);
  write_bytes(path, {bytes.begin(), bytes.begin() + 12});
  auto all = read_all(path);
  ASSERT_TRUE(all.error);
  EXPECT_EQ(all.error->code, errc::truncated);
}

TEST(replay_recording, foreign_files_are_not_a_recording) {
  test::temp_dir dir("replay");
  for (std::string content : {std::string("# CMakeLists.txt\nproject(x)\n"), std::string("HMQ1"),
                              std::string(), std::string(64, '\0')}) {
    write_bytes(dir / "f", {content.begin(), content.end()});
    auto all = read_all(dir / "f");
    ASSERT_TRUE(all.error) << content;
    EXPECT_EQ(all.error->code, errc::not_a_recording) << content;
    EXPECT_NE(all.error->detail.find("not an hmq-replay recording"), std::string::npos);
  }
}

TEST(replay_recording, other_format_version_is_refused_by_number) {
  test::temp_dir dir("replay");
  auto path = write_recording(dir, 1);
  auto bytes = file_bytes(path);
  bytes[8] = 2;  // version 2, little-endian
  write_bytes(path, bytes);
  auto all = read_all(path);
  ASSERT_TRUE(all.error);
  EXPECT_EQ(all.error->code, errc::unsupported_version);
  EXPECT_NE(all.error->detail.find("version 2"), std::string::npos) << all.error->detail;
}

TEST(replay_recording, absurd_length_and_garbage_record_are_corrupt_not_a_crash) {
  test::temp_dir dir("replay");
  auto path = write_recording(dir, 1);
  auto bytes = file_bytes(path);
  auto huge = bytes;
  huge[header_size + 3] = 0x7f;  // length ~2 GB
  write_bytes(path, huge);
  auto all = read_all(path);
  ASSERT_TRUE(all.error);
  EXPECT_EQ(all.error->code, errc::corrupt_record);
  auto garbage = bytes;
  for (size_t i = header_size + length_prefix_size; i < garbage.size(); ++i) garbage[i] = 0xff;
  write_bytes(path, garbage);
  all = read_all(path);
  ASSERT_TRUE(all.error);
  EXPECT_EQ(all.error->code, errc::corrupt_record);
  EXPECT_NE(all.error->detail.find("record 1, byte offset 24"), std::string::npos)
      << all.error->detail;
}

// ---- keys, envelopes, inspect
// ---------------------------------------------------------------------

class replay_keys : public ::testing::Test {
 protected:
  replay_keys() {
    // Key files laid out as the components write them: <data-dir>/agent.key, agbot.key.
    std::filesystem::create_directories(dir_ / "agent0");
    std::filesystem::create_directories(dir_ / "agbot");
    EXPECT_TRUE(crypto::write_key_file(dir_ / "agent0" / "agent.key", agent_.sk.view(), true));
    EXPECT_TRUE(crypto::write_key_file(dir_ / "agent0" / "agent.key.pub", agent_.pk, false));
    EXPECT_TRUE(crypto::write_key_file(dir_ / "agbot" / "agbot.key.pub", agbot_.pk, false));
  }

  std::vector<uint8_t> cancel_from_agbot(int64_t sent_ms) {
    wire::header h;
    h.id = 77;
    h.sent_ms = sent_ms;
    auto msg =
        wire::build_message(h, clock_, fb::Body::Cancel, [](flatbuffers::FlatBufferBuilder& b) {
          return fb::CreateCancelDirect(b, "agr-1234", fb::CancelReason::policy_changed, "bye")
              .Union();
        });
    wire::codec agbot_codec(agbot_, clock_);
    return agbot_codec.seal(msg, agent_.pk);
  }

  keyring load() {
    std::vector<std::string> warnings;
    auto k = keyring::load(dir_.path(), warnings);
    EXPECT_TRUE(k);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    return std::move(*k);
  }

  test::temp_dir dir_{"replay-keys"};
  core::loop::manual_clock clock_;
  crypto::box_keypair agent_ = crypto::box_keypair::generate();
  crypto::box_keypair agbot_ = crypto::box_keypair::generate();
};

TEST_F(replay_keys, inspect_json_decodes_an_envelope_the_recipient_key_opens) {
  auto k = load();
  ASSERT_EQ(k.secrets().size(), 1u);
  message_json printer;
  ASSERT_TRUE(printer.ok()) << printer.error();
  record r;
  r.received_us = 1'700'000'000'250'000;
  r.msg.topic = "hmq/v1/mb/" + crypto::mailbox_id(agent_.pk);
  r.msg.payload = cancel_from_agbot(clock_.now_ms());
  r.msg.qos = 1;
  json d = describe(r, 1, 1'700'000'000'000'000, &k, &printer);
  EXPECT_EQ(d["t_us"], 250'000);
  EXPECT_EQ(d["size"], r.msg.payload.size());
  EXPECT_EQ(d["envelope"]["version"], 1);
  EXPECT_EQ(d["envelope"]["sender_mailbox"], crypto::mailbox_id(agbot_.pk));
  EXPECT_EQ(d["envelope"]["nonce_prefix"].get<std::string>().size(), 8u);
  EXPECT_EQ(d["opened_by"], "agent0/agent.key");
  EXPECT_EQ(d["body_type"], "Cancel");
  EXPECT_EQ(d["message"]["id"], 77);
  EXPECT_EQ(d["message"]["body_type"], "Cancel");
  EXPECT_EQ(d["message"]["body"]["agreement_id"], "agr-1234");
  EXPECT_EQ(d["message"]["body"]["reason"], "policy_changed");
  const std::string line = describe_line(d);
  EXPECT_NE(line.find("+0.250000 hmq/v1/mb/"), std::string::npos) << line;
  EXPECT_NE(line.find("\"agreement_id\":\"agr-1234\""), std::string::npos) << line;
}

TEST_F(replay_keys, sender_key_opens_a_mailbox_message_when_the_recipient_public_key_is_known) {
  // Only the agbot's secret key and the agent's .pub: crypto_box works from either side.
  test::temp_dir other("replay-keys2");
  ASSERT_TRUE(crypto::write_key_file(other / "agbot.key", agbot_.sk.view(), true));
  ASSERT_TRUE(crypto::write_key_file(other / "agent.key.pub", agent_.pk, false));
  std::vector<std::string> warnings;
  auto k = keyring::load(other.path(), warnings);
  ASSERT_TRUE(k);
  auto payload = cancel_from_agbot(clock_.now_ms());
  auto o = open_envelope(*k, "hmq/v1/mb/" + crypto::mailbox_id(agent_.pk), payload);
  ASSERT_TRUE(o) << o.err().message();
  EXPECT_FALSE(o->by_recipient);
  EXPECT_FALSE(open_envelope(*k, "hmq/v1/mb/someoneelse", payload));
}

TEST_F(replay_keys, without_keys_only_clear_text_fields_are_shown_and_non_envelopes_are_marked) {
  record r;
  r.msg.topic = "hmq/v1/mb/x";
  r.msg.payload = cancel_from_agbot(clock_.now_ms());
  json d = describe(r, 1, 0, nullptr, nullptr);
  EXPECT_FALSE(d.contains("message"));
  EXPECT_EQ(d["envelope"]["sender_key"], crypto::to_base64(agbot_.pk));
  r.msg.payload = {'o', 'n', 'l', 'i', 'n', 'e'};
  d = describe(r, 1, 0, nullptr, nullptr);
  EXPECT_TRUE(d["envelope"].is_null());
  EXPECT_NE(describe_line(d).find("(not an envelope)"), std::string::npos);
}

TEST_F(replay_keys, resealed_message_is_accepted_where_the_original_is_a_replay) {
  // The point of --reseal: the same receiver drops the recorded bytes (duplicate, later too old)
  // but accepts the re-sealed copy, which carries the same body.
  wire::codec agent_codec(agent_, clock_);
  auto original = cancel_from_agbot(clock_.now_ms());
  ASSERT_TRUE(agent_codec.open(original));
  EXPECT_EQ(agent_codec.open(original).code(), wire::errc::duplicate);
  clock_.advance(std::chrono::hours(1));
  EXPECT_EQ(agent_codec.open(original).code(), wire::errc::too_old);

  auto k = load();
  auto o = open_envelope(k, "hmq/v1/mb/" + crypto::mailbox_id(agent_.pk), original);
  ASSERT_TRUE(o);
  auto fresh = reseal(k, *o, clock_);
  ASSERT_TRUE(fresh) << fresh.err().message();
  auto opened = agent_codec.open(*fresh);
  ASSERT_TRUE(opened) << opened.err().message();
  EXPECT_TRUE(crypto::equal(opened->sender, agbot_.pk));  // still from the agbot
  const auto* m = opened->message();
  EXPECT_NE(m->id(), 77u);
  EXPECT_EQ(m->sent_ms(), clock_.now_ms());
  ASSERT_EQ(m->body_type(), fb::Body::Cancel);
  EXPECT_EQ(m->body_as_Cancel()->agreement_id()->str(), "agr-1234");
  auto env_old = parse_envelope(original), env_new = parse_envelope(*fresh);
  EXPECT_NE(env_old->nonce, env_new->nonce);
}

TEST_F(replay_keys, inspect_command_prints_json_and_exits_1_on_a_truncated_file) {
  auto path = dir_ / "rec.hmqrec";
  {
    auto w = writer::create(path, file_header{});
    ASSERT_TRUE(w);
    record r;
    r.received_us = 5;
    r.msg.topic = "hmq/v1/mb/" + crypto::mailbox_id(agent_.pk);
    r.msg.payload = cancel_from_agbot(clock_.now_ms());
    r.msg.qos = 1;
    ASSERT_TRUE(w->append(r));
    ASSERT_TRUE(w->append(r));
    ASSERT_TRUE(w->close());
  }
  std::ostringstream out, err;
  int rc =
      run({"hmq-replay", "inspect", path.string(), "--keys", dir_.path().string(), "-o", "json"},
          out, err);
  ASSERT_EQ(rc, exit_ok) << err.str();
  json doc = json::parse(out.str());
  ASSERT_EQ(doc["messages"].size(), 2u);
  EXPECT_EQ(doc["messages"][1]["message"]["body"]["agreement_id"], "agr-1234");

  auto bytes = file_bytes(path);
  bytes.resize(bytes.size() - 3);
  write_bytes(path, bytes);
  std::ostringstream out2, err2;
  rc = run({"hmq-replay", "inspect", path.string()}, out2, err2);
  EXPECT_EQ(rc, exit_bad_input);
  EXPECT_NE(err2.str().find("truncated at record 2, byte offset"), std::string::npos) << err2.str();
  EXPECT_NE(out2.str().find("hmq/v1/mb/"), std::string::npos);  // record 1 was still printed
}

TEST(replay_cli, help_exits_0_and_bad_flags_exit_1) {
  std::ostringstream out, err;
  EXPECT_EQ(run({"hmq-replay", "--help"}, out, err), exit_ok);
  EXPECT_NE(out.str().find("record"), std::string::npos);
  EXPECT_EQ(run({"hmq-replay", "play", "x.hmqrec"}, out, err), exit_bad_input);  // --broker missing
  EXPECT_EQ(run({"hmq-replay", "record", "-t", "a/#/b", "-o", "/nonexistent/x"}, out, err),
            exit_bad_input);
}

}  // namespace
}  // namespace hmq::tools::replay
