#!/usr/bin/env bash
# init-dynsec.sh [DIR]: the dynamic-security bootstrap for broker-config/mosquitto-secure.conf.
#
# Creates DIR/dynamic-security.json (default: this folder) holding:
#   - client hmq-exchange (roles admin + hmq-exchange): the exchange's own identity; it may manage
#     the plugin over $CONTROL/dynamic-security/v1, which is how it provisions a client for each
#     node and agbot it creates (docs/security.md);
#   - the shared roles hmq-node, hmq-agbot and hmq-user that every client the exchange provisions
#     (node, agbot, exchange user) gets next to its own role, and hmq-recorder (read the bus),
#     which root grants a user with `hmq exchange user allow-record`;
#   - default access: deny publish and subscribe, so a client can only do what a role allows.
# and the password file DIR/hmq-exchange.password (random, owner only; pass it with
# --mqtt-password-file). There is no shared operator identity: hmq connects as the exchange user
# it acts for. An existing dynamic-security.json is left alone.
#
# Environment: HMQ_TOPIC_PREFIX (default hmq/v1), HMQ_EXCHANGE_MQTT_PASSWORD (default: random).
#
# How: `mosquitto_ctrl dynsec init` writes the file with the admin client, then a private
# mosquitto on a free loopback port loads it and mosquitto_ctrl adds the rest, exactly as it would
# on the running broker; the broker saves the file on every change and is stopped afterwards.
set -euo pipefail
dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
prefix="${HMQ_TOPIC_PREFIX:-hmq/v1}"
file="$dir/dynamic-security.json"
plugin="${HMQ_DYNSEC_PLUGIN:-/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so}"
mkdir -p "$dir"
umask 077
if [ -e "$file" ]; then
  echo "init-dynsec: $file exists, left alone" >&2
  exit 0
fi

random_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' ; }
xpw="${HMQ_EXCHANGE_MQTT_PASSWORD:-$(random_secret)}"
printf '%s' "$xpw" >"$dir/hmq-exchange.password"

mosquitto_ctrl dynsec init "$file" hmq-exchange "$xpw" >/dev/null

# A free loopback port for the private broker.
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "init-dynsec: no free port" >&2; exit 1; }
conf="$(mktemp)"
cat >"$conf" <<CONF
listener $port 127.0.0.1
allow_anonymous false
plugin $plugin
plugin_opt_config_file $file
persistence false
log_dest none
user $(id -un)
CONF
mosquitto -c "$conf" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -f "$conf"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

ctrl() {
  local out
  if ! out=$(mosquitto_ctrl -h 127.0.0.1 -p "$port" -u hmq-exchange -P "$xpw" dynsec "$@" 2>&1); then
    echo "init-dynsec: mosquitto_ctrl dynsec $1 failed: $out" >&2
    exit 1
  fi
}

# Nothing is allowed unless a role says so (receiving is governed by what one may subscribe to).
ctrl setDefaultACLAccess publishClientSend deny
ctrl setDefaultACLAccess subscribe deny
ctrl setDefaultACLAccess publishClientReceive allow
ctrl setDefaultACLAccess unsubscribe allow

# The exchange: serves the RPC topic, its mailbox, heartbeats and presence; publishes replies,
# addressed events and anything else under the prefix.
ctrl createRole hmq-exchange
ctrl addRoleACL hmq-exchange publishClientSend "$prefix/#" allow
ctrl addRoleACL hmq-exchange subscribePattern "$prefix/#" allow
ctrl addClientRole hmq-exchange hmq-exchange

# Shared by every node: ask the exchange, write to agbots' uplinks (never to a mailbox, so a node
# cannot fill another node's queue: docs/security.md "Client ids, retained messages and queues").
# The node's own mailbox, heartbeat and presence topics come from its per-mailbox role (the
# exchange creates it).
ctrl createRole hmq-node
ctrl addRoleACL hmq-node publishClientSend "$prefix/x/rpc" allow
ctrl addRoleACL hmq-node publishClientSend "$prefix/up/+" allow

# Shared by every agbot: ask the exchange, write to nodes' mailboxes. Events reach agbots in their
# mailboxes; nodes reach them on their uplinks (per-agbot role).
ctrl createRole hmq-agbot
ctrl addRoleACL hmq-agbot publishClientSend "$prefix/x/rpc" allow
ctrl addRoleACL hmq-agbot publishClientSend "$prefix/mb/+" allow

# Shared by every exchange user (hmq connects as the user it acts for): ask the exchange. The
# user's inbox, where the exchange answers it, comes from its own role (the exchange creates it
# when the user's password is set: docs/security.md "Operator identities").
ctrl createRole hmq-user
ctrl addRoleACL hmq-user publishClientSend "$prefix/x/rpc" allow

# Reading the whole bus (hmq-replay record): only what root grants a user explicitly
# (hmq exchange user allow-record ORG/USER). Sealed envelopes only, never a publish.
ctrl createRole hmq-recorder
ctrl addRoleACL hmq-recorder subscribePattern "$prefix/#" allow

echo "init-dynsec: wrote $file (client hmq-exchange; its password in $dir/hmq-exchange.password)"
