#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/bus/client.h"
#include "core/common/result.h"

// The hmq-replay recording file (docs/replay.md): a fixed 24-byte header, then records, each a
// little-endian u32 length followed by one FlatBuffers `Record` (schema/recording.fbs).
//
//   offset 0  8 bytes  magic "\x89HMQREC\n" (the high byte and newline catch text-mode mangling)
//   offset 8  u16 LE   format version (format_version)
//   offset 10 u16 LE   flags (flag_* below; unknown bits are ignored by readers)
//   offset 12 i64 LE   created, unix microseconds
//   offset 20 u32      reserved, 0
//
// A record is complete or absent: the writer emits each one with a single write, so a recorder
// killed mid-way leaves at worst a truncated last record, which the reader reports by number
// and byte offset.
namespace hmq::tools::replay {

constexpr std::array<char, 8> magic = {'\x89', 'H', 'M', 'Q', 'R', 'E', 'C', '\n'};
constexpr uint16_t format_version = 1;
constexpr size_t header_size = 24;
constexpr size_t length_prefix_size = 4;
// Bound on one record (mosquitto's default message_size_limit is 256 MB; ours is far lower):
// a corrupt length never makes the reader allocate gigabytes.
constexpr uint32_t max_record_bytes = 16 * 1024 * 1024;
// Header flag bit 0: recorded over MQTT v5, so the property fields are meaningful.
constexpr uint16_t flag_mqtt_v5 = 1;

enum class errc {
  ok = 0,
  io_error = 1,             // cannot open, read or write the file
  not_a_recording = 2,      // wrong magic: some other file
  unsupported_version = 3,  // a format version this build does not read
  truncated = 4,            // file ends inside the header or a record
  corrupt_record = 5,       // length over the bound or the Record fails the Verifier
};
const std::error_category& category();
std::error_code make_error_code(errc e);

struct file_header {
  uint16_t version = format_version;
  uint16_t flags = flag_mqtt_v5;
  int64_t created_us = 0;
};

// One recorded message: what the bus delivered (topic, payload, QoS, retain, v5 properties)
// and when.
struct record {
  int64_t received_us = 0;
  core::bus::inbound msg;
};

// Header bytes and one record's bytes (length prefix included), for the writer and for tests.
std::array<uint8_t, header_size> encode_header(const file_header& h);
std::vector<uint8_t> encode_record(const record& r);
// Parses a header; errc::not_a_recording, unsupported_version or truncated.
core::result<file_header> decode_header(std::span<const uint8_t> bytes);
// Verifies and decodes one Record buffer (without its length prefix).
core::result<record> decode_record(std::span<const uint8_t> buf);

// Appends records to a new file. Not thread-safe (the recorder's loop thread owns it).
class writer {
 public:
  // Creates (truncates) `path` and writes the header.
  static core::result<writer> create(const std::filesystem::path& path, const file_header& h);
  // Move-only: the moved-from writer gives up the file descriptor.
  writer(writer&& o) noexcept;
  writer& operator=(writer&& o) noexcept;
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer();

  core::result<void> append(const record& r);
  // Flushes and fsyncs; the file is complete afterwards. Idempotent.
  core::result<void> close();

  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }  // file size so far, header included

 private:
  writer() = default;
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

// Reads a recording front to back. Errors name the record (1-based) and the byte offset where
// it starts, e.g. "truncated at record 3, byte offset 412".
class reader {
 public:
  static core::result<reader> open(const std::filesystem::path& path);
  // Reads from memory (tests, fuzzing).
  static core::result<reader> from_bytes(std::vector<uint8_t> bytes);

  const file_header& header() const { return header_; }
  // The next record, std::nullopt at a clean end of file, or an error.
  core::result<std::optional<record>> next();
  // Records returned so far.
  uint64_t records() const { return records_; }

 private:
  reader() = default;
  bool read_exact(uint8_t* out, size_t n, size_t& got);

  std::unique_ptr<std::istream> in_;
  file_header header_;
  uint64_t offset_ = 0;
  uint64_t records_ = 0;
};

// Every record of a file, or the first error (the records before it are kept).
struct read_all_result {
  file_header header;
  std::vector<record> records;
  std::optional<core::error> error;
};
read_all_result read_all(const std::filesystem::path& path);

}  // namespace hmq::tools::replay

template <>
struct std::is_error_code_enum<hmq::tools::replay::errc> : std::true_type {};
