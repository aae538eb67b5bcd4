#!/usr/bin/env bash
# The project's habits, checked: every C++ source is formatted with the project's .clang-format,
# and clang-tidy's fatal checks (.clang-tidy: use-after-move, dangling handles, ignored results,
# ...) find nothing in the sources outside tests/. scripts/test.sh (and so CI) runs it first.
#
#   scripts/lint.sh                  format check + clang-tidy (needs build/ci/compile_commands.json)
#   scripts/lint.sh format           only the format check and the layering check (a few seconds)
#   scripts/lint.sh layers           only the layering check (docs/architecture.md "may include")
#   scripts/lint.sh fix              reformat every source in place (then review and commit)
#   HMQ_BUILD_DIR=build/debug scripts/lint.sh tidy    clang-tidy against another build's commands
#
# Exit status: 0 clean, 1 a finding (each is printed with its file and line), 2 a tool is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$HMQ_ROOT"

what="${1:-all}"
jobs="${HMQ_JOBS:-$(nproc)}"
build_dir="${HMQ_BUILD_DIR:-build/ci}"
clang_format=clang-format-14
clang_tidy=clang-tidy-14

need() { command -v "$1" >/dev/null || { echo "lint: $1 is missing (apt-get install ${2:-$1})" >&2; exit 2; }; }

# Every tracked C++ source, generated headers excluded (they are never tracked).
sources() { git ls-files '*.cc' '*.h'; }

check_format() {
  need "$clang_format" clang-format-14
  local bad
  bad=$(sources | xargs -r "$clang_format" --dry-run 2>&1 | grep -oE '^[^:]+:[0-9]+:[0-9]+: (warning|error)' \
        | cut -d: -f1 | sort -u || true)
  if [ -n "$bad" ]; then
    echo "lint: these files are not formatted as .clang-format says (fix: scripts/lint.sh fix):" >&2
    echo "$bad" | sed 's/^/  /' >&2
    return 1
  fi
  log "format: $(sources | wc -l) sources formatted as .clang-format says"
}

# The "may include" column of docs/architecture.md: each folder's quoted includes may name only
# these prefixes (its own folder always). An arrow running back up, or sideways between two
# daemons, fails the run with the file and line.
declare -A HMQ_MAY_INCLUDE=(
  [core/common]=""
  [core/loop]=""
  [core/log]=""
  [core/crypto]="core/common/"
  [core/store]="core/common/ core/loop/"
  [core/control]="core/common/ core/log/"
  [core/wire]="core/common/ core/crypto/ core/log/ core/loop/ schema/"
  [core/bus]="core/common/ core/crypto/ core/log/ core/loop/ core/wire/ schema/"
  [exchange_client]="core/ schema/"
  [exchange]="core/ schema/ exchange_client/ids.h"
  [agbot]="core/ schema/ exchange_client/"
  [agent/docker]="core/ agent/seams.h"
  [agent]="core/ schema/ exchange_client/ agent/docker/"
  [cli]="core/ schema/ exchange_client/"
  [tools/replay]="core/ schema/"
  [tools/fleetsim]="core/ schema/ exchange_client/ agent/"
)

check_layers() {
  local bad=0 dir file line inc ok p
  # Longest folder first, so agent/docker is judged by its own row, not agent's.
  for dir in $(printf '%s\n' "${!HMQ_MAY_INCLUDE[@]}" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2); do
    while IFS=: read -r file line inc; do
      [ -n "$file" ] || continue
      # A pathspec's * crosses folders: agent/ files in agent/docker/ are agent/docker's.
      case "$file" in agent/docker/*) [ "$dir" = agent ] && continue ;; esac
      inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
      ok=0
      case "$inc" in "$dir"/*) ok=1 ;; esac
      for p in ${HMQ_MAY_INCLUDE[$dir]}; do case "$inc" in "$p"*) ok=1 ;; esac; done
      if [ "$ok" = 0 ]; then
        echo "lint: $file:$line includes \"$inc\", which $dir/ may not (docs/architecture.md)" >&2
        bad=1
      fi
    done < <(git grep -n '^#include "' -- "$dir/*.cc" "$dir/*.h" 2>/dev/null || true)
  done
  [ "$bad" = 0 ] || return 1
  log "layers: every include follows docs/architecture.md"
}

run_tidy() {
  need "$clang_tidy" clang-tidy-14
  [ -f "$build_dir/compile_commands.json" ] ||
    { echo "lint: $build_dir/compile_commands.json is missing: configure and build first (cmake --preset ci)" >&2; return 2; }
  # Sources of the daemons, the CLI and the tools (tests and benchmarks are left out to keep CI
  # time small; the checks are about production code). Generated FlatBuffers headers must exist,
  # so this runs after the build.
  local files
  files=$(sources | grep -E '^(core|exchange|exchange_client|agbot|agent|cli|tools)/.*\.cc$')
  local n; n=$(echo "$files" | wc -l)
  log "clang-tidy: $n sources, $jobs at a time (.clang-tidy: fatal checks only)"
  local out; out=$(mktemp)
  local t0; t0=$(date +%s)
  # -quiet: no per-file banner; a finding is printed as file:line: error: ... [check-name].
  # clang 14 compiles C++20 coroutines but does not announce them (__cpp_impl_coroutine), so
  # libstdc++'s <coroutine> and Asio hide co_await from it; the agent's Docker client
  # (agent/docker, Asio coroutines) then fails to parse. Say what clang 14 supports.
  local coro=(--extra-arg=-D__cpp_impl_coroutine=201902L --extra-arg=-DASIO_HAS_CO_AWAIT=1
              --extra-arg=-DASIO_HAS_STD_COROUTINE=1)
  if ! echo "$files" | xargs -P "$jobs" -n 4 "$clang_tidy" -quiet -p "$build_dir" "${coro[@]}" >"$out" 2>&1; then
    grep -E ': (error|warning):' "$out" >&2 || cat "$out" >&2
    rm -f "$out"
    echo "lint: clang-tidy found the problems above" >&2
    return 1
  fi
  rm -f "$out"
  log "clang-tidy: clean in $(( $(date +%s) - t0 )) s"
}

case "$what" in
  all) check_format; check_layers; run_tidy ;;
  format) check_format; check_layers ;;
  layers) check_layers ;;
  tidy) run_tidy ;;
  fix) need "$clang_format" clang-format-14; sources | xargs -r "$clang_format" -i; log "reformatted; review with git diff" ;;
  -h|--help|help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "lint: unknown command '$what' (all | format | layers | tidy | fix | help)" >&2; exit 2 ;;
esac
