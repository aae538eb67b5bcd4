#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hmq::test {

struct broker_options {
  // Lines appended to the generated config (later lines win in mosquitto for most options).
  std::vector<std::string> extra_config;
  // How long start()/restart() wait for the port to accept connections.
  std::chrono::milliseconds ready_timeout{15'000};
  std::string program = "/usr/sbin/mosquitto";
};

// A private mosquitto for one test: its own free port on 127.0.0.1, its own temp dir holding
// the config, the persistence file and the log. The config is broker-config/mosquitto.conf
// (found through HMQ_SOURCE_DIR) with only the listener, persistence path, log destination and
// user replaced, so tests run against the shipped settings.
//
// Lifecycle: the constructor starts the broker and returns once the port accepts connections
// (throws with the broker log otherwise). kill_hard() is a crash (SIGKILL: nothing is saved
// beyond what autosave already wrote); stop() is a clean shutdown (SIGTERM: mosquitto saves
// its database); restart() starts it again on the same port with the same persistence file.
// The destructor kills it. One owner thread.
class mosquitto_broker {
 public:
  explicit mosquitto_broker(broker_options o = {});
  ~mosquitto_broker();
  mosquitto_broker(const mosquitto_broker&) = delete;
  mosquitto_broker& operator=(const mosquitto_broker&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  // "tcp://127.0.0.1:PORT" (what core::bus::options::broker_uri takes).
  std::string uri() const;

  // SIGKILL and reap: simulates a broker crash.
  void kill_hard();
  // SIGTERM and wait (bounded; SIGKILL after the timeout): mosquitto writes its database.
  void stop();
  // Start again (stopping cleanly first if running): same port, same persistence file.
  void restart();
  bool running();

  // SIGUSR1: ask mosquitto to write its database now (it does so from its main loop).
  void save_now();
  // Wait (bounded) until the broker starts a database save after this call: everything the
  // broker acknowledged before the call is then on disk, so a kill_hard() cannot lose it. Uses
  // the shipped autosave (it does not force a save). False on timeout.
  bool wait_for_autosave(std::chrono::milliseconds timeout = std::chrono::seconds(15));

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_file() const { return dir_ / "mosquitto.conf"; }
  std::filesystem::path persistence_file() const { return dir_ / "mosquitto.db"; }
  std::filesystem::path log_file() const { return dir_ / "mosquitto.log"; }
  // The broker's log so far (for failure messages).
  std::string log() const;

 private:
  void write_config();
  // Start and wait for readiness. Returns false if the broker exited early (port taken).
  bool launch();

  broker_options opts_;
  temp_dir dir_;
  int port_ = 0;
  std::optional<process> proc_;
};

// True once a TCP connect to host:port succeeds (one attempt, no waiting).
bool port_accepts(const std::string& host, int port);

}  // namespace hmq::test
