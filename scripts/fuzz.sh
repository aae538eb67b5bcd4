#!/usr/bin/env bash
# Runs a real libFuzzer session on one target of tests/fuzz/ (every *_fuzz.cc), built with the
# "fuzz" preset (clang-14, -fsanitize=fuzzer,address,undefined, build/fuzz). The session starts
# from a copy of the committed seed corpus (tests/fuzz/corpus/TARGET) in build/fuzz/corpus/TARGET,
# so what it finds does not touch the repository; a crash input is written to
# build/fuzz/crashes/TARGET/ and the script exits non-zero. Prints libFuzzer's exec count.
#
#   scripts/fuzz.sh list               the targets
#   scripts/fuzz.sh TARGET [SECONDS]   fuzz TARGET for SECONDS (default 60)
#   scripts/fuzz.sh all [SECONDS]      every target in turn (one at a time)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$HMQ_ROOT"

targets() { for f in tests/fuzz/*_fuzz.cc; do basename "$f" _fuzz.cc; done; }

[ $# -ge 1 ] || { sed -n '2,11p' "$0"; exit 2; }
if [ "$1" = list ]; then targets; exit 0; fi
seconds="${2:-60}"
if [ "$1" = all ]; then
  names=($(targets))
else
  # Not grep -q: it stops reading at the match, and pipefail would count the writer's SIGPIPE.
  targets | grep -x "$1" >/dev/null || die "no fuzz target '$1' (scripts/fuzz.sh list)"
  names=("$1")
fi

install_packages "${HMQ_FUZZ_PACKAGES[@]}"
log "building the fuzz preset (build/fuzz): ${names[*]}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake --preset fuzz "${launcher[@]}" >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target $(printf '%s_fuzzer ' "${names[@]}")

status=0
for name in "${names[@]}"; do
  corpus=build/fuzz/corpus/$name crashes=build/fuzz/crashes/$name
  mkdir -p "$corpus" "$crashes"
  cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  log "fuzzing $name for ${seconds}s"
  logf=build/fuzz/$name.log
  # The envelope target takes inputs up to the production cap (256 KiB) and a little over it.
  max_len=65536
  [ "$name" = envelope ] && max_len=262400
  set +e
  build/fuzz/tests/fuzz/${name}_fuzzer "$corpus" -max_total_time="$seconds" -artifact_prefix="$crashes/" \
    -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$logf" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logf" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -n1 || true)
  echo "$name: ${execs} execs in ${seconds}s, ${cov:-cov: ?}, exit $rc"
  if [ $rc -ne 0 ]; then
    status=1
    echo "---- $name failed; last lines of $logf (crash inputs in $crashes/):"
    tail -n 40 "$logf"
  fi
done
exit $status
