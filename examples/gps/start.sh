#!/bin/sh
# Serves /www/location.json; the position comes from user input (HZN_LAT/HZN_LON) when given.
cat > /www/location.json <<JSON
{"service":"gps","device":"${HZN_DEVICE_ID:-unknown}","lat":${HZN_LAT:-52.52},"lon":${HZN_LON:-13.40}}
JSON
echo "gps: serving /location.json for ${HZN_DEVICE_ID:-unknown} (agreement ${HZN_AGREEMENTID:-none})"
# httpd in the background so this shell, as PID 1, can honour SIGTERM (docker stop).
httpd -f -v -p 80 -h /www &
trap 'kill $! 2>/dev/null; exit 0' TERM INT
wait
