// What the envelope costs on top of the cryptography it wraps. For a message body of 200 bytes
// and of 4 KiB (a Cancel whose text is that long):
//   codec_seal_open     build_message + codec::seal + codec::open (Verifier x2, dedup): the
//                       full per-message cost of sending and receiving
//   box_seal_open       crypto_box_easy + crypto_box_open_easy alone on the same Message bytes
//   box_afternm         the same with a precomputed shared key (what a session key would save)
//   build_message       FlatBuffers encode alone
//   decode              Verifier + reading the fields alone
// Run a Release build: scripts/bench.sh, or build-rel/bench/crypto_bench.
#include <benchmark/benchmark.h>

#include <string>

#include "core/wire/codec.h"

namespace {

using namespace hmq::core;
namespace fb = wire::fb;

std::vector<uint8_t> cancel_message(const loop::clock& clock, const std::string& text) {
  return wire::build_message({}, clock, fb::Body::Cancel, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelDirect(b, "0123456789abcdef0123456789abcdef",
                                  fb::CancelReason::ab_node_heartbeat, text.c_str())
        .Union();
  });
}

struct parties {
  crypto::box_keypair alice = crypto::box_keypair::generate();
  crypto::box_keypair bob = crypto::box_keypair::generate();
  loop::manual_clock clock;
};

void codec_seal_open(benchmark::State& state) {
  parties p;
  wire::codec alice(p.alice, p.clock);
  wire::codec bob(p.bob, p.clock);
  const std::string text(static_cast<size_t>(state.range(0)), 'x');
  size_t envelope_bytes = 0;
  for (auto _ : state) {
    auto env = alice.seal(cancel_message(p.clock, text), p.bob.pk);
    envelope_bytes = env.size();
    auto r = bob.open(env);
    if (!r) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(r);
  }
  state.counters["envelope_bytes"] = static_cast<double>(envelope_bytes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void box_seal_open(benchmark::State& state) {
  parties p;
  const auto msg = cancel_message(p.clock, std::string(static_cast<size_t>(state.range(0)), 'x'));
  for (auto _ : state) {
    const crypto::nonce n = crypto::random_nonce();
    auto boxed = crypto::box_seal(msg, n, p.bob.pk, p.alice.sk);
    auto r = crypto::box_open(boxed, n, p.alice.pk, p.bob.sk);
    if (!r) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(r);
  }
  state.counters["message_bytes"] = static_cast<double>(msg.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void box_afternm(benchmark::State& state) {
  parties p;
  const auto msg = cancel_message(p.clock, std::string(static_cast<size_t>(state.range(0)), 'x'));
  const crypto::shared_key ab = crypto::precompute(p.bob.pk, p.alice.sk);
  const crypto::shared_key ba = crypto::precompute(p.alice.pk, p.bob.sk);
  for (auto _ : state) {
    const crypto::nonce n = crypto::random_nonce();
    auto boxed = crypto::box_seal_with(msg, n, ab);
    auto r = crypto::box_open_with(boxed, n, ba);
    if (!r) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void build_message(benchmark::State& state) {
  loop::manual_clock clock;
  const std::string text(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    auto msg = cancel_message(clock, text);
    benchmark::DoNotOptimize(msg);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void decode(benchmark::State& state) {
  loop::manual_clock clock;
  const auto msg = cancel_message(clock, std::string(static_cast<size_t>(state.range(0)), 'x'));
  for (auto _ : state) {
    flatbuffers::Verifier v(msg.data(), msg.size());
    if (!fb::VerifyMessageBuffer(v)) state.SkipWithError("verify failed");
    const fb::Message* m = fb::GetMessage(msg.data());
    const fb::Cancel* c = m->body_as_Cancel();
    benchmark::DoNotOptimize(m->id());
    benchmark::DoNotOptimize(m->sent_ms());
    benchmark::DoNotOptimize(c->reason());
    benchmark::DoNotOptimize(c->agreement_id()->size());
    benchmark::DoNotOptimize(c->message()->size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

BENCHMARK(codec_seal_open)->Arg(200)->Arg(4096);
BENCHMARK(box_seal_open)->Arg(200)->Arg(4096);
BENCHMARK(box_afternm)->Arg(200)->Arg(4096);
BENCHMARK(build_message)->Arg(200)->Arg(4096);
BENCHMARK(decode)->Arg(200)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
