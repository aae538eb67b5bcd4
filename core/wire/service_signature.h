#pragma once

#include <cstdint>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "schema/types_generated.h"

// What a publisher signs for a service (Service.service_signature; docs/protocol.md "Signed
// services"): everything an agent acts on, not only the deployment. The signed bytes are a
// canonical encoding built from the service's fields, so the signature travels alone and the
// service stays one table; anyone who changes a covered field (relabels the service, moves it
// to another version or arch, widens its sharing, adds a required service or an input) breaks
// it.
//
//   "hmq service v1" 0x00
//   org, url, version, arch                          (each: u32 LE length, bytes)
//   sharable                                         (u8)
//   required_services: u32 LE count, then per service org, url, version_range, arch
//   user_inputs:       u32 LE count, then per input name, label, type, default_value,
//                      has_default (u8)
//   BLAKE2b-256 of the deployment bytes              (32 bytes)
namespace hmq::core::wire {

namespace fb = ::hmq::wire::fb;

std::vector<uint8_t> service_signed_bytes(const fb::Service& s);
std::vector<uint8_t> service_signed_bytes(const fb::ServiceT& s);

// Signs `s` with the publisher's key: publisher_key, service_signature and, for agents older
// than service signatures, deployment_signature. Call after every covered field is final.
void sign_service(fb::ServiceT& s, const crypto::sign_keypair& kp);

// Checks service_signature against publisher_key. The error's detail is a sentence for the
// operator (e.g. "signed in the old format (deployment only): re-publish it with `hmq exchange
// service publish`"); errc::bad_signature for all failures. Does not say whether the key is
// trusted: that is the node's trust store.
result<void> verify_service(const fb::Service& s);
result<void> verify_service(const fb::ServiceT& s);

}  // namespace hmq::core::wire
