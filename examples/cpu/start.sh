#!/bin/sh
# Writes the 1-minute load average every SAMPLE_INTERVAL seconds and serves it over HTTP.
interval="${SAMPLE_INTERVAL:-5}"
sample() {
  read -r one _ < /proc/loadavg
  printf '{"service":"cpu","device":"%s","load1":%s}\n' "${HZN_DEVICE_ID:-unknown}" "$one" > /www/cpu.json.new
  mv /www/cpu.json.new /www/cpu.json
}
sample
( while sleep "$interval"; do sample; done ) &
echo "cpu: sampling every ${interval}s (agreement ${HZN_AGREEMENTID:-none})"
# httpd in the background so this shell, as PID 1, can honour SIGTERM (docker stop).
httpd -f -p 80 -h /www &
trap 'kill $! 2>/dev/null; exit 0' TERM INT
wait
