#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

// JSON text of decrypted Messages for `hmq-replay inspect`.
//
// Why the FlatBuffers parser (idl.h GenerateText) with the schema text embedded at build time,
// and not hand-written printers or mini-reflection: the schema has 11 body types and dozens of
// tables that keep growing (append-only), and a printer driven by the very .fbs files the code
// is generated from can never fall behind them. flatbuffers 2.0.8's Parser needs no extra build
// step (mini-reflection would need --reflect-names on the shared schema build, binary schemas a
// second flatc run), and the output is strict JSON with enum names, so nlohmann can re-read it.
// The .fbs files are concatenated without their `include` lines, so nothing is read from disk.
namespace hmq::tools::replay {

class message_json {
 public:
  // Parses the embedded schema once (a few milliseconds).
  message_json();
  ~message_json();
  message_json(const message_json&) = delete;
  message_json& operator=(const message_json&) = delete;

  bool ok() const { return error_.empty(); }
  // Why the embedded schema did not parse (a build problem, never the input's fault).
  const std::string& error() const { return error_; }

  // Compact JSON of a verified Message buffer; nullopt when the text generator refuses it.
  std::optional<std::string> to_json(std::span<const uint8_t> message) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string error_;
};

// The concatenated schema text (generated at configure time from schema/*.fbs).
extern const char* const embedded_message_schema;

}  // namespace hmq::tools::replay
