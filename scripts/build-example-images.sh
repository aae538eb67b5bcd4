#!/usr/bin/env bash
# Builds the example service images (examples/gps, cpu, consumer) from Debian's busybox-static and
# pushes them to a local docker-registry that requires a password, starting that registry first
# when nothing answers on its port. Prints "name image@digest" per image on stdout (and writes it
# to $HMQ_REGISTRY_DIR/digests.txt); progress goes to stderr.
#
#   scripts/build-example-images.sh [--port 5000] [--user hmq] [--password PW] [--dir DIR]
#                                   [--no-start] [--tag 1.0.0]
# Environment: HMQ_REGISTRY_PORT, HMQ_REGISTRY_USER, HMQ_REGISTRY_PASSWORD, HMQ_REGISTRY_DIR.
# The password defaults to the one stored in DIR/password (created at random on first use).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

port="${HMQ_REGISTRY_PORT:-5000}"
user="${HMQ_REGISTRY_USER:-hmq}"
password="${HMQ_REGISTRY_PASSWORD:-}"
dir="${HMQ_REGISTRY_DIR:-/var/lib/hmq/registry}"
start_registry=1
tag=1.0.0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --password) password="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --no-start) start_registry=0; shift ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
registry="127.0.0.1:${port}"

install_packages "${HMQ_CONTAINER_PACKAGES[@]}"
start_dockerd
mkdir -p "$dir"
if [ -z "$password" ]; then
  [ -s "$dir/password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password")
  password="$(cat "$dir/password")"
fi

registry_up() { curl -s -o /dev/null -w '%{http_code}' "http://${registry}/v2/" 2>/dev/null | grep -q '^401$'; }

started_here=0
if ! registry_up; then
  started_here=1
  [ "$start_registry" -eq 1 ] || die "no password-protected registry answers on ${registry}"
  log "starting docker-registry on ${registry} (data ${dir}, log ${dir}/registry.log)"
  (umask 077; htpasswd -Bbn "$user" "$password" > "$dir/htpasswd")
  cat > "$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${dir}/data
  delete:
    enabled: true
http:
  addr: ${registry}
auth:
  htpasswd:
    realm: hmq-registry
    path: ${dir}/htpasswd
CFG
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/registry.pid"
  for _ in $(seq 1 60); do registry_up && break; sleep 0.25; done
  registry_up || die "docker-registry did not start; see $dir/registry.log"
fi

# A private docker config so the login does not touch the operator's ~/.docker.
export DOCKER_CONFIG="$(mktemp -d)"
trap 'rm -rf "$DOCKER_CONFIG" "${ctx:-}"' EXIT
if ! printf '%s' "$password" | docker login -u "$user" --password-stdin "$registry" >/dev/null 2>&1; then
  if [ "$started_here" -eq 0 ]; then
    # Typically a registry started earlier for another directory (its own password), e.g. by a
    # plain scripts/build-example-images.sh before the quickstart.
    other="$(pgrep -a docker-registry | head -n 1 | cut -d' ' -f2-)"
    die "docker login to ${registry} as ${user} failed: a registry was already answering there and refuses the password in ${dir}/password${other:+ (running: ${other})}; stop that registry or use another port (--port / HMQ_REGISTRY_PORT)"
  fi
  die "docker login to ${registry} as ${user} failed"
fi

busybox=/bin/busybox
[ -x "$busybox" ] && file_is_static=$(ldd "$busybox" 2>&1 | grep -c "not a dynamic") || true
[ "${file_is_static:-0}" -ge 1 ] || die "$busybox is not the static busybox (install busybox-static)"

: > "$dir/digests.txt"
for name in gps cpu consumer; do
  ctx="$(mktemp -d)"
  cp "$HMQ_ROOT/examples/$name/Dockerfile" "$HMQ_ROOT/examples/$name/start.sh" "$ctx/"
  cp "$busybox" "$ctx/busybox"
  image="${registry}/hmq-examples/${name}:${tag}"
  log "building ${image}"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx/build.err" \
    || { cat "$ctx/build.err" >&2; die "docker build of $name failed"; }
  docker push -q "$image" >/dev/null || die "docker push of ${image} failed"
  digest="$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$image" \
            | grep "^${registry}/hmq-examples/${name}@" | head -n1 | cut -d@ -f2)"
  [ -n "$digest" ] || die "no digest for ${image} after push"
  echo "${name} ${image}@${digest}" | tee -a "$dir/digests.txt"
  rm -rf "$ctx"
done
log "pushed to ${registry} (user ${user}, password in ${dir}/password unless given)"
