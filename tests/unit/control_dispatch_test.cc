#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/control/control.h"

namespace hmq::core::control {
namespace {

// Runs one line through dispatch_line with an echo handler and returns the single reply.
json answer(std::string_view line, int* handler_calls = nullptr) {
  std::optional<json> out;
  int replies = 0;
  dispatch_line(
      line,
      [&](const json& req, reply_fn reply) {
        if (handler_calls) ++*handler_calls;
        reply(ok_response({{"echo", req["op"]}}));
      },
      [&](json r) {
        ++replies;
        out = std::move(r);
      });
  EXPECT_EQ(replies, 1);
  return out.value_or(json());
}

TEST(control_dispatch, passes_an_object_with_op_to_the_handler) {
  // A well-formed request reaches the handler and its answer is returned unchanged.
  int calls = 0;
  json r = answer(R"({"op":"status"})", &calls);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["echo"], "status");
}

TEST(control_dispatch, answers_bad_json_with_an_error_and_never_calls_the_handler) {
  int calls = 0;
  for (std::string_view bad :
       {"{", "not json", "", "\xff\xfe", "[1,2]", "42", R"({"op":7})", R"({"x":"y"})"}) {
    json r = answer(bad, &calls);
    EXPECT_EQ(r["ok"], false) << bad;
    EXPECT_TRUE(r["error"].is_string()) << bad;
  }
  EXPECT_EQ(calls, 0);
}

TEST(control_dispatch, accepts_a_trailing_carriage_return) {
  EXPECT_EQ(answer("{\"op\":\"x\"}\r")["ok"], true);
}

TEST(control_dispatch, handler_that_throws_gets_one_error_reply) {
  // A handler reading a field with the wrong type throws; the client still gets one answer.
  int replies = 0;
  json out;
  dispatch_line(R"({"op":"register","node":5})",
                [](const json& req, reply_fn) { (void)req.at("node").get<std::string>(); },
                [&](json r) {
                  ++replies;
                  out = std::move(r);
                });
  EXPECT_EQ(replies, 1);
  EXPECT_EQ(out["ok"], false);
}

TEST(control_dispatch, reply_after_throw_is_not_sent_twice) {
  int replies = 0;
  dispatch_line(R"({"op":"x"})",
                [](const json&, reply_fn reply) {
                  reply(ok_response());
                  throw std::runtime_error("late");
                },
                [&](json) { ++replies; });
  EXPECT_EQ(replies, 1);
}

TEST(control_response, ok_response_merges_fields_and_error_response_carries_text) {
  json r = ok_response({{"n", 3}});
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["n"], 3);
  json e = error_response("nope");
  EXPECT_EQ(e["ok"], false);
  EXPECT_EQ(e["error"], "nope");
}

}  // namespace
}  // namespace hmq::core::control
