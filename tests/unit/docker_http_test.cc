// The agent's HTTP/1.1 client reads the Docker Engine's answers, which are untrusted: the response
// parser must frame bodies right whatever the read sizes, and bound or reject everything else.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/docker/http.h"

namespace hmq::agent::docker::http {
namespace {

struct parsed {
  result<void> r = core::ok();
  bool done = false;
  int status = 0;
  std::string body;
};

// Feeds `wire` in pieces of `step` bytes (0: all at once), then signals end of stream if `eof`.
parsed parse(std::string_view wire, size_t step = 0, bool eof = true, limits l = {},
             bool head = false) {
  response_parser p(l, head);
  parsed out;
  auto sink = [&](const response&, std::string_view d) {
    out.body.append(d);
    return true;
  };
  if (step == 0) step = wire.size() ? wire.size() : 1;
  for (size_t i = 0; i < wire.size() && out.r.ok() && !p.done(); i += step)
    out.r = p.feed(wire.substr(i, step), sink);
  if (out.r.ok() && eof) out.r = p.finish(sink);
  out.done = p.done();
  out.status = p.head().status;
  return out;
}

const std::string chunked =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "7\r\n{\"a\":1}\r\n"
    "1;ext=1\r\n\n\r\n"
    "10\r\n{\"status\":\"ok\"}\n\r\n"
    "0\r\nX-Trailer: 1\r\n\r\n";
const std::string chunked_body = "{\"a\":1}\n{\"status\":\"ok\"}\n";

TEST(docker_http_parser, decodes_a_chunked_body_split_at_every_byte_boundary) {
  for (size_t step = 1; step <= chunked.size(); ++step) {
    auto p = parse(chunked, step, false);
    ASSERT_TRUE(p.r.ok()) << "step " << step << ": " << p.r.err().message();
    EXPECT_TRUE(p.done) << "step " << step;
    EXPECT_EQ(p.status, 200);
    EXPECT_EQ(p.body, chunked_body) << "step " << step;
  }
  // And split into exactly two reads at every position.
  for (size_t cut = 0; cut <= chunked.size(); ++cut) {
    response_parser p;
    std::string body;
    auto sink = [&](const response&, std::string_view d) {
      body.append(d);
      return true;
    };
    ASSERT_TRUE(p.feed(std::string_view(chunked).substr(0, cut), sink).ok()) << cut;
    ASSERT_TRUE(p.feed(std::string_view(chunked).substr(cut), sink).ok()) << cut;
    EXPECT_TRUE(p.done());
    EXPECT_EQ(body, chunked_body) << cut;
  }
}

TEST(docker_http_parser, frames_a_content_length_body_and_ignores_what_follows) {
  std::string wire =
      "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nApi-Version: "
      "1.41\r\n\r\n{\"Id\":\"ab\"}\nGARBAGE";
  for (size_t step = 1; step <= wire.size(); ++step) {
    auto p = parse(wire, step, false);
    ASSERT_TRUE(p.r.ok()) << step;
    EXPECT_TRUE(p.done);
    EXPECT_EQ(p.status, 201);
    EXPECT_EQ(p.body, "{\"Id\":\"ab\"}\n");
  }
  response_parser hp;
  ASSERT_TRUE(
      hp.feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\napi-version:  1.41 \r\n\r\nabc", {}).ok());
  ASSERT_NE(hp.head().header("api-version"), nullptr);
  EXPECT_EQ(*hp.head().header("api-version"), "1.41");
  EXPECT_EQ(hp.head().header("content-type"), nullptr);
}

TEST(docker_http_parser, reads_a_body_without_length_until_close) {
  auto p = parse("HTTP/1.0 200 OK\r\n\r\nall of it", 3);
  ASSERT_TRUE(p.r.ok());
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.body, "all of it");
  // Bare LF line ends are read too.
  auto lf = parse("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 1, false);
  ASSERT_TRUE(lf.r.ok());
  EXPECT_EQ(lf.body, "ok");
}

TEST(docker_http_parser, knows_answers_without_a_body) {
  for (const char* wire : {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                           "HTTP/1.1 304 Not Modified\r\n\r\n"}) {
    auto p = parse(wire, 0, false);
    ASSERT_TRUE(p.r.ok()) << wire;
    EXPECT_TRUE(p.done) << wire;
    EXPECT_EQ(p.body, "");
  }
  auto head = parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 0, false, {}, true);
  ASSERT_TRUE(head.r.ok());
  EXPECT_TRUE(head.done);
}

TEST(docker_http_parser, skips_interim_answers) {
  auto p = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1,
                 false);
  ASSERT_TRUE(p.r.ok());
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body, "ok");
  std::string many;
  for (int i = 0; i < 20; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
  EXPECT_EQ(parse(many + "HTTP/1.1 200 OK\r\n\r\n").r.code(), errc::bad_response);
  EXPECT_EQ(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\n\r\n").r.code(),
            errc::bad_response);
}

TEST(docker_http_parser, rejects_truncated_answers_at_end_of_stream) {
  const std::string full = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  // Every proper prefix of a Content-Length answer is truncated.
  for (size_t n = 0; n < full.size(); ++n) {
    auto p = parse(full.substr(0, n), 0, true);
    EXPECT_EQ(p.r.code(), errc::bad_response) << n;
  }
  // Every proper prefix of a chunked answer, up to its trailer block's final CRLF.
  for (size_t n = 0; n < chunked.size(); ++n) {
    auto p = parse(chunked.substr(0, n), 0, true);
    EXPECT_EQ(p.r.code(), errc::bad_response) << n;
  }
}

TEST(docker_http_parser, rejects_malformed_heads) {
  for (const char* wire : {
           "HTTP/2 200 OK\r\n\r\n",
           "ICY 200 OK\r\n\r\n",
           "HTTP/1.1 20 OK\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 099 Low\r\n\r\n",
           "HTTP/1.1 600 High\r\n\r\n",
           "HTTP/1.1 2x0 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
           "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
           "HTTP/1.1 200 OK\r\nA: 1\r2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       }) {
    auto p = parse(wire);
    EXPECT_FALSE(p.r.ok()) << wire;
  }
}

TEST(docker_http_parser, rejects_malformed_chunks) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* body : {
           "x\r\n",                     // not hex
           "\r\n",                      // empty size line
           "3 x\r\nabc\r\n0\r\n\r\n",   // junk after the size
           "3\r\nabcd\r\n0\r\n\r\n",    // data longer than its size
           "3\r\nab\r\n\r\n0\r\n\r\n",  // CRLF where data belongs, then junk
           "-1\r\n",
           "11111111111111111\r\n",  // overflows 64 bits
       }) {
    auto p = parse(head + body);
    EXPECT_FALSE(p.r.ok()) << body;
  }
  // Trailer fields are checked like headers.
  EXPECT_FALSE(parse(head + "0\r\n bad trailer\r\n\r\n").r.ok());
}

TEST(docker_http_parser, bounds_lines_headers_chunks_and_body) {
  limits l;
  l.max_line = 64;
  l.max_header_bytes = 256;
  l.max_headers = 4;
  l.max_chunk = 16;
  l.max_body = 32;
  auto code = [&](const std::string& wire) { return parse(wire, 7, true, l).r.code(); };
  EXPECT_EQ(code("HTTP/1.1 200 " + std::string(100, 'a') + "\r\n\r\n"), errc::too_large);
  EXPECT_EQ(code("HTTP/1.1 200 OK\r\nA: " + std::string(100, 'a') + "\r\n\r\n"), errc::too_large);
  // A line that never ends is cut off at the bound, not buffered.
  EXPECT_EQ(code("HTTP/1.1 200 OK\r\nA: " + std::string(100000, 'a')), errc::too_large);
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 5; ++i) many += "H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(code(many + "\r\n"), errc::too_large);
  std::string big_block = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 4; ++i)
    big_block += "H" + std::to_string(i) + ": " + std::string(58, 'v') + "\r\n";
  EXPECT_EQ(code(big_block + "\r\n"), errc::too_large);
  EXPECT_EQ(code("HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n"), errc::too_large);
  EXPECT_EQ(code("HTTP/1.1 200 OK\r\n\r\n" + std::string(33, 'b')), errc::too_large);
  const std::string ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(code(ch + "11\r\n"), errc::too_large);  // 17 > max_chunk
  EXPECT_EQ(code(ch + "10\r\n" + std::string(16, 'c') + "\r\n10\r\n" + std::string(16, 'c') +
                 "\r\n1\r\n"),
            errc::too_large);  // the third chunk passes max_body
  std::string trailers = ch + "0\r\n";
  for (int i = 0; i < 5; ++i) trailers += "T: 1\r\n";
  EXPECT_EQ(code(trailers + "\r\n"), errc::too_large);
  // Within the bounds the same shapes parse.
  EXPECT_TRUE(parse(ch + "10\r\n" + std::string(16, 'c') + "\r\n10\r\n" + std::string(16, 'c') +
                        "\r\n0\r\n\r\n",
                    5, false, l)
                  .r.ok());
}

TEST(docker_http_parser, stays_failed_and_stops_when_the_receiver_says_so) {
  response_parser p;
  int calls = 0;
  auto stop = [&](const response&, std::string_view) {
    ++calls;
    return false;
  };
  auto r = p.feed("HTTP/1.1 200 OK\r\n\r\nabc", stop);
  EXPECT_EQ(r.code(), errc::stopped);
  EXPECT_EQ(p.feed("more", stop).code(), errc::stopped);
  EXPECT_EQ(p.finish(stop).code(), errc::stopped);
  EXPECT_EQ(calls, 1);
}

TEST(docker_http_lines, splits_lines_across_reads_and_bounds_them) {
  line_splitter s(8);
  std::vector<std::string> got;
  auto on = [&](std::string_view l) { got.emplace_back(l); };
  EXPECT_TRUE(s.feed("a\nbc", on));
  EXPECT_TRUE(s.feed("d\n\nef", on));
  EXPECT_TRUE(s.feed("g\nh", on));
  EXPECT_EQ(got, (std::vector<std::string>{"a", "bcd", "", "efg"}));
  EXPECT_EQ(s.rest(), "h");
  line_splitter b(8);
  EXPECT_TRUE(b.feed("1234", on));
  EXPECT_FALSE(b.feed("56789", on));
  line_splitter c(8);
  EXPECT_FALSE(c.feed("123456789", on));
}

TEST(docker_http_request, is_serialized_with_length_and_refuses_injection) {
  request r;
  r.method = "POST";
  r.target = "/v1.41/containers/create?name=x";
  r.headers = {"X-Registry-Auth: abc"};
  r.body = "{}";
  r.content_type = "application/json";
  auto w = serialize(r);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->substr(0, 43), "POST /v1.41/containers/create?name=x HTTP/1");
  EXPECT_NE(w->find("\r\nX-Registry-Auth: abc\r\n"), std::string::npos);
  EXPECT_NE(w->find("\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
            std::string::npos);
  EXPECT_NE(w->find("\r\nConnection: close\r\n"), std::string::npos);
  request g;
  g.target = "/v1.41/_ping";
  auto gw = serialize(g);
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(gw->find("Content-Length"), std::string::npos);
  for (const char* t : {"/images/a b/json", "/images/a\r\nX: 1/json", "images", ""}) {
    request bad;
    bad.target = t;
    EXPECT_EQ(serialize(bad).code(), errc::bad_request) << t;
  }
  request bad_header = r;
  bad_header.headers = {"X-Registry-Auth: a\r\nX-Evil: 1"};
  EXPECT_EQ(serialize(bad_header).code(), errc::bad_request);
  request bad_method = r;
  bad_method.method = "GET /x HTTP/1.1\r\n";
  EXPECT_EQ(serialize(bad_method).code(), errc::bad_request);
}

}  // namespace
}  // namespace hmq::agent::docker::http
