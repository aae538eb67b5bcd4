#include "tools/replay/message_json.h"

#include <flatbuffers/idl.h>

namespace hmq::tools::replay {

struct message_json::impl {
  flatbuffers::Parser parser;
  explicit impl(const flatbuffers::IDLOptions& o) : parser(o) {}
};

message_json::message_json() {
  flatbuffers::IDLOptions o;
  o.strict_json = true;
  o.indent_step = -1;  // one line
  o.output_enum_identifiers = true;
  o.output_default_scalars_in_json = false;
  impl_ = std::make_unique<impl>(o);
  if (!impl_->parser.Parse(embedded_message_schema)) {
    error_ = "embedded schema does not parse: " + impl_->parser.error_;
  } else if (!impl_->parser.SetRootType("hmq.wire.fb.Message")) {
    error_ = "embedded schema has no Message";
  }
}

message_json::~message_json() = default;

std::optional<std::string> message_json::to_json(std::span<const uint8_t> message) const {
  if (!ok()) return std::nullopt;
  std::string out;
  // The buffer was verified by the caller (GenerateText trusts its input).
  if (!flatbuffers::GenerateText(impl_->parser, message.data(), &out)) return std::nullopt;
  return out;
}

}  // namespace hmq::tools::replay
