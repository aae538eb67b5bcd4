// Fuzzes the HTTP/1.1 response parser of the agent's Docker Engine client (agent/docker/http.h):
// every byte the Engine (or whatever listens on the configured socket) sends goes through it.
// The first input byte picks the read size (1..64 bytes per feed), a HEAD request (bit 6) and
// tight limits (bit 7); the rest is the answer. Besides "never crash", it checks that parsing is
// independent of how the bytes are split (the same outcome and code as one single read, and the
// same body),
// and that no bound is exceeded.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "agent/docker/http.h"

namespace {

using namespace hmq::agent::docker;

struct outcome {
  bool ok = false;
  std::error_code code;
  bool done = false;
  std::string body;
};

outcome run(std::string_view wire, size_t step, bool head, const http::limits& l) {
  http::response_parser p(l, head);
  outcome o;
  auto sink = [&](const http::response& r, std::string_view d) {
    if (r.status < 200 || r.status > 599 || r.headers.size() > l.max_headers) std::abort();
    o.body.append(d);
    return true;
  };
  hmq::core::result<void> r = hmq::core::ok();
  for (size_t i = 0; i < wire.size() && r.ok() && !p.done(); i += step)
    r = p.feed(wire.substr(i, step), sink);
  if (r.ok()) r = p.finish(sink);
  o.ok = r.ok();
  o.code = r.code();
  o.done = p.done();
  if (o.body.size() > l.max_body || p.body_bytes() != o.body.size()) std::abort();
  // The events and pull streams split the body into lines; exercise that too.
  http::line_splitter lines(l.max_line);
  (void)lines.feed(o.body, [](std::string_view) {});
  return o;
}

void write_seed(const std::filesystem::path& dir, const std::string& name, uint8_t mode,
                std::string_view wire) {
  std::ofstream(dir / name, std::ios::binary) << static_cast<char>(mode) << wire;
}

// One chunk of a chunked body.
std::string chunk(std::string_view data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + std::string(data) + "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t step = (mode & 0x3f) + 1;
  bool head = mode & 0x40;
  http::limits l;
  if (mode & 0x80) {
    l.max_line = 48;
    l.max_header_bytes = 160;
    l.max_headers = 4;
    l.max_chunk = 24;
    l.max_body = 64;
  }
  outcome split = run(wire, step, head, l);
  outcome whole = run(wire, wire.size() ? wire.size() : 1, head, l);
  if (split.ok != whole.ok || split.code != whole.code || split.done != whole.done) std::abort();
  // On success the bodies are equal; on failure each delivered what it had parsed before the
  // error (a streamed body is delivered as it comes), so one is a prefix of the other.
  const std::string& shorter = split.body.size() < whole.body.size() ? split.body : whole.body;
  const std::string& longer = split.body.size() < whole.body.size() ? whole.body : split.body;
  if (split.ok ? split.body != whole.body : longer.compare(0, shorter.size(), shorter) != 0)
    std::abort();
  if (split.ok && !split.done) std::abort();
  return 0;
}

// Seed corpus (replay binary: docker_http_replay --write-seeds DIR), shaped like Engine v1.41
// answers: mode byte 0x00 = one byte per read, 0x0f = 16, 0x3f = 64, | 0x40 HEAD, | 0x80 tight.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d);
  write_seed(dir, "ping", 0x0f,
             "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nCache-Control: no-cache, no-store, "
             "must-revalidate\r\n"
             "Content-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\nDocker-Experimental: "
             "false\r\n"
             "Ostype: linux\r\nPragma: no-cache\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\n"
             "Date: Sat, 28 Nov 2026 17:00:00 GMT\r\n\r\nOK");
  write_seed(
      dir, "container_create", 0x00,
      "HTTP/1.1 201 Created\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
      "Content-Length: "
      "88\r\n\r\n{\"Id\":\"4f1c5d8e9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d\","
      "\"Warnings\":[]}\n");
  write_seed(dir, "start_no_content", 0x03, "HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n");
  write_seed(dir, "not_modified", 0x03, "HTTP/1.1 304 Not Modified\r\nApi-Version: 1.41\r\n\r\n");
  write_seed(
      dir, "error_404", 0x07,
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n"
      "{\"message\":\"No such container: hmq-x-gps\"}\n\n\n");
  write_seed(
      dir, "pull_chunked", 0x05,
      std::string("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n") +
          chunk("{\"status\":\"Pulling from hmq-examples/gps\",\"id\":\"1.0\"}\n") +
          chunk("{\"status\":\"Digest: sha256:aa\"}\n{\"a\":1}\n") + "0\r\n\r\n");
  write_seed(
      dir, "events_stream", 0x3f,
      std::string("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n") +
          chunk("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"4f1c\","
                "\"Attributes\":"
                "{\"exitCode\":\"137\",\"name\":\"hmq-x-gps\"}},\"time\":1,\"timeNano\":1}\n"));
  write_seed(dir, "chunk_extension_trailer", 0x02,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
             "CHUNKED\r\n\r\n3;name=value\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n");
  write_seed(dir, "read_to_close", 0x01,
             "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
  write_seed(dir, "interim_continue", 0x00,
             "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  write_seed(dir, "head_request", 0x43, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
  write_seed(dir, "bare_lf", 0x04, "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc");
  write_seed(dir, "tight_oversize_chunk", 0x86,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'x') +
                 "\r\n0\r\n\r\n");
  write_seed(
      dir, "tight_many_headers", 0x81,
      "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nContent-Length: 0\r\n\r\n");
  write_seed(dir, "smuggling_both_framings", 0x09,
             "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  write_seed(dir, "conflicting_lengths", 0x09,
             "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde");
  write_seed(dir, "huge_chunk_size", 0x09,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n");
  write_seed(dir, "truncated_body", 0x09, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  write_seed(dir, "folded_header", 0x09, "HTTP/1.1 200 OK\r\nA: 1\r\n  continued\r\n\r\n");
  write_seed(dir, "garbage", 0x09, "\x16\x03\x01\x02\x7f\x01\x7f\x01\xfc\x03\x03 not http at all");
}
