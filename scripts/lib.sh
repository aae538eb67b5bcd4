#!/usr/bin/env bash
# Shared helpers for scripts/*.sh: package installation and service start-up. Sourced, not run.

HMQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian 12 packages the build, the tests and the quickstart need.
HMQ_BUILD_PACKAGES=(
  cmake ninja-build g++ pkg-config git
  libpaho-mqtt-dev libpaho-mqttpp-dev flatbuffers-compiler libflatbuffers-dev libsodium-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libasio-dev libsqlite3-dev
  sqlite3 libcurl4-openssl-dev libcli11-dev nlohmann-json3-dev
)
HMQ_RUNTIME_PACKAGES=(mosquitto mosquitto-clients)
HMQ_CONTAINER_PACKAGES=(docker.io docker-registry busybox-static apache2-utils curl)
HMQ_FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)
# scripts/lint.sh: the format check and clang-tidy's fatal checks (run by scripts/test.sh).
HMQ_LINT_PACKAGES=(clang-format-14 clang-tidy-14)
# scripts/bench.sh: plots (gnuplot) and the slow-link benchmark (ip netns, tc netem).
HMQ_BENCH_PACKAGES=(gnuplot-nox iproute2 python3)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# install_packages PKG...: apt-get install whatever is missing (needs root); quiet when all there.
install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root or install them: apt-get install ${missing[*]})"
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  if [ -z "${HMQ_APT_UPDATED:-}" ]; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    export HMQ_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
}

# start_dockerd: start the Docker daemon unless its socket answers; wait up to 60 s.
start_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (log: /var/log/hmq-dockerd.log)"
  setsid dockerd >/var/log/hmq-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "dockerd did not start; see /var/log/hmq-dockerd.log"
}

# The system's own mosquitto service (Debian starts one on 1883 in some setups) is never used:
# every test and the quickstart start their own broker from broker-config/.
