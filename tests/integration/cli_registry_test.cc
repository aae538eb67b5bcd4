// Digest resolution against a tiny local HTTP responder that speaks just enough of the Docker
// Registry HTTP API v2 (HEAD/GET manifests, basic auth, Docker-Content-Digest).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "cli/registry.h"

namespace hmq::cli {
namespace {

constexpr const char* digest =
    "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899";

// Serves one connection at a time until destroyed. Answers:
//   /v2/app/manifests/1.0 with "Authorization: Basic dXNlcjpwYXNz" (user:pass) -> 200 + digest
//   same without or with other credentials -> 401
//   /v2/nodigest/manifests/1.0 -> 200 without the digest header
//   anything else -> 404
class fake_registry {
 public:
  fake_registry() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(::listen(fd_, 8), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~fake_registry() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      std::string first = req.substr(0, req.find("\r\n"));
      bool head = first.rfind("HEAD ", 0) == 0;
      bool authed = req.find("Authorization: Basic dXNlcjpwYXNz\r\n") != std::string::npos;
      std::string resp;
      std::string body = "{\"schemaVersion\":2}";
      if (first.find(" /v2/app/manifests/1.0 ") != std::string::npos) {
        resp = authed ? "HTTP/1.1 200 OK\r\nDocker-Content-Digest: " + std::string(digest) + "\r\n"
                      : "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n";
      } else if (first.find(" /v2/nodigest/manifests/1.0 ") != std::string::npos) {
        resp = "HTTP/1.1 200 OK\r\n";
      } else {
        resp = "HTTP/1.1 404 Not Found\r\n";
      }
      resp +=
          "Content-Type: application/vnd.docker.distribution.manifest.v2+json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
      if (!head) resp += body;
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(cli_registry, resolves_tag_to_digest_with_basic_auth) {
  fake_registry reg;
  std::vector<registry_credentials> creds = {{reg.host(), "user", "pass"}};
  auto d = resolve_digest(reg.host() + "/app:1.0", creds);
  ASSERT_TRUE(d.ok()) << d.err().message();
  EXPECT_EQ(*d, digest);
}

TEST(cli_registry, refusal_without_credentials_says_which_registry_and_how_to_fix) {
  fake_registry reg;
  auto d = resolve_digest(reg.host() + "/app:1.0", {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), registry_errc::refused);
  EXPECT_NE(d.err().detail.find(reg.host()), std::string::npos) << d.err().detail;
  EXPECT_NE(d.err().detail.find("-r"), std::string::npos) << d.err().detail;

  auto wrong = resolve_digest(reg.host() + "/app:1.0", {{reg.host(), "user", "nope"}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), registry_errc::refused);
}

TEST(cli_registry, unknown_image_is_not_found) {
  fake_registry reg;
  auto d = resolve_digest(reg.host() + "/other:2", {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), registry_errc::not_found);
}

TEST(cli_registry, answer_without_digest_header_is_refused_not_guessed) {
  fake_registry reg;
  auto d = resolve_digest(reg.host() + "/nodigest:1.0", {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), registry_errc::bad_answer);
  EXPECT_EQ(reg.requests(), 2);  // HEAD, then GET
}

TEST(cli_registry, unreachable_registry_is_a_clear_error) {
  int port;
  {
    fake_registry reg;  // take a port, then free it
    port = std::stoi(reg.host().substr(10));
  }
  auto d =
      resolve_digest("127.0.0.1:" + std::to_string(port) + "/app:1.0", {}, std::chrono::seconds(5));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.code(), registry_errc::unreachable);
  EXPECT_NE(d.err().detail.find("cannot reach registry"), std::string::npos) << d.err().detail;
}

TEST(cli_registry, image_with_digest_needs_no_registry) {
  auto d = resolve_digest(std::string("127.0.0.1:1/app@") + digest, {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, digest);
}

TEST(cli_registry, parses_references_and_flags) {
  auto r = parse_image_reference("busybox");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "registry-1.docker.io");
  EXPECT_EQ(r->repository, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  r = parse_image_reference("localhost:5000/a/b:1.2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "localhost:5000");
  EXPECT_EQ(r->repository, "a/b");
  EXPECT_EQ(r->tag, "1.2");
  EXPECT_FALSE(parse_image_reference("Upper/Case").ok());
  EXPECT_EQ(registry_base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
  EXPECT_EQ(registry_base_url("registry.example.com"), "https://registry.example.com");

  auto f = parse_registry_flag("127.0.0.1:5000:user:tok");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->registry, "127.0.0.1:5000");
  EXPECT_EQ(f->username, "user");
  EXPECT_EQ(f->token, "tok");
  EXPECT_FALSE(parse_registry_flag("justone").ok());
}

}  // namespace
}  // namespace hmq::cli
