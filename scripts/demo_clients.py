#!/usr/bin/python3
"""Demo traffic: real clients talk to the source cluster while the agent
captures. Uses the Elasticsearch Python client from Debian
(python3-elasticsearch), curl, and Python's http.client with keep-alive,
mixing searches, document reads, writes, updates, deletes and _bulk."""
import http.client
import json
import subprocess
import sys
import urllib.parse

url = sys.argv[1]
u = urllib.parse.urlparse(url)
count = 0


def note(what):
    global count
    count += 1


# 1. the official Python client (keep-alive connection pool)
try:
    from elasticsearch import Elasticsearch
    es = Elasticsearch([url])
    info = es.info()
    note("info")
    for idx in es.indices.get_alias(index="*").keys():
        if idx.startswith("."):
            continue
        es.search(index=idx, body={"query": {"match_all": {}}, "size": 5})
        es.count(index=idx)
        note("search")
        note("count")
    es.index(index="demo-writes", id="w1", body={"user": "alice", "action": "login", "n": 1}, refresh=True)
    es.index(index="demo-writes", id="w2", body={"user": "bob", "action": "search", "n": 2}, refresh=True)
    es.get(index="demo-writes", id="w1")
    note("index")
    note("index")
    note("get")
except Exception as e:  # the demo goes on with the other clients
    print(f"python elasticsearch client: {e}", file=sys.stderr)

# 2. curl, one connection per request
for args in (["-s", url + "/"],
             ["-s", url + "/_cat/indices?v"],
             ["-s", "-XPUT", url + "/demo-writes/_doc/c1?refresh=true", "-H", "Content-Type: application/json",
              "-d", '{"user":"carol","action":"upload","n":3}'],
             ["-s", "-XPOST", url + "/demo-writes/_search", "-H", "Content-Type: application/json",
              "-d", '{"query":{"term":{"user":"carol"}}}']):
    subprocess.run(["curl", "-o", "/dev/null", "-w", "", *args], check=True)
    note("curl")

# 3. http.client keep-alive: bulk, update, delete, gets on one connection
c = http.client.HTTPConnection(u.hostname, u.port)
def req(method, path, body=None, ctype="application/json"):
    headers = {"Content-Type": ctype} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    note(path)
    return r.status

bulk = "".join(json.dumps({"index": {"_index": "demo-writes", "_id": f"b{i}"}}) + "\n" +
               json.dumps({"user": f"user{i}", "action": "bulk", "n": i}) + "\n" for i in range(20))
req("POST", "/_bulk?refresh=true", bulk, "application/x-ndjson")
req("POST", "/demo-writes/_update/b3?refresh=true", json.dumps({"doc": {"action": "updated"}}))
req("DELETE", "/demo-writes/_doc/b4?refresh=true")
for i in range(5):
    req("GET", f"/demo-writes/_doc/b{i}")
req("GET", "/demo-writes/_count")
req("GET", "/_cluster/health")
c.close()
print(f"demo clients: {count} requests sent to {url}")
