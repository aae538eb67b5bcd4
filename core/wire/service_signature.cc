#include "core/wire/service_signature.h"

#include <string_view>

namespace hmq::core::wire {
namespace {

constexpr std::string_view magic{"hmq service v1\0", 15};
constexpr size_t deployment_hash_bytes = 32;

class writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void str(const flatbuffers::String* s) {
    const std::string_view v = s ? s->string_view() : std::string_view{};
    u32(static_cast<uint32_t>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  void raw(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

template <typename T>
uint32_t count(const flatbuffers::Vector<flatbuffers::Offset<T>>* v) {
  return v ? static_cast<uint32_t>(v->size()) : 0;
}

result<void> refuse(std::string why) {
  return error{crypto::make_error_code(crypto::errc::bad_signature), std::move(why)};
}

// The table form of an object-API service (one encoder for both).
flatbuffers::DetachedBuffer packed(const fb::ServiceT& s) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Service::Pack(b, &s));
  return b.Release();
}

const fb::Service* root(const flatbuffers::DetachedBuffer& buf) {
  return flatbuffers::GetRoot<fb::Service>(buf.data());
}

}  // namespace

std::vector<uint8_t> service_signed_bytes(const fb::Service& s) {
  writer w;
  w.raw({reinterpret_cast<const uint8_t*>(magic.data()), magic.size()});
  w.str(s.org());
  w.str(s.url());
  w.str(s.version());
  w.str(s.arch());
  w.u8(static_cast<uint8_t>(s.sharable()));
  w.u32(count(s.required_services()));
  if (s.required_services())
    for (const auto* r : *s.required_services()) {
      w.str(r ? r->org() : nullptr);
      w.str(r ? r->url() : nullptr);
      w.str(r ? r->version_range() : nullptr);
      w.str(r ? r->arch() : nullptr);
    }
  w.u32(count(s.user_inputs()));
  if (s.user_inputs())
    for (const auto* u : *s.user_inputs()) {
      w.str(u ? u->name() : nullptr);
      w.str(u ? u->label() : nullptr);
      w.str(u ? u->type() : nullptr);
      w.str(u ? u->default_value() : nullptr);
      w.u8(u && u->has_default() ? 1 : 0);
    }
  std::span<const uint8_t> dep;
  if (s.deployment()) dep = {s.deployment()->data(), s.deployment()->size()};
  w.raw(crypto::generic_hash(dep, deployment_hash_bytes));
  return w.take();
}

std::vector<uint8_t> service_signed_bytes(const fb::ServiceT& s) {
  return service_signed_bytes(*root(packed(s)));
}

void sign_service(fb::ServiceT& s, const crypto::sign_keypair& kp) {
  s.publisher_key.assign(kp.pk.begin(), kp.pk.end());
  const auto dsig = crypto::sign_detached(s.deployment, kp.sk);
  s.deployment_signature.assign(dsig.begin(), dsig.end());
  const auto ssig = crypto::sign_detached(service_signed_bytes(s), kp.sk);
  s.service_signature.assign(ssig.begin(), ssig.end());
}

result<void> verify_service(const fb::Service& s) {
  if (!s.publisher_key() || s.publisher_key()->size() != crypto::public_key_size)
    return refuse("has no valid publisher key");
  if (!s.service_signature() || s.service_signature()->size() == 0) {
    if (s.deployment_signature() && s.deployment_signature()->size() > 0)
      return refuse(
          "is signed in the old format (its deployment only): re-publish it with `hmq exchange "
          "service publish`");
    return refuse("is not signed");
  }
  if (s.service_signature()->size() != crypto::signature_size)
    return refuse("has a malformed signature");
  const auto bytes = service_signed_bytes(s);
  if (!crypto::verify_detached(bytes,
                               {s.service_signature()->data(), s.service_signature()->size()},
                               {s.publisher_key()->data(), s.publisher_key()->size()}))
    return refuse(
        "does not match its publisher's signature (its identity, sharing, required services, "
        "user inputs or deployment were changed after signing)");
  return core::ok();
}

result<void> verify_service(const fb::ServiceT& s) {
  return verify_service(*root(packed(s)));
}

}  // namespace hmq::core::wire
