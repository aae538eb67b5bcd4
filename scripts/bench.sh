#!/usr/bin/env bash
# Runs every benchmark in bench/ on a Release build and writes the figures to
# bench/results/latest.json (and each benchmark's own output to bench/results/NAME.txt), then
# draws the PNG plots (bench/plot.sh). docs/PERFORMANCE.md explains every figure.
# Benchmarks print numbers; nothing here asserts a timing.
#
#   scripts/bench.sh               all benchmarks
#   scripts/bench.sh crypto_bench  only the named ones
#   fleet_bench [1000,10000] and netem_bench [idle minutes, 10] take arguments when run by hand
#   rollout_bench runs twice: 50 real agents (its default), then `--sim 1000` (1,000 simulated
#   nodes in hmq-fleetsim, max in flight 100, issue 6's figure); both figures go to latest.json,
#   and the --sim run's progress over time to rollout_progress_1000.{dat,json} (plot:
#   rollout_progress.png)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$HMQ_ROOT"

install_packages "${HMQ_BUILD_PACKAGES[@]}" "${HMQ_RUNTIME_PACKAGES[@]}" "${HMQ_BENCH_PACKAGES[@]}"
log "building Release benchmarks (build/release)"
cmake --preset release >/dev/null
cmake --build build/release -j "$(nproc)"

out=bench/results
mkdir -p "$out"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in bench/*_bench.cc; do names+=("$(basename "$f" .cc)"); done
fi
for name in "${names[@]}"; do
  bin=build/release/bench/$name
  [ -x "$bin" ] || die "no benchmark binary $bin"
  log "running $name"
  if grep -q BENCHMARK_MAIN "bench/$name.cc"; then
    "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json | tee "$out/$name.txt"
  else
    "$bin" | tee "$out/$name.txt"
  fi
  if [ "$name" = rollout_bench ]; then
    log "running rollout_bench --sim 1000 100 1"
    HMQ_BENCH_RESULTS="$out" "$bin" --sim 1000 100 1 | tee -a "$out/$name.txt"
  fi
done

# latest.json: Google Benchmark JSON as is; other benchmarks' "BENCH_JSON {...}" lines parsed,
# and their full text kept next to them.
python3 - "$out" "${names[@]}" <<'PY'
import json, sys, os, datetime, platform
out, names = sys.argv[1], sys.argv[2:]
doc = {"generated": datetime.datetime.utcnow().isoformat() + "Z", "host": platform.node(),
       "cpus": os.cpu_count(), "results": {}}
for n in names:
    entry = {}
    jpath = os.path.join(out, n + ".json")
    if os.path.exists(jpath):
        with open(jpath) as f:
            entry["google_benchmark"] = json.load(f)
    tpath = os.path.join(out, n + ".txt")
    if os.path.exists(tpath):
        with open(tpath) as f:
            text = f.read()
        entry["text"] = text
        figures = [json.loads(l[len("BENCH_JSON "):]) for l in text.splitlines() if l.startswith("BENCH_JSON ")]
        if figures:
            entry["figures"] = figures
    doc["results"][n] = entry
with open(os.path.join(out, "latest.json"), "w") as f:
    json.dump(doc, f, indent=1)
print("wrote", os.path.join(out, "latest.json"))
PY

log "drawing plots"
bench/plot.sh "$out" || log "plots skipped"
