#!/usr/bin/env bash
# Horizon-MQ in one command, on a fresh Debian 12 machine (as root): installs what is missing,
# builds, starts a broker, the exchange, an agbot and an agent, publishes the example services
# and pattern signed with a fresh key, registers this machine as a node, and shows the agreement
# and what it runs. Everything stays running afterwards so you can try the CLI.
#
# The broker runs broker-config/mosquitto-secure.conf: no anonymous clients, one dynamic-security
# identity per party (the exchange provisions nodes and agbots), plain MQTT on loopback for the
# co-hosted exchange and agbot, and TLS for the node, as a node off this host would connect.
#
#   scripts/quickstart.sh          start (a previous quickstart is stopped first)
#   scripts/quickstart.sh stop     stop everything the quickstart started
#
# State lives in $HMQ_QUICKSTART_DIR (default /var/tmp/hmq-quickstart); the broker listens on
# 127.0.0.1:$HMQ_BROKER_PORT (default 1883, plain MQTT) and $HMQ_TLS_PORT (default 8883, TLS, all
# addresses), and the example registry on 127.0.0.1:5000.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$HMQ_ROOT"

qs="${HMQ_QUICKSTART_DIR:-/var/tmp/hmq-quickstart}"
bin="$HMQ_ROOT/build/release"

stop_all() {
  for pidfile in "$qs"/*.pid "$qs"/registry/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && log "stopped $(basename "$pidfile" .pid) (pid $pid)"
    rm -f "$pidfile"
  done
  # The workload outlives an agent restart by design; the quickstart's stop removes it too (only
  # this agent's: its containers carry its mailbox as hmq.owner, other agents' are left alone).
  if [ -s "$qs/node.mailbox" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    local ids owner
    owner=$(cat "$qs/node.mailbox")
    ids=$(docker ps -aq --filter "label=hmq.owner=$owner")
    [ -z "$ids" ] || { docker rm -f $ids >/dev/null; log "removed the example containers"; }
    ids=$(docker network ls -q --filter "label=hmq.owner=$owner")
    [ -z "$ids" ] || docker network rm $ids >/dev/null || true
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  exit 0
fi
[ $# -eq 0 ] || die "usage: scripts/quickstart.sh [stop]"

# start NAME CMD...: run CMD in the background with its log in $qs/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$qs/$name.log" 2>&1 < /dev/null &
  echo $! >"$qs/$name.pid"
}
# wait_for WHAT SECONDS CMD...: retry CMD until it succeeds or time runs out.
wait_for() {
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not come up within ${secs}s (logs in $qs)"
}

log "1/8 installing missing Debian packages"
install_packages "${HMQ_BUILD_PACKAGES[@]}" "${HMQ_RUNTIME_PACKAGES[@]}" "${HMQ_CONTAINER_PACKAGES[@]}"

log "2/8 building (Release, build/release)"
cmake --preset release >/dev/null
cmake --build build/release -j "$(nproc)" --target hmq-exchange hmq-agbot hmq-agent hmq

stop_all
rm -rf "$qs"
mkdir -p "$qs"
port="${HMQ_BROKER_PORT:-1883}"
tls_port="${HMQ_TLS_PORT:-8883}"
for p in "$port" "$tls_port"; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
    die "port $p is taken (another broker?); set HMQ_BROKER_PORT / HMQ_TLS_PORT to free ports"
  fi
done
broker="tcp://127.0.0.1:$port"
tls_broker="mqtts://localhost:$tls_port"

log "3/8 starting mosquitto with identities and TLS: $broker (loopback) and $tls_broker"
bk="$qs/broker"
broker-config/init-dynsec.sh "$bk" >/dev/null
broker-config/make-certs.sh "$bk/certs" localhost 127.0.0.1 >/dev/null
sed -e "s/^listener 1883 .*/listener $port 127.0.0.1/" -e "s/^listener 8883$/listener $tls_port/" \
  -e "s#^cafile .*#cafile $bk/certs/ca.crt#" -e "s#^certfile .*#certfile $bk/certs/server.crt#" \
  -e "s#^keyfile .*#keyfile $bk/certs/server.key#" \
  -e "s#^plugin_opt_config_file .*#plugin_opt_config_file $bk/dynamic-security.json#" \
  -e "s#^persistence_location .*#persistence_location $qs/#" \
  broker-config/mosquitto-secure.conf >"$qs/mosquitto.conf"
# mosquitto drops root privileges to the user `mosquitto`: let it read what it needs.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown -R mosquitto "$bk" && chown mosquitto "$qs"
fi
start mosquitto mosquitto -c "$qs/mosquitto.conf"
wait_for mosquitto 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
# The hmq CLI connects as the exchange user of its -u (the exchange provisions each user's broker
# identity: docs/security.md "Operator identities"); nothing to export.

log "4/8 starting dockerd and a password-protected registry; building the example images"
start_dockerd
export HMQ_REGISTRY_DIR="$qs/registry"
scripts/build-example-images.sh
export REGISTRY=127.0.0.1:${HMQ_REGISTRY_PORT:-5000}
registry_auth="$REGISTRY:${HMQ_REGISTRY_USER:-hmq}:$(cat "$HMQ_REGISTRY_DIR/password")"

log "5/8 starting hmq-exchange"
root_pw="quickstart-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HMQ_ROOT_PASSWORD="$root_pw" start exchange "$bin/exchange/hmq-exchange" --broker "$broker" \
  --data-dir "$qs/exchange" --mqtt-user hmq-exchange --mqtt-password-file "$bk/hmq-exchange.password" \
  --provision-broker
wait_for hmq-exchange 20 grep -q "hmq-exchange ready" "$qs/exchange.log"
export HMQ_EXCHANGE="$broker"
export HMQ_EXCHANGE_KEY
HMQ_EXCHANGE_KEY=$("$bin/exchange/hmq-exchange" --data-dir "$qs/exchange" --print-public-key)
export HOME="$qs/home"
mkdir -p "$HOME"
hmq() { "$bin/cli/hmq" "$@"; }
root=(exchange -u "root/root:$root_pw")
admin=(exchange -u "myorg/admin:admin-pw")

log "6/8 org, user, signing key, services and pattern"
hmq "${root[@]}" org create myorg -l "Quickstart org"
hmq "${root[@]}" --org myorg user create admin admin-pw admin@example.com -A
hmq key create
# The example files use Horizon's $HZN_ORG_ID / $ARCH / $REGISTRY substitution.
export HZN_ORG_ID=myorg ARCH
ARCH=$(dpkg --print-architecture)
for svc in gps cpu consumer; do  # producers first: the consumer requires them
  hmq "${admin[@]}" service publish -f "examples/$svc/service.definition.json" -r "$registry_auth"
done
hmq "${admin[@]}" pattern publish -f examples/pattern.json
pattern=hmq-example

log "7/8 starting hmq-agbot and hmq-agent; the exchange provisions their broker identities"
# Each waits, refused by the broker, until the exchange knows its mailbox (its public key's id)
# with its token: `agbot create` / `node create --mailbox M --claim C` provision the broker
# client. The claim, printed by the agbot and shown by `hmq node status`, proves that the
# mailbox's key holder named this token (docs/security.md "Mailbox ownership").
start agbot "$bin/agbot/hmq-agbot" --broker "$broker" --exchange-key "$HMQ_EXCHANGE_KEY" \
  --org myorg --id agbot1 --token agbot1-token --data-dir "$qs/agbot" --control-socket "$qs/agbot.sock" \
  --mqtt-token-auth
wait_for "the agbot's mailbox" 20 grep -q -- "--claim " "$qs/agbot.log"
agbot_mailbox=$(grep -o -- "--mailbox [0-9a-z]*" "$qs/agbot.log" | head -1 | cut -d' ' -f2)
agbot_claim=$(grep -o -- "--claim [0-9A-Za-z+/=]*" "$qs/agbot.log" | head -1 | cut -d' ' -f2)
hmq "${admin[@]}" agbot create agbot1:agbot1-token --mailbox "$agbot_mailbox" --claim "$agbot_claim"
hmq "${admin[@]}" agbot addpattern agbot1 myorg "$pattern"
printf '%s' node1-token >"$qs/node1.token"
chmod 600 "$qs/node1.token"
start agent "$bin/agent/hmq-agent" --broker "$tls_broker" --ca-file "$bk/certs/ca.crt" \
  --mqtt-password-file "$qs/node1.token" --exchange-key "$HMQ_EXCHANGE_KEY" \
  --data-dir "$qs/agent" --runtime docker
export HMQ_AGENT_SOCKET="$qs/agent/agent.sock"
wait_for hmq-agent 20 test -S "$HMQ_AGENT_SOCKET"
status=$(hmq node status -o json)
node_mailbox=$(printf '%s' "$status" | sed -n 's/.*"mailbox": *"\([^"]*\)".*/\1/p' | head -1)
node_claim=$(printf '%s' "$status" | sed -n 's/.*"claim": *"\([^"]*\)".*/\1/p' | head -1)
[ -n "$node_mailbox" ] && [ -n "$node_claim" ] ||
  die "hmq node status shows no mailbox or claim (agent log: $qs/agent.log)"
echo "$node_mailbox" >"$qs/node.mailbox"
hmq "${admin[@]}" node create node1:node1-token --mailbox "$node_mailbox" --claim "$node_claim"
wait_for "the agbot's broker connection" 20 grep -q "agbot myorg/agbot1 up" "$qs/agbot.log"
wait_for "the agent's broker connection" 30 grep -q "as hmq-agent-$node_mailbox" "$qs/agent.log"
hmq key import -k "$HOME/.hmq/keys/hmq-signing.public.key"

log "8/8 registering this machine as node myorg/node1 for pattern myorg/$pattern"
hmq register -n myorg/node1 -t node1-token -p "myorg/$pattern"
wait_for "the agreement" 60 bash -c "'$bin/cli/hmq' agreement list -o json | grep -q '\"finalized\"'"
echo
hmq agreement list
mine="label=hmq.owner=$node_mailbox"
wait_for "the containers" 120 bash -c "[ \$(docker ps -q --filter $mine | wc -l) -ge 3 ]"
echo
docker ps --filter "$mine" --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
consumer=$(docker ps -q --filter "$mine" --filter label=hmq.service=myorg/hmq-example-consumer | head -1)
if [ -n "$consumer" ]; then
  for _ in $(seq 1 30); do docker logs "$consumer" 2>&1 | grep -q '^got ' && break; sleep 0.5; done
  echo; echo "what the consumer got from the producers over their private networks:"
  docker logs --tail 4 "$consumer" 2>&1 | sed 's/^/  /'
fi
cat <<EOT

Horizon-MQ is running (state and logs in $qs). Try:
  export HOME=$qs/home HMQ_EXCHANGE=$broker HMQ_EXCHANGE_KEY=$HMQ_EXCHANGE_KEY HMQ_AGENT_SOCKET=$HMQ_AGENT_SOCKET
  $bin/cli/hmq agreement list -o json
  $bin/cli/hmq exchange -u myorg/admin:admin-pw node list
  $bin/cli/hmq agbot agreement list --agbot-socket $qs/agbot.sock
Stop everything with: scripts/quickstart.sh stop
EOT
