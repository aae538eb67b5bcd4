#!/usr/bin/env bash
# Runs every test of Horizon-MQ on a fresh Debian 12 machine: installs what is missing,
# refuses a mis-formatted source (clang-format), builds with -Werror, runs clang-tidy's fatal
# checks, runs the unit, integration and fuzz-corpus tests, then the unit tests again under
# ASan+UBSan.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         only one ctest label (unit | integration | fuzz | e2e)
#   HMQ_SKIP_ASAN=1 scripts/test.sh skip the sanitizer pass
#   HMQ_SKIP_TIDY=1 scripts/test.sh skip clang-tidy (the format check always runs)
#   HMQ_JOBS=N                      build/test parallelism (default: nproc)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$HMQ_ROOT"

label_args=("$@")
jobs="${HMQ_JOBS:-$(nproc)}"
start=$(date +%s)

install_packages "${HMQ_BUILD_PACKAGES[@]}" "${HMQ_RUNTIME_PACKAGES[@]}" "${HMQ_CONTAINER_PACKAGES[@]}" \
  "${HMQ_LINT_PACKAGES[@]}"
start_dockerd

# Formatting first: it takes a second and a mis-formatted file fails the run (scripts/lint.sh).
bash scripts/lint.sh format

log "configuring and building (build/ci, -Werror)"
cmake --preset ci >/dev/null
cmake --build build/ci -j "$jobs"

status=0
if [ -z "${HMQ_SKIP_TIDY:-}" ] && [ ${#label_args[@]} -eq 0 ]; then
  HMQ_BUILD_DIR=build/ci bash scripts/lint.sh tidy || status=$?
fi

log "running tests"
ctest --test-dir build/ci --output-on-failure -j "$jobs" "${label_args[@]}" || status=$?

if [ -z "${HMQ_SKIP_ASAN:-}" ] && [ ${#label_args[@]} -eq 0 ]; then
  log "building and running unit + fuzz-corpus tests under ASan+UBSan (build/asan)"
  cmake --preset asan >/dev/null
  cmake --build build/asan -j "$jobs" --target all_unit_tests all_fuzz_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j "$jobs" -L 'unit|fuzz' || status=$?
fi

log "done in $(( $(date +%s) - start )) s, exit status $status"
exit $status
