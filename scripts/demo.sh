#!/usr/bin/env bash
# The README's main-job command. Installs what is missing, builds searchmig,
# then runs a whole migration locally through the `searchmig` console, on
# embedded defaults:
#   - two local stand-in clusters: the source answers as Elasticsearch 7.10,
#     the target as OpenSearch 2.11 (tests/standins/target);
#   - the source is loaded with the documents of a real Elasticsearch 7.10
#     snapshot (tests/fixtures/snapshots/ES_7_10_Single), read by searchmig-rfs;
#   - searchmig-agent captures the source's HTTP traffic live on loopback
#     (libpcap) into files (no Kafka) while real clients (curl, Python) search
#     and write;
#   - searchmig: clusters check, metadata evaluate/migrate, backfill from the
#     snapshot, replay of the captured traffic, comparison and HTML report.
# Everything lands in ./out/demo; the last lines print the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (apt-get, and live capture on loopback)"; exit 1; }
# SM_DEMO_BUILD (build dir, default build/release), SM_DEMO_OUT (default out/demo) and
# SM_DEMO_SKIP_BUILD=1 let the test suite run the demo on its own build.
build=${SM_DEMO_BUILD:-$root/build/release}
if [[ -z ${SM_DEMO_SKIP_BUILD:-} ]]; then
  bash scripts/install-deps.sh
  echo "demo: building (release)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
fi
bin=$(cd "$build" && pwd)
out=${SM_DEMO_OUT:-$root/out/demo}
export SM_TOOLS_DIR=$out/bin
rm -rf "$out" && mkdir -p "$out/bin" "$out/capture" "$out/work"
for t in agent/searchmig-agent rfs/searchmig-rfs replay/searchmig-replay console/searchmig; do
  ln -s "$bin/$t" "$out/bin/"
done
PATH=$out/bin:$PATH

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

standin() {  # flavor portfile log
  /usr/bin/python3 "$root/tests/standins/target/target_standin.py" --port 0 --port-file "$2" \
    --flavor "$1" --log "$3" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $2 ]] && return 0; sleep 0.1; done
  echo "demo: stand-in $1 did not start"; exit 1
}

echo "demo: starting the source (Elasticsearch 7.10 stand-in) and the target (OpenSearch 2.11 stand-in)"
standin elasticsearch-7.10 "$out/source.port" "$out/source-requests.log"
standin opensearch-2.11 "$out/target.port" "$out/target-requests.log"
sport=$(cat "$out/source.port"); tport=$(cat "$out/target.port")
source_url=http://127.0.0.1:$sport
target_url=http://127.0.0.1:$tport
repo=$root/tests/fixtures/snapshots/ES_7_10_Single
snap=global_state_snapshot

echo "demo: setting up the source as the snapshot's cluster: its indices, aliases and templates, then its documents"
searchmig-rfs metadata migrate --repo "$repo" --snapshot "$snap" --target "$source_url" >"$out/source-setup.log"
searchmig-rfs docs --repo "$repo" --snapshot "$snap" --output "$out/source-docs.ndjson"
/usr/bin/python3 - "$out/source-docs.ndjson" "$source_url" <<'PY'
import json, sys, urllib.request
docs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
body = ""
for d in docs:
    meta = {"_index": d["_index"], "_id": d["_id"]}
    if d.get("_routing"):
        meta["routing"] = d["_routing"]
    body += json.dumps({"index": meta}) + "\n" + json.dumps(d["_source"]) + "\n"
req = urllib.request.Request(sys.argv[2] + "/_bulk?refresh=true", body.encode(), {"Content-Type": "application/x-ndjson"})
r = json.loads(urllib.request.urlopen(req).read())
assert not r["errors"], r
print(f"demo: source holds {len(docs)} documents")
PY

cat > "$out/migration.yaml" <<YAML
# searchmig console configuration for the demo
source:
  url: $source_url
target:
  url: $target_url
snapshot:
  repo: $repo
  name: $snap
capture:
  dir: $out/capture
work-dir: $out/work
indices: "*,-.*"
backfill-workers: 2
replay-speedup: 1
YAML
export SEARCHMIG_CONFIG=$out/migration.yaml

wc -l < "$out/source-requests.log" > "$out/source-requests.before"
echo "demo: starting searchmig-agent on loopback, port $sport (records to $out/capture)"
searchmig-agent --interface lo --port "$sport" --output "$out/capture/" --node-id demo-source-node \
  --idle-flush 200ms >"$out/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
sleep 1.5
kill -0 $agent_pid 2>/dev/null || { echo "demo: the agent did not start:"; cat "$out/agent.log"; exit 1; }

echo "demo: real clients send traffic to the source"
/usr/bin/python3 "$root/scripts/demo_clients.py" "$source_url" > "$out/clients.log"
tail -1 "$out/clients.log"
sleep 1
kill -TERM $agent_pid; wait $agent_pid || true
wc -l < "$out/source-requests.log" > "$out/source-requests.after"
echo "demo: agent stopped; its summary:"; tail -n 12 "$out/agent.log" | sed 's/^/  /'

searchmig clusters check
searchmig snapshot status
searchmig metadata evaluate
searchmig metadata migrate
searchmig backfill start --wait
searchmig backfill status || true
searchmig backfill cleanup || true
searchmig replay start --wait
searchmig compare || true
# what each cluster holds now, for anyone (and the test suite) to check
/usr/bin/python3 - "$source_url" "$target_url" > "$out/final-state.json" <<'PY'
import json, sys, urllib.request
def get(url):
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())
state = {}
for role, url in (("source", sys.argv[1]), ("target", sys.argv[2])):
    idx = [i["index"] for i in get(url + "/_cat/indices?format=json") if not i["index"].startswith(".")]
    state[role] = {i: {h["_id"]: h["_source"] for h in get(f"{url}/{i}/_search?size=10000")["hits"]["hits"]}
                   for i in sorted(idx)}
print(json.dumps(state, sort_keys=True))
PY
echo
echo "demo: done. Everything is in $out; the HTML report is $out/work/report.html"
