#pragma once

#include <MQTTAsync.h>

#include <string>

// Paho MQTT C, loaded at run time. Debian ships it as two libraries with the same API:
// libpaho-mqtt3a (plain TCP) and libpaho-mqtt3as (TLS, linked against OpenSSL). Linking one of
// them fixes the choice for every process; loading it when the first client is created lets a
// process that only talks tcp:// run without OpenSSL mapped (about 2 MB of an agent's resident
// memory, docs/agent.md "Memory") while ssl:// still works. core/bus/client.cc is the only user.
namespace hmq::core::bus::paho {

struct api {
  decltype(&::MQTTAsync_createWithOptions) create;
  decltype(&::MQTTAsync_setCallbacks) set_callbacks;
  decltype(&::MQTTAsync_setDisconnected) set_disconnected;
  decltype(&::MQTTAsync_connect) connect;
  decltype(&::MQTTAsync_disconnect) disconnect;
  decltype(&::MQTTAsync_isConnected) is_connected;
  decltype(&::MQTTAsync_subscribe) subscribe;
  decltype(&::MQTTAsync_unsubscribe) unsubscribe;
  decltype(&::MQTTAsync_sendMessage) send_message;
  decltype(&::MQTTAsync_freeMessage) free_message;
  decltype(&::MQTTAsync_free) free;
  decltype(&::MQTTAsync_destroy) destroy;
  decltype(&::MQTTAsync_strerror) strerror;
  decltype(&::MQTTProperties_add) properties_add;
  decltype(&::MQTTProperties_free) properties_free;
  bool tls = false;  // the TLS variant (serves tcp:// too)
};

// The Paho library for a client: the TLS variant for ssl://; for tcp:// the plain one, unless
// the TLS variant is already loaded (one set of Paho threads per process where possible).
// Thread-safe. nullptr with `error` set when the library is missing or incomplete.
const api* load(bool tls, std::string& error);

}  // namespace hmq::core::bus::paho
