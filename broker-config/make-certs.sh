#!/usr/bin/env bash
# make-certs.sh [DIR] [HOSTNAME...]: a local certificate authority and a server certificate for
# the broker's TLS listener (broker-config/mosquitto-secure.conf), with openssl.
#
#   DIR       where to write (default: broker-config/certs); existing files are kept
#   HOSTNAME  names and IPs the server certificate is valid for (default: localhost 127.0.0.1
#             and this machine's hostname). Clients check the name they connect to.
#
# Writes ca.crt (give it to every client: --ca-file), ca.key (keep it offline: it can mint
# server certificates), server.crt and server.key (the broker's, readable by the broker only).
set -euo pipefail
dir="${1:-$(dirname "${BASH_SOURCE[0]}")/certs}"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 "$(hostname)")
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=Horizon-MQ local CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  echo "make-certs: created CA $dir/ca.crt"
fi

if [ ! -f "$dir/server.key" ]; then
  san=""
  for n in "${names[@]}"; do
    if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
  done
  san="${san%,}"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=${names[0]}" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -out "$dir/server.crt" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
  rm -f "$dir/server.csr"
  echo "make-certs: created server certificate $dir/server.crt for $san"
fi
chmod 644 "$dir/ca.crt" "$dir/server.crt"
