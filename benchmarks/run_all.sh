#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md on this machine; outputs go to benchmarks/results/.
#   benchmarks/run_all.sh            # needs benchmarks/.venv with requirements.txt for the Python comparison
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
swift build -c release --product routeweiler-bench
B=.build/release/routeweiler-bench
R=benchmarks/results
uptime | tee $R/uptime-start.txt
# 1. Everything in one process: sequential paid L402 (phases), free calls vs AsyncHTTPClient, concurrent paid calls at
#    1/8/64/256 in flight with reuse on and off, the cap at 256 in flight.
$B --count 2000 --concurrent-calls 1000 --json-out $R/run.json | tee $R/run.txt
# 2. The client alone: paywall and fake LND in a child process (sequential paid phases, free calls).
$B --isolate --scenarios paid,free --count 2000 --json-out $R/isolated.json | tee $R/isolated.txt
# 3. Peak memory of the client alone for 10,000 sequential paid calls.
$B --isolate --scenarios paid --count 10000 --json-out $R/rss-10k.json 2>&1 | tee $R/rss-10k.txt
# 4. x402: sequential, concurrent (every call pays: x402 has no reusable token) and the cap.
$B --rail x402 --scenarios paid,concurrent,cap --count 1000 --no-reuse --json-out $R/x402.json | tee $R/x402.txt
# 5. Trace rows written before each call returns, for comparison with the default write-behind.
$B --trace-writes immediate --scenarios paid,free --count 2000 --json-out $R/trace-immediate.json | tee $R/trace-immediate.txt
# 6. Micro-benchmarks of our own work.
$B --micro --iterations 5000 --json-out $R/micro.json | tee $R/micro.txt
# 7. The gRPC deadline diagnostic (RSS while calling the fake LND 5,000 times).
$B lnd-rss --count 5000 | tee $R/lnd-rss.txt
# 8. The Python reference SDK and the Swift client, side by side on the same paywall and fake LND.
if [ -x benchmarks/.venv/bin/python ]; then
    benchmarks/.venv/bin/python benchmarks/python_reference.py --count 500 | tee $R/python-vs-swift.txt
fi
uptime | tee $R/uptime-end.txt
