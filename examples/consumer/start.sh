#!/bin/sh
# Polls http://gps/location.json and http://cpu/cpu.json (the producers' DNS aliases) and logs
# one line per poll: "got gps=<json> cpu=<json>" or what failed.
interval="${POLL_INTERVAL:-2}"
echo "consumer: polling gps and cpu every ${interval}s (agreement ${HZN_AGREEMENTID:-none})"
# As PID 1 the shell ignores SIGTERM unless it traps it (docker stop would wait for SIGKILL).
trap 'exit 0' TERM INT
while :; do
  # timeout(1), not wget -T: Debian's static busybox wget crashes with -T.
  gps=$(timeout 3 wget -q -O - http://gps/location.json 2>&1) || gps="unreachable"
  cpu=$(timeout 3 wget -q -O - http://cpu/cpu.json 2>&1) || cpu="unreachable"
  echo "got gps=${gps} cpu=${cpu}"
  sleep "$interval" & wait $!
done
