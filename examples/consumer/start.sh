#!/bin/sh
# Polls http://gps/location.json and http://cpu/cpu.json (the producers' DNS aliases) and logs
# one line per poll: "got gps=<json> cpu=<json>" or what failed.
interval="${POLL_INTERVAL:-2}"
echo "consumer: polling gps and cpu every ${interval}s (agreement ${HZN_AGREEMENTID:-none})"
# As PID 1 the shell ignores SIGTERM unless it traps it (docker stop would wait for SIGKILL).
trap 'exit 0' TERM INT
# fetch URL: its body, or nothing after 3 s. Debian's static busybox wget crashes with -T and
# its timeout(1) does not stop a wget stuck in connect(), so a shell watchdog does.
fetch() {
  wget -q -O - "$1" 2>&1 & p=$!
  ( sleep 3; kill $p 2>/dev/null ) & w=$!
  wait $p; rc=$?
  kill $w 2>/dev/null
  return $rc
}
while :; do
  gps=$(fetch http://gps/location.json) || gps="unreachable"
  cpu=$(fetch http://cpu/cpu.json) || cpu="unreachable"
  echo "got gps=${gps} cpu=${cpu}"
  sleep "$interval" & wait $!
done
