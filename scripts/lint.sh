#!/usr/bin/env bash
# The project's habits, checked: every C++ source is formatted with the project's .clang-format,
# and clang-tidy's fatal checks (.clang-tidy: use-after-move, dangling handles, ignored results,
# ...) find nothing in the sources outside tests/. scripts/test.sh (and so CI) runs it first.
#
#   scripts/lint.sh                  format check + clang-tidy (needs build/ci/compile_commands.json)
#   scripts/lint.sh format           only the format check (a second or two)
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
  if ! echo "$files" | xargs -P "$jobs" -n 4 "$clang_tidy" -quiet -p "$build_dir" >"$out" 2>&1; then
    grep -E ': (error|warning):' "$out" >&2 || cat "$out" >&2
    rm -f "$out"
    echo "lint: clang-tidy found the problems above" >&2
    return 1
  fi
  rm -f "$out"
  log "clang-tidy: clean in $(( $(date +%s) - t0 )) s"
}

case "$what" in
  all) check_format; run_tidy ;;
  format) check_format ;;
  tidy) run_tidy ;;
  fix) need "$clang_format" clang-format-14; sources | xargs -r "$clang_format" -i; log "reformatted; review with git diff" ;;
  -h|--help|help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "lint: unknown command '$what' (all | format | tidy | fix | help)" >&2; exit 2 ;;
esac
