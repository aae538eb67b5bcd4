#include "tools/replay/recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "schema/recording_generated.h"

namespace hmq::tools::replay {

namespace fb = ::hmq::replay::fb;
using core::error;
using core::result;

namespace {

class replay_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "recording"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::io_error:
        return "i/o error";
      case errc::not_a_recording:
        return "not an hmq-replay recording";
      case errc::unsupported_version:
        return "unsupported recording version";
      case errc::truncated:
        return "truncated recording";
      case errc::corrupt_record:
        return "corrupt record";
    }
    return "unknown recording error " + std::to_string(c);
  }
};

error make_error(errc e, std::string detail) {
  return error{make_error_code(e), std::move(detail)};
}

template <typename T>
void put_le(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

template <typename T>
T get_le(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}

std::string where(uint64_t record_no, uint64_t offset) {
  return "record " + std::to_string(record_no) + ", byte offset " + std::to_string(offset);
}

}  // namespace

const std::error_category& category() {
  static const replay_category c;
  return c;
}

std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

// ---- encoding -----------------------------------------------------------------------------------

std::array<uint8_t, header_size> encode_header(const file_header& h) {
  std::array<uint8_t, header_size> out{};
  std::memcpy(out.data(), magic.data(), magic.size());
  put_le<uint16_t>(out.data() + 8, h.version);
  put_le<uint16_t>(out.data() + 10, h.flags);
  put_le<int64_t>(out.data() + 12, h.created_us);
  put_le<uint32_t>(out.data() + 20, 0);
  return out;
}

result<file_header> decode_header(std::span<const uint8_t> bytes) {
  // Magic first: a short foreign file is "not a recording", not "truncated".
  const size_t m = std::min(bytes.size(), magic.size());
  if (m == 0 || std::memcmp(bytes.data(), magic.data(), m) != 0) {
    return make_error(errc::not_a_recording, "not an hmq-replay recording (bad magic)");
  }
  if (bytes.size() < header_size) {
    return make_error(errc::truncated, "truncated in the file header (" +
                                           std::to_string(bytes.size()) + " of " +
                                           std::to_string(header_size) + " bytes)");
  }
  file_header h;
  h.version = get_le<uint16_t>(bytes.data() + 8);
  h.flags = get_le<uint16_t>(bytes.data() + 10);
  h.created_us = get_le<int64_t>(bytes.data() + 12);
  if (h.version != format_version) {
    return make_error(errc::unsupported_version,
                      "recording format version " + std::to_string(h.version) +
                          " is not supported (this hmq-replay reads version " +
                          std::to_string(format_version) + ")");
  }
  return h;
}

std::vector<uint8_t> encode_record(const record& r) {
  flatbuffers::FlatBufferBuilder b(256 + r.msg.payload.size());
  const auto& m = r.msg;
  auto topic = b.CreateString(m.topic);
  auto payload = b.CreateVector(m.payload);
  flatbuffers::Offset<flatbuffers::String> ct, rt;
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> cd;
  if (!m.content_type.empty()) ct = b.CreateString(m.content_type);
  if (!m.response_topic.empty()) rt = b.CreateString(m.response_topic);
  if (!m.correlation_data.empty()) cd = b.CreateVector(m.correlation_data);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::UserProperty>>> ups = 0;
  if (!m.user_props.empty()) {
    std::vector<flatbuffers::Offset<fb::UserProperty>> v;
    for (const auto& [k, val] : m.user_props)
      v.push_back(fb::CreateUserPropertyDirect(b, k.c_str(), val.c_str()));
    ups = b.CreateVector(v);
  }
  auto rec = fb::CreateRecord(b, r.received_us, topic, payload, static_cast<uint8_t>(m.qos),
                              m.retained, m.message_expiry_s, ct, rt, cd, m.payload_utf8, ups);
  fb::FinishRecordBuffer(b, rec);
  std::vector<uint8_t> out(length_prefix_size + b.GetSize());
  put_le<uint32_t>(out.data(), static_cast<uint32_t>(b.GetSize()));
  std::memcpy(out.data() + length_prefix_size, b.GetBufferPointer(), b.GetSize());
  return out;
}

result<record> decode_record(std::span<const uint8_t> buf) {
  flatbuffers::Verifier v(buf.data(), buf.size());
  if (!fb::VerifyRecordBuffer(v))
    return make_error(errc::corrupt_record, "record fails the Record verifier");
  const auto* f = fb::GetRecord(buf.data());
  record r;
  r.received_us = f->received_us();
  auto& m = r.msg;
  if (f->topic()) m.topic = f->topic()->str();
  if (f->payload()) m.payload.assign(f->payload()->begin(), f->payload()->end());
  m.qos = f->qos();
  if (m.qos > 2) return make_error(errc::corrupt_record, "record has QoS " + std::to_string(m.qos));
  m.retained = f->retain();
  m.message_expiry_s = f->message_expiry_s();
  if (f->content_type()) m.content_type = f->content_type()->str();
  if (f->response_topic()) m.response_topic = f->response_topic()->str();
  if (f->correlation_data())
    m.correlation_data.assign(f->correlation_data()->begin(), f->correlation_data()->end());
  m.payload_utf8 = f->payload_utf8();
  if (f->user_properties()) {
    for (const auto* up : *f->user_properties()) {
      m.user_props.emplace_back(up->key() ? up->key()->str() : "",
                                up->value() ? up->value()->str() : "");
    }
  }
  return r;
}

// ---- writer -------------------------------------------------------------------------------------

namespace {

result<void> write_all(int fd, const uint8_t* p, size_t n, const std::filesystem::path& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io_error, path.string() + ": " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return core::ok();
}

}  // namespace

result<writer> writer::create(const std::filesystem::path& path, const file_header& h) {
  writer w;
  w.path_ = path;
  w.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd_ < 0)
    return make_error(errc::io_error,
                      "cannot create " + path.string() + ": " + std::strerror(errno));
  auto hdr = encode_header(h);
  if (auto r = write_all(w.fd_, hdr.data(), hdr.size(), path); !r) return r.err();
  w.bytes_ = hdr.size();
  return w;
}

writer::writer(writer&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(std::exchange(o.fd_, -1)),
      records_(o.records_),
      bytes_(o.bytes_) {}

writer& writer::operator=(writer&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) (void)close();
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
    records_ = o.records_;
    bytes_ = o.bytes_;
  }
  return *this;
}

writer::~writer() {
  if (fd_ >= 0) (void)close();
}

result<void> writer::append(const record& r) {
  if (fd_ < 0) return make_error(errc::io_error, path_.string() + ": writer is closed");
  auto bytes = encode_record(r);
  if (bytes.size() - length_prefix_size > max_record_bytes) {
    return make_error(errc::corrupt_record,
                      "message on " + r.msg.topic + " is larger than a record may be");
  }
  // One write per record (unbuffered): after a crash the file holds whole records plus at most
  // one partial tail, and a reader stops with a clear "truncated" there.
  if (auto w = write_all(fd_, bytes.data(), bytes.size(), path_); !w) return w;
  ++records_;
  bytes_ += bytes.size();
  return core::ok();
}

result<void> writer::close() {
  if (fd_ < 0) return core::ok();
  const int fd = std::exchange(fd_, -1);
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  if (::close(fd) != 0 || !synced) {
    return make_error(errc::io_error,
                      path_.string() + ": " + std::strerror(synced ? errno : sync_errno));
  }
  return core::ok();
}

// ---- reader -------------------------------------------------------------------------------------

namespace {

result<file_header> read_header(std::istream& in) {
  std::array<uint8_t, header_size> h{};
  in.read(reinterpret_cast<char*>(h.data()), h.size());
  return decode_header(std::span<const uint8_t>(h.data(), static_cast<size_t>(in.gcount())));
}

}  // namespace

result<reader> reader::open(const std::filesystem::path& path) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in)
    return make_error(errc::io_error, "cannot open " + path.string() + ": " + std::strerror(errno));
  auto h = read_header(*in);
  if (!h) return error{h.err().code, path.string() + ": " + h.err().detail};
  reader r;
  r.in_ = std::move(in);
  r.header_ = *h;
  r.offset_ = header_size;
  return r;
}

result<reader> reader::from_bytes(std::vector<uint8_t> bytes) {
  auto in = std::make_unique<std::istringstream>(std::string(bytes.begin(), bytes.end()));
  auto h = read_header(*in);
  if (!h) return h.err();
  reader r;
  r.in_ = std::move(in);
  r.header_ = *h;
  r.offset_ = header_size;
  return r;
}

bool reader::read_exact(uint8_t* out, size_t n, size_t& got) {
  in_->read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
  got = static_cast<size_t>(in_->gcount());
  return got == n;
}

result<std::optional<record>> reader::next() {
  const uint64_t no = records_ + 1;
  const uint64_t start = offset_;
  uint8_t len_bytes[length_prefix_size];
  size_t got = 0;
  if (!read_exact(len_bytes, sizeof len_bytes, got)) {
    if (got == 0 && in_->eof()) return std::optional<record>{};  // clean end
    if (in_->bad()) return make_error(errc::io_error, "read error at " + where(no, start));
    return make_error(errc::truncated, "truncated at " + where(no, start));
  }
  const uint32_t len = get_le<uint32_t>(len_bytes);
  if (len > max_record_bytes) {
    return make_error(errc::corrupt_record, "corrupt " + where(no, start) + ": length " +
                                                std::to_string(len) + " exceeds the limit of " +
                                                std::to_string(max_record_bytes));
  }
  std::vector<uint8_t> buf(len);
  if (!read_exact(buf.data(), len, got)) {
    return make_error(errc::truncated, "truncated at " + where(no, start) + " (" +
                                           std::to_string(got) + " of " + std::to_string(len) +
                                           " record bytes present)");
  }
  auto r = decode_record(buf);
  if (!r)
    return make_error(errc::corrupt_record, "corrupt " + where(no, start) + ": " + r.err().detail);
  offset_ = start + length_prefix_size + len;
  ++records_;
  return std::optional<record>(std::move(*r));
}

read_all_result read_all(const std::filesystem::path& path) {
  read_all_result out;
  auto rd = reader::open(path);
  if (!rd) {
    out.error = rd.err();
    return out;
  }
  out.header = rd->header();
  for (;;) {
    auto n = rd->next();
    if (!n) {
      out.error = n.err();
      return out;
    }
    if (!*n) return out;
    out.records.push_back(std::move(**n));
  }
}

}  // namespace hmq::tools::replay
