#!/usr/bin/env bash
# Draws the PNG plots of docs/PERFORMANCE.md from what the benchmarks left in bench/results/
# (gnuplot; scripts/bench.sh installs gnuplot-nox). Each plot is skipped when its data is missing.
#
#   bench/plot.sh [RESULTS_DIR]
set -euo pipefail
out="${1:-$(dirname "${BASH_SOURCE[0]}")/results}"
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed" >&2; exit 1; }

# Series as gnuplot data: fleetsim_<N>.json -> convergence_<N>.dat (seconds, agreed nodes) and
# latency_cdf_<N>.dat (ms, fraction of nodes).
python3 - "$out" <<'PY'
import json, sys, os, glob
out = sys.argv[1]
for path in glob.glob(os.path.join(out, "fleetsim_*.json")):
    n = os.path.basename(path)[len("fleetsim_"):-len(".json")]
    with open(path) as f:
        s = json.load(f)
    with open(os.path.join(out, "convergence_%s.dat" % n), "w") as f:
        f.write("0 0\n")
        for i, t in enumerate(s.get("agreed_at_s", []), 1):
            f.write("%.3f %d\n" % (t, i))
    lat = s.get("latencies_ms", [])
    with open(os.path.join(out, "latency_cdf_%s.dat" % n), "w") as f:
        for i, ms in enumerate(lat, 1):
            f.write("%.1f %.5f\n" % (ms, i / len(lat)))
PY

plot() {  # plot NAME GNUPLOT-COMMANDS
  gnuplot -e "set terminal pngcairo size 800,480 noenhanced font 'sans,10'; set output '$out/$1.png'; set grid; $2" \
    && echo "wrote $out/$1.png"
}

series=""
for f in "$out"/convergence_*.dat; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .dat); n=${n#convergence_}
  series+="${series:+, }'$f' using 1:2 with lines lw 2 title '$n nodes'"
done
[ -n "$series" ] && plot fleet_convergence "set title 'Fleet convergence: nodes with a finalized agreement after all register at once'; \
  set xlabel 'seconds since registration burst'; set ylabel 'nodes agreed'; set key left top; plot $series"

series=""
for f in "$out"/latency_cdf_*.dat; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .dat); n=${n#latency_cdf_}
  series+="${series:+, }'$f' using 1:2 with lines lw 2 title '$n nodes (burst)'"
done
[ -n "$series" ] && plot agreement_latency_cdf "set title 'Agreement latency CDF (RegisterNode sent -> agreement finalized on the node)'; \
  set xlabel 'ms'; set ylabel 'fraction of nodes'; set logscale x; set key right bottom; set yrange [0:1]; plot $series"

series=""
for f in "$out"/idle_bytes*.dat; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .dat); n=${n#idle_bytes}; n=${n#_}
  series+="${series:+, }'$f' using 1:2 with linespoints lw 2 title '${n:-default flags}'"
done
[ -n "$series" ] && plot idle_bytes "set title 'Idle hmq-agent behind a 64 kbit/s, 5 % loss link: cumulative bytes on the wire'; \
  set xlabel 'minutes'; set ylabel 'bytes (rx + tx frames)'; set key left top; plot $series"

# Rollout progress over time (rollout_bench --sim N): rollout_progress_<N>.dat has
# seconds since the pattern publish, then upgraded, in progress, failed, rolled back, pending
# nodes of the target version, one row per status the agbot published.
for f in "$out"/rollout_progress_*.dat; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .dat); n=${n#rollout_progress_}
  title=$(sed -n '1s/^# //p' "$f")
  plot rollout_progress "set title 'Rollout progress: ${title}'; set xlabel 'seconds since the pattern update'; \
    set ylabel 'nodes'; set key center right; set yrange [0:*]; \
    plot '$f' using 1:2 with steps lw 2 title 'upgraded', '$f' using 1:3 with steps lw 2 title 'in progress', \
      '$f' using 1:4 with steps lw 2 title 'failed', '$f' using 1:6 with steps lw 1 dt 2 title 'pending'"
done
# A heartbeat bench writes heartbeat_bytes.dat (interval s, bytes per heartbeat on the wire); its
# plot appears once the data does.
if [ -e "$out/heartbeat_bytes.dat" ]; then
  plot heartbeat_bytes "set title 'Heartbeat bytes on the wire'; set xlabel 'heartbeat interval (s)'; \
    set ylabel 'bytes per node per day'; set logscale y; plot '$out/heartbeat_bytes.dat' using 1:2 with linespoints lw 2 notitle"
fi
exit 0
