#!/usr/bin/python3
"""searchmig-replay retries against target faults, with the target stand-in's
fault rules (docs/standins.md):
 - a `_bulk` answered 200 with "errors": true and some items rejected with a
   retryable status (429) is resent with only those items until they pass;
   non-retryable item errors (409) are kept as they are and not resent; the
   tuple holds every attempt's response;
 - whole requests answered 503 are retried, every attempt in the tuple."""
import json
import os
import subprocess
import sys
sys.dont_write_bytecode = True
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_replay_e2e as e2e  # noqa: E402  (record builders; its tests are not run here)

TMP = e2e.TMP


def bulk_body(n):
    lines = []
    for i in range(n):
        lines.append(json.dumps({"index": {"_index": "bulkidx", "_id": str(i)}}))
        lines.append(json.dumps({"n": i}))
    # the same document created twice: the second create fails with 409 on
    # the source and the target alike (not retryable)
    lines.append(json.dumps({"create": {"_index": "bulkidx", "_id": "dup"}}))
    lines.append(json.dumps({"n": -1}))
    lines.append(json.dumps({"create": {"_index": "bulkidx", "_id": "dup"}}))
    lines.append(json.dumps({"n": -2}))
    return ("\n".join(lines) + "\n").encode()


def records(n_items):
    body = bulk_body(n_items)
    head = (f"POST /_bulk HTTP/1.1\r\nHost: source:9200\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    req = head.encode() + body
    items = [{"index": {"_index": "bulkidx", "_id": str(i), "status": 201, "result": "created"}}
             for i in range(n_items)]
    items.append({"create": {"_index": "bulkidx", "_id": "dup", "status": 201, "result": "created"}})
    items.append({"create": {"_index": "bulkidx", "_id": "dup", "status": 409,
                             "error": {"type": "version_conflict_engine_exception"}}})
    s = e2e.rec("bulkconn", number=1)
    e2e.obs(s, 0.0, read=req)
    e2e.obs(s, 0.0, eom=(head.index("\r\n") + 2, len(head)))
    e2e.obs(s, 0.01, write=e2e.http_resp(200, "OK", {"took": 5, "errors": True, "items": items}))
    # a plain document write on the same connection, answered 503 twice by the target
    req2, fl, hl = e2e.http_req("PUT", "/other/_doc/1", {"x": 1})
    e2e.obs(s, 0.1, read=req2)
    e2e.obs(s, 0.1, eom=(fl, hl))
    e2e.obs(s, 0.11, write=e2e.http_resp(201, "Created", {"result": "created"}))
    e2e.obs(s, 0.2, close=True)
    return [s]


class ReplayRetries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.portfile = os.path.join(TMP, "port-bulk")
        cls.standin, cls.url = e2e.start_standin(cls.portfile, "--flavor", "opensearch-2.11")

    @classmethod
    def tearDownClass(cls):
        cls.standin.terminate()
        cls.standin.wait()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        rq = urllib.request.Request(self.url + path, data=data, method=method,
                                    headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(rq) as r:
            return json.loads(r.read() or b"null")

    def test_bulk_item_and_request_retries(self):
        n = 10
        self.call("PUT", "/_standin/faults", [
            # the first 3 bulk items are rejected (429) while the others are applied
            {"path": "*_bulk", "bulk_item_status": 429, "item_count": 3},
            # the document write is answered 503 twice
            {"path": "/other/_doc", "status": 503, "count": 2},
        ])
        self.call("DELETE", "/_standin/stats")
        inp = os.path.join(TMP, "bulk-records.log")
        with open(inp, "w") as f:
            f.write("\n".join(e2e.base64.b64encode(r.SerializeToString()).decode() for r in records(n)) + "\n")
        tuples = os.path.join(TMP, "tuples-bulk")
        summary = os.path.join(TMP, "summary-bulk.json")
        p = subprocess.run([e2e.REPLAY, "--input", inp, "--target", self.url, "--speedup-factor", "0",
                            "--target-backoff-base", "10ms", "--target-max-retries", "3",
                            "--tuples-dir", tuples, "--summary-json", summary],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        s = json.loads(e2e.read(summary))
        self.assertEqual(s["sent"], 2)
        self.assertEqual(s["bulk_item_retries"], 3, "the 3 rejected items resent once each")

        # every document reached the target: the rejected items were resent
        self.call("POST", "/bulkidx/_refresh")
        self.assertEqual(self.call("GET", "/bulkidx/_count")["count"], n + 1)
        st = self.call("GET", "/_standin/stats")
        self.assertEqual(st["bulk"]["requests"], 2, st["bulk"])
        self.assertEqual(st["bulk"]["items"], n + 2 + 3, "only the 3 rejected items were resent")
        self.assertEqual(st["requests"].get("PUT /other/_doc/1"), 3)

        by_id = {t["connectionId"]: t for t in e2e.read_json_lines(os.path.join(tuples, "tuples-*.log"))}
        t = by_id["bulkconn.0"]
        self.assertEqual(t["numRequests"], 2)
        self.assertEqual(t["numErrors"], 0)
        self.assertEqual(len(t["targetResponses"]), 2)
        first = t["targetResponses"][0]["payload"]["inlinedJsonBody"]
        second = t["targetResponses"][1]["payload"]["inlinedJsonBody"]
        self.assertTrue(first["errors"])
        statuses = [list(it.values())[0]["status"] for it in first["items"]]
        self.assertEqual(statuses[:3], [429, 429, 429])
        self.assertEqual(statuses[-1], 409, "non-retryable item error as the target gave it")
        self.assertEqual(len(second["items"]), 3, "the retry carried only the rejected items")
        self.assertEqual([list(it.values())[0]["_id"] for it in second["items"]], ["0", "1", "2"])
        self.assertFalse(second["errors"])
        # the comparison sees the merged result: same statuses as the source's
        self.assertEqual(t["comparison"]["target_status"], 200)

        t2 = by_id["bulkconn.1"]
        self.assertEqual([r["Status-Code"] for r in t2["targetResponses"]], [503, 503, 201])
        self.assertEqual(t2["numRequests"], 3)


if __name__ == "__main__":
    r = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if r.wasSuccessful() else 1)
