#include "tools/replay/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>

#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/topic_filter.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"

namespace hmq::tools::replay {

namespace crypto = core::crypto;
namespace bus = core::bus;
namespace fb = ::hmq::wire::fb;
using json = nlohmann::json;

namespace {

// An error on its way to stderr with its exit code.
struct failure {
  int code;
  std::string message;
};

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b < 10 * 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  } else if (b < 10ull * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1024 * 1024));
  }
  return buf;
}

// MQTT filter syntax: '#' only as the whole last level, '+' only as a whole level.
bool valid_filter(const std::string& f) {
  if (f.empty() || f.size() > 65535) return false;
  size_t start = 0;
  for (;;) {
    size_t end = f.find('/', start);
    std::string_view level(f.data() + start, (end == std::string::npos ? f.size() : end) - start);
    if (level.find_first_of("+#") != std::string_view::npos && level.size() != 1) return false;
    if (level == "#" && end != std::string::npos) return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

bus::options broker_options(const std::string& uri, const std::string& user,
                            const std::string& password) {
  bus::options o;
  o.broker_uri = uri;
  // A throw-away session: a recorder or player leaves nothing behind on the broker.
  o.clean_start = true;
  o.session_expiry_s = 0;
  o.connect_timeout = std::chrono::seconds(5);
  o.username = user;
  o.password = password;
  return o;
}

std::string default_broker() {
  const char* e = std::getenv("HMQ_BROKER");
  return e && *e ? e : "tcp://127.0.0.1:1883";
}

int exit_for_bus(const core::error& e) {
  return e.code == bus::errc::not_authorized ? exit_refused : exit_unreachable;
}

// ---- record
// ---------------------------------------------------------------------------------------

struct record_opts {
  std::vector<std::string> filters;
  std::string file;
  double duration_s = 0;
  uint64_t count = 0;
  std::string broker = default_broker();
  std::string username, password;
  std::string exchange_user;  // ORG/USER:PASSWORD: that user's broker identity
};

// --exchange-user ORG/USER:PASSWORD: the broker identity the exchange provisions for that user
// (core/bus/credentials.h); on a broker with identities it records only with the right
// `hmq exchange user allow-record` grants.
void use_exchange_user(const std::string& spec, bus::options& bo) {
  const auto colon = spec.find(':');
  const auto slash = spec.find('/');
  if (colon == std::string::npos || slash == std::string::npos || slash == 0 || slash > colon ||
      slash + 1 == colon || colon + 1 == spec.size())
    throw failure{exit_bad_input, "--exchange-user: expected ORG/USER:PASSWORD"};
  auto id = bus::derive_user_identity(
      spec.substr(0, slash), spec.substr(slash + 1, colon - slash - 1), spec.substr(colon + 1));
  if (!id) throw failure{exit_bad_input, "--exchange-user: " + id.err().message()};
  bo.username = id->username;
  bo.password = id->password;
}

int do_record(const record_opts& o, bool verbose, std::ostream& out, std::ostream& err) {
  for (const auto& f : o.filters) {
    if (!valid_filter(f))
      throw failure{exit_bad_input, "not a valid MQTT topic filter: '" + f + "'"};
  }
  file_header h;
  h.created_us = now_us();
  auto w = writer::create(o.file, h);
  if (!w) throw failure{exit_bad_input, w.err().detail};

  core::loop::event_loop loop;
  auto bo = broker_options(o.broker, o.username, o.password);
  if (!o.exchange_user.empty()) use_exchange_user(o.exchange_user, bo);
  bo.retain_as_published = true;  // record the retain flag each publisher set
  bus::client client(loop, bo);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const bool progress = tty || verbose;
  int rc = exit_ok;
  std::string error_text;
  bool done = false;
  uint64_t shown = 0;
  size_t subscribed = 0;
  core::loop::timer_handle duration_timer, progress_timer;

  auto show = [&](bool final) {
    if (!progress || (!final && shown == w->records())) return;
    shown = w->records();
    if (tty) {
      err << "\rrecorded " << w->records() << " messages, " << human_bytes(w->bytes()) << "   "
          << (final ? "\n" : "") << std::flush;
    } else {
      err << "recorded " << w->records() << " messages, " << w->bytes() << " bytes\n" << std::flush;
    }
  };
  auto finish = [&](int code, std::string why) {
    if (done) return;
    done = true;
    rc = code;
    error_text = std::move(why);
    duration_timer.cancel();
    progress_timer.cancel();
    loop.stop();
  };
  std::function<void()> tick = [&] {
    show(false);
    progress_timer = loop.call_after(std::chrono::seconds(1), tick);
  };

  auto on_message = [&](const bus::inbound& in) {
    if (done) return;
    record r{now_us(), in};
    if (auto a = w->append(r); !a) return finish(exit_bad_input, a.err().detail);
    if (o.count > 0 && w->records() >= o.count) finish(exit_ok, "");
  };
  for (const auto& f : o.filters) {
    // QoS 2: the broker then delivers each message with the QoS its publisher used.
    client.subscribe(f, 2, on_message, [&, f](core::result<void> r) {
      if (!r)
        return finish(exit_for_bus(r.err()),
                      "subscription " + f + " refused: " + r.err().message());
      if (++subscribed == o.filters.size() && verbose) {
        err << "hmq-replay: recording " << o.filters.size() << " filter(s) from " << o.broker
            << " to " << o.file << "\n"
            << std::flush;
      }
    });
  }
  loop.on_signals([&](int) { finish(exit_ok, ""); });
  client.start([&](core::result<void> r) {
    if (!r)
      return finish(exit_for_bus(r.err()),
                    "cannot connect to the broker at " + o.broker + ": " + r.err().message());
    if (o.duration_s > 0) {
      duration_timer =
          loop.call_after(std::chrono::milliseconds(static_cast<int64_t>(o.duration_s * 1000)),
                          [&] { finish(exit_ok, ""); });
    }
    if (progress) tick();
  });
  loop.run();
  client.stop();
  auto c = w->close();
  show(true);
  if (!c && rc == exit_ok) {
    rc = exit_bad_input;
    error_text = c.err().detail;
  }
  if (rc != exit_ok) {
    // Nothing recorded (broker down, refused filter): leave no empty file behind.
    std::error_code ec;
    if (w->records() == 0) std::filesystem::remove(o.file, ec);
    throw failure{rc, error_text};
  }
  (void)out;
  return exit_ok;
}

// ---- inspect
// --------------------------------------------------------------------------------------

std::string hex_prefix(std::span<const uint8_t> b, size_t n) {
  return crypto::to_hex(b.subspan(0, std::min(n, b.size())));
}

keyring load_keys(const std::string& dir, std::ostream& err, bool need_secret) {
  std::vector<std::string> warnings;
  auto k = keyring::load(dir, warnings);
  if (!k) throw failure{exit_bad_input, "--keys: " + k.err().detail};
  for (const auto& w : warnings) err << "hmq-replay: warning: " << w << "\n";
  if (need_secret && k->secrets().empty()) {
    throw failure{exit_bad_input, "--keys " + dir + ": no secret box key (*.key, 32 bytes) found"};
  }
  return std::move(*k);
}

struct inspect_opts {
  std::string file;
  std::string keys;
  std::string format = "text";
};

int do_inspect(const inspect_opts& o, std::ostream& out, std::ostream& err) {
  std::optional<keyring> keys;
  std::optional<message_json> printer;
  if (!o.keys.empty()) {
    keys.emplace(load_keys(o.keys, err, true));
    printer.emplace();
    if (!printer->ok()) throw failure{exit_bad_input, printer->error()};
  }
  auto rd = reader::open(o.file);
  if (!rd) throw failure{exit_bad_input, rd.err().detail};
  const auto& h = rd->header();
  json messages = json::array();
  std::optional<std::string> error;
  for (size_t i = 1;; ++i) {
    auto n = rd->next();
    if (!n) {
      error = n.err().detail;
      break;
    }
    if (!*n) break;
    json d = describe(**n, i, h.created_us, keys ? &*keys : nullptr, printer ? &*printer : nullptr);
    if (o.format == "json") {
      messages.push_back(std::move(d));
    } else {
      out << describe_line(d) << "\n";
    }
  }
  if (o.format == "json") {
    json doc{{"format_version", h.version},
             {"flags", h.flags},
             {"created_us", h.created_us},
             {"messages", std::move(messages)}};
    if (error) doc["error"] = *error;
    out << doc.dump() << "\n";
  }
  if (error) throw failure{exit_bad_input, o.file + ": " + *error};
  return exit_ok;
}

// ---- play
// -----------------------------------------------------------------------------------------

struct play_opts {
  std::string file;
  std::string broker;
  double speed = 1.0;
  std::vector<std::string> filters;
  bool reseal = false;
  std::string keys;
  std::string format = "text";
  std::string username, password;
};

int do_play(const play_opts& o, bool verbose, std::ostream& out, std::ostream& err) {
  for (const auto& f : o.filters) {
    if (!valid_filter(f))
      throw failure{exit_bad_input, "not a valid MQTT topic filter: '" + f + "'"};
  }
  if (o.speed < 0) throw failure{exit_bad_input, "--speed must be >= 0"};
  if (o.reseal && o.keys.empty()) throw failure{exit_bad_input, "--reseal needs --keys DIR"};
  std::optional<keyring> keys;
  if (o.reseal) keys.emplace(load_keys(o.keys, err, true));

  // Whole file first: a truncated or foreign file is refused before anything is published.
  auto all = read_all(o.file);
  if (all.error) throw failure{exit_bad_input, o.file + ": " + all.error->detail};
  std::vector<record> plan;
  uint64_t skipped = 0;
  for (auto& r : all.records) {
    bool keep = o.filters.empty();
    for (const auto& f : o.filters) keep = keep || bus::topic_matches(f, r.msg.topic);
    if (keep) {
      plan.push_back(std::move(r));
    } else {
      ++skipped;
    }
  }

  core::loop::event_loop loop;
  core::loop::system_clock clock;
  bus::client client(loop, broker_options(o.broker, o.username, o.password));
  int rc = exit_ok;
  std::string error_text;
  bool done = false;
  size_t next = 0, in_flight = 0;
  uint64_t published = 0, failed = 0, resealed = 0, unchanged = 0;
  constexpr size_t window = 256;  // below Paho's in-flight limit, for --speed 0
  core::loop::timer_handle timer;
  std::chrono::steady_clock::time_point base;

  auto finish = [&](int code, std::string why) {
    if (done) return;
    done = true;
    rc = code;
    error_text = std::move(why);
    timer.cancel();
    loop.stop();
  };
  auto payload_for = [&](const record& r) -> std::vector<uint8_t> {
    if (!keys) return r.msg.payload;
    auto opened = open_envelope(*keys, r.msg.topic, r.msg.payload);
    if (opened) {
      if (auto s = reseal(*keys, *opened, clock)) {
        ++resealed;
        return std::move(*s);
      }
    }
    // Not an envelope (a presence message) or no key opens it: sent as recorded.
    if (parse_envelope(r.msg.payload)) ++unchanged;
    return r.msg.payload;
  };
  std::function<void()> pump = [&] {
    if (done) return;
    const auto now = std::chrono::steady_clock::now();
    while (next < plan.size() && in_flight < window) {
      const auto& r = plan[next];
      if (o.speed > 0) {
        const auto offset_us =
            static_cast<double>(r.received_us - plan.front().received_us) / o.speed;
        const auto due =
            base + std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, offset_us)));
        if (due > now) {
          timer = loop.call_after(std::chrono::ceil<std::chrono::milliseconds>(due - now),
                                  [&] { pump(); });
          return;
        }
      }
      bus::publish_options po;
      po.qos = r.msg.qos;
      po.retain = r.msg.retained;
      po.message_expiry_s = r.msg.message_expiry_s;
      po.content_type = r.msg.content_type;
      po.response_topic = r.msg.response_topic;
      po.correlation_data = r.msg.correlation_data;
      po.payload_utf8 = r.msg.payload_utf8;
      po.user_props = r.msg.user_props;
      ++next;
      ++in_flight;
      if (verbose)
        err << "play " << next << "/" << plan.size() << " " << r.msg.topic << "\n" << std::flush;
      client.publish(r.msg.topic, payload_for(r), po, [&](core::result<void> res) {
        --in_flight;
        if (res) {
          ++published;
        } else {
          ++failed;
          if (res.err().code == bus::errc::not_authorized) {
            return finish(exit_refused, "publish refused: " + res.err().message());
          }
        }
        if (next == plan.size() && in_flight == 0)
          return finish(failed ? exit_unreachable : exit_ok,
                        failed ? std::to_string(failed) + " publish(es) failed" : "");
        pump();
      });
    }
  };
  loop.on_signals([&](int) {
    finish(exit_interrupted, "interrupted after " + std::to_string(published) + " messages");
  });
  client.start([&](core::result<void> r) {
    if (!r)
      return finish(exit_for_bus(r.err()),
                    "cannot connect to the broker at " + o.broker + ": " + r.err().message());
    if (plan.empty()) return finish(exit_ok, "");
    base = std::chrono::steady_clock::now();
    pump();
  });
  loop.run();
  client.stop();

  if (unchanged > 0) {
    err << "hmq-replay: warning: " << unchanged
        << " envelope(s) could not be resealed (no key opens them) and were sent as recorded; "
           "receivers reject them as duplicates or too old\n";
  }
  json summary{{"published", published},       {"failed", failed},
               {"resealed", resealed},         {"unchanged", unchanged},
               {"skipped_by_filter", skipped}, {"total", all.records.size()}};
  if (o.format == "json") {
    out << summary.dump() << "\n";
  } else if (verbose) {
    err << "hmq-replay: published " << published << " of " << plan.size() << " messages ("
        << resealed << " resealed, " << skipped << " filtered out, " << failed << " failed)\n";
  }
  if (rc != exit_ok) throw failure{rc, error_text};
  return exit_ok;
}

}  // namespace

// ---- describe
// -------------------------------------------------------------------------------------

json describe(const record& r, size_t index, int64_t start_us, const keyring* keys,
              const message_json* printer) {
  const auto& m = r.msg;
  json d{{"index", index},      {"t_us", r.received_us - start_us}, {"received_us", r.received_us},
         {"topic", m.topic},    {"size", m.payload.size()},         {"qos", m.qos},
         {"retain", m.retained}};
  json props = json::object();
  if (m.message_expiry_s) props["message_expiry_s"] = m.message_expiry_s;
  if (!m.content_type.empty()) props["content_type"] = m.content_type;
  if (!m.response_topic.empty()) props["response_topic"] = m.response_topic;
  if (!m.correlation_data.empty()) props["correlation_data"] = crypto::to_hex(m.correlation_data);
  if (m.payload_utf8) props["payload_utf8"] = true;
  if (!m.user_props.empty()) {
    json ups = json::array();
    for (const auto& [k, v] : m.user_props) ups.push_back({k, v});
    props["user_properties"] = std::move(ups);
  }
  if (!props.empty()) d["properties"] = std::move(props);
  auto env = parse_envelope(m.payload);
  if (!env) {
    d["envelope"] = nullptr;
    return d;
  }
  d["envelope"] = {{"version", env->version},
                   {"sender_key", crypto::to_base64(env->sender)},
                   {"sender_mailbox", crypto::mailbox_id(env->sender)},
                   {"nonce_prefix", hex_prefix(env->nonce, 4)}};
  if (!keys) return d;
  auto opened = open_envelope(*keys, m.topic, m.payload);
  if (!opened) {
    d["decode_error"] = "no key opens it";
    return d;
  }
  d["opened_by"] = keys->secrets()[opened->key_index].name;
  const auto* msg = fb::GetMessage(opened->message.data());
  d["body_type"] = fb::EnumNameBody(msg->body_type());
  if (printer) {
    auto text = printer->to_json(opened->message);
    json parsed = text ? json::parse(*text, nullptr, false) : json(json::value_t::discarded);
    if (parsed.is_discarded()) {
      d["decode_error"] = "message does not convert to JSON";
    } else {
      d["message"] = std::move(parsed);
    }
  }
  return d;
}

std::string describe_line(const json& d) {
  char t[48];
  std::snprintf(t, sizeof t, "+%.6f", static_cast<double>(d.value("t_us", int64_t{0})) / 1e6);
  std::string line = std::string(t) + " " + d.value("topic", "") + " " +
                     std::to_string(d.value("size", size_t{0})) + "B q" +
                     std::to_string(d.value("qos", 0)) +
                     (d.value("retain", false) ? " retained" : "");
  if (d.contains("properties")) line += " props=" + d["properties"].dump();
  const auto& env = d["envelope"];
  if (env.is_null()) return line + " (not an envelope)";
  line += " v" + std::to_string(env.value("version", 0)) +
          " from=" + env.value("sender_mailbox", "") +
          " key=" + env.value("sender_key", "").substr(0, 8) +
          "… nonce=" + env.value("nonce_prefix", "");
  if (d.contains("decode_error")) line += " [" + d.value("decode_error", "") + "]";
  if (d.contains("body_type"))
    line += " " + d.value("body_type", "") + " (" + d.value("opened_by", "") + ")";
  if (d.contains("message")) line += " " + d["message"].dump();
  return line;
}

// ---- CLI
// ------------------------------------------------------------------------------------------

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app(
      "hmq-replay: record what crosses the Horizon-MQ bus, inspect it (decrypting with the "
      "parties' keys), and "
      "play it back.\nExit codes: 0 ok, 1 bad input (flags, files, keys), 2 refused by the broker, "
      "3 broker "
      "unreachable, 130 play interrupted. See docs/replay.md.",
      "hmq-replay");
  app.fallthrough();
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Progress and bus activity on stderr");

  std::function<int()> action;

  record_opts ro;
  auto* rec =
      app.add_subcommand("record", "Record every message on the given topic filters to a file");
  rec->add_option("-t,--topic", ro.filters,
                  "MQTT topic filter (repeat or list several), e.g. 'hmq/v1/#'")
      ->required()
      ->expected(1, -1);
  rec->add_option("-o,--output", ro.file, "Recording file to create (overwritten)")->required();
  rec->add_option("--duration", ro.duration_s,
                  "Stop after S seconds (default: until SIGINT/SIGTERM)")
      ->check(CLI::PositiveNumber);
  rec->add_option("--count", ro.count, "Stop after N messages")->check(CLI::PositiveNumber);
  rec->add_option("--broker", ro.broker,
                  "MQTT broker URI (tcp://, mqtt://, ssl://, mqtts://; env HMQ_BROKER)")
      ->capture_default_str();
  rec->add_option("--username", ro.username, "Broker user name");
  rec->add_option("--password", ro.password, "Broker password");
  rec->add_option("--exchange-user", ro.exchange_user,
                  "Connect as this exchange user's broker identity, ORG/USER:PASSWORD (a broker "
                  "with identities needs: hmq exchange user allow-record ORG/USER)")
      ->excludes("--username");
  rec->footer(
      "Records topic, payload, QoS, retain flag, MQTT v5 properties and receive time (us). "
      "Progress goes to "
      "stderr on a terminal or with -v. SIGINT/SIGTERM end the recording cleanly (the file is "
      "complete).");
  rec->callback([&] { action = [&] { return do_record(ro, verbose, out, err); }; });

  inspect_opts io;
  auto* ins =
      app.add_subcommand("inspect", "Print one line per recorded message; decrypt with --keys");
  ins->add_option("file", io.file, "Recording file")->required();
  ins->add_option("--keys", io.keys,
                  "Directory with the parties' key files (agent.key, agbot.key, exchange.key, "
                  "*.pub; searched two "
                  "levels deep): every envelope one of them opens is printed as JSON");
  ins->add_option("-o,--output", io.format, "text (one line per message) or json (one document)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  ins->callback([&] { action = [&] { return do_inspect(io, out, err); }; });

  play_opts po;
  auto* play = app.add_subcommand("play", "Publish a recording again, with its original spacing");
  play->add_option("file", po.file, "Recording file")->required();
  play->add_option("--broker", po.broker, "MQTT broker URI to publish to")->required();
  play->add_option("--speed", po.speed,
                   "Time scale: 2 = twice as fast, 0.5 = half speed, 0 = as fast as possible")
      ->capture_default_str();
  play->add_option("--filter", po.filters,
                   "Play only messages whose topic matches one of these filters")
      ->expected(1, -1);
  play->add_flag(
      "--reseal", po.reseal,
      "Decrypt each envelope with --keys and seal it again with a fresh nonce, message id and send "
      "time, so receivers with the same keys accept it (they reject the originals as duplicates or "
      "too old)");
  play->add_option("--keys", po.keys, "Key directory (as for inspect); needed by --reseal");
  play->add_option("-o,--output", po.format, "text or json (a summary on stdout)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  play->add_option("--username", po.username, "Broker user name");
  play->add_option("--password", po.password, "Broker password");
  play->callback([&] { action = [&] { return do_play(po, verbose, out, err); }; });

  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // program name
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return exit_ok;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    err << "hmq-replay: error: " << e.what() << "\n(run with --help for usage)\n";
    return exit_bad_input;
  }
  // A command's output is its answer: bus chatter only with -v.
  core::log::set_level(verbose ? "info" : "off");
  if (!action) {
    err << app.help();
    return exit_bad_input;
  }
  try {
    return action();
  } catch (const failure& f) {
    err << "hmq-replay: error: " << f.message << "\n";
    return f.code;
  }
}

}  // namespace hmq::tools::replay
