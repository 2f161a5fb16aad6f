#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md on this machine; outputs go to benchmarks/results/.
#   benchmarks/run_all.sh            # needs benchmarks/.venv with requirements.txt for the Python comparison
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
swift build -c release --product routeweiler-bench
BENCH=.build/release/routeweiler-bench
uptime | tee benchmarks/results/uptime-start.txt
# 1. Sequential paid (phases), free vs AsyncHTTPClient, concurrent 1/8/64/256 with reuse on and off, the cap at 256.
$BENCH --count 1000 --concurrent-calls 1000 | tee benchmarks/results/run.txt
$BENCH --count 1000 --concurrent-calls 1000 --json > benchmarks/results/run.json
# 2. Peak memory for 10,000 sequential paid calls (a process of its own, so VmHWM is this work's peak).
$BENCH --scenarios paid --count 10000 | tee benchmarks/results/rss-10k.txt
# 3. Micro-benchmarks of our own work.
$BENCH --micro | tee benchmarks/results/micro.txt
# 4. The Python reference SDK and the Swift client, side by side on the same paywall and fake LND.
if [ -x benchmarks/.venv/bin/python ]; then
    benchmarks/.venv/bin/python benchmarks/python_reference.py --count 500 | tee benchmarks/results/python-vs-swift.txt
fi
uptime | tee benchmarks/results/uptime-end.txt
