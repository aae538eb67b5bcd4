#pragma once

#include <filesystem>
#include <string_view>

namespace hmq::test {

// A fresh directory under $TMPDIR (or /tmp) that is removed with everything in it when the
// object dies. Set HMQ_KEEP_TEMP=1 to keep it for a post-mortem (the path is logged to stderr).
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "hmq-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it (bind to port 0), and
// we release it at once. Another process could take it before the caller binds it; callers that
// start a server retry with a new port when that happens (mosquitto_broker does).
int free_port();

}  // namespace hmq::test
