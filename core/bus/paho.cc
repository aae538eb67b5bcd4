#include "core/bus/paho.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>

namespace hmq::core::bus::paho {

namespace {

constexpr const char* plain_library = "libpaho-mqtt3a.so.1";
constexpr const char* tls_library = "libpaho-mqtt3as.so.1";

template <typename F>
bool bind(void* lib, const char* name, F& out, std::string& error) {
  out = reinterpret_cast<F>(::dlsym(lib, name));
  if (out == nullptr) error = std::string("symbol ") + name + " missing";
  return out != nullptr;
}

std::optional<api> open(bool tls, std::string& error) {
  const char* name = tls ? tls_library : plain_library;
  void* lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    error = std::string("cannot load the Paho MQTT C library ") + name +
            " (Debian package libpaho-mqtt1.3): " + (why ? why : "unknown error");
    return std::nullopt;
  }
  api a;
  a.tls = tls;
  std::string e;
  const bool ok = bind(lib, "MQTTAsync_createWithOptions", a.create, e) &&
                  bind(lib, "MQTTAsync_setCallbacks", a.set_callbacks, e) &&
                  bind(lib, "MQTTAsync_setDisconnected", a.set_disconnected, e) &&
                  bind(lib, "MQTTAsync_connect", a.connect, e) &&
                  bind(lib, "MQTTAsync_disconnect", a.disconnect, e) &&
                  bind(lib, "MQTTAsync_isConnected", a.is_connected, e) &&
                  bind(lib, "MQTTAsync_subscribe", a.subscribe, e) &&
                  bind(lib, "MQTTAsync_unsubscribe", a.unsubscribe, e) &&
                  bind(lib, "MQTTAsync_sendMessage", a.send_message, e) &&
                  bind(lib, "MQTTAsync_freeMessage", a.free_message, e) &&
                  bind(lib, "MQTTAsync_free", a.free, e) &&
                  bind(lib, "MQTTAsync_destroy", a.destroy, e) &&
                  bind(lib, "MQTTAsync_strerror", a.strerror, e) &&
                  bind(lib, "MQTTProperties_add", a.properties_add, e) &&
                  bind(lib, "MQTTProperties_free", a.properties_free, e);
  if (!ok) {
    error = std::string(name) + ": " + e + " (Paho MQTT C >= 1.3 is required)";
    ::dlclose(lib);
    return std::nullopt;
  }
  if (tls) {
    // Paho would initialise OpenSSL itself (configuration, error strings, every cipher) at the
    // first client; OpenSSL >= 1.1 initialises what a connection needs on its own.
    decltype(&::MQTTAsync_global_init) global_init = nullptr;
    if (bind(lib, "MQTTAsync_global_init", global_init, e)) {
      MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
      init.do_openssl_init = 0;
      global_init(&init);
    }
  }
  // Never dlclose()d: Paho's threads live as long as the process.
  return a;
}

std::mutex mutex;
std::optional<api> plain;
std::optional<api> with_tls;

}  // namespace

const api* load(bool tls, std::string& error) {
  std::lock_guard lock(mutex);
  if (with_tls) return &*with_tls;
  if (!tls && plain) return &*plain;
  auto& slot = tls ? with_tls : plain;
  slot = open(tls, error);
  return slot ? &*slot : nullptr;
}

}  // namespace hmq::core::bus::paho
