// Time from docker_runtime::deploy() to all three example containers started (images cached),
// on the real Docker Engine, and the resident memory of a process holding the runtime with one
// agreement deployed. Needs the example images: run scripts/build-example-images.sh first; the
// bench reads its digests.txt and password from HMQ_REGISTRY_DIR (default /var/lib/hmq/registry).
#include <benchmark/benchmark.h>

#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "agent/docker/client.h"
#include "agent/docker/runtime.h"
#include "support/loop_thread.h"

namespace {

using namespace hmq;
using namespace hmq::agent;
namespace fb = ::hmq::wire::fb;

struct example_images {
  std::map<std::string, std::pair<std::string, std::string>> by_name;  // name -> (image, digest)
  std::string password;
  std::string registry;
};

std::optional<example_images> load_images() {
  const char* d = std::getenv("HMQ_REGISTRY_DIR");
  std::string dir = d ? d : "/var/lib/hmq/registry";
  std::ifstream f(dir + "/digests.txt");
  example_images out;
  std::string name, ref;
  while (f >> name >> ref) {
    auto at = ref.find('@');
    if (at == std::string::npos) continue;
    out.by_name[name] = {ref.substr(0, at), ref.substr(at + 1)};
    out.registry = ref.substr(0, ref.find('/'));
  }
  const char* pw = std::getenv("HMQ_REGISTRY_PASSWORD");
  if (pw) {
    out.password = pw;
  } else {
    std::ifstream p(dir + "/password");
    std::getline(p, out.password);
  }
  if (out.by_name.size() != 3) return std::nullopt;
  return out;
}

fb::ProposedServiceT service(const example_images& e, const std::string& name, bool top,
                             std::vector<std::string> requires_) {
  fb::ProposedServiceT ps;
  ps.service = std::make_unique<fb::ServiceT>();
  ps.service->org = "bench";
  ps.service->url = name;
  ps.service->sharable = fb::Sharing::multiple;
  for (auto& r : requires_) {
    auto ref = std::make_unique<fb::ServiceRefT>();
    ref->org = "bench";
    ref->url = r;
    ps.service->required_services.push_back(std::move(ref));
  }
  fb::DeploymentT d;
  auto c = std::make_unique<fb::ContainerT>();
  c->name = name;
  c->image = e.by_name.at(name).first;
  c->image_digest = e.by_name.at(name).second;
  d.containers.push_back(std::move(c));
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Deployment::Pack(b, &d));
  ps.service->deployment.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  auto a = std::make_unique<fb::DockAuthT>();
  a->registry = e.registry;
  a->username = "hmq";
  a->token = e.password;
  ps.service->dockauths.push_back(std::move(a));
  ps.is_top_level = top;
  return ps;
}

workload example(const example_images& e, int n) {
  workload w;
  char id[40];
  std::snprintf(id, sizeof id, "beac%028x", n);
  w.agreement_id = id;
  w.node_org = "bench";
  w.node_id = "node";
  w.pattern = "bench/example";
  w.arch = "amd64";
  w.services.push_back(service(e, "gps", false, {}));
  w.services.push_back(service(e, "cpu", false, {}));
  w.services.push_back(service(e, "consumer", true, {"gps", "cpu"}));
  return w;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

void BM_deploy_example_cached(benchmark::State& state) {
  auto images = load_images();
  if (!images) {
    state.SkipWithError(
        "no example images: run scripts/build-example-images.sh (or set HMQ_REGISTRY_DIR)");
    return;
  }
  test::loop_thread lt;
  std::unique_ptr<docker::client> c;
  std::unique_ptr<docker::docker_runtime> rt;
  lt.call([&] {
    c = std::make_unique<docker::client>(lt.loop());
    docker::runtime_options o;
    o.keep_images = true;  // cached images are the point of this bench
    o.stop_timeout_s = 2;
    rt = std::make_unique<docker::docker_runtime>(lt.loop(), *c, o);
    rt->start();
    return 0;
  });
  auto call = [&](auto fn) {
    std::promise<result<void>> p;
    auto f = p.get_future();
    lt.call([&] {
      fn([&p](result<void> r) { p.set_value(std::move(r)); });
      return 0;
    });
    return f.get();
  };
  int n = 0;
  // Warm-up: pulls the images once if they are not local yet.
  {
    auto w = example(*images, n++);
    auto r = call([&](done_fn cb) { rt->deploy(w, std::move(cb)); });
    if (!r) {
      state.SkipWithError(r.err().message().c_str());
      return;
    }
    (void)call([&](done_fn cb) { rt->remove(w.agreement_id, std::move(cb)); });
  }
  long rss_one = 0;
  for (auto _ : state) {
    auto w = example(*images, n++);
    auto r = call([&](done_fn cb) { rt->deploy(w, std::move(cb)); });
    state.PauseTiming();
    if (!r) {
      state.SkipWithError(r.err().message().c_str());
      break;
    }
    rss_one = rss_kib();
    (void)call([&](done_fn cb) { rt->remove(w.agreement_id, std::move(cb)); });
    state.ResumeTiming();
  }
  state.counters["rss_kib_one_agreement"] = static_cast<double>(rss_one);
  lt.call([&] {
    rt.reset();
    c.reset();
    return 0;
  });
}
BENCHMARK(BM_deploy_example_cached)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
