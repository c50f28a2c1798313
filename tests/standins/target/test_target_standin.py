#!/usr/bin/python3
"""Tests for the target-cluster stand-in (tests/standins/target/target_standin.py).

Each test class starts the stand-in as a subprocess on a free port and talks to
it with curl (the real client) and with http.client. Run:
    /usr/bin/python3 tests/standins/target/test_target_standin.py
Prints "N passed, M failed" and exits non-zero on failure.
"""

import base64
import gzip
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "target_standin.py")
PY = "/usr/bin/python3"
sys.path.insert(0, HERE)
import target_standin  # noqa: E402  (for the routing hash vectors)


class Standin:
    """One stand-in process."""

    def __init__(self, flavor, *extra, data_dir=None):
        self.tmp = tempfile.mkdtemp(prefix="standin-test-")
        self.port_file = os.path.join(self.tmp, "port")
        self.log = os.path.join(self.tmp, "requests.log")
        args = [PY, SCRIPT, "--port", "0", "--port-file", self.port_file, "--flavor", flavor,
                "--log", self.log, "--seed", "7"] + list(extra)
        if data_dir:
            args += ["--data-dir", data_dir]
        self.errpath = os.path.join(self.tmp, "stderr")
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, text=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("stand-in did not start: " + open(self.errpath).read())
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.banner = self.proc.stdout.readline().strip()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conn = None

    def stop(self):
        if self.conn:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        with open(self.errpath) as f:
            errors = f.read()
        shutil.rmtree(self.tmp, ignore_errors=True)
        # an internal error in the stand-in is a failure even if the answer looked right
        if "Traceback" in errors:
            raise AssertionError("stand-in stderr:\n" + errors)

    # http.client over one keep-alive connection
    def req(self, method, path, body=None, headers=None, ndjson=False):
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            hdrs.setdefault("Content-Type", "application/x-ndjson" if ndjson else "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        ctype = r.getheader("content-type", "")
        gz = r.getheader("content-encoding") == "gzip"
        parsed = json.loads(data) if data and ctype.startswith("application/json") and not gz else data
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed

    def curl(self, *args, data=None):
        """Run curl; returns (http_status, body_text, curl_exit_code)."""
        cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}"] + list(args)
        p = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        body, _, code = out.rpartition("\n")
        return int(code or 0), body, p.returncode

    def curl_json(self, *args, data=None):
        st, body, rc = self.curl(*args, data=data)
        return st, (json.loads(body) if body.strip() else None)


def bulk_body(lines):
    return "".join(json.dumps(x) + "\n" for x in lines)


class StandinCase(unittest.TestCase):
    FLAVOR = "elasticsearch-7.10"
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.s = Standin(cls.FLAVOR, *cls.EXTRA)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def setUp(self):
        self.s.req("POST", "/_standin/reset")

    def assertError(self, resp, status, etype, reason=None):
        st, _, body = resp
        self.assertEqual(st, status, body)
        self.assertEqual(body["status"], status)
        self.assertEqual(body["error"]["type"], etype, body)
        self.assertTrue(body["error"]["root_cause"], body)
        if reason is not None:
            self.assertEqual(body["error"]["reason"], reason)
        return body


class TestMurmur(unittest.TestCase):
    def test_elasticsearch_vectors(self):
        # Murmur3HashFunctionTests.testKnownValues in Elasticsearch
        for s, h in [("hell", 0x5a0cb7c3), ("hello", 0xd7c31989), ("hello w", 0x22ab2984),
                     ("hello wo", 0xdf0ca123), ("hello wor", 0xe7744d61),
                     ("The quick brown fox jumps over the lazy dog", 0xe07db09c),
                     ("The quick brown fox jumps over the lazy cog", 0x4e63d2ad)]:
            self.assertEqual(target_standin.routing_hash(s) & 0xFFFFFFFF, h, s)


class TestRootAndFlavors(unittest.TestCase):
    def test_root_per_flavor(self):
        expect = {
            "elasticsearch-6.8": ("6.8.23", None, "You Know, for Search", "7.7.3"),
            "elasticsearch-7.10": ("7.10.2", None, "You Know, for Search", "8.7.0"),
            "opensearch-1.3": ("1.3.14", "opensearch", "The OpenSearch Project: https://opensearch.org/", "8.10.1"),
            "opensearch-2.11": ("2.11.0", "opensearch", "The OpenSearch Project: https://opensearch.org/", "9.7.0"),
        }
        for flavor, (num, dist, tagline, lucene) in expect.items():
            s = Standin(flavor, "--cluster-name", "c-" + flavor)
            try:
                self.assertEqual(s.banner, "target stand-in (%s) listening on http://127.0.0.1:%d"
                                 % (flavor, s.port))
                st, hdrs, body = s.req("GET", "/")
                self.assertEqual(st, 200)
                self.assertEqual(hdrs["content-type"], "application/json; charset=UTF-8")
                self.assertNotIn("x-elastic-product", hdrs)
                self.assertEqual(body["cluster_name"], "c-" + flavor)
                self.assertEqual(body["version"]["number"], num)
                self.assertEqual(body["version"].get("distribution"), dist)
                self.assertEqual(body["tagline"], tagline)
                self.assertEqual(body["version"]["lucene_version"], lucene)
                if dist is None:
                    self.assertEqual(body["version"]["build_flavor"], "default")
                for k in ("build_hash", "build_date", "minimum_wire_compatibility_version",
                          "minimum_index_compatibility_version", "build_snapshot"):
                    self.assertIn(k, body["version"])
                st, _, h = s.req("GET", "/_cluster/health")
                self.assertEqual((st, h["status"], h["number_of_nodes"]), (200, "green", 1))
                # pretty output is indented and still JSON
                code, text, _ = s.curl(s.url + "/?pretty")
                self.assertIn('\n  "cluster_name" : "c-%s",' % flavor, text)
            finally:
                s.stop()


class TestIndices(StandinCase):
    def test_create_get_delete(self):
        s = self.s
        st, body = s.curl_json("-XPUT", s.url + "/books", "-H", "Content-Type: application/json",
                               "-d", json.dumps({"settings": {"index": {"number_of_shards": 2,
                                                                         "number_of_replicas": 0}},
                                                 "mappings": {"properties": {"title": {"type": "text"},
                                                                             "isbn": {"type": "keyword"}}},
                                                 "aliases": {"library": {}}}))
        self.assertEqual((st, body), (200, {"acknowledged": True, "shards_acknowledged": True, "index": "books"}))
        self.assertEqual(s.curl("-I", s.url + "/books")[0], 200)
        self.assertEqual(s.curl("-I", s.url + "/nobooks")[0], 404)
        st, _, b = s.req("GET", "/books")
        self.assertEqual(st, 200)
        self.assertEqual(b["books"]["aliases"], {"library": {}})
        self.assertEqual(b["books"]["mappings"]["properties"]["isbn"], {"type": "keyword"})
        idx = b["books"]["settings"]["index"]
        self.assertEqual((idx["number_of_shards"], idx["number_of_replicas"], idx["provided_name"]),
                         ("2", "0", "books"))
        self.assertEqual(idx["version"]["created"], "7100299")
        uuid = idx["uuid"]
        st, _, b = s.req("GET", "/books/_settings?flat_settings=true")
        self.assertEqual(b["books"]["settings"]["index.number_of_shards"], "2")
        self.assertEqual(s.req("PUT", "/books/_settings", {"index": {"number_of_replicas": 1}})[0], 200)
        self.assertEqual(s.req("GET", "/books/_settings")[2]["books"]["settings"]["index"]["number_of_replicas"], "1")
        self.assertError(s.req("PUT", "/books/_settings", {"index": {"number_of_shards": 3}}), 400,
                         "illegal_argument_exception")
        # mapping update, then a conflicting one
        self.assertEqual(s.req("PUT", "/books/_mapping", {"properties": {"year": {"type": "integer"}}})[0], 200)
        m = s.req("GET", "/books/_mapping")[2]
        self.assertEqual(set(m["books"]["mappings"]["properties"]), {"title", "isbn", "year"})
        self.assertError(s.req("PUT", "/books/_mapping", {"properties": {"year": {"type": "text"}}}), 400,
                         "illegal_argument_exception",
                         "mapper [year] cannot be changed from type [integer] to [text]")
        # already exists
        e = self.assertError(s.req("PUT", "/books", {}), 400, "resource_already_exists_exception",
                             "index [books/%s] already exists" % uuid)
        self.assertEqual(e["error"]["index_uuid"], uuid)
        # delete, then missing
        st, _, b = s.req("DELETE", "/books")
        self.assertEqual((st, b), (200, {"acknowledged": True}))
        e = self.assertError(s.req("DELETE", "/books"), 404, "index_not_found_exception", "no such index [books]")
        self.assertEqual(e["error"]["resource.type"], "index_or_alias")
        self.assertEqual(e["error"]["index_uuid"], "_na_")
        self.assertEqual(e["error"]["root_cause"][0]["index"], "books")

    def test_wildcard_delete(self):
        s = self.s
        for n in ("logs-1", "logs-2", "other"):
            self.assertEqual(s.req("PUT", "/" + n)[0], 200)
        self.assertEqual(s.req("DELETE", "/logs-*")[0], 200)
        self.assertEqual(sorted(s.req("GET", "/_cat/indices?format=json&h=index")[2],
                                key=lambda r: r["index"]), [{"index": "other"}])
        self.assertEqual(s.req("DELETE", "/nomatch-*")[0], 200)

    def test_invalid_names(self):
        s = self.s
        cases = {
            "Upper": "must be lowercase",
            "_under": "must not start with '_', '-', or '+'",
            "-minus": "must not start with '_', '-', or '+'",
            "+plus": "must not start with '_', '-', or '+'",
            "a*b": 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]',
            "a#b": "must not contain '#'",
            "a:b": "must not contain ':'",
            "..": "must not be '.' or '..'",
        }
        for name, why in cases.items():
            path = "/" + name.replace("#", "%23").replace("*", "%2A")
            self.assertError(s.req("PUT", path), 400, "invalid_index_name_exception",
                             "Invalid index name [%s], %s" % (name, why))

    def test_content_type_required(self):
        s = self.s
        st, body = s.curl_json("-XPUT", s.url + "/x", "-d", "{}")
        self.assertEqual((st, body), (406, {"error": "Content-Type header [application/x-www-form-urlencoded] "
                                                     "is not supported", "status": 406}))

    def test_unknown_parameter(self):
        self.assertError(self.s.req("GET", "/_cluster/health?frobnicate=1"), 400, "illegal_argument_exception",
                         "request [/_cluster/health] contains unrecognized parameter: [frobnicate]")

    def test_keep_alive(self):
        s = self.s
        s.req("GET", "/")
        conn = s.conn
        sock = conn.sock
        for _ in range(5):
            self.assertEqual(s.req("GET", "/_cluster/health")[0], 200)
        self.assertIs(s.conn.sock, sock)

    def test_dynamic_mapping_and_field_errors(self):
        s = self.s
        st, _, b = s.req("PUT", "/d/_doc/1", {"s": "hello", "n": 3, "f": 1.5, "b": True,
                                             "when": "2024-01-02T03:04:05Z", "o": {"x": "y"}})
        self.assertEqual((st, b["result"], b["_seq_no"], b["_version"]), (201, "created", 0, 1))
        props = s.req("GET", "/d/_mapping")[2]["d"]["mappings"]["properties"]
        self.assertEqual(props["s"], {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
        self.assertEqual((props["n"]["type"], props["f"]["type"], props["b"]["type"], props["when"]["type"]),
                         ("long", "float", "boolean", "date"))
        self.assertEqual(props["o"], {"properties": {"x": {"type": "text", "fields": {
            "keyword": {"type": "keyword", "ignore_above": 256}}}}})
        e = self.assertError(s.req("PUT", "/d/_doc/2", {"n": "abc"}), 400, "mapper_parsing_exception",
                             "failed to parse field [n] of type [long] in document with id '2'. "
                             "Preview of field's value: 'abc'")
        self.assertEqual(e["error"]["caused_by"], {"type": "number_format_exception",
                                                   "reason": 'For input string: "abc"'})
        self.assertEqual(s.req("PUT", "/strict", {"mappings": {"dynamic": "strict",
                                                             "properties": {"a": {"type": "keyword"}}}})[0], 200)
        self.assertError(s.req("PUT", "/strict/_doc/1", {"a": "x", "b": 1}), 400,
                         "strict_dynamic_mapping_exception",
                         "mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed")
        self.assertError(s.req("PUT", "/bad", {"mappings": {"properties": {"a": {"type": "string"}}}}), 400,
                         "mapper_parsing_exception",
                         "Failed to parse mapping [_doc]: No handler for type [string] declared on field [a]")
        self.assertError(s.req("PUT", "/bad", {"mappings": {"_all": {"enabled": False}}}), 400,
                         "mapper_parsing_exception",
                         "Failed to parse mapping [_doc]: Root mapping definition has unsupported "
                         "parameters:  [_all : {enabled=false}]")
        for k in ("index.version.created", "index.uuid", "index.creation_date", "index.provided_name"):
            self.assertError(s.req("PUT", "/bad", {"settings": {k: "1"}}), 400, "illegal_argument_exception",
                             "private index setting [%s] can not be set explicitly" % k)
        self.assertError(s.req("PUT", "/bad", {"settings": {"index": {"mapper": {"dynamic": False}}}}), 400,
                         "illegal_argument_exception",
                         "unknown setting [index.mapper.dynamic] please check that any required plugins are "
                         "installed, or check the breaking changes documentation for removed settings")
        self.assertEqual(s.req("GET", "/_cat/indices?format=json&h=index")[2], [{"index": "d"}, {"index": "strict"}])


class TestVersionGating(unittest.TestCase):
    def test_opensearch_2_rejects_types(self):
        s = Standin("opensearch-2.11")
        try:
            st, _, b = s.req("PUT", "/a", {"mappings": {"_doc": {"properties": {"x": {"type": "keyword"}}}}})
            self.assertEqual((st, b["error"]["type"], b["error"]["reason"]),
                             (400, "illegal_argument_exception", "The mapping definition cannot be nested under a type"))
            st, _, b = s.req("PUT", "/a", {"mappings": {"mytype": {"properties": {"x": {"type": "keyword"}}}}})
            self.assertEqual(st, 400)
            self.assertEqual(b["error"]["type"], "mapper_parsing_exception")
            self.assertEqual(b["error"]["reason"],
                             "Failed to parse mapping [_doc]: Root mapping definition has unsupported "
                             "parameters:  [mytype : {properties={x={type=keyword}}}]")
            self.assertEqual(b["error"]["root_cause"][0]["reason"],
                             "Root mapping definition has unsupported parameters:  "
                             "[mytype : {properties={x={type=keyword}}}]")
            st, _, b = s.req("PUT", "/a?include_type_name=true", {})
            self.assertEqual((st, b["error"]["reason"]),
                             (400, "request [/a] contains unrecognized parameter: [include_type_name]"))
            # a typed legacy template: the type is an unknown root mapping parameter
            st, _, b = s.req("PUT", "/_template/t", {"index_patterns": ["x*"],
                                                      "mappings": {"_doc": {"properties": {}}}})
            self.assertEqual((st, b["error"]["type"]), (400, "mapper_parsing_exception"))
            # typed document URLs do not exist any more
            st, _, b = s.req("PUT", "/a/mytype/1", {"x": 1})
            self.assertEqual((st, b), (400, {"error": "no handler found for uri [/a/mytype/1] and method [PUT]"}))
            # _type in bulk action lines
            st, _, b = s.req("POST", "/_bulk", bulk_body([{"index": {"_index": "a", "_type": "_doc", "_id": "1"}},
                                                          {"x": 1}]), ndjson=True)
            self.assertEqual((st, b["error"]["reason"]),
                             (400, "Action/metadata line [1] contains an unknown parameter [_type]"))
            # typeless works, and responses carry no _type
            self.assertEqual(s.req("PUT", "/a", {"mappings": {"properties": {"x": {"type": "keyword"}}}})[0], 200)
            st, _, b = s.req("PUT", "/a/_doc/1", {"x": "v"})
            self.assertEqual(st, 201)
            self.assertNotIn("_type", b)
            st, _, b = s.req("POST", "/a/_update/1", {"doc": {"x": "w"}})
            self.assertEqual((st, b["result"], b["_version"]), (200, "updated", 2))
            st, _, b = s.req("POST", "/a/_update/2", {"doc": {"x": "w"}})
            self.assertEqual((st, b["error"]["type"], b["error"]["reason"]),
                             (404, "document_missing_exception", "[2]: document missing"))
            # composable templates exist here
            self.assertEqual(s.req("PUT", "/_index_template/it", {"index_patterns": ["q*"]})[0], 200)
            st, _, h = s.req("GET", "/_cluster/health")
            self.assertTrue(h["discovered_cluster_manager"])
        finally:
            s.stop()

    def test_elasticsearch_6_8_types(self):
        s = Standin("elasticsearch-6.8")
        try:
            st, _, b = s.req("PUT", "/a", {"mappings": {"doc": {"properties": {"x": {"type": "keyword"}}}}})
            self.assertEqual(st, 200, b)
            self.assertEqual(s.req("GET", "/a/_mapping")[2],
                             {"a": {"mappings": {"doc": {"properties": {"x": {"type": "keyword"}}}}}})
            self.assertEqual(s.req("GET", "/a/_settings")[2]["a"]["settings"]["index"]["number_of_shards"], "5")
            st, _, b = s.req("PUT", "/a/doc/1?routing=u1", {"x": "v"})
            self.assertEqual((st, b["_type"], b["result"]), (201, "doc", "created"))
            # _doc resolves to the index's single type
            st, _, b = s.req("GET", "/a/_doc/1?routing=u1")
            self.assertEqual((st, b["_type"], b["_routing"], b["_source"]), (200, "doc", "u1", {"x": "v"}))
            st, _, b = s.req("PUT", "/a/other/2", {"x": "v"})
            self.assertEqual((st, b["error"]["reason"]),
                             (400, "Rejecting mapping update to [a] as the final mapping would have more than "
                                   "1 type: [doc, other]"))
            st, _, b = s.req("PUT", "/b", {"mappings": {"t1": {}, "t2": {}}})
            self.assertEqual(st, 400)
            self.assertIn("more than 1 type: [t1, t2]", b["error"]["reason"])
            # typeless mappings are a type named "properties" in 6.8 ...
            st, _, b = s.req("PUT", "/c", {"mappings": {"properties": {"x": {"type": "keyword"}}}})
            self.assertEqual((st, b["error"]["type"]), (400, "mapper_parsing_exception"))
            self.assertEqual(b["error"]["reason"], "Failed to parse mapping [properties]: Root mapping "
                             "definition has unsupported parameters:  [x : {type=keyword}]")
            # ... unless include_type_name=false
            self.assertEqual(s.req("PUT", "/c?include_type_name=false",
                                   {"mappings": {"properties": {"x": {"type": "keyword"}}}})[0], 200)
            # bulk requires a type, results carry it, total hits is a number
            st, _, b = s.req("POST", "/_bulk", bulk_body([{"index": {"_index": "a", "_id": "9"}}, {"x": 1}]),
                             ndjson=True)
            self.assertEqual((st, b["error"]["reason"]), (400, "Validation Failed: 1: type is missing;"))
            st, _, b = s.req("POST", "/_bulk", bulk_body([{"index": {"_index": "a", "_type": "doc", "_id": "9"}},
                                                          {"x": "w"}]), ndjson=True)
            self.assertEqual((st, b["errors"], b["items"][0]["index"]["_type"]), (200, False, "doc"))
            st, _, b = s.req("GET", "/a/_search")
            self.assertEqual(b["hits"]["total"], 2)
            self.assertEqual(b["_shards"]["total"], 5)
            # create conflict message carries the type in 6.8
            st, _, b = s.req("PUT", "/a/doc/9/_create", {"x": "w"})
            self.assertEqual((st, b["error"]["reason"]),
                             (409, "[doc][9]: version conflict, document already exists (current version [1])"))
            # no composable templates in 6.8
            st, _, b = s.req("PUT", "/_index_template/x", {"index_patterns": ["x*"]})
            self.assertEqual((st, b), (405, {"error": "Incorrect HTTP method for uri [/_index_template/x] and "
                                                      "method [PUT], allowed: [POST]", "status": 405}))
            st, _, b = s.req("PUT", "/_index_template", {})
            self.assertEqual((st, b["error"]["type"]), (400, "invalid_index_name_exception"))
            self.assertEqual(s.req("PUT", "/_template/lt", {"template": "lt*", "mappings": {"_doc": {}}})[0], 200)
            self.assertEqual(s.req("GET", "/_template/lt")[2]["lt"]["index_patterns"], ["lt*"])
        finally:
            s.stop()

    def test_elasticsearch_7_10_typed_forms(self):
        s = Standin("elasticsearch-7.10")
        try:
            st, _, b = s.req("PUT", "/a?include_type_name=true", {"mappings": {"_doc": {"properties": {
                "x": {"type": "keyword"}}}}})
            self.assertEqual(st, 200, b)
            self.assertEqual(s.req("GET", "/a/_mapping")[2], {"a": {"mappings": {"properties": {"x": {"type": "keyword"}}}}})
            self.assertEqual(s.req("GET", "/a/_mapping?include_type_name=true")[2],
                             {"a": {"mappings": {"_doc": {"properties": {"x": {"type": "keyword"}}}}}})
            st, _, b = s.req("PUT", "/a/_doc/1", {"x": "v"})
            self.assertEqual((st, b["_type"]), (201, "_doc"))
            st, _, b = s.req("PUT", "/a/other/1", {"x": "v"})
            self.assertEqual(st, 400)
            self.assertIn("more than 1 type: [_doc, other]", b["error"]["reason"])
            st, _, b = s.req("PUT", "/a/_doc/1?version=3", {"x": "v"})
            self.assertEqual((st, b["error"]["type"]), (400, "action_request_validation_exception"))
        finally:
            s.stop()

    def test_opensearch_1_3_keeps_type_field(self):
        s = Standin("opensearch-1.3")
        try:
            st, _, b = s.req("PUT", "/a/_doc/1", {"x": "v"})
            self.assertEqual((st, b["_type"]), (201, "_doc"))
            self.assertEqual(s.req("PUT", "/b?include_type_name=true", {"mappings": {"_doc": {}}})[0], 200)
        finally:
            s.stop()


class TestDocsAndBulk(StandinCase):
    def test_bulk_items(self):
        s = self.s
        body = bulk_body([
            {"index": {"_index": "t", "_id": "1"}}, {"n": 1, "k": "a"},
            {"create": {"_index": "t", "_id": "1"}}, {"n": 2},
            {"create": {"_index": "t", "_id": "2", "routing": "r"}}, {"n": 2, "k": "b"},
            {"index": {"_index": "t", "_id": "3"}}, {"n": "not a number"},
            {"update": {"_index": "t", "_id": "404"}}, {"doc": {"n": 5}},
            {"update": {"_index": "t", "_id": "1"}}, {"doc": {"k": "c"}},
            {"delete": {"_index": "t", "_id": "1"}},
            {"delete": {"_index": "t", "_id": "nope"}},
            {"index": {"_index": "t"}}, {"auto": True},
        ])
        body = body.replace('{"n": 2}\n', '{"n": 2}\n', 1)
        st, body_text, rc = s.curl("-XPOST", s.url + "/_bulk?refresh=true", "-H",
                                   "Content-Type: application/x-ndjson", "--data-binary", "@-",
                                   data=body.encode())
        self.assertEqual((st, rc), (200, 0), body_text)
        b = json.loads(body_text)
        self.assertTrue(b["errors"])
        self.assertIsInstance(b["took"], int)
        items = b["items"]
        self.assertEqual([list(i)[0] for i in items],
                         ["index", "create", "create", "index", "update", "update", "delete", "delete", "index"])
        r = [list(i.values())[0] for i in items]
        self.assertEqual([x["status"] for x in r], [201, 409, 201, 400, 404, 200, 200, 404, 201])
        self.assertEqual(r[0]["_seq_no"] >= 0 and r[0]["_primary_term"], 1)
        self.assertEqual((r[0]["result"], r[0]["_version"], r[0]["_shards"]),
                         ("created", 1, {"total": 2, "successful": 1, "failed": 0}))
        self.assertEqual(r[1]["error"]["type"], "version_conflict_engine_exception")
        self.assertEqual(r[1]["error"]["reason"],
                         "[1]: version conflict, document already exists (current version [1])")
        self.assertEqual(r[1]["error"]["index"], "t")
        self.assertIn("index_uuid", r[1]["error"])
        self.assertEqual(r[3]["error"]["type"], "mapper_parsing_exception")
        self.assertEqual(r[4]["error"]["type"], "document_missing_exception")
        self.assertEqual(r[4]["error"]["reason"], "[_doc][404]: document missing")
        self.assertEqual((r[5]["result"], r[5]["_version"]), ("updated", 2))
        self.assertEqual((r[6]["result"], r[6]["_version"]), ("deleted", 3))
        self.assertEqual(r[7]["result"], "not_found")
        self.assertEqual(len(r[8]["_id"]), 20)
        self.assertTrue(r[8]["forced_refresh"])
        # per-shard sequence numbers increase by one per operation on the shard
        self.assertEqual(s.req("GET", "/t/_count")[2]["count"], 2)
        st, _, g = s.req("GET", "/t/_doc/2?routing=r")
        self.assertEqual((g["_routing"], g["_source"], g["_version"]), ("r", {"n": 2, "k": "b"}, 1))
        stats = s.req("GET", "/_standin/stats")[2]
        self.assertEqual(stats["docs"], {"t": 2})
        self.assertEqual(stats["bulk"]["items"], 9)
        self.assertEqual(stats["bulk"]["items_accepted"], 6)
        self.assertEqual(stats["bulk"]["items_failed"], 3)

    def test_bulk_filter_path_and_delete_by_query(self):
        s = self.s
        body = bulk_body([{"index": {"_index": "fp", "_id": "1"}}, {"k": "a"},
                          {"create": {"_index": "fp", "_id": "1"}}, {"k": "a"},
                          {"index": {"_index": "fp", "_id": "2"}}, {"k": "b"}])
        st, _, b = s.req("POST", "/_bulk?filter_path=errors,items.*.error.type,items.*._id", body, ndjson=True)
        self.assertEqual(b, {"errors": True, "items": [
            {"index": {"_id": "1"}},
            {"create": {"_id": "1", "error": {"type": "version_conflict_engine_exception"}}},
            {"index": {"_id": "2"}}]})
        st, _, b = s.req("POST", "/_bulk?filter_path=items.*.error",
                         bulk_body([{"index": {"_index": "fp", "_id": "3"}}, {"k": "c"}]), ndjson=True)
        self.assertEqual((st, b), (200, {}))
        st, _, b = s.req("POST", "/fp/_delete_by_query", {"query": {"term": {"k.keyword": "a"}}})
        self.assertEqual((st, b["deleted"], b["total"], b["failures"]), (200, 1, 1, []))
        self.assertEqual(s.req("GET", "/fp/_count")[2]["count"], 2)
        # whole-request validation happens before anything is applied
        st, _, b = s.req("POST", "/_bulk", bulk_body([{"index": {"_index": "fp", "_id": "9"}}, {"k": "z"},
                                                      {"delete": {"_index": "fp"}}]), ndjson=True)
        self.assertEqual((st, b["error"]["reason"]), (400, "Validation Failed: 1: id is missing;"))
        self.assertEqual(s.req("GET", "/fp/_doc/9")[2]["found"], False)

    def test_bulk_malformed(self):
        s = self.s
        st, _, b = s.req("POST", "/_bulk", '{"index":{"_index":"t"}}\n{"a":1}', ndjson=True)
        self.assertEqual((st, b["error"]["reason"]), (400, "The bulk request must be terminated by a newline [\\n]"))
        st, _, b = s.req("POST", "/_bulk", '{"frob":{"_index":"t"}}\n{"a":1}\n', ndjson=True)
        self.assertEqual((st, b["error"]["reason"]),
                         (400, "Malformed action/metadata line [1], expected field [create], [delete], "
                               "[index] or [update] but found [frob]"))
        # default index from the URL
        st, _, b = s.req("POST", "/dflt/_bulk", '{"index":{"_id":"1"}}\n{"a":1}\n', ndjson=True)
        self.assertEqual((st, b["items"][0]["index"]["_index"]), (200, "dflt"))

    def test_gzip_bulk(self):
        s = self.s
        docs = [{"index": {"_index": "gz", "_id": str(i)}} if j == 0 else {"i": i}
                for i in range(500) for j in range(2)]
        path = os.path.join(s.tmp, "bulk.gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(bulk_body(docs).encode()))
        st, text, rc = s.curl("-XPOST", s.url + "/_bulk", "-H", "Content-Type: application/x-ndjson",
                              "-H", "Content-Encoding: gzip", "--data-binary", "@" + path)
        self.assertEqual(st, 200, text)
        b = json.loads(text)
        self.assertFalse(b["errors"])
        self.assertEqual(len(b["items"]), 500)
        self.assertEqual(s.req("GET", "/gz/_count")[2]["count"], 500)

    def test_write_block_and_field_limit(self):
        s = self.s
        s.req("PUT", "/blk/_doc/1", {"a": 1})
        s.req("PUT", "/blk/_settings", {"index.blocks.write": True})
        self.assertError(s.req("PUT", "/blk/_doc/2", {"a": 1}), 403, "cluster_block_exception",
                         "index [blk] blocked by: [FORBIDDEN/8/index write (api)];")
        s.req("PUT", "/blk/_settings", {"index.blocks.write": False})
        self.assertEqual(s.req("PUT", "/blk/_doc/2", {"a": 1})[0], 201)
        s.req("PUT", "/lim", {"settings": {"index.mapping.total_fields.limit": 3}})
        self.assertEqual(s.req("PUT", "/lim/_doc/1", {"a": 1, "b": 2})[0], 201)
        self.assertError(s.req("PUT", "/lim/_doc/2", {"c": 1, "d": 2}), 400, "illegal_argument_exception",
                         "Limit of total fields [3] in index [lim] has been exceeded")

    def test_gzip_response(self):
        s = self.s
        st, hdrs, raw = s.req("GET", "/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((st, hdrs["content-encoding"]), (200, "gzip"))
        self.assertEqual(json.loads(gzip.decompress(raw))["tagline"], "You Know, for Search")
        self.assertEqual(int(hdrs["content-length"]), len(raw))
        code, text, rc = s.curl("--compressed", s.url + "/_cluster/health")
        self.assertEqual((code, json.loads(text)["number_of_nodes"]), (200, 1))

    def test_auto_create_disabled(self):
        s = self.s
        self.assertEqual(s.req("PUT", "/_cluster/settings",
                               {"persistent": {"action.auto_create_index": "false"}})[0], 200)
        try:
            st, _, b = s.req("POST", "/_bulk", '{"index":{"_index":"nx","_id":"1"}}\n{"a":1}\n', ndjson=True)
            item = b["items"][0]["index"]
            self.assertEqual((item["status"], item["error"]["type"], item["error"]["reason"]),
                             (404, "index_not_found_exception",
                              "no such index [nx] and [action.auto_create_index] is [false]"))
            self.assertError(s.req("PUT", "/nx/_doc/1", {"a": 1}), 404, "index_not_found_exception")
        finally:
            s.req("PUT", "/_cluster/settings", {"persistent": {"action.auto_create_index": None}})

    def test_optimistic_concurrency(self):
        s = self.s
        st, _, b = s.req("PUT", "/occ/_doc/k", {"v": 1})
        seq, term = b["_seq_no"], b["_primary_term"]
        st, _, b = s.req("PUT", "/occ/_doc/k?if_seq_no=%d&if_primary_term=%d" % (seq, term), {"v": 2})
        self.assertEqual((st, b["result"], b["_seq_no"], b["_version"]), (200, "updated", seq + 1, 2))
        e = self.assertError(s.req("PUT", "/occ/_doc/k?if_seq_no=%d&if_primary_term=%d" % (seq, term), {"v": 3}),
                             409, "version_conflict_engine_exception",
                             "[k]: version conflict, required seqNo [%d], primary term [1]. current document "
                             "has seqNo [%d] and primary term [1]" % (seq, seq + 1))
        self.assertEqual(e["error"]["shard"], "0")
        self.assertError(s.req("PUT", "/occ/_doc/new?if_seq_no=0&if_primary_term=1", {"v": 3}), 409,
                         "version_conflict_engine_exception",
                         "[new]: version conflict, required seqNo [0], primary term [1]. but no document was found")
        self.assertError(s.req("DELETE", "/occ/_doc/k?if_seq_no=0&if_primary_term=1"), 409,
                         "version_conflict_engine_exception")
        st, _, b = s.req("DELETE", "/occ/_doc/k?if_seq_no=%d&if_primary_term=1" % (seq + 1))
        self.assertEqual((st, b["result"]), (200, "deleted"))
        # conditional writes in bulk
        st, _, b = s.req("PUT", "/occ/_doc/j", {"v": 1})
        body = bulk_body([{"index": {"_index": "occ", "_id": "j", "if_seq_no": b["_seq_no"], "if_primary_term": 1}},
                          {"v": 2},
                          {"index": {"_index": "occ", "_id": "j", "if_seq_no": b["_seq_no"], "if_primary_term": 1}},
                          {"v": 3}])
        r = s.req("POST", "/_bulk", body, ndjson=True)[2]["items"]
        self.assertEqual([x["index"]["status"] for x in r], [200, 409])

    def test_doc_crud_and_routing(self):
        s = self.s
        self.assertEqual(s.req("PUT", "/r", {"settings": {"number_of_shards": 4}})[0], 200)
        # find an id/routing pair whose shards differ, using the real ES routing formula
        st, _, b = s.req("PUT", "/r/_doc/u1?routing=tenant-a", {"name": "x"})
        self.assertEqual(st, 201)
        st, _, g = s.req("GET", "/r/_doc/u1?routing=tenant-a")
        self.assertEqual((st, g["_routing"], g["_source"], g["found"]), (200, "tenant-a", {"name": "x"}, True))
        rs = 1024 // 4 * 4
        shard_r = (target_standin.routing_hash("tenant-a") % rs) // (rs // 4)
        shard_id = (target_standin.routing_hash("u1") % rs) // (rs // 4)
        st, _, g = s.req("GET", "/r/_doc/u1")
        self.assertEqual(g["found"], shard_r == shard_id)
        hits = s.req("GET", "/r/_search")[2]["hits"]["hits"]
        self.assertEqual([(h["_id"], h["_routing"]) for h in hits], [("u1", "tenant-a")])
        self.assertEqual(s.req("GET", "/r/_search?routing=tenant-a")[2]["_shards"]["total"], 4)
        self.assertEqual(s.req("HEAD", "/r/_doc/u1?routing=tenant-a")[0], 200)
        self.assertEqual(s.req("HEAD", "/r/_doc/zz")[0], 404)
        # auto id, _create, _source, mget
        st, _, b = s.req("POST", "/r/_doc", {"name": "auto"})
        self.assertEqual((st, b["result"]), (201, "created"))
        st, _, b = s.req("PUT", "/r/_create/c1", {"name": "c"})
        self.assertEqual(st, 201)
        self.assertError(s.req("PUT", "/r/_create/c1", {"name": "c"}), 409, "version_conflict_engine_exception",
                         "[c1]: version conflict, document already exists (current version [1])")
        self.assertEqual(s.req("GET", "/r/_source/c1")[2], {"name": "c"})
        st, _, m = s.req("POST", "/_mget", {"docs": [{"_index": "r", "_id": "c1"},
                                                    {"_index": "r", "_id": "u1", "routing": "tenant-a"},
                                                    {"_index": "r", "_id": "none"}]})
        self.assertEqual([d["found"] for d in m["docs"]], [True, True, False])
        # the exact source bytes come back
        raw = '{ "b" : 2,\n "a":1 }'
        s.req("PUT", "/r/_doc/raw", raw)
        code, text, _ = s.curl(s.url + "/r/_doc/raw")
        self.assertIn('"_source":' + raw + "}", text)
        st, _, b = s.req("PUT", "/r/_doc/a%2Fb%20c?routing=tenant-a", {"slash": True})
        self.assertEqual((st, b["_id"]), (201, "a/b c"))
        self.assertEqual(s.req("GET", "/r/_doc/a%2Fb%20c?routing=tenant-a")[2]["_source"], {"slash": True})
        st, _, g = s.req("GET", "/r/_doc/none")
        self.assertEqual((st, g), (404, {"_index": "r", "_type": "_doc", "_id": "none", "found": False}))
        self.assertError(s.req("GET", "/missing/_doc/1"), 404, "index_not_found_exception")


class TestSearch(StandinCase):
    def setUp(self):
        super().setUp()
        docs = []
        for i in range(30):
            docs += [{"index": {"_index": "s", "_id": str(i)}},
                     {"n": i, "k": "even" if i % 2 == 0 else "odd", "t": "Quick brown fox %d" % i}]
        st, _, b = self.s.req("POST", "/_bulk?refresh=true", bulk_body(docs), ndjson=True)
        self.assertFalse(b["errors"])

    def test_queries(self):
        s = self.s
        b = s.req("GET", "/s/_search")[2]
        self.assertEqual(b["hits"]["total"], {"value": 30, "relation": "eq"})
        self.assertEqual(len(b["hits"]["hits"]), 10)
        self.assertEqual(b["hits"]["max_score"], 1.0)
        self.assertEqual(b["hits"]["hits"][0]["_score"], 1.0)
        b = s.req("POST", "/s/_search", {"query": {"ids": {"values": ["3", "5", "99"]}}})[2]
        self.assertEqual(sorted(h["_id"] for h in b["hits"]["hits"]), ["3", "5"])
        b = s.req("POST", "/s/_search", {"query": {"term": {"k.keyword": "odd"}}, "size": 100})[2]
        self.assertEqual(b["hits"]["total"]["value"], 15)
        b = s.req("POST", "/s/_search", {"query": {"term": {"n": 7}}})[2]
        self.assertEqual([h["_id"] for h in b["hits"]["hits"]], ["7"])
        b = s.req("POST", "/s/_search", {"query": {"bool": {"filter": [{"term": {"k.keyword": "even"}},
                                                                      {"range": {"n": {"gte": 10, "lt": 20}}}]}}})[2]
        self.assertEqual(b["hits"]["total"]["value"], 5)
        b = s.req("POST", "/s/_search", {"query": {"match": {"t": "FOX"}}, "size": 0})[2]
        self.assertEqual((b["hits"]["total"]["value"], b["hits"]["hits"]), (30, []))
        self.assertEqual(s.req("POST", "/s/_count", {"query": {"term": {"k.keyword": "even"}}})[2]["count"], 15)
        self.assertError(s.req("POST", "/s/_search", {"query": {"frobnicate": {}}}), 400, "parsing_exception",
                         "unknown query [frobnicate]")

    def test_sort_paging_and_totals(self):
        s = self.s
        b = s.req("POST", "/s/_search", {"sort": [{"n": "desc"}], "size": 3, "from": 2})[2]
        self.assertEqual([h["_id"] for h in b["hits"]["hits"]], ["27", "26", "25"])
        self.assertEqual(b["hits"]["hits"][0]["sort"], [27])
        self.assertIsNone(b["hits"]["max_score"])
        self.assertIsNone(b["hits"]["hits"][0]["_score"])
        b = s.req("POST", "/s/_search", {"sort": ["_doc"], "size": 5})[2]
        self.assertEqual([h["_id"] for h in b["hits"]["hits"]], ["0", "1", "2", "3", "4"])
        b2 = s.req("POST", "/s/_search", {"sort": ["_doc"], "size": 5,
                                          "search_after": b["hits"]["hits"][-1]["sort"]})[2]
        self.assertEqual([h["_id"] for h in b2["hits"]["hits"]], ["5", "6", "7", "8", "9"])
        self.assertEqual(s.req("POST", "/s/_search", {"track_total_hits": 10})[2]["hits"]["total"],
                         {"value": 10, "relation": "gte"})
        self.assertNotIn("total", s.req("POST", "/s/_search", {"track_total_hits": False})[2]["hits"])
        self.assertEqual(s.req("GET", "/s/_search?rest_total_hits_as_int=true")[2]["hits"]["total"], 30)
        e = self.assertError(s.req("POST", "/s/_search", {"sort": ["t"]}), 400, "search_phase_execution_exception")
        self.assertIn("Text fields are not optimised", e["error"]["root_cause"][0]["reason"])
        e = self.assertError(s.req("POST", "/s/_search", {"size": 10001}), 400, "search_phase_execution_exception")
        self.assertIn("Result window is too large", e["error"]["caused_by"]["reason"])
        s.req("PUT", "/s/_settings", {"index.max_result_window": 20000})
        self.assertEqual(len(s.req("POST", "/s/_search", {"size": 10001})[2]["hits"]["hits"]), 30)
        # scroll through everything
        b = s.req("POST", "/s/_search?scroll=1m", {"size": 12, "sort": ["_doc"]})[2]
        seen = [h["_id"] for h in b["hits"]["hits"]]
        sid = b["_scroll_id"]
        while True:
            b = s.req("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": sid})[2]
            if not b["hits"]["hits"]:
                break
            seen += [h["_id"] for h in b["hits"]["hits"]]
        self.assertEqual(seen, [str(i) for i in range(30)])
        self.assertEqual(s.req("DELETE", "/_search/scroll", {"scroll_id": sid})[2]["num_freed"], 1)
        # source filtering and filter_path
        b = s.req("POST", "/s/_search?filter_path=hits.hits._id,hits.hits._source",
                  {"query": {"ids": {"values": ["4"]}}, "_source": ["n"]})[2]
        self.assertEqual(b, {"hits": {"hits": [{"_id": "4", "_source": {"n": 4}}]}})

    def test_aggregations(self):
        s = self.s
        b = s.req("POST", "/s/_search", {"size": 0, "query": {"range": {"n": {"lt": 10}}}, "aggs": {
            "kinds": {"terms": {"field": "k.keyword"}, "aggs": {"top": {"max": {"field": "n"}}}},
            "total": {"sum": {"field": "n"}}, "avg_n": {"avg": {"field": "n"}},
            "cnt": {"value_count": {"field": "n"}}, "uniq": {"cardinality": {"field": "k.keyword"}},
            "big": {"filter": {"range": {"n": {"gte": 5}}}}}})[2]
        ag = b["aggregations"]
        self.assertEqual(b["hits"]["hits"], [])
        self.assertEqual(ag["kinds"], {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
            {"key": "even", "doc_count": 5, "top": {"value": 8.0}},
            {"key": "odd", "doc_count": 5, "top": {"value": 9.0}}]})
        self.assertEqual((ag["total"], ag["avg_n"], ag["cnt"], ag["uniq"], ag["big"]),
                         ({"value": 45.0}, {"value": 4.5}, {"value": 10}, {"value": 2}, {"doc_count": 5}))
        e = self.assertError(s.req("POST", "/s/_search", {"aggs": {"x": {"terms": {"field": "t"}}}}), 400,
                             "search_phase_execution_exception")
        self.assertIn("Text fields are not optimised", e["error"]["caused_by"]["reason"])
        self.assertError(s.req("POST", "/s/_search", {"aggs": {"x": {"frob": {"field": "n"}}}}), 400,
                         "parsing_exception", "Unknown aggregation type [frob]")

    def test_refresh_and_cat(self):
        s = self.s
        st, _, b = s.req("POST", "/s/_refresh")
        self.assertEqual((st, b), (200, {"_shards": {"total": 2, "successful": 1, "failed": 0}}))
        s.req("PUT", "/zz", {"settings": {"number_of_replicas": 0}})
        code, text, _ = s.curl(s.url + "/_cat/indices?v")
        lines = text.splitlines()
        self.assertEqual(lines[0].split(), ["health", "status", "index", "uuid", "pri", "rep", "docs.count",
                                            "docs.deleted", "store.size", "pri.store.size"])
        row = dict(zip(lines[0].split(), lines[1].split()))
        self.assertEqual((row["health"], row["status"], row["index"], row["pri"], row["rep"], row["docs.count"]),
                         ("yellow", "open", "s", "1", "1", "30"))
        self.assertRegex(row["store.size"], r"^\d+(\.\d)?(b|kb|mb)$")
        row2 = dict(zip(lines[0].split(), lines[2].split()))
        self.assertEqual((row2["health"], row2["index"], row2["docs.count"]), ("green", "zz", "0"))
        # columns are aligned: every line has the header's width for the numeric column ends
        self.assertEqual(len(set(len(l.rstrip()) for l in lines)), 1)
        code, text, _ = s.curl(s.url + "/_cat/indices?h=index,docs.count")
        self.assertEqual(text, "s  30\nzz  0\n")
        st, _, j = s.req("GET", "/_cat/indices?format=json&h=index,docs.count,health")
        self.assertEqual(j, [{"index": "s", "docs.count": "30", "health": "yellow"},
                             {"index": "zz", "docs.count": "0", "health": "green"}])


class TestAliasesTemplates(StandinCase):
    def test_aliases(self):
        s = self.s
        s.req("PUT", "/i1")
        s.req("PUT", "/i2")
        st, _, b = s.req("POST", "/_aliases", {"actions": [
            {"add": {"index": "i1", "alias": "both"}},
            {"add": {"index": "i2", "alias": "both", "is_write_index": True}},
            {"add": {"index": "i1", "alias": "only1", "filter": {"term": {"k": "x"}}, "routing": "1"}}]})
        self.assertEqual((st, b), (200, {"acknowledged": True}))
        self.assertEqual(s.req("GET", "/_alias")[2],
                         {"i1": {"aliases": {"both": {}, "only1": {"filter": {"term": {"k": "x"}},
                                                                   "index_routing": "1", "search_routing": "1"}}},
                          "i2": {"aliases": {"both": {"is_write_index": True}}}})
        self.assertEqual(s.req("GET", "/i1/_alias/both")[2], {"i1": {"aliases": {"both": {}}}})
        self.assertEqual(s.req("GET", "/_alias/both")[2],
                         {"i1": {"aliases": {"both": {}}}, "i2": {"aliases": {"both": {"is_write_index": True}}}})
        st, _, b = s.req("GET", "/_alias/nope")
        self.assertEqual((st, b), (404, {"error": "alias [nope] missing", "status": 404}))
        self.assertEqual(s.req("HEAD", "/_alias/both")[0], 200)
        self.assertEqual(s.req("HEAD", "/_alias/nope")[0], 404)
        # writes through an alias go to the write index; searches see both indices
        st, _, b = s.req("PUT", "/both/_doc/1?refresh=true", {"k": "y"})
        self.assertEqual((st, b["_index"]), (201, "i2"))
        s.req("PUT", "/i1/_doc/a", {"k": "x"})
        s.req("PUT", "/i1/_doc/b", {"k": "z"})
        self.assertEqual(s.req("GET", "/both/_count")[2]["count"], 3)
        hits = s.req("GET", "/only1/_search")[2]["hits"]["hits"]
        self.assertEqual([h["_id"] for h in hits], ["a"])
        # remove, and alias-level errors
        self.assertEqual(s.req("POST", "/_aliases", {"actions": [{"remove": {"index": "i1", "alias": "both"}}]})[0], 200)
        self.assertEqual(set(s.req("GET", "/_alias/both")[2]), {"i2"})
        self.assertEqual(s.req("PUT", "/i1/_alias/extra")[0], 200)
        self.assertEqual(s.req("DELETE", "/i1/_alias/extra")[0], 200)
        self.assertError(s.req("DELETE", "/i1/_alias/extra"), 404, "aliases_not_found_exception",
                         "aliases [extra] missing")
        e = self.assertError(s.req("POST", "/_aliases", {"actions": [{"add": {"index": "i1", "alias": "i2"}}]}),
                             400, "invalid_index_name_exception")
        self.assertIn("an index or data stream exists with the same name as the alias", e["error"]["reason"])

    def test_legacy_template(self):
        s = self.s
        st, _, b = s.req("PUT", "/_template/logs", {"index_patterns": ["logs-*"], "order": 1, "version": 3,
                                                     "settings": {"number_of_shards": 2},
                                                     "mappings": {"properties": {"msg": {"type": "text"}}},
                                                     "aliases": {"all-logs": {}}})
        self.assertEqual((st, b), (200, {"acknowledged": True}))
        self.assertEqual(s.req("HEAD", "/_template/logs")[0], 200)
        self.assertEqual(s.req("HEAD", "/_template/none")[0], 404)
        st, _, b = s.req("GET", "/_template/none")
        self.assertEqual((st, b), (404, {}))
        t = s.req("GET", "/_template/logs")[2]["logs"]
        self.assertEqual((t["order"], t["version"], t["index_patterns"], t["settings"]),
                         (1, 3, ["logs-*"], {"index": {"number_of_shards": "2"}}))
        s.req("PUT", "/logs-1/_doc/1", {"msg": "hi"})
        idx = s.req("GET", "/logs-1")[2]["logs-1"]
        self.assertEqual(idx["settings"]["index"]["number_of_shards"], "2")
        self.assertEqual(idx["aliases"], {"all-logs": {}})
        self.assertEqual(idx["mappings"]["properties"]["msg"], {"type": "text"})
        self.assertEqual(s.req("DELETE", "/_template/logs")[0], 200)
        self.assertError(s.req("DELETE", "/_template/logs"), 404, "index_template_missing_exception",
                         "index_template [logs] missing")

    def test_composable_templates(self):
        s = self.s
        self.assertEqual(s.req("PUT", "/_component_template/base", {"template": {
            "settings": {"number_of_shards": 3},
            "mappings": {"properties": {"@timestamp": {"type": "date"}}}}})[0], 200)
        st, _, b = s.req("PUT", "/_index_template/metrics", {"index_patterns": ["metrics-*"],
                                                             "composed_of": ["missing"]})
        self.assertEqual((st, b["error"]["type"]), (400, "invalid_index_template_exception"))
        self.assertEqual(s.req("PUT", "/_index_template/metrics", {
            "index_patterns": ["metrics-*"], "priority": 5, "composed_of": ["base"],
            "template": {"mappings": {"properties": {"v": {"type": "long"}}}}})[0], 200)
        st, _, b = s.req("PUT", "/_index_template/clash", {"index_patterns": ["metrics-x*"], "priority": 5})
        self.assertEqual(st, 400)
        self.assertIn("that have the same priority [5]", b["error"]["reason"])
        # legacy templates lose to composable ones
        s.req("PUT", "/_template/old", {"index_patterns": ["metrics-*"], "settings": {"number_of_shards": 7}})
        s.req("PUT", "/metrics-a")
        idx = s.req("GET", "/metrics-a")[2]["metrics-a"]
        self.assertEqual(idx["settings"]["index"]["number_of_shards"], "3")
        self.assertEqual(set(idx["mappings"]["properties"]), {"@timestamp", "v"})
        g = s.req("GET", "/_index_template/metrics")[2]
        self.assertEqual(g["index_templates"][0]["name"], "metrics")
        self.assertEqual(g["index_templates"][0]["index_template"]["composed_of"], ["base"])
        g = s.req("GET", "/_component_template/base")[2]
        self.assertEqual(g["component_templates"][0]["component_template"]["template"]["settings"],
                         {"index": {"number_of_shards": "3"}})
        self.assertError(s.req("GET", "/_index_template/none"), 404, "resource_not_found_exception",
                         "index template matching [none] not found")
        self.assertError(s.req("DELETE", "/_component_template/base"), 400, "illegal_argument_exception")
        self.assertEqual(s.req("DELETE", "/_index_template/metrics")[0], 200)
        self.assertEqual(s.req("DELETE", "/_component_template/base")[0], 200)


class TestFaults(StandinCase):
    def test_request_429_count(self):
        s = self.s
        st, _, b = s.req("POST", "/_standin/faults", {"path": "/_bulk", "status": 429, "count": 2,
                                                       "retry_after": 1})
        self.assertEqual(st, 200)
        body = '{"index":{"_index":"f","_id":"1"}}\n{"a":1}\n'
        r1 = s.req("POST", "/_bulk", body, ndjson=True)
        r2 = s.req("POST", "/_bulk", body, ndjson=True)
        r3 = s.req("POST", "/_bulk", body, ndjson=True)
        for r in (r1, r2):
            self.assertEqual(r[0], 429)
            self.assertEqual(r[1]["retry-after"], "1")
            self.assertEqual(r[2]["error"]["type"], "es_rejected_execution_exception")
            self.assertEqual(r[2]["error"]["root_cause"][0]["type"], "es_rejected_execution_exception")
            self.assertEqual(r[2]["status"], 429)
        self.assertEqual((r3[0], r3[2]["errors"]), (200, False))
        self.assertEqual(s.req("GET", "/_standin/faults")[2]["faults"][0]["fired"], 2)
        st = s.req("GET", "/_standin/stats")[2]
        self.assertEqual(st["requests"]["POST /_bulk"], 3)
        self.assertEqual(st["faults_injected"], 2)
        self.assertEqual(st["bulk"]["requests"], 1)
        self.assertEqual(st["docs"], {"f": 1})
        self.assertEqual(s.req("DELETE", "/_standin/faults")[0], 200)
        self.assertEqual(s.req("GET", "/_standin/faults")[2], {"faults": []})

    def test_5xx_and_method_filter(self):
        s = self.s
        self.assertEqual(s.req("POST", "/_standin/faults", [{"path": "/x", "method": "GET", "status": 503, "count": 1},
                                           {"path": "^/y", "status": 502, "count": 1},
                                           {"path": "/z", "status": 500, "count": 1}])[0], 200)
        self.assertEqual(s.req("PUT", "/x")[0], 200)  # method does not match
        st, _, b = s.req("GET", "/x")
        self.assertEqual((st, b["error"]["type"]), (503, "cluster_block_exception"))
        self.assertEqual(s.req("GET", "/x")[0], 200)
        st, hdrs, b = s.req("GET", "/y")
        self.assertEqual(st, 502)
        self.assertIn(b"502 Bad Gateway", b)
        st, _, b = s.req("GET", "/z")
        self.assertEqual((st, b["status"]), (500, 500))

    def test_item_rate(self):
        s = self.s
        s.req("POST", "/_standin/faults?seed=3", {"path": "*_bulk", "bulk_item_status": 429, "item_rate": 0.3})
        body = bulk_body([x for i in range(200) for x in ({"index": {"_index": "ir", "_id": str(i)}}, {"i": i})])
        st, _, b = s.req("POST", "/ir/_bulk", body, ndjson=True)
        self.assertEqual(st, 200)
        statuses = [it["index"]["status"] for it in b["items"]]
        rejected = statuses.count(429)
        self.assertTrue(b["errors"])
        self.assertEqual(rejected + statuses.count(201), 200)
        self.assertTrue(20 < rejected < 110, rejected)
        err = next(it["index"]["error"] for it in b["items"] if it["index"]["status"] == 429)
        self.assertEqual(err["type"], "es_rejected_execution_exception")
        self.assertIn("rejected execution of processing of", err["reason"])
        self.assertEqual(s.req("GET", "/ir/_count")[2]["count"], 200 - rejected)
        st = s.req("GET", "/_standin/stats")[2]
        self.assertEqual((st["bulk"]["items_rejected"], st["bulk"]["items_accepted"]), (rejected, 200 - rejected))
        # rejected items are really absent
        ok_ids = {it["index"]["_id"] for it in b["items"] if it["index"]["status"] == 201}
        got = s.req("POST", "/ir/_search", {"size": 200, "_source": False})[2]["hits"]["hits"]
        self.assertEqual({h["_id"] for h in got}, ok_ids)

    def test_drop_and_latency(self):
        s = self.s
        self.assertEqual(s.req("POST", "/_standin/faults", [{"path": "/drop", "drop": True, "count": 1},
                                                            {"path": "/slow", "latency_ms": 300, "count": 1}])[0],
                         200)
        code, text, rc = s.curl(s.url + "/drop")
        self.assertEqual(rc, 52, text)  # curl: empty reply from server
        code, text, rc = s.curl(s.url + "/drop")
        self.assertEqual((code, rc), (404, 0))
        t0 = time.monotonic()
        code, text, rc = s.curl(s.url + "/slow")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)  # a lower bound only: the sleep happened
        self.assertEqual(code, 404)
        self.assertEqual(s.req("GET", "/_standin/stats")[2]["dropped_connections"], 1)
        with open(s.log) as f:
            log = f.read()
        self.assertIn("GET /drop drop", log)

    def test_rate_rule(self):
        s = self.s
        s.req("POST", "/_standin/faults?seed=11", {"path": "/", "method": "HEAD", "status": 503, "rate": 0.5})
        codes = [s.req("HEAD", "/")[0] for _ in range(60)]
        self.assertTrue(5 < codes.count(503) < 55, codes)
        self.assertEqual(codes.count(503) + codes.count(200), 60)

    def test_opensearch_rejection_type(self):
        o = Standin("opensearch-2.11")
        try:
            o.req("POST", "/_standin/faults", {"path": "/_bulk", "status": 429, "count": 1})
            st, _, b = o.req("POST", "/_bulk", '{"index":{"_index":"a"}}\n{}\n', ndjson=True)
            self.assertEqual((st, b["error"]["type"]), (429, "rejected_execution_exception"))
        finally:
            o.stop()


class TestAuth(StandinCase):
    EXTRA = ("--username", "elastic", "--password", "s3cret")

    def test_basic_auth(self):
        s = self.s
        st, hdrs, b = s.req("GET", "/")
        self.assertEqual(st, 401)
        www = 'Basic realm="security" charset="UTF-8"'
        self.assertEqual(hdrs["www-authenticate"], www)
        self.assertEqual(b, {"error": {"root_cause": [{"type": "security_exception",
                                                       "reason": "missing authentication credentials for REST "
                                                                 "request [/]",
                                                       "header": {"WWW-Authenticate": www}}],
                                       "type": "security_exception",
                                       "reason": "missing authentication credentials for REST request [/]",
                                       "header": {"WWW-Authenticate": www}}, "status": 401})
        code, text, _ = s.curl("-u", "elastic:wrong", s.url + "/_cluster/health")
        self.assertEqual(code, 401)
        self.assertEqual(json.loads(text)["error"]["reason"],
                         "unable to authenticate user [elastic] for REST request [/_cluster/health]")
        code, text, _ = s.curl("-u", "elastic:s3cret", s.url + "/_cluster/health")
        self.assertEqual(code, 200)
        tok = base64.b64encode(b"elastic:s3cret").decode()
        self.assertEqual(s.req("PUT", "/a", headers={"Authorization": "Basic " + tok})[0], 200)

    def test_opensearch_unauthorized(self):
        o = Standin("opensearch-2.11", "--username", "admin", "--password", "admin")
        try:
            st, hdrs, b = o.req("GET", "/")
            self.assertEqual((st, b, hdrs["www-authenticate"]), (401, b"Unauthorized",
                                                                  'Basic realm="OpenSearch Security"'))
        finally:
            o.stop()


class TestRobustness(StandinCase):
    FLAVOR = "elasticsearch-6.8"

    def test_malformed_bodies_get_4xx(self):
        """Bodies of the wrong shape get 4xx answers and never an internal error
        (Standin.stop() fails the run on any traceback in the stand-in's stderr)."""
        s = self.s
        bodies = [None, "5", '"x"', "[]", '{"mappings":"x"}', '{"settings":5}', '{"query":5}', '{"size":"abc"}',
                  '{"actions":[{"add":5}]}', '{"aliases":{"a":5}}', '{"doc":5}', '{"sort":{"a":{"order":5}}}',
                  '{"query":{"bool":{"must":5}}}', '{"aggs":{"a":5}}', '{"docs":[5]}', '{"ids":5}',
                  '{"mappings":{"properties":5}}', '{"a":1}']
        paths = ["/x", "/x/doc/1", "/x/_search", "/x/doc/_mapping", "/_aliases", "/_template/t",
                 "/x/doc/1/_update", "/_mget", "/x/_settings", "/_cluster/settings", "/_search/scroll",
                 "/x/_delete_by_query", "/x/_count", "/_bulk", "/x/_alias/a"]
        seen = set()
        for path in paths:
            for m in ("GET", "PUT", "POST", "DELETE"):
                for b in bodies:
                    st = s.req(m, path, b)[0]
                    self.assertLess(st, 500, (m, path, b))
                    seen.add(st)
        self.assertTrue({200, 400, 404, 405} <= seen, seen)


class TestPersistence(unittest.TestCase):
    def test_data_dir_round_trip(self):
        d = tempfile.mkdtemp(prefix="standin-data-")
        try:
            s = Standin("opensearch-2.11", data_dir=d)
            s.req("PUT", "/p", {"settings": {"number_of_shards": 2}, "aliases": {"pa": {}}})
            s.req("PUT", "/p/_doc/1?routing=x", {"a": 1})
            s.req("PUT", "/_template/pt", {"index_patterns": ["pp*"]})
            s.stop()
            self.assertTrue(os.path.exists(os.path.join(d, "state.json")))
            s = Standin("opensearch-2.11", data_dir=d)
            try:
                st, _, g = s.req("GET", "/pa/_doc/1?routing=x")
                self.assertEqual((st, g["_source"], g["_routing"], g["_seq_no"]), (200, {"a": 1}, "x", 0))
                st, _, b = s.req("PUT", "/p/_doc/2?routing=x", {"a": 2})
                self.assertEqual(b["_seq_no"], 1)  # the shard's sequence continues
                self.assertIn("pt", s.req("GET", "/_template")[2])
            finally:
                s.stop()
            # another flavor refuses the saved cluster
            p = subprocess.run([PY, SCRIPT, "--port", "0", "--flavor", "elasticsearch-6.8", "--data-dir", d],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2)
            self.assertIn("holds a opensearch-2.11 cluster", p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class TestPythonClient(unittest.TestCase):
    """Debian's python3-elasticsearch (7.x) against the stand-in."""

    def setUp(self):
        try:
            import elasticsearch  # noqa: F401
        except ImportError:
            self.skipTest("python3-elasticsearch not installed")

    def test_elasticsearch_client(self):
        import elasticsearch
        import warnings
        for flavor in ("elasticsearch-7.10", "elasticsearch-6.8"):
            s = Standin(flavor)
            try:
                es = elasticsearch.Elasticsearch([s.url])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    info = es.info()
                    self.assertEqual(info["tagline"], "You Know, for Search")
                    if flavor == "elasticsearch-6.8":
                        es.index(index="cl", doc_type="_doc", id="1", body={"title": "hello"}, refresh=True)
                    else:
                        es.index(index="cl", id="1", body={"title": "hello"}, refresh=True)
                    res = es.search(index="cl", body={"query": {"match": {"title": "hello"}}})
                    total = res["hits"]["total"]
                    self.assertEqual(total if isinstance(total, int) else total["value"], 1)
                    self.assertEqual(res["hits"]["hits"][0]["_source"], {"title": "hello"})
                    with self.assertRaises(elasticsearch.ConflictError):
                        es.create(index="cl", id="1", body={"x": 1},
                                  **({"doc_type": "_doc"} if flavor == "elasticsearch-6.8" else {}))
                es.close()
            finally:
                s.stop()

    def test_client_refuses_opensearch(self):
        import elasticsearch
        s = Standin("opensearch-2.11")
        try:
            es = elasticsearch.Elasticsearch([s.url])
            with self.assertRaises(elasticsearch.exceptions.UnsupportedProductError):
                es.info()
            es.close()
        finally:
            s.stop()


class TestVolume(StandinCase):
    FLAVOR = "opensearch-2.11"

    def test_bulk_20k(self):
        s = self.s
        body = "".join('{"index":{"_index":"vol","_id":"%d"}}\n{"n":%d,"s":"x%d"}\n' % (i, i, i)
                       for i in range(20000))
        st, _, b = s.req("POST", "/_bulk", body, ndjson=True)
        self.assertEqual((st, b["errors"], len(b["items"])), (200, False, 20000))
        self.assertEqual(s.req("GET", "/vol/_count")[2]["count"], 20000)
        self.assertEqual(b["items"][-1]["index"]["_seq_no"], 19999)


class TestDiscard(StandinCase):
    FLAVOR = "opensearch-2.11"
    EXTRA = ("--discard-bulk",)

    def test_discard_bulk(self):
        s = self.s
        body = "".join('{"index":{"_index":"d","_id":"%d"}}\n{"n":%d}\n' % (i, i) for i in range(1000))
        st, _, b = s.req("POST", "/_bulk", body, ndjson=True)
        self.assertEqual((st, b["errors"], len(b["items"]), b["items"][5]["index"]["_id"]), (200, False, 1000, "5"))
        self.assertError(s.req("GET", "/d/_count"), 404, "index_not_found_exception")
        self.assertEqual(s.req("GET", "/_standin/stats")[2]["bulk"]["items_accepted"], 1000)


ACK = {"acknowledged": True}


if __name__ == "__main__":
    if not shutil.which("curl"):
        print("curl not found: skipped")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
