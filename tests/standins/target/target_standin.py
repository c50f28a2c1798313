#!/usr/bin/python3
"""Target-cluster stand-in: a local imitation of the Elasticsearch/OpenSearch
REST API subset searchmig uses (see docs/standins.md).

Python 3 standard library only. One process = one single-node cluster that
presents itself as one flavor (elasticsearch-6.8, elasticsearch-7.10,
opensearch-1.3, opensearch-2.11) and accepts/rejects what that version does.
Faults can be injected at run time through /_standin/faults.
"""

import argparse
import base64
import calendar
import copy
import fnmatch
import functools
import gzip
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

# --------------------------------------------------------------------------
# Flavors
# --------------------------------------------------------------------------

OS_MASK = 0x08000000  # OpenSearch version ids are xor'ed with 1 << 27


def _version_id(number, opensearch):
    a, b, c = (int(x) for x in number.split("."))
    vid = a * 1000000 + b * 10000 + c * 100 + 99
    return vid ^ OS_MASK if opensearch else vid


FLAVORS = {
    "elasticsearch-6.8": {
        "os": False, "major": 6, "number": "6.8.23",
        "build_hash": "4f67856", "build_date": "2022-01-06T21:30:50.087716Z",
        "lucene": "7.7.3", "min_wire": "5.6.0", "min_index": "5.0.0",
        "default_shards": 5,
    },
    "elasticsearch-7.10": {
        "os": False, "major": 7, "number": "7.10.2",
        "build_hash": "747e1cc71def077253878a59143c1f785afa92b9",
        "build_date": "2021-01-13T00:42:12.435326Z",
        "lucene": "8.7.0", "min_wire": "6.8.0", "min_index": "6.0.0-beta1",
        "default_shards": 1,
    },
    "opensearch-1.3": {
        "os": True, "major": 1, "number": "1.3.14",
        "build_hash": "8a2bc5fd5b1e9d8b3ac29c2a8a4e6e39b5e8c11d",
        "build_date": "2023-12-13T12:22:44.451327Z",
        "lucene": "8.10.1", "min_wire": "6.8.0", "min_index": "6.0.0-beta1",
        "default_shards": 1,
    },
    "opensearch-2.11": {
        "os": True, "major": 2, "number": "2.11.0",
        "build_hash": "4dcad6dd1fd45b6bd91f041a041829c8687278fa",
        "build_date": "2023-10-13T02:55:55.511945994Z",
        "lucene": "9.7.0", "min_wire": "7.10.0", "min_index": "7.0.0",
        "default_shards": 1,
    },
}

MAX_RESULT_WINDOW = 10000
TOTAL_HITS_DEFAULT = 10000

INVALID_FILENAME_CHARS = '[ , ", *, \\, <, |, ,, >, /, ?]'
_INVALID_NAME_SET = set(' "*\\<|,>/?')

FIELD_TYPES_COMMON = {
    "text", "keyword", "long", "integer", "short", "byte", "double", "float",
    "half_float", "scaled_float", "date", "boolean", "binary", "object",
    "nested", "ip", "geo_point", "geo_shape", "completion", "integer_range",
    "float_range", "long_range", "double_range", "date_range", "ip_range",
    "alias", "join", "percolator", "token_count", "rank_feature",
    "rank_features", "murmur3", "annotated_text",
}
FIELD_TYPES_EXTRA = {
    6: set(),
    7: {"date_nanos", "search_as_you_type", "flattened", "dense_vector",
        "sparse_vector", "wildcard", "constant_keyword", "version",
        "unsigned_long", "histogram", "shape", "point"},
    1: {"date_nanos", "search_as_you_type", "knn_vector"},
    2: {"date_nanos", "search_as_you_type", "knn_vector", "flat_object",
        "unsigned_long", "constant_keyword", "wildcard", "match_only_text"},
}
ROOT_MAPPING_KEYS = {
    "properties", "dynamic", "_source", "_routing", "_meta", "date_detection",
    "numeric_detection", "dynamic_templates", "dynamic_date_formats",
    "enabled", "_field_names", "_size", "include_in_all", "_data_stream_timestamp",
}
NUMERIC_INT = {"long": (-(1 << 63), (1 << 63) - 1), "integer": (-(1 << 31), (1 << 31) - 1),
               "short": (-32768, 32767), "byte": (-128, 127),
               "unsigned_long": (0, (1 << 64) - 1)}
NUMERIC_FLOAT = {"double", "float", "half_float", "scaled_float"}

DATE_RE = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$")
DYN_DATE_RE = re.compile(
    r"^\d{4}[-/]\d{2}[-/]\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$")
TOKEN_RE = re.compile(r"\w+", re.UNICODE)


# --------------------------------------------------------------------------
# Helpers: murmur3 routing, Java-like map rendering, byte sizes
# --------------------------------------------------------------------------

def murmur3_32(data, seed=0):
    """MurmurHash3 x86 32-bit, as a signed Java int."""
    m = 0xFFFFFFFF
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed
    n = len(data)
    nblocks = n // 4
    for (k,) in struct.iter_unpack("<I", data[:nblocks * 4]):
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    tail = data[nblocks * 4:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def routing_hash(routing):
    """Elasticsearch Murmur3HashFunction.hash(String): UTF-16LE code units."""
    return murmur3_32(routing.encode("utf-16-le", "surrogatepass"))


def java_str(v):
    """Render a parsed JSON value the way Java's Map.toString() does."""
    if isinstance(v, dict):
        return "{" + ", ".join("%s=%s" % (k, java_str(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(java_str(x) for x in v) + "]"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    return str(v)


def fmt_bytes(n):
    """ByteSizeValue.toString(): 225b, 4.5kb, 1.2mb."""
    for unit, size in (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30),
                       ("mb", 1 << 20), ("kb", 1 << 10)):
        if n >= size:
            s = "%.1f" % (n / size)
            if s.endswith(".0"):
                s = s[:-2]
            return s + unit
    return "%db" % n


def new_uuid():
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]


def now_ms():
    return int(time.time() * 1000)


class Raw:
    """A pre-serialised JSON fragment (document _source kept byte-exact)."""
    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s


def encode(o):
    if isinstance(o, Raw):
        return o.s
    if isinstance(o, dict):
        return "{" + ",".join(json.dumps(k) + ":" + encode(v) for k, v in o.items()) + "}"
    if isinstance(o, list):
        return "[" + ",".join(encode(v) for v in o) + "]"
    return json.dumps(o, ensure_ascii=False)


def has_raw(o):
    if isinstance(o, Raw):
        return True
    if isinstance(o, dict):
        return any(has_raw(v) for v in o.values())
    if isinstance(o, list):
        return any(has_raw(v) for v in o)
    return False


def to_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    return str(v).lower() in ("true", "1", "")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class ApiError(Exception):
    """An error answer: status plus either an ES error object or a raw body."""

    def __init__(self, status, err=None, body=None, headers=None, root=None):
        super().__init__(status)
        self.status = status
        self.err = err
        self.root = root
        self.raw_body = body
        self.headers = headers or {}

    def body(self):
        if self.raw_body is not None:
            return self.raw_body
        root = self.root
        if root is None:
            root = {k: v for k, v in self.err.items() if k != "caused_by"}
        return {"error": {"root_cause": [root], **self.err}, "status": self.status}


def err_obj(etype, reason, **extra):
    d = {"type": etype, "reason": reason}
    for k, v in extra.items():
        d[k.replace("__", ".")] = v
    return d


def index_not_found(name, rtype="index_or_alias", reason=None):
    return ApiError(404, err_obj("index_not_found_exception",
                                 reason or "no such index [%s]" % name,
                                 resource__type=rtype, resource__id=name,
                                 index_uuid="_na_", index=name))


def bad_request(reason, etype="illegal_argument_exception", status=400, **extra):
    return ApiError(status, err_obj(etype, reason, **extra))


def invalid_index_name(name, desc):
    return ApiError(400, err_obj("invalid_index_name_exception",
                                 "Invalid index name [%s], %s" % (name, desc),
                                 index_uuid="_na_", index=name))


def mapper_parsing(reason, caused_by=None):
    e = err_obj("mapper_parsing_exception", reason)
    if caused_by:
        e["caused_by"] = caused_by
    return e


# --------------------------------------------------------------------------
# Cluster state
# --------------------------------------------------------------------------

class Index:
    def __init__(self, name, flavor, settings, mapping, type_name, aliases):
        self.name = name
        self.uuid = settings.get("index.uuid") or new_uuid()
        settings["index.uuid"] = self.uuid
        self.settings = settings
        self.mapping = mapping          # root object mapping, typeless
        self.type_name = type_name      # None until a mapping/doc defines it
        self.aliases = aliases          # alias -> alias metadata dict
        self.nshards = int(settings["index.number_of_shards"])
        rns = settings.get("index.number_of_routing_shards")
        if rns:
            self.routing_shards = int(rns)
        elif flavor["major"] >= 7 or flavor["os"]:
            log2 = (self.nshards - 1).bit_length()
            self.routing_shards = self.nshards << max(1, 10 - log2)
        else:
            self.routing_shards = self.nshards
        self.routing_factor = max(1, self.routing_shards // self.nshards)
        self.shards = [dict() for _ in range(self.nshards)]
        self.max_seq = [-1] * self.nshards
        self.deleted = 0
        self.closed = False

    def shard_of(self, doc_id, routing):
        h = routing_hash(routing if routing is not None else doc_id)
        return (h % self.routing_shards) // self.routing_factor

    def count(self):
        return sum(len(s) for s in self.shards)

    def replicas(self):
        return int(self.settings.get("index.number_of_replicas", "1"))

    def store_bytes(self):
        return sum(len(d[0]) for s in self.shards for d in s.values()) + 208 * self.nshards

    def to_json(self):
        return {"name": self.name, "settings": self.settings, "mapping": self.mapping,
                "type_name": self.type_name, "aliases": self.aliases,
                "max_seq": self.max_seq, "deleted": self.deleted,
                "docs": [[[i, d[0], d[1], d[2], d[3], None] for i, d in s.items()] for s in self.shards]}

    @classmethod
    def from_json(cls, j, flavor):
        idx = cls(j["name"], flavor, j["settings"], j["mapping"], j["type_name"], j["aliases"])
        idx.max_seq = j["max_seq"]
        idx.deleted = j["deleted"]
        for sn, docs in enumerate(j["docs"]):
            for d in docs:
                idx.shards[sn][d[0]] = d[1:]
        return idx


# a stored document: [source_text, seq_no, version, routing, parsed_or_None]
D_SRC, D_SEQ, D_VER, D_ROUTING, D_PARSED = range(5)


# index settings users cannot set (IndexMetadata's private settings)
PRIVATE_SETTINGS = ("index.uuid", "index.version.created", "index.version.upgraded",
                    "index.creation_date", "index.provided_name", "index.resize.source.name",
                    "index.resize.source.uuid")
# index settings Elasticsearch 7.0 removed (6.8 still accepts them)
REMOVED_IN_7 = ("index.mapper.dynamic", "index.mapping.single_type")


def flatten_settings(s, prefix=""):
    out = {}
    for k, v in (s or {}).items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flatten_settings(v, key + "."))
        elif isinstance(v, list):
            out[key] = [str(x) for x in v]
        elif v is None:
            out[key] = None
        elif isinstance(v, bool):
            out[key] = "true" if v else "false"
        else:
            out[key] = str(v)
    return out


def normalize_index_settings(s):
    out = {}
    for k, v in flatten_settings(s).items():
        if not k.startswith("index."):
            k = "index." + k
        out[k] = v
    return out


def nest_settings(flat):
    root = {}
    for k, v in sorted(flat.items()):
        if v is None:
            continue
        cur = root
        parts = k.split(".")
        for p in parts[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = cur[p] = {}
            cur = nxt
        cur[parts[-1]] = v
    return root


def deep_merge(a, b):
    """Merge b into a copy of a (objects recursively, the rest replaced)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Cluster:
    def __init__(self, flavor_name, cluster_name, seed):
        self.flavor_name = flavor_name
        self.flavor = FLAVORS[flavor_name]
        self.cluster_name = cluster_name
        self.cluster_uuid = new_uuid()
        self.node_name = "standin-node-1"
        self.lock = threading.RLock()
        self.indices = {}
        self.templates = {}             # legacy
        self.index_templates = {}       # composable
        self.component_templates = {}
        self.cluster_settings = {"persistent": {}, "transient": {}}
        self.scrolls = {}
        self.faults = []
        self.discard = False
        self.rng = random.Random(seed)
        self.stats_lock = threading.Lock()
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"requests": {}, "total_requests": 0, "faults_injected": 0,
                      "dropped_connections": 0,
                      "bulk": {"requests": 0, "items": 0, "items_accepted": 0,
                               "items_rejected": 0, "items_failed": 0}}

    @property
    def os(self):
        return self.flavor["os"]

    @property
    def major(self):
        return self.flavor["major"]

    def typeless(self):
        """OpenSearch 2.x: no _type anywhere."""
        return self.os and self.major >= 2

    def has_type_param_support(self):
        return not self.typeless()

    # -- persistence ----------------------------------------------------
    def to_json(self):
        return {"flavor": self.flavor_name, "cluster_name": self.cluster_name,
                "cluster_uuid": self.cluster_uuid,
                "indices": [i.to_json() for i in self.indices.values()],
                "templates": self.templates, "index_templates": self.index_templates,
                "component_templates": self.component_templates,
                "cluster_settings": self.cluster_settings}

    def load_json(self, j):
        self.cluster_uuid = j.get("cluster_uuid", self.cluster_uuid)
        for ij in j.get("indices", []):
            idx = Index.from_json(ij, self.flavor)
            self.indices[idx.name] = idx
        self.templates = j.get("templates", {})
        self.index_templates = j.get("index_templates", {})
        self.component_templates = j.get("component_templates", {})
        self.cluster_settings = j.get("cluster_settings", self.cluster_settings)


# --------------------------------------------------------------------------
# Request/response plumbing
# --------------------------------------------------------------------------

class Request:
    def __init__(self, method, path, params, headers, body):
        self.method = method
        self.path = path
        self.params = params
        self.headers = headers
        self.body = body
        self.consumed = set()

    def param(self, name, default=None):
        self.consumed.add(name)
        return self.params.get(name, default)

    def has(self, name):
        self.consumed.add(name)
        return name in self.params

    def json(self, required=False):
        if not self.body:
            if required:
                raise bad_request("request body is required", "parse_exception")
            return None
        try:
            v = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, err_obj("json_parse_exception", str(e)),
                           root=err_obj("json_parse_exception", str(e)))
        if not isinstance(v, dict):
            raise MalformedBody("[1:1] Expected START_OBJECT but found [%s]"
                                % ("START_ARRAY" if isinstance(v, list) else "VALUE_" + type(v).__name__.upper()))
        return v


class MalformedBody(Exception):
    """A request body of the wrong shape (the servers answer 400)."""


class Response:
    def __init__(self, status=200, body=None, headers=None, text=None, ctype=None):
        self.status = status
        self.body = body
        self.text = text
        self.headers = headers or {}
        self.ctype = ctype


def ok(body, status=200):
    return Response(status, body)


ACK = {"acknowledged": True}


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------

class Api:
    def __init__(self, cluster):
        self.c = cluster

    # ---- doc metadata helpers ------------------------------------------
    def doc_head(self, idx, doc_id):
        d = {"_index": idx.name}
        if not self.c.typeless():
            d["_type"] = idx.type_name or "_doc"
        d["_id"] = doc_id
        return d

    def shards_info(self, idx):
        return {"total": 1 + idx.replicas(), "successful": 1, "failed": 0}

    def conflict_prefix(self, idx, doc_id):
        if self.c.major == 6 and not self.c.os:
            return "[%s][%s]" % (idx.type_name or "_doc", doc_id)
        return "[%s]" % doc_id

    # ---- index names ---------------------------------------------------
    def validate_index_name(self, name):
        if any(ch in _INVALID_NAME_SET for ch in name):
            raise invalid_index_name(name, "must not contain the following characters " + INVALID_FILENAME_CHARS)
        if "#" in name:
            raise invalid_index_name(name, "must not contain '#'")
        if ":" in name and (self.c.major >= 7 or self.c.os):
            raise invalid_index_name(name, "must not contain ':'")
        if name[:1] in ("_", "-", "+"):
            raise invalid_index_name(name, "must not start with '_', '-', or '+'")
        n = len(name.encode("utf-8"))
        if n > 255:
            raise invalid_index_name(name, "index name is too long, (%d > 255)" % n)
        if name in (".", ".."):
            raise invalid_index_name(name, "must not be '.' or '..'")
        if name.lower() != name:
            raise invalid_index_name(name, "must be lowercase")

    def alias_map(self):
        m = {}
        for idx in self.c.indices.values():
            for a in idx.aliases:
                m.setdefault(a, []).append(idx)
        return m

    def resolve(self, expr, req=None, rtype="index_or_alias", allow_missing=False,
                with_alias=False):
        """Resolve an index expression to concrete indices (ordered).
        with_alias: return (index, alias_meta_or_None) pairs for alias filters."""
        ignore_unavailable = req is not None and to_bool(req.param("ignore_unavailable"))
        allow_no = True if req is None else to_bool(req.param("allow_no_indices"), True)
        if expr in (None, "", "_all", "*"):
            expr = "*"
        amap = self.alias_map()
        out = []
        seen = set()

        def add(idx, meta=None):
            if idx.name not in seen:
                seen.add(idx.name)
                out.append((idx, meta))

        excludes = []
        for part in expr.split(","):
            if not part:
                continue
            if part.startswith("-") and out:
                excludes.append(part[1:])
                continue
            if "*" in part or "?" in part:
                for name in sorted(self.c.indices):
                    if fnmatch.fnmatchcase(name, part):
                        add(self.c.indices[name])
                for a in sorted(amap):
                    if fnmatch.fnmatchcase(a, part):
                        for idx in amap[a]:
                            add(idx, idx.aliases[a])
            elif part in self.c.indices:
                add(self.c.indices[part])
            elif part in amap:
                for idx in amap[part]:
                    add(idx, idx.aliases[part])
            elif not (allow_missing or ignore_unavailable):
                raise index_not_found(part, rtype)
        if excludes:
            out = [(i, m) for i, m in out
                   if not any(fnmatch.fnmatchcase(i.name, e) for e in excludes)]
        if not out and not allow_no and not allow_missing:
            raise index_not_found(expr, rtype)
        return out if with_alias else [i for i, _ in out]

    def auto_create_allowed(self, name):
        v = None
        for scope in ("transient", "persistent"):
            v = self.c.cluster_settings[scope].get("action.auto_create_index", v) if v is None else v
        if v is None or v == "true" or v is True:
            return True
        if v == "false" or v is False:
            return False
        for pat in str(v).split(","):
            pat = pat.strip()
            neg = pat.startswith("-")
            pat = pat.lstrip("+-")
            if fnmatch.fnmatchcase(name, pat):
                return not neg
        return False

    def check_pipelines(self, idx, requested):
        """Ingest pipelines: the stand-in has none (no _ingest API), so a document that would
        go through one fails as on a cluster without it: the request's `pipeline`, else the
        index's `index.default_pipeline` (`_none` skips only that one), then its
        `index.final_pipeline`, which always runs."""
        names = []
        if requested is not None and requested != "_none":
            names.append(requested)
        elif requested is None and idx.settings.get("index.default_pipeline") not in (None, "_none"):
            names.append(idx.settings["index.default_pipeline"])
        if idx.settings.get("index.final_pipeline") not in (None, "_none"):
            names.append(idx.settings["index.final_pipeline"])
        if names:
            raise ApiError(400, err_obj("illegal_argument_exception",
                                        "pipeline with id [%s] does not exist" % names[0]))

    def write_index(self, name, req=None):
        """Index for a write to `name`: concrete index, alias write index, or auto-create."""
        idx = self.c.indices.get(name)
        if idx is not None:
            return idx
        amap = self.alias_map()
        if name in amap:
            targets = amap[name]
            writers = [i for i in targets if i.aliases[name].get("is_write_index") is True]
            if writers:
                return writers[0]
            if len(targets) == 1 and targets[0].aliases[name].get("is_write_index") is not False:
                return targets[0]
            raise bad_request(
                "no write index is defined for alias [%s]. The write index may be explicitly "
                "disabled using is_write_index=false or the alias points to multiple indices "
                "without one being designated as a write index" % name)
        self.validate_index_name(name)
        if not self.auto_create_allowed(name):
            v = self.c.cluster_settings["persistent"].get(
                "action.auto_create_index",
                self.c.cluster_settings["transient"].get("action.auto_create_index"))
            if str(v).lower() == "false":
                reason = "no such index [%s] and [action.auto_create_index] is [false]" % name
            else:
                reason = ("no such index [%s] and [action.auto_create_index] ([%s]) doesn't match"
                          % (name, v))
            raise index_not_found(name, "index_expression", reason)
        return self.create_index(name, {})

    # ---- mappings ------------------------------------------------------
    def field_types(self):
        return FIELD_TYPES_COMMON | FIELD_TYPES_EXTRA.get(self.c.major, set())

    def check_mapping(self, m, ctx="_doc"):
        """Validate a typeless root mapping; raise mapper_parsing_exception."""
        if not isinstance(m, dict):
            raise ApiError(400, mapper_parsing("Failed to parse mapping [%s]: Expected map for property [mappings] but got a %s"
                                               % (ctx, type(m).__name__)))
        allowed = ROOT_MAPPING_KEYS | ({"_all"} if self.c.major == 6 and not self.c.os else set())
        extra = {k: v for k, v in m.items() if k not in allowed}
        if extra:
            inner = "Root mapping definition has unsupported parameters: " + "".join(
                " [%s : %s]" % (k, java_str(v)) for k, v in extra.items())
            raise ApiError(400, mapper_parsing("Failed to parse mapping [%s]: %s" % (ctx, inner),
                                               mapper_parsing(inner)),
                           root=mapper_parsing(inner))
        self._check_props(m.get("properties", {}), "", ctx)

    def _check_props(self, props, prefix, ctx):
        if not isinstance(props, dict):
            return
        types = self.field_types()
        for name, fm in props.items():
            if not isinstance(fm, dict):
                inner = "Expected map for property [fields] on field [%s] but got a class java.lang.String" % name
                raise ApiError(400, mapper_parsing(inner))
            t = fm.get("type", "object" if "properties" in fm else None)
            if t is None:
                t = "object"
            if t not in types:
                inner = "No handler for type [%s] declared on field [%s]" % (t, name)
                raise ApiError(400, mapper_parsing("Failed to parse mapping [%s]: %s" % (ctx, inner),
                                                   mapper_parsing(inner)),
                               root=mapper_parsing(inner))
            if "properties" in fm:
                self._check_props(fm["properties"], prefix + name + ".", ctx)
            for sub, sm in (fm.get("fields") or {}).items():
                self._check_props({sub: sm}, prefix + name + ".", ctx)

    def merge_mapping(self, idx, new):
        """Merge a typeless mapping into idx.mapping; conflicting types rejected."""
        cur = idx.mapping or {}

        def merge_props(a, b, path):
            out = dict(a)
            for k, v in b.items():
                if k in out and isinstance(out[k], dict) and isinstance(v, dict):
                    ot = out[k].get("type", "object")
                    nt = v.get("type", "object" if "properties" in v or "type" not in v else None)
                    if ot != nt:
                        raise bad_request("mapper [%s%s] cannot be changed from type [%s] to [%s]"
                                          % (path, k, ot, nt))
                    merged = dict(out[k])
                    merged.update({kk: vv for kk, vv in v.items() if kk != "properties"})
                    if "properties" in v or "properties" in out[k]:
                        merged["properties"] = merge_props(out[k].get("properties", {}),
                                                           v.get("properties", {}), path + k + ".")
                    out[k] = merged
                else:
                    out[k] = copy.deepcopy(v)
            return out

        res = dict(cur)
        for k, v in new.items():
            if k == "properties":
                res["properties"] = merge_props(cur.get("properties", {}), v, "")
            else:
                res[k] = copy.deepcopy(v)
        idx.mapping = res

    def split_typed_mapping(self, mappings, req, ctx_typed):
        """Return (type_name, typeless_mapping) from a create/put body per flavor rules.
        ctx_typed: True when the request declared types (6.8 default, include_type_name)."""
        if not mappings:
            return None, {}
        if not isinstance(mappings, dict):
            raise ApiError(400, mapper_parsing("Failed to parse mapping: Expected map for property [mappings]"))
        if ctx_typed:
            keys = list(mappings)
            if len(keys) > 1:
                raise bad_request("Rejecting mapping update to [%s] as the final mapping would have "
                                  "more than 1 type: [%s]" % (ctx_typed, ", ".join(sorted(keys))))
            tname = keys[0]
            body = mappings[tname]
            self.check_type_name(tname)
            if not isinstance(body, dict):
                raise ApiError(400, mapper_parsing("Failed to parse mapping [%s]: Expected map for property [mappings] but got a class java.lang.String" % tname))
            self.check_mapping(body, tname)
            return tname, body
        self.check_mapping(mappings, "_doc")
        return None, mappings

    def check_type_name(self, t):
        if t.startswith("_") and t != "_doc":
            raise ApiError(400, err_obj("invalid_type_name_exception",
                                        "mapping type name [%s] can't start with '_' unless it is called [_doc]" % t))

    def include_type_name(self, req):
        """Whether the request declares typed mappings (6.8 default true)."""
        if self.c.typeless():
            if req.has("include_type_name"):
                raise bad_request("request [%s] contains unrecognized parameter: [include_type_name]" % req.path)
            return False
        default = self.c.major == 6 and not self.c.os
        return to_bool(req.param("include_type_name"), default) if req.has("include_type_name") else default

    # dynamic mapping / document parsing --------------------------------
    def map_document(self, idx, doc_id, src):
        """Check a parsed document against the mapping, adding dynamic fields.
        Returns None or raises ApiError(400, mapper_parsing...)."""
        if not isinstance(src, dict):
            raise ApiError(400, mapper_parsing("failed to parse", err_obj(
                "not_x_content_exception",
                "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes")))
        m = idx.mapping if idx.mapping is not None else {}
        props = m.get("properties", {})
        dyn = m.get("dynamic", True)
        new_props = self._map_obj(idx, doc_id, src, props, dyn, "", idx.type_name or "_doc")
        if new_props is not None:
            limit = int(idx.settings.get("index.mapping.total_fields.limit", "1000"))
            if count_fields(new_props) > limit:
                raise bad_request("Limit of total fields [%d] in index [%s] has been exceeded"
                                  % (limit, idx.name))
            idx.mapping = dict(m)
            idx.mapping["properties"] = new_props

    def _map_obj(self, idx, doc_id, obj, props, dyn, path, parent_name):
        """Returns updated props dict if dynamic fields were added, else None."""
        changed = None
        for k, v in obj.items():
            full = path + k
            fm = (changed or props).get(k)
            if fm is None:
                if v is None or (isinstance(v, list) and not v):
                    continue
                if str(dyn).lower() == "strict":
                    raise ApiError(400, err_obj(
                        "strict_dynamic_mapping_exception",
                        "mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed"
                        % (k, parent_name)))
                if str(dyn).lower() == "false":
                    continue
                nm = self._dyn_type(v)
                if nm is None:
                    continue
                if changed is None:
                    changed = dict(props)
                changed[k] = nm
                if "properties" in nm:
                    sub = v if isinstance(v, dict) else next((x for x in v if isinstance(x, dict)), {})
                    r = self._map_obj(idx, doc_id, sub, {}, dyn, full + ".", k)
                    if r is not None:
                        changed[k] = dict(nm, properties=r)
                continue
            self._check_value(idx, doc_id, full, k, fm, v, dyn)
        return changed

    def _dyn_type(self, v):
        if isinstance(v, list):
            for x in v:
                if x is not None:
                    return self._dyn_type(x)
            return None
        if isinstance(v, bool):
            return {"type": "boolean"}
        if isinstance(v, int):
            return {"type": "long"}
        if isinstance(v, float):
            return {"type": "float"}
        if isinstance(v, str):
            if DYN_DATE_RE.match(v):
                return {"type": "date"}
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if isinstance(v, dict):
            return {"properties": {}}
        return None

    def _fail_field(self, doc_id, full, ftype, v, caused):
        if self.c.major == 6 and not self.c.os:
            reason = "failed to parse field [%s] of type [%s]" % (full, ftype)
        else:
            prev = java_str(v)
            reason = ("failed to parse field [%s] of type [%s] in document with id '%s'. "
                      "Preview of field's value: '%s'" % (full, ftype, doc_id, prev))
        raise ApiError(400, mapper_parsing(reason, caused))

    def _check_value(self, idx, doc_id, full, k, fm, v, dyn):
        t = fm.get("type", "object")
        if v is None:
            return
        if isinstance(v, list):
            for x in v:
                self._check_value(idx, doc_id, full, k, fm, x, dyn)
            return
        if t in ("object", "nested"):
            if not isinstance(v, dict):
                raise ApiError(400, mapper_parsing(
                    "object mapping for [%s] tried to parse field [%s] as object, but found a concrete value"
                    % (full, k)))
            sub = fm.get("properties", {})
            r = self._map_obj(idx, doc_id, v, sub, fm.get("dynamic", dyn), full + ".", k)
            if r is not None:
                fm["properties"] = r
            return
        if isinstance(v, dict) and t not in ("geo_point", "geo_shape", "completion", "join",
                                              "percolator", "flattened", "flat_object",
                                              "integer_range", "long_range", "float_range",
                                              "double_range", "date_range", "ip_range",
                                              "rank_features", "knn_vector", "shape", "point",
                                              "histogram"):
            self._fail_field(doc_id, full, t, v, err_obj(
                "illegal_state_exception",
                "Can't get text on a START_OBJECT at 1:%d" % (len(full) + 3)))
        if t in NUMERIC_INT:
            try:
                if isinstance(v, bool):
                    raise ValueError
                n = int(float(v)) if isinstance(v, (str, float)) else int(v)
                if isinstance(v, str):
                    float(v)
            except (ValueError, OverflowError):
                self._fail_field(doc_id, full, t, v, err_obj(
                    "number_format_exception", 'For input string: "%s"' % v))
            lo, hi = NUMERIC_INT[t]
            if not lo <= n <= hi:
                self._fail_field(doc_id, full, t, v, err_obj(
                    "illegal_argument_exception",
                    "Value [%s] is out of range for %s" % (v, "a long" if t == "long" else "an " + t)))
        elif t in NUMERIC_FLOAT:
            try:
                if isinstance(v, bool):
                    raise ValueError
                float(v)
            except ValueError:
                self._fail_field(doc_id, full, t, v, err_obj(
                    "number_format_exception", 'For input string: "%s"' % v))
        elif t == "boolean":
            if v not in (True, False, "true", "false", ""):
                self._fail_field(doc_id, full, t, v, err_obj(
                    "illegal_argument_exception",
                    "Failed to parse value [%s] as only [true] or [false] are allowed." % java_str(v)))
        elif t in ("date", "date_nanos"):
            fmt = fm.get("format", "strict_date_optional_time||epoch_millis")
            good = isinstance(v, (int, float)) and not isinstance(v, bool)
            if isinstance(v, str):
                good = bool(DATE_RE.match(v)) or v.lstrip("-").isdigit() or "strict" not in fmt and "date_optional" not in fmt
            if not good:
                self._fail_field(doc_id, full, t, v, err_obj(
                    "illegal_argument_exception",
                    "failed to parse date field [%s] with format [%s]" % (v, fmt)))

    # ---- index CRUD ----------------------------------------------------
    def matching_templates(self, name):
        """Return (settings, mappings, aliases) contributed by templates."""
        # composable templates win over legacy ones (7.8+ / OpenSearch)
        best = None
        if not (self.c.major == 6 and not self.c.os):
            for tname, t in self.c.index_templates.items():
                if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns", [])):
                    pr = t.get("priority", 0) or 0
                    if best is None or pr > best[0]:
                        best = (pr, tname, t)
        settings, mapping, aliases = {}, {}, {}
        if best is not None:
            t = best[2]
            parts = [self.c.component_templates[c].get("template", {})
                     for c in t.get("composed_of", []) if c in self.c.component_templates]
            parts.append(t.get("template", {}))
            for p in parts:
                settings.update(normalize_index_settings(p.get("settings")))
                if p.get("mappings"):
                    mapping = deep_merge(mapping, p["mappings"])
                aliases.update(p.get("aliases") or {})
            return settings, mapping, aliases
        legacy = [(t.get("order", 0) or 0, tn, t) for tn, t in self.c.templates.items()
                  if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns", []))]
        legacy.sort(key=lambda x: (x[0], x[1]))
        for _, _, t in legacy:
            settings.update(normalize_index_settings(t.get("settings")))
            m = t.get("mappings") or {}
            if m:
                if t.get("_typed"):
                    m = next(iter(m.values()))
                mapping = deep_merge(mapping, m)
            aliases.update(t.get("aliases") or {})
        return settings, mapping, aliases

    def create_index(self, name, body, type_name=None, typed_mapping=None, req=None):
        c = self.c
        self.validate_index_name(name)
        if name in c.indices:
            idx = c.indices[name]
            raise ApiError(400, err_obj("resource_already_exists_exception",
                                        "index [%s/%s] already exists" % (name, idx.uuid),
                                        index_uuid=idx.uuid, index=name))
        if name in self.alias_map():
            raise invalid_index_name(name, "already exists as alias")
        t_settings, t_mapping, t_aliases = self.matching_templates(name)
        settings = dict(t_settings)
        settings.update(normalize_index_settings(body.get("settings")))
        self.check_index_settings(settings)
        settings.setdefault("index.number_of_shards", str(c.flavor["default_shards"]))
        settings.setdefault("index.number_of_replicas", "1")
        try:
            ns = int(settings["index.number_of_shards"])
            if ns < 1 or ns > 1024:
                raise ValueError
        except ValueError:
            raise bad_request("Failed to parse value [%s] for setting [index.number_of_shards] must be >= 1"
                              % settings["index.number_of_shards"])
        settings["index.creation_date"] = str(now_ms())
        settings["index.provided_name"] = name
        settings["index.version.created"] = str(_version_id(c.flavor["number"], c.os))
        mapping = copy.deepcopy(t_mapping) if t_mapping else None
        if typed_mapping:
            mapping = deep_merge(mapping or {}, typed_mapping)
        aliases = {}
        for a, meta in list(t_aliases.items()) + list((body.get("aliases") or {}).items()):
            aliases[a] = self.alias_meta(meta or {})
        for a in aliases:
            if a in c.indices or a == name:
                raise invalid_index_name(a, "an index or data stream exists with the same name as the alias")
        idx = Index(name, c.flavor, settings, mapping, type_name, aliases)
        c.indices[name] = idx
        return idx

    def check_index_settings(self, settings):
        for k in PRIVATE_SETTINGS:
            if k in settings:
                raise bad_request("private index setting [%s] can not be set explicitly" % k)
        if self.c.major >= 7 or self.c.os:
            for k in REMOVED_IN_7:
                if k in settings:
                    raise bad_request("unknown setting [%s] please check that any required plugins are "
                                      "installed, or check the breaking changes documentation for removed "
                                      "settings" % k)

    def alias_meta(self, meta):
        out = {}
        if meta.get("filter"):
            out["filter"] = meta["filter"]
        r = meta.get("routing")
        if r is not None:
            out["index_routing"] = str(r)
            out["search_routing"] = str(r)
        if meta.get("index_routing") is not None:
            out["index_routing"] = str(meta["index_routing"])
        if meta.get("search_routing") is not None:
            out["search_routing"] = str(meta["search_routing"])
        if meta.get("is_write_index") is not None:
            out["is_write_index"] = bool(meta["is_write_index"])
        if meta.get("is_hidden") is not None:
            out["is_hidden"] = bool(meta["is_hidden"])
        return out

    def h_create_index(self, req, name):
        body = req.json() or {}
        typed = self.include_type_name(req)
        if typed:
            tname, mapping = self.split_typed_mapping(body.get("mappings"), req, name)
        else:
            tname, mapping = None, body.get("mappings") or {}
            if mapping:
                if not isinstance(mapping, dict):
                    raise ApiError(400, mapper_parsing("Failed to parse mapping [_doc]: Expected map for property [mappings]"))
                if len(mapping) == 1 and "_doc" in mapping:
                    if self.c.typeless():
                        raise bad_request("The mapping definition cannot be nested under a type")
                    raise bad_request("The mapping definition cannot be nested under a type [_doc] "
                                      "unless include_type_name is set to true.")
                self.check_mapping(mapping, "_doc")
        with self.c.lock:
            self.create_index(name, body, tname, mapping, req)
        return ok({"acknowledged": True, "shards_acknowledged": True, "index": name})

    def h_delete_index(self, req, expr):
        with self.c.lock:
            targets = self.resolve(expr, req)
            amap = self.alias_map()
            for part in expr.split(","):
                if part in amap and part not in self.c.indices and "*" not in part:
                    # deleting through an alias is refused (ES 7/OS)
                    raise bad_request(
                        "The provided expression [%s] matches an alias, specify the corresponding "
                        "concrete indices instead." % part)
            for idx in targets:
                del self.c.indices[idx.name]
        return ok(ACK)

    def index_json(self, idx, req, parts=("aliases", "mappings", "settings")):
        out = {}
        if "aliases" in parts:
            out["aliases"] = {a: dict(m) for a, m in sorted(idx.aliases.items())}
        if "mappings" in parts:
            out["mappings"] = self.mapping_out(idx, req)
        if "settings" in parts:
            out["settings"] = self.settings_out(idx.settings, req)
        return out

    def mapping_out(self, idx, req):
        m = idx.mapping
        typed = self.include_type_name(req)
        if m is None:
            return {}
        if typed:
            return {idx.type_name or "_doc": m}
        return m

    def settings_out(self, flat, req):
        if to_bool(req.param("flat_settings")) if req else False:
            return dict(sorted((k, v) for k, v in flat.items() if v is not None))
        return nest_settings(flat)

    def h_get_index(self, req, expr):
        with self.c.lock:
            return ok({i.name: self.index_json(i, req) for i in self.resolve(expr, req)})

    def h_get_settings(self, req, expr, names=None):
        with self.c.lock:
            out = {}
            for i in self.resolve(expr, req):
                flat = i.settings
                if names:
                    pats = names.split(",")
                    flat = {k: v for k, v in flat.items()
                            if any(fnmatch.fnmatchcase(k, p) or fnmatch.fnmatchcase(k, "index." + p)
                                   for p in pats)}
                out[i.name] = {"settings": self.settings_out(flat, req)}
            return ok(out)

    def h_put_settings(self, req, expr):
        body = req.json(required=True)
        if "settings" in body:
            body = body["settings"]
        new = normalize_index_settings(body)
        with self.c.lock:
            targets = self.resolve(expr, req)
            for k in new:
                if k in ("index.number_of_shards", "index.uuid", "index.creation_date",
                         "index.version.created", "index.provided_name",
                         "index.number_of_routing_shards"):
                    raise bad_request("final %s setting [%s], not updateable"
                                      % ("index" if self.c.major >= 7 or self.c.os else "index", k))
            for i in targets:
                for k, v in new.items():
                    if v is None:
                        i.settings.pop(k, None)
                    else:
                        i.settings[k] = v
        return ok(ACK)

    def h_get_mapping(self, req, expr):
        with self.c.lock:
            return ok({i.name: {"mappings": self.mapping_out(i, req)} for i in self.resolve(expr, req)})

    def h_put_mapping(self, req, expr, type_name=None):
        body = req.json(required=True)
        typed = self.include_type_name(req) or type_name is not None
        if self.c.major == 6 and not self.c.os and typed and type_name is None:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: mapping type is missing;"))
        if type_name is not None:
            self.check_type_name(type_name)
            if len(body) == 1 and type_name in body and isinstance(body[type_name], dict):
                body = body[type_name]
        elif typed and not (self.c.major == 6 and not self.c.os):
            if len(body) == 1:
                type_name = next(iter(body))
                body = body[type_name]
        self.check_mapping(body, type_name or "_doc")
        with self.c.lock:
            targets = self.resolve(expr, req)
            for i in targets:
                if type_name and i.type_name and type_name != i.type_name and type_name != "_doc":
                    raise bad_request("Rejecting mapping update to [%s] as the final mapping would have "
                                      "more than 1 type: [%s, %s]" % (i.name, i.type_name, type_name))
            for i in targets:
                self.merge_mapping(i, body)
                if type_name and not i.type_name:
                    i.type_name = type_name
        return ok(ACK)

    # ---- aliases -------------------------------------------------------
    def h_aliases(self, req):
        body = req.json(required=True)
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: Must specify at least one alias action;"))
        with self.c.lock:
            plan = []
            for a in actions:
                (op, spec), = a.items()
                if op not in ("add", "remove", "remove_index"):
                    raise ApiError(400, err_obj("x_content_parse_exception",
                                                "[1:%d] [alias_action] unknown field [%s]" % (14, op)))
                names = spec.get("indices") or ([spec["index"]] if "index" in spec else [])
                if not names:
                    raise ApiError(400, err_obj("action_request_validation_exception",
                                                "Validation Failed: 1: One of [index] or [indices] is required;"))
                idxs = []
                for n in names:
                    idxs += self.resolve(n, None)
                if op == "remove_index":
                    plan.append((op, idxs, None, None))
                    continue
                anames = spec.get("aliases") or ([spec["alias"]] if "alias" in spec else [])
                if not anames:
                    raise ApiError(400, err_obj("action_request_validation_exception",
                                                "Validation Failed: 1: One of [alias] or [aliases] is required;"))
                if op == "remove":
                    for an in anames:
                        hit = [i for i in idxs for a2 in i.aliases if fnmatch.fnmatchcase(a2, an)]
                        if not hit and not spec.get("must_exist") is False:
                            raise ApiError(404, err_obj("aliases_not_found_exception",
                                                        "aliases [%s] missing" % an,
                                                        resource__type="aliases", resource__id=an))
                else:
                    for an in anames:
                        if an in self.c.indices:
                            raise invalid_index_name(an, "an index or data stream exists with the same name as the alias")
                        self.validate_alias_name(an)
                plan.append((op, idxs, anames, spec))
            for op, idxs, anames, spec in plan:
                for i in idxs:
                    if op == "remove_index":
                        self.c.indices.pop(i.name, None)
                    elif op == "add":
                        for an in anames:
                            i.aliases[an] = self.alias_meta(spec)
                    else:
                        for an in anames:
                            for a2 in list(i.aliases):
                                if fnmatch.fnmatchcase(a2, an):
                                    del i.aliases[a2]
        return ok(ACK)

    def validate_alias_name(self, an):
        if an[:1] in ("_", "-", "+"):
            raise ApiError(400, err_obj("invalid_alias_name_exception",
                                        "Invalid alias name [%s], must not start with '_', '-', or '+'" % an,
                                        index_uuid="_na_", index=an))
        if any(ch in _INVALID_NAME_SET for ch in an):
            raise ApiError(400, err_obj("invalid_alias_name_exception",
                                        "Invalid alias name [%s], must not contain the following characters %s"
                                        % (an, INVALID_FILENAME_CHARS), index_uuid="_na_", index=an))

    def h_put_alias(self, req, expr, alias):
        body = req.json() or {}
        with self.c.lock:
            idxs = self.resolve(expr, req)
            if alias in self.c.indices:
                raise invalid_index_name(alias, "an index or data stream exists with the same name as the alias")
            self.validate_alias_name(alias)
            for i in idxs:
                i.aliases[alias] = self.alias_meta(body)
        return ok(ACK)

    def h_delete_alias(self, req, expr, alias):
        with self.c.lock:
            idxs = self.resolve(expr, req)
            found = False
            for i in idxs:
                for a in list(i.aliases):
                    if any(fnmatch.fnmatchcase(a, p) for p in alias.split(",")) or alias in ("_all", "*"):
                        del i.aliases[a]
                        found = True
            if not found:
                raise ApiError(404, err_obj("aliases_not_found_exception", "aliases [%s] missing" % alias,
                                            resource__type="aliases", resource__id=alias))
        return ok(ACK)

    def h_get_alias(self, req, expr, alias, head=False):
        with self.c.lock:
            idxs = self.resolve(expr, req) if expr else list(self.c.indices.values())
            pats = alias.split(",") if alias and alias not in ("_all", "*") else None
            out = {}
            found = set()
            for i in sorted(idxs, key=lambda x: x.name):
                sel = {}
                for a, m in sorted(i.aliases.items()):
                    if pats is None or any(fnmatch.fnmatchcase(a, p) for p in pats):
                        sel[a] = dict(m)
                        found.add(a)
                if sel or pats is None:
                    out[i.name] = {"aliases": sel}
            if pats:
                missing = [p for p in pats if "*" not in p and p not in found]
                if head:
                    return Response(404 if missing or not found else 200, None)
                if missing:
                    body = {"error": "alias [%s] missing" % ",".join(missing), "status": 404}
                    body.update(out)
                    return Response(404, body)
            if head:
                return Response(200 if out else 404, None)
            return ok(out)

    # ---- templates -----------------------------------------------------
    def h_put_template(self, req, name):
        body = req.json(required=True)
        typed = self.include_type_name(req)
        t = dict(body)
        if "template" in t and "index_patterns" not in t:
            if self.c.major >= 7 or self.c.os:
                raise ApiError(400, err_obj("x_content_parse_exception",
                                            "[1:13] [index_template] unknown field [template]"))
            t["index_patterns"] = [t.pop("template")]
        ip = t.get("index_patterns")
        if isinstance(ip, str):
            t["index_patterns"] = [ip]
        if not t.get("index_patterns"):
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: index patterns are missing;"))
        m = t.get("mappings") or {}
        if m:
            if typed:
                self.split_typed_mapping(m, req, name)
                t["_typed"] = True
            else:
                # typeless templates: a type wrapper is just an unknown root parameter
                self.check_mapping(m, "_doc")
        if "settings" in t:
            t["settings"] = normalize_index_settings(t["settings"])
        t.setdefault("order", 0)
        with self.c.lock:
            if to_bool(req.param("create")) and name in self.c.templates:
                raise bad_request("index_template [%s] already exists" % name)
            self.c.templates[name] = t
        return ok(ACK)

    def template_out(self, t, req):
        typed = self.include_type_name(req)
        out = {"order": t.get("order", 0)}
        if "version" in t:
            out["version"] = t["version"]
        out["index_patterns"] = t["index_patterns"]
        out["settings"] = nest_settings(t.get("settings", {}))
        m = t.get("mappings") or {}
        if t.get("_typed") and not typed and m:
            m = next(iter(m.values()))
        elif typed and not t.get("_typed") and m:
            m = {"_doc": m}
        out["mappings"] = m
        out["aliases"] = t.get("aliases") or {}
        return out

    def h_get_template(self, req, name, head=False):
        with self.c.lock:
            pats = name.split(",") if name else ["*"]
            out = {n: self.template_out(t, req) for n, t in sorted(self.c.templates.items())
                   if any(fnmatch.fnmatchcase(n, p) for p in pats)}
        if head:
            return Response(200 if out else 404, None)
        if name and not out and "*" not in name:
            return Response(404, {})
        return ok(out)

    def h_delete_template(self, req, name):
        with self.c.lock:
            hit = [n for n in self.c.templates if fnmatch.fnmatchcase(n, name)]
            if not hit:
                raise ApiError(404, err_obj("index_template_missing_exception",
                                            "index_template [%s] missing" % name))
            for n in hit:
                del self.c.templates[n]
        return ok(ACK)

    def v2_mapping_check(self, tmpl):
        m = (tmpl or {}).get("mappings")
        if m:
            self.check_mapping(m, "_doc")

    def h_put_component_template(self, req, name):
        body = req.json(required=True)
        if "template" not in body:
            raise ApiError(400, err_obj("x_content_parse_exception",
                                        "[1:2] [component_template] failed to parse field [template]",
                                        caused_by=None))
        self.v2_mapping_check(body.get("template"))
        t = copy.deepcopy(body)
        if t["template"].get("settings"):
            t["template"]["settings"] = normalize_index_settings(t["template"]["settings"])
        with self.c.lock:
            if to_bool(req.param("create")) and name in self.c.component_templates:
                raise bad_request("component template [%s] already exists" % name)
            self.c.component_templates[name] = t
        return ok(ACK)

    def tmpl_section_out(self, tpl):
        tpl = dict(tpl)
        if "settings" in tpl:
            tpl["settings"] = nest_settings(tpl["settings"])
        return tpl

    def h_get_component_template(self, req, name):
        with self.c.lock:
            pats = name.split(",") if name else ["*"]
            res = []
            for n, t in sorted(self.c.component_templates.items()):
                if any(fnmatch.fnmatchcase(n, p) for p in pats):
                    ct = dict(t)
                    ct["template"] = self.tmpl_section_out(ct.get("template", {}))
                    res.append({"name": n, "component_template": ct})
        if name and not res and "*" not in name:
            raise ApiError(404, err_obj("resource_not_found_exception",
                                        "component template matching [%s] not found" % name))
        return ok({"component_templates": res})

    def h_delete_component_template(self, req, name):
        with self.c.lock:
            if name not in self.c.component_templates:
                raise ApiError(404, err_obj("resource_not_found_exception", name))
            users = [n for n, t in self.c.index_templates.items() if name in t.get("composed_of", [])]
            if users:
                raise bad_request("component templates [%s] cannot be removed as they are still in use "
                                  "by index templates [%s]" % (name, ", ".join(sorted(users))))
            del self.c.component_templates[name]
        return ok(ACK)

    def h_put_index_template(self, req, name):
        body = req.json(required=True)
        ip = body.get("index_patterns")
        if isinstance(ip, str):
            ip = [ip]
        if not ip:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: index patterns are missing;"))
        self.v2_mapping_check(body.get("template"))
        t = copy.deepcopy(body)
        t["index_patterns"] = ip
        if t.get("template", {}).get("settings"):
            t["template"]["settings"] = normalize_index_settings(t["template"]["settings"])
        with self.c.lock:
            missing = [c for c in t.get("composed_of", []) if c not in self.c.component_templates]
            if missing:
                raise ApiError(400, err_obj(
                    "invalid_index_template_exception",
                    "index_template [%s] invalid, cause [index template [%s] specifies component "
                    "templates %s that do not exist]" % (name, name, "[" + ", ".join(missing) + "]")))
            pr = t.get("priority", 0) or 0
            for on, ot in self.c.index_templates.items():
                if on == name or (ot.get("priority", 0) or 0) != pr:
                    continue
                overlap = [p for p in ip for q in ot.get("index_patterns", [])
                           if fnmatch.fnmatchcase(p, q) or fnmatch.fnmatchcase(q, p)]
                if overlap:
                    raise bad_request(
                        "index template [%s] has index patterns %s matching patterns from existing "
                        "templates [%s] with patterns (%s => %s) that have the same priority [%d], "
                        "multiple index templates may not match during index creation, please use a "
                        "different priority" % (name, "[" + ", ".join(ip) + "]", on, on,
                                                "[" + ", ".join(ot["index_patterns"]) + "]", pr))
            if to_bool(req.param("create")) and name in self.c.index_templates:
                raise bad_request("index template [%s] already exists" % name)
            self.c.index_templates[name] = t
        return ok(ACK)

    def h_get_index_template(self, req, name):
        with self.c.lock:
            pats = name.split(",") if name else ["*"]
            res = []
            for n, t in sorted(self.c.index_templates.items()):
                if any(fnmatch.fnmatchcase(n, p) for p in pats):
                    it = dict(t)
                    if "template" in it:
                        it["template"] = self.tmpl_section_out(it["template"])
                    it.setdefault("composed_of", [])
                    res.append({"name": n, "index_template": it})
        if name and not res and "*" not in name:
            raise ApiError(404, err_obj("resource_not_found_exception",
                                        "index template matching [%s] not found" % name))
        return ok({"index_templates": res})

    def h_delete_index_template(self, req, name):
        with self.c.lock:
            hit = [n for n in self.c.index_templates if fnmatch.fnmatchcase(n, name)]
            if not hit:
                raise ApiError(404, err_obj("index_template_missing_exception",
                                            "index_template [%s] missing" % name))
            for n in hit:
                del self.c.index_templates[n]
        return ok(ACK)

    # ---- documents -----------------------------------------------------
    def resolve_type(self, idx, req_type):
        """Single-type rule (6.8, 7.x, OS 1.x): _doc maps to the existing type."""
        if req_type is None:
            return
        if self.c.typeless():
            return
        self.check_type_name(req_type)
        cur = idx.type_name or ("_doc" if idx.mapping else None)
        if cur is None:
            idx.type_name = req_type
        elif req_type != cur and req_type != "_doc":
            raise bad_request("Rejecting mapping update to [%s] as the final mapping would have more "
                              "than 1 type: [%s, %s]" % (idx.name, cur, req_type))

    def check_routing_required(self, idx, doc_id, routing):
        r = (idx.mapping or {}).get("_routing") or {}
        if r.get("required") and routing is None:
            raise ApiError(400, err_obj("routing_missing_exception",
                                        "routing is required for [%s]/[%s]/[%s]"
                                        % (idx.name, idx.type_name or "_doc", doc_id),
                                        index_uuid="_na_", index=idx.name))

    def version_conflict(self, idx, doc_id, reason):
        return ApiError(409, err_obj("version_conflict_engine_exception",
                                     "%s: version conflict, %s" % (self.conflict_prefix(idx, doc_id), reason),
                                     index_uuid=idx.uuid, shard=str(0), index=idx.name))

    def _conflict(self, idx, sn, doc_id, reason):
        e = self.version_conflict(idx, doc_id, reason)
        e.err["shard"] = str(sn)
        return e

    def check_occ(self, idx, sn, doc_id, cur, if_seq, if_term, version, vtype):
        if if_seq is not None or if_term is not None:
            if if_seq is None or if_term is None:
                raise ApiError(400, err_obj("action_request_validation_exception",
                                            "Validation Failed: 1: ifSeqNo is set, but primary term is [0];"
                                            if if_term is None else
                                            "Validation Failed: 1: ifSeqNo is unassigned, but primary term is [%s];" % if_term))
            if cur is None:
                raise self._conflict(idx, sn, doc_id,
                                     "required seqNo [%s], primary term [%s]. but no document was found"
                                     % (if_seq, if_term))
            if cur[D_SEQ] != if_seq or if_term != 1:
                raise self._conflict(idx, sn, doc_id,
                                     "required seqNo [%s], primary term [%s]. current document has "
                                     "seqNo [%s] and primary term [1]" % (if_seq, if_term, cur[D_SEQ]))
        if version is not None:
            vt = vtype or "internal"
            curv = cur[D_VER] if cur else -1
            if vt == "internal":
                if self.c.major >= 7 or self.c.os:
                    raise ApiError(400, err_obj(
                        "action_request_validation_exception",
                        "Validation Failed: 1: internal versioning can not be used for optimistic "
                        "concurrency control. Please use `if_seq_no` and `if_primary_term` instead;"))
                if curv != version:
                    raise self._conflict(idx, sn, doc_id,
                                         "current version [%s] is different than the one provided [%s]"
                                         % (curv if cur else -1, version))
            elif vt in ("external", "external_gt"):
                if cur and version <= curv:
                    raise self._conflict(idx, sn, doc_id,
                                         "current version [%s] is higher or equal to the one provided [%s]"
                                         % (curv, version))
            elif vt == "external_gte":
                if cur and version < curv:
                    raise self._conflict(idx, sn, doc_id,
                                         "current version [%s] is higher than the one provided [%s]"
                                         % (curv, version))

    def do_index(self, idx, doc_id, src_text, parsed, routing, op_type="index",
                 if_seq=None, if_term=None, version=None, vtype=None):
        """Index one document into idx. Caller holds the lock. Returns result dict."""
        auto_id = doc_id is None
        if auto_id:
            doc_id = new_uuid()[:20]
        if len(doc_id.encode("utf-8")) > 512:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: id [%s] is too long, must be no longer than 512 "
                                        "bytes but was: %d;" % (doc_id, len(doc_id.encode("utf-8")))))
        self.check_routing_required(idx, doc_id, routing)
        sn = idx.shard_of(doc_id, routing)
        shard = idx.shards[sn]
        cur = shard.get(doc_id)
        if op_type == "create" and cur is not None:
            raise self._conflict(idx, sn, doc_id,
                                 "document already exists (current version [%d])" % cur[D_VER])
        self.check_occ(idx, sn, doc_id, cur, if_seq, if_term, version, vtype)
        if parsed is None:
            try:
                parsed = json.loads(src_text)
            except ValueError as e:
                raise ApiError(400, mapper_parsing("failed to parse", err_obj("json_parse_exception", str(e))))
        self.check_write_block(idx)
        self.map_document(idx, doc_id, parsed)
        idx.max_seq[sn] += 1
        seq = idx.max_seq[sn]
        if version is not None and vtype and vtype.startswith("external"):
            ver = version
        else:
            ver = cur[D_VER] + 1 if cur else 1
        if cur is not None:
            del shard[doc_id]
            idx.deleted += 1
        shard[doc_id] = [src_text, seq, ver, routing, parsed]
        res = self.doc_head(idx, doc_id)
        res.update({"_version": ver, "result": "updated" if cur else "created",
                    "_shards": self.shards_info(idx), "_seq_no": seq, "_primary_term": 1})
        return res, (200 if cur else 201)

    def check_write_block(self, idx):
        st = idx.settings
        # the flood-stage disk block (read_only_allow_delete) answers 429 since Elasticsearch
        # 7.4 and in every OpenSearch (ClusterBlock 12, RestStatus.TOO_MANY_REQUESTS), 403 before
        flood429 = self.c.os or self.c.major >= 7
        for key, status, blk in (
                ("index.blocks.read_only", 403, "FORBIDDEN/5/index read-only (api)"),
                ("index.blocks.read_only_allow_delete", 429 if flood429 else 403,
                 "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete "
                 "block" if flood429 else "FORBIDDEN/12/index read-only / allow delete (api)"),
                ("index.blocks.write", 403, "FORBIDDEN/8/index write (api)")):
            if st.get(key) == "true":
                raise ApiError(status, err_obj("cluster_block_exception",
                                               "index [%s] blocked by: [%s];" % (idx.name, blk)))

    def do_delete(self, idx, doc_id, routing, if_seq=None, if_term=None, version=None, vtype=None):
        self.check_routing_required(idx, doc_id, routing)
        sn = idx.shard_of(doc_id, routing)
        shard = idx.shards[sn]
        cur = shard.get(doc_id)
        self.check_occ(idx, sn, doc_id, cur, if_seq, if_term, version, vtype)
        self.check_write_block(idx)
        idx.max_seq[sn] += 1
        res = self.doc_head(idx, doc_id)
        if cur is None:
            res.update({"_version": 1, "result": "not_found", "_shards": self.shards_info(idx),
                        "_seq_no": idx.max_seq[sn], "_primary_term": 1})
            return res, 404
        del shard[doc_id]
        idx.deleted += 1
        res.update({"_version": cur[D_VER] + 1, "result": "deleted", "_shards": self.shards_info(idx),
                    "_seq_no": idx.max_seq[sn], "_primary_term": 1})
        return res, 200

    def do_update(self, idx, doc_id, body, routing, if_seq=None, if_term=None):
        if not isinstance(body, dict):
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: script or doc is missing;"))
        if "script" in body:
            raise bad_request("script updates are not supported by the target stand-in",
                              "illegal_argument_exception")
        if "doc" not in body and "upsert" not in body:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: script or doc is missing;"))
        sn = idx.shard_of(doc_id, routing)
        cur = idx.shards[sn].get(doc_id)
        if cur is None:
            if body.get("doc_as_upsert") and "doc" in body:
                newsrc = body["doc"]
            elif "upsert" in body:
                newsrc = body["upsert"]
            else:
                reason = ("[%s]: document missing" % doc_id) if self.c.typeless() else \
                    "[%s][%s]: document missing" % (idx.type_name or "_doc", doc_id)
                raise ApiError(404, err_obj("document_missing_exception", reason,
                                            index_uuid=idx.uuid, shard=str(sn), index=idx.name))
            text = json.dumps(newsrc, separators=(",", ":"), ensure_ascii=False)
            return self.do_index(idx, doc_id, text, newsrc, routing, "create", if_seq, if_term)
        self.check_occ(idx, sn, doc_id, cur, if_seq, if_term, None, None)
        old = cur[D_PARSED] if cur[D_PARSED] is not None else json.loads(cur[D_SRC])
        merged = deep_merge(old, body.get("doc") or {})
        if merged == old and body.get("detect_noop", True):
            res = self.doc_head(idx, doc_id)
            res.update({"_version": cur[D_VER], "result": "noop",
                        "_shards": {"total": 0, "successful": 0, "failed": 0},
                        "_seq_no": cur[D_SEQ], "_primary_term": 1})
            return res, 200
        text = json.dumps(merged, separators=(",", ":"), ensure_ascii=False)
        return self.do_index(idx, doc_id, text, merged, routing, "index")

    def get_doc(self, idx, doc_id, routing, req=None):
        sn = idx.shard_of(doc_id, routing)
        d = idx.shards[sn].get(doc_id)
        res = self.doc_head(idx, doc_id)
        if d is None:
            res["found"] = False
            return res, False
        res.update({"_version": d[D_VER], "_seq_no": d[D_SEQ], "_primary_term": 1, "found": True})
        if d[D_ROUTING] is not None:
            res["_routing"] = d[D_ROUTING]
        src = self.source_filter(d, req)
        if src is not None:
            res["_source"] = src
        return res, True

    def source_filter(self, d, req, spec=None):
        if req is not None and spec is None:
            v = req.param("_source")
            inc = req.param("_source_includes") or req.param("_source_include")
            exc = req.param("_source_excludes") or req.param("_source_exclude")
            if v is not None and v.lower() in ("false", "true"):
                spec = v.lower() == "true"
            elif v:
                spec = {"includes": v.split(",")}
            if inc or exc:
                spec = {"includes": inc.split(",") if inc else [], "excludes": exc.split(",") if exc else []}
        if spec is None or spec is True:
            return Raw(d[D_SRC])
        if spec is False:
            return None
        if isinstance(spec, str):
            spec = {"includes": [spec]}
        if isinstance(spec, list):
            spec = {"includes": spec}
        inc = spec.get("includes") or spec.get("include") or []
        exc = spec.get("excludes") or spec.get("exclude") or []
        if isinstance(inc, str):
            inc = [inc]
        if isinstance(exc, str):
            exc = [exc]
        src = d[D_PARSED] if d[D_PARSED] is not None else json.loads(d[D_SRC])
        return filter_obj(src, inc, exc, "")

    # ---- request parsing helpers ----------------------------------------
    def occ_params(self, req):
        def num(n):
            v = req.param(n)
            if v is None:
                return None
            try:
                return int(v)
            except ValueError:
                raise bad_request("Failed to parse value [%s] for [%s]" % (v, n))
        return num("if_seq_no"), num("if_primary_term"), num("version"), req.param("version_type")

    def refresh_flag(self, req):
        r = req.param("refresh")
        return r is not None and r in ("", "true", "wait_for")

    def h_index_doc(self, req, index, doc_id, op_type=None, req_type=None):
        body = req.body
        if not body:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: source is missing;"))
        try:
            text = body.decode("utf-8")
            parsed = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, mapper_parsing("failed to parse", err_obj("json_parse_exception", str(e))),
                           root=mapper_parsing("failed to parse"))
        op = op_type or req.param("op_type") or "index"
        routing = req.param("routing")
        if_seq, if_term, version, vtype = self.occ_params(req)
        pipeline = req.param("pipeline")
        req.param("timeout")
        with self.c.lock:
            idx = self.write_index(index, req)
            self.resolve_type(idx, req_type)
            self.check_pipelines(idx, pipeline)
            res, status = self.do_index(idx, doc_id, text, parsed, routing, op,
                                        if_seq, if_term, version, vtype)
        if self.refresh_flag(req):
            res["forced_refresh"] = True
        return ok(res, status)

    def h_get_doc(self, req, index, doc_id, req_type=None, head=False, source_only=False):
        routing = req.param("routing")
        with self.c.lock:
            idxs = self.resolve(index, req, "index_expression")
            if len(idxs) != 1:
                raise bad_request("alias [%s] has more than one index associated with it [%s], can't execute "
                                  "a single index op" % (index, ", ".join(sorted(i.name for i in idxs))))
            idx = idxs[0]
            res, found = self.get_doc(idx, doc_id, routing, req)
            if found and req_type not in (None, "_doc", "_all") and idx.type_name != req_type:
                res = self.doc_head(idx, doc_id)
                res["_type"] = req_type
                res["found"] = False
                found = False
        if head:
            return Response(200 if found else 404, None)
        if source_only:
            if not found:
                raise ApiError(404, err_obj("resource_not_found_exception",
                                            "Document not found [%s]/[_doc]/[%s]" % (idx.name, doc_id)))
            return ok(res.get("_source", Raw("{}")))
        return ok(res, 200 if found else 404)

    def h_delete_doc(self, req, index, doc_id, req_type=None):
        routing = req.param("routing")
        if_seq, if_term, version, vtype = self.occ_params(req)
        with self.c.lock:
            idx = self.c.indices.get(index)
            if idx is None:
                idx = self.write_index(index, req)
            res, status = self.do_delete(idx, doc_id, routing, if_seq, if_term, version, vtype)
        if self.refresh_flag(req):
            res["forced_refresh"] = True
        return ok(res, status)

    def h_update_doc(self, req, index, doc_id, req_type=None):
        body = req.json(required=True)
        routing = req.param("routing")
        if_seq, if_term, _, _ = self.occ_params(req)
        with self.c.lock:
            idx = self.write_index(index, req)  # auto-creates, then document_missing, like 7.x
            self.resolve_type(idx, req_type)
            res, status = self.do_update(idx, doc_id, body, routing, if_seq, if_term)
        if self.refresh_flag(req):
            res["forced_refresh"] = True
        return ok(res, status)

    def h_mget(self, req, index=None):
        body = req.json(required=True)
        specs = []
        if "docs" in body:
            specs = body["docs"]
        elif "ids" in body:
            specs = [{"_id": i} for i in body["ids"]]
        else:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: no documents to get;"))
        out = []
        with self.c.lock:
            for s in specs:
                iname = s.get("_index", index)
                if iname is None:
                    raise ApiError(400, err_obj("action_request_validation_exception",
                                                "Validation Failed: 1: index is missing for doc 0;"))
                try:
                    idxs = self.resolve(iname, None, "index_expression")
                    res, _ = self.get_doc(idxs[0], str(s.get("_id")), s.get("routing", req.param("routing")))
                    if "_source" in s and "_source" in res:
                        res["_source"] = self.source_filter(
                            idxs[0].shards[idxs[0].shard_of(str(s["_id"]), s.get("routing"))][str(s["_id"])],
                            None, s["_source"])
                        if res["_source"] is None:
                            del res["_source"]
                    out.append(res)
                except ApiError as e:
                    b = e.body()
                    ent = {"_index": iname}
                    if not self.c.typeless():
                        ent["_type"] = "_doc"
                    ent["_id"] = str(s.get("_id"))
                    ent["error"] = b["error"] if isinstance(b.get("error"), dict) else b
                    out.append(ent)
        return ok({"docs": out})

    # ---- bulk ----------------------------------------------------------
    def h_bulk(self, req, default_index=None, default_type=None, faults=None):
        started = time.monotonic()
        body = req.body or b""
        if not body.strip():
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: no requests added;"))
        if not body.endswith(b"\n") and (self.c.major >= 7 or self.c.os):
            raise bad_request("The bulk request must be terminated by a newline [\\n]")
        lines = body.split(b"\n")
        default_routing = req.param("routing")
        refresh = self.refresh_flag(req)
        bulk_pipeline = req.param("pipeline")
        req.param("timeout")
        req.param("wait_for_active_shards")
        item_rule = faults
        if self.c.discard:
            return self.bulk_discard(lines, default_index, started)
        # parse first, like the real server, so a malformed action fails the whole request
        ops = []
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except ValueError:
                raise bad_request("Malformed action/metadata line [%d], expected START_OBJECT or "
                                  "END_OBJECT but found [VALUE_STRING]" % i)
            if not isinstance(action, dict) or len(action) != 1:
                raise bad_request("Malformed action/metadata line [%d], expected START_OBJECT but found [%s]"
                                  % (i, "START_ARRAY" if isinstance(action, list) else "VALUE_STRING"))
            (op, meta), = action.items()
            if op not in ("index", "create", "update", "delete"):
                raise bad_request("Malformed action/metadata line [%d], expected field [create], [delete], "
                                  "[index] or [update] but found [%s]" % (i, op))
            if not isinstance(meta, dict):
                raise bad_request("Malformed action/metadata line [%d], expected START_OBJECT but found "
                                  "[VALUE_STRING]" % i)
            for k in meta:
                ok_keys = {"_index", "_id", "routing", "_routing", "if_seq_no", "if_primary_term",
                           "version", "version_type", "_version", "_version_type", "pipeline",
                           "retry_on_conflict", "_retry_on_conflict", "require_alias", "_source",
                           "dynamic_templates", "op_type", "_type", "_parent", "parent"}
                if k == "_type" and self.c.typeless():
                    raise bad_request("Action/metadata line [%d] contains an unknown parameter [_type]" % i)
                if k not in ok_keys:
                    raise bad_request("Action/metadata line [%d] contains an unknown parameter [%s]" % (i, k))
            src = None
            if op != "delete":
                if i >= n or (i == n - 1 and not lines[i].strip() and op != "delete"):
                    raise ApiError(400, err_obj("action_request_validation_exception",
                                                "Validation Failed: 1: source is missing;"))
                src = lines[i]
                i += 1
            ops.append((op, meta, src))
        # request validation happens before any item is applied
        problems = []
        es6 = self.c.major == 6 and not self.c.os
        for op, meta, _ in ops:
            if meta.get("_index", default_index) is None:
                problems.append("index is missing")
            if es6 and "_type" not in meta and default_type is None:
                problems.append("type is missing")
            if op in ("update", "delete") and meta.get("_id") is None:
                problems.append("id is missing")
            if meta.get("_id") == "":
                problems.append("if _id is specified it must not be empty")
        if problems:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: " + "".join(
                                            "%d: %s;" % (j + 1, p) for j, p in enumerate(problems))))
        items = []
        errors = False
        accepted = rejected = failed = 0
        with self.c.lock:
            for op, meta, src in ops:
                iname = meta.get("_index", default_index)
                doc_id = meta.get("_id")
                if doc_id is not None:
                    doc_id = str(doc_id)
                routing = meta.get("routing", meta.get("_routing", default_routing))
                if routing is not None:
                    routing = str(routing)
                head = {"_index": iname}
                if not self.c.typeless():
                    head["_type"] = meta.get("_type", default_type or "_doc")
                head["_id"] = doc_id
                if iname is None:
                    raise ApiError(400, err_obj("action_request_validation_exception",
                                                "Validation Failed: 1: index is missing;"))
                if item_rule is not None and item_rule.fire_item(self.c):
                    rejected += 1
                    errors = True
                    it = dict(head)
                    it["status"] = item_rule.item_status()
                    it["error"] = item_rule.item_error(iname)
                    items.append({op: it})
                    continue
                try:
                    idx = self.write_index(iname)
                    head["_index"] = idx.name
                    self.resolve_type(idx, meta.get("_type", default_type))
                    if "_type" in head:
                        head["_type"] = idx.type_name or "_doc"
                    if_seq = meta.get("if_seq_no")
                    if_term = meta.get("if_primary_term")
                    version = meta.get("version", meta.get("_version"))
                    vtype = meta.get("version_type", meta.get("_version_type"))
                    if op in ("index", "create"):
                        self.check_pipelines(idx, meta.get("pipeline", bulk_pipeline))
                        try:
                            text = src.decode("utf-8")
                        except UnicodeDecodeError as e:
                            raise ApiError(400, mapper_parsing("failed to parse",
                                                               err_obj("json_parse_exception", str(e))))
                        try:
                            parsed = json.loads(text)
                        except ValueError as e:
                            raise ApiError(400, mapper_parsing("failed to parse",
                                                               err_obj("json_parse_exception", str(e))))
                        res, status = self.do_index(idx, doc_id, text, parsed, routing,
                                                    "create" if op == "create" else meta.get("op_type", "index"),
                                                    if_seq, if_term, version, vtype)
                    elif op == "delete":
                        if doc_id is None:
                            raise ApiError(400, err_obj("action_request_validation_exception",
                                                        "Validation Failed: 1: id is missing;"))
                        res, status = self.do_delete(idx, doc_id, routing, if_seq, if_term, version, vtype)
                    else:
                        if doc_id is None:
                            raise ApiError(400, err_obj("action_request_validation_exception",
                                                        "Validation Failed: 1: id is missing;"))
                        try:
                            ub = json.loads(src)
                        except ValueError as e:
                            raise ApiError(400, err_obj("json_parse_exception", str(e)))
                        res, status = self.do_update(idx, doc_id, ub, routing, if_seq, if_term)
                    res["status"] = status
                    if refresh:
                        res["forced_refresh"] = True
                    items.append({op: res})
                    accepted += 1
                except ApiError as e:
                    errors = True
                    failed += 1
                    it = dict(head)
                    it["status"] = e.status
                    b = e.body()
                    it["error"] = {k: v for k, v in b["error"].items() if k != "root_cause"} \
                        if isinstance(b.get("error"), dict) else b
                    items.append({op: it})
        with self.c.stats_lock:
            st = self.c.stats["bulk"]
            st["requests"] += 1
            st["items"] += len(ops)
            st["items_accepted"] += accepted
            st["items_rejected"] += rejected
            st["items_failed"] += failed
        took = int((time.monotonic() - started) * 1000)
        return ok({"took": took, "errors": errors, "items": items})

    def bulk_discard(self, lines, default_index, started):
        """--discard-bulk: parse the action lines, answer success, store nothing."""
        items = []
        i, n = 0, len(lines)
        seq = 0
        typeless = self.c.typeless()
        while i < n:
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            (op, meta), = json.loads(line).items()
            if op != "delete":
                i += 1
            it = {"_index": meta.get("_index", default_index)}
            if not typeless:
                it["_type"] = "_doc"
            it.update({"_id": str(meta.get("_id", seq)), "_version": 1,
                       "result": "deleted" if op == "delete" else "created",
                       "_shards": {"total": 2, "successful": 1, "failed": 0},
                       "_seq_no": seq, "_primary_term": 1, "status": 200 if op == "delete" else 201})
            seq += 1
            items.append({op: it})
        with self.c.stats_lock:
            st = self.c.stats["bulk"]
            st["requests"] += 1
            st["items"] += len(items)
            st["items_accepted"] += len(items)
        return ok({"took": int((time.monotonic() - started) * 1000), "errors": False, "items": items})

    # ---- search --------------------------------------------------------
    def field_mapping(self, idx, field):
        """Return (source_path, mapping) for a field, following multi-fields."""
        m = idx.mapping or {}
        props = m.get("properties", {})
        parts = field.split(".")
        fm = None
        path = []
        for k, p in enumerate(parts):
            if props and p in props:
                fm = props[p]
                path.append(p)
                props = fm.get("properties", {})
            elif fm is not None and p in (fm.get("fields") or {}):
                return path, fm["fields"][p]
            else:
                return parts, None
        return path, fm

    def compile_query(self, idx, q):
        if q is None:
            return lambda d, s: True
        if not isinstance(q, dict) or len(q) != 1:
            raise ApiError(400, err_obj("parsing_exception",
                                        "[_na] query malformed, must start with start_object"
                                        if not isinstance(q, dict) else
                                        "[%s] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"
                                        % next(iter(q), "query"), line=1, col=1))
        (kind, spec), = q.items()
        if kind == "match_all":
            return lambda d, s: True
        if kind == "match_none":
            return lambda d, s: False
        if kind == "ids":
            vals = set(str(v) for v in (spec.get("values") or []))
            return lambda d, s: d in vals
        if kind in ("term", "terms", "match", "match_phrase", "prefix", "wildcard", "range", "exists"):
            if kind == "exists":
                field = spec.get("field")
                path, fm = self.field_mapping(idx, field)
                return lambda d, s: any(v is not None for v in get_path(s, path))
            if not isinstance(spec, dict) or not spec:
                raise ApiError(400, err_obj("parsing_exception", "[%s] query malformed, no start_object after query name" % kind, line=1, col=1))
            field = next(k for k in spec if k != "boost")
            val = spec[field]
            path, fm = self.field_mapping(idx, field)
            ftype = (fm or {}).get("type", "keyword")
            if kind == "terms":
                cands = [norm_term(v, ftype) for v in val]
                return lambda d, s: any(value_matches(v, c, ftype) for v in get_path(s, path) for c in cands)
            if kind == "range":
                return lambda d, s: any(in_range(v, val, ftype) for v in get_path(s, path))
            if isinstance(val, dict):
                val = val.get("value", val.get("query"))
            if kind == "term":
                c = norm_term(val, ftype)
                return lambda d, s: any(value_matches(v, c, ftype) for v in get_path(s, path))
            if kind == "prefix":
                return lambda d, s: any(str(v).startswith(str(val)) for v in get_path(s, path))
            if kind == "wildcard":
                return lambda d, s: any(fnmatch.fnmatchcase(str(v), str(val)) for v in get_path(s, path))
            # match / match_phrase
            if ftype in ("text", "match_only_text", "search_as_you_type"):
                toks = [t.lower() for t in TOKEN_RE.findall(str(val))]
                if kind == "match_phrase":
                    phrase = " ".join(toks)
                    return lambda d, s: any(phrase in " ".join(t.lower() for t in TOKEN_RE.findall(str(v)))
                                            for v in get_path(s, path))
                op = (spec[field].get("operator", "or") if isinstance(spec[field], dict) else "or").lower()

                def mt(d, s, toks=toks, op=op):
                    have = set()
                    for v in get_path(s, path):
                        have.update(t.lower() for t in TOKEN_RE.findall(str(v)))
                    return all(t in have for t in toks) if op == "and" else any(t in have for t in toks)
                return mt
            c = norm_term(val, ftype)
            return lambda d, s: any(value_matches(v, c, ftype) for v in get_path(s, path))
        if kind == "bool":
            must = [self.compile_query(idx, x) for x in as_list(spec.get("must")) + as_list(spec.get("filter"))]
            should = [self.compile_query(idx, x) for x in as_list(spec.get("should"))]
            must_not = [self.compile_query(idx, x) for x in as_list(spec.get("must_not"))]
            msm = spec.get("minimum_should_match")
            if msm is None:
                msm = 0 if must else (1 if should else 0)
            msm = int(msm) if not isinstance(msm, str) or not msm.endswith("%") else \
                int(len(should) * int(msm[:-1]) / 100)

            def bq(d, s):
                if any(not f(d, s) for f in must):
                    return False
                if any(f(d, s) for f in must_not):
                    return False
                if msm:
                    return sum(1 for f in should if f(d, s)) >= msm
                return True
            return bq
        if kind == "constant_score":
            return self.compile_query(idx, spec.get("filter"))
        raise ApiError(400, err_obj("parsing_exception", "unknown query [%s]" % kind, line=1, col=14),
                       root=err_obj("parsing_exception", "unknown query [%s]" % kind, line=1, col=14))

    def search_hits(self, req, expr, body):
        """Return (list of (idx, id, doc, sortkey), total_shards, sort_spec)."""
        pairs = self.resolve(expr, req, "index_expression", with_alias=True)
        query = body.get("query")
        q_param = req.param("q")
        if q_param and not query:
            if ":" in q_param:
                f, v = q_param.split(":", 1)
                query = {"match": {f: v}} if v != "*" else {"exists": {"field": f}}
            elif q_param != "*":
                query = {"match_all": {}}
            else:
                query = {"match_all": {}}
        out = []
        total_shards = 0
        routing = req.param("routing")
        rset = set(routing.split(",")) if routing else None
        for order, (idx, ameta) in enumerate(pairs):
            total_shards += idx.nshards
            qf = self.compile_query(idx, query)
            af = self.compile_query(idx, ameta["filter"]) if ameta and ameta.get("filter") else None
            shards = range(idx.nshards)
            if rset is not None:
                shards = sorted(set((routing_hash(r) % idx.routing_shards) // idx.routing_factor for r in rset))
            for sn in shards:
                pos = 0
                ids_only = isinstance(query, dict) and "ids" in query
                items = idx.shards[sn].items()
                if ids_only and af is None:
                    vals = [str(v) for v in query["ids"].get("values") or []]
                    items = [(v, idx.shards[sn][v]) for v in vals if v in idx.shards[sn]]
                for doc_id, d in items:
                    pos += 1
                    src = d[D_PARSED]
                    if src is None and not (query is None or "match_all" in query or ids_only) or af is not None:
                        if src is None:
                            src = json.loads(d[D_SRC])
                            d[D_PARSED] = src
                    if af is not None and not af(doc_id, src):
                        continue
                    if not qf(doc_id, src):
                        continue
                    out.append((idx, doc_id, d, (order, sn, d[D_SEQ])))
        return out, total_shards

    def sort_keys(self, body):
        sort = body.get("sort")
        if sort is None:
            return None
        if not isinstance(sort, list):
            sort = [sort]
        keys = []
        for s in sort:
            if isinstance(s, str):
                keys.append((s, "desc" if s == "_score" else "asc", None))
            elif isinstance(s, dict):
                (f, o), = s.items()
                if isinstance(o, str):
                    keys.append((f, o.lower(), None))
                else:
                    keys.append((f, (o.get("order") or ("desc" if f == "_score" else "asc")).lower(),
                                 o.get("missing")))
        return keys

    def h_search(self, req, expr, scroll_body=None):
        started = time.monotonic()
        body = scroll_body if scroll_body is not None else (req.json() or {})
        size = int(req.param("size", body.get("size", 10)))
        frm = int(req.param("from", body.get("from", 0)))
        with self.c.lock:
            idxs = self.resolve(expr, req, "index_expression", allow_missing=True)
            window = min([int(i.settings.get("index.max_result_window", MAX_RESULT_WINDOW)) for i in idxs]
                         or [MAX_RESULT_WINDOW])
        if frm + size > window and not req.has("scroll"):
            reason = ("Result window is too large, from + size must be less than or equal to: [%d] but was "
                      "[%d]. See the scroll api for a more efficient way to request large data sets. This "
                      "limit can be set by changing the [index.max_result_window] index level setting."
                      % (window, frm + size))
            inner = err_obj("illegal_argument_exception", reason)
            raise ApiError(400, {"type": "search_phase_execution_exception", "reason": "all shards failed",
                                 "phase": "query", "grouped": True, "failed_shards": [],
                                 "caused_by": inner}, root=inner)
        if req.param("sort"):
            body = dict(body)
            body["sort"] = [{p.split(":")[0]: p.split(":")[1]} if ":" in p else p
                            for p in req.param("sort").split(",")]
        with self.c.lock:
            hits, total_shards = self.search_hits(req, expr, body)
            keys = self.sort_keys(body)
            if keys:
                hits = self.apply_sort(hits, keys)
            sa = body.get("search_after")
            if sa is not None and keys:
                hits = [h for h in hits if cmp_key(h[4], sa, keys) > 0]
            total = len(hits)
            scroll = req.param("scroll")
            scroll_id = None
            if scroll:
                scroll_id = base64.b64encode(("standin-scroll-" + new_uuid()).encode()).decode()
                self.c.scrolls[scroll_id] = {"hits": hits[frm + size:], "size": size, "total": total,
                                             "body": body, "keys": keys}
            page = hits[frm:frm + size]
            out_hits = [self.hit_json(h, keys, body) for h in page]
            aggs = body.get("aggs", body.get("aggregations"))
            aggs_out = self.compute_aggs(hits, aggs) if aggs else None
        res = self.search_response(req, body, started, total_shards, total, out_hits, keys, scroll_id)
        if aggs_out is not None:
            res["aggregations"] = aggs_out
        return ok(res)

    def agg_values(self, h, field):
        idx, d = h[0], h[2]
        path, fm = self.field_mapping(idx, field)
        ftype = (fm or {}).get("type")
        if ftype == "text" and not fm.get("fielddata"):
            inner = err_obj("illegal_argument_exception",
                            "Text fields are not optimised for operations that require per-document field "
                            "data like aggregations and sorting, so these operations are disabled by default. "
                            "Please use a keyword field instead. Alternatively, set fielddata=true on [%s] in "
                            "order to load field data by uninverting the inverted index. Note that this can "
                            "use significant memory." % field)
            raise ApiError(400, {"type": "search_phase_execution_exception", "reason": "all shards failed",
                                 "phase": "query", "grouped": True, "failed_shards": [], "caused_by": inner},
                           root=inner)
        src = d[D_PARSED] if d[D_PARSED] is not None else json.loads(d[D_SRC])
        vals = [v for v in get_path(src, path) if v is not None and not isinstance(v, (dict, list))]
        if ftype in NUMERIC_INT:
            out = []
            for v in vals:
                try:
                    out.append(int(float(v)))
                except (TypeError, ValueError):
                    pass
            return out, ftype
        if ftype in NUMERIC_FLOAT:
            out = []
            for v in vals:
                try:
                    out.append(float(v))
                except (TypeError, ValueError):
                    pass
            return out, ftype
        if ftype == "boolean":
            return [1 if v in (True, "true") else 0 for v in vals], ftype
        return [v if isinstance(v, str) else json.dumps(v) for v in vals], ftype

    def compute_aggs(self, hits, aggs):
        """terms, filter, min, max, sum, avg, value_count, cardinality (with sub-aggregations)."""
        out = {}
        for name, spec in aggs.items():
            sub = spec.get("aggs", spec.get("aggregations"))
            kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
            if len(kinds) != 1:
                raise ApiError(400, err_obj("parsing_exception",
                                            "Expected [START_OBJECT] under [%s], but got a [FIELD_NAME] in [%s]"
                                            % (kinds[-1] if kinds else name, name), line=1, col=1))
            kind = kinds[0]
            a = spec[kind]
            if kind == "terms":
                counts = {}
                members = {}
                for h in hits:
                    vals, ftype = self.agg_values(h, a["field"])
                    for v in set(vals):
                        counts[v] = counts.get(v, 0) + 1
                        if sub:
                            members.setdefault(v, []).append(h)
                order = sorted(counts.items(), key=lambda kv: (-kv[1], sort_norm(kv[0])))
                size = int(a.get("size", 10))
                min_dc = int(a.get("min_doc_count", 1))
                buckets = []
                for k, c in order[:size]:
                    if c < min_dc:
                        continue
                    b = {"key": k, "doc_count": c}
                    if isinstance(k, int) and ftype == "boolean":
                        b["key_as_string"] = "true" if k else "false"
                    if sub:
                        b.update(self.compute_aggs(members.get(k, []), sub))
                    buckets.append(b)
                out[name] = {"doc_count_error_upper_bound": 0,
                             "sum_other_doc_count": sum(c for _, c in order[size:]),
                             "buckets": buckets}
            elif kind == "filter":
                sel = []
                for h in hits:
                    qf = self.compile_query(h[0], a)
                    d = h[2]
                    src = d[D_PARSED] if d[D_PARSED] is not None else json.loads(d[D_SRC])
                    if qf(h[1], src):
                        sel.append(h)
                r = {"doc_count": len(sel)}
                if sub:
                    r.update(self.compute_aggs(sel, sub))
                out[name] = r
            elif kind in ("min", "max", "sum", "avg", "value_count", "cardinality"):
                vals = []
                for h in hits:
                    vals.extend(self.agg_values(h, a["field"])[0])
                if kind == "value_count":
                    out[name] = {"value": len(vals)}
                elif kind == "cardinality":
                    out[name] = {"value": len(set(vals))}
                else:
                    nums = [float(v) for v in vals if isinstance(v, (int, float))]
                    if kind == "sum":
                        out[name] = {"value": float(sum(nums))}
                    elif not nums:
                        out[name] = {"value": None}
                    elif kind == "avg":
                        out[name] = {"value": sum(nums) / len(nums)}
                    else:
                        out[name] = {"value": float(min(nums) if kind == "min" else max(nums))}
            else:
                raise ApiError(400, err_obj("parsing_exception",
                                            "Unknown aggregation type [%s]" % kind, line=1, col=1))
        return out

    def search_response(self, req, body, started, total_shards, total, out_hits, keys, scroll_id=None):
        res = {}
        if scroll_id:
            res["_scroll_id"] = scroll_id
        res["took"] = int((time.monotonic() - started) * 1000)
        res["timed_out"] = False
        res["_shards"] = {"total": total_shards, "successful": total_shards, "skipped": 0, "failed": 0}
        hits = {}
        tth = req.param("track_total_hits", body.get("track_total_hits"))
        as_int = to_bool(req.param("rest_total_hits_as_int")) or (self.c.major == 6 and not self.c.os)
        if str(tth).lower() == "false":
            if as_int:
                hits["total"] = -1
        else:
            limit = None if str(tth).lower() == "true" or as_int else \
                (int(tth) if tth is not None and str(tth).lstrip("-").isdigit() else TOTAL_HITS_DEFAULT)
            if as_int:
                hits["total"] = total
            elif limit is not None and total > limit:
                hits["total"] = {"value": limit, "relation": "gte"}
            else:
                hits["total"] = {"value": total, "relation": "eq"}
        hits["max_score"] = None if keys else (1.0 if out_hits else None)
        hits["hits"] = out_hits
        res["hits"] = hits
        return res

    def apply_sort(self, hits, keys):
        decorated = []
        for idx, doc_id, d, base in hits:
            vals = []
            for f, order, missing in keys:
                if f == "_doc":
                    vals.append(base[1] * (1 << 40) + base[2])
                elif f == "_score":
                    vals.append(1.0)
                elif f == "_id":
                    vals.append(doc_id)
                else:
                    path, fm = self.field_mapping(idx, f)
                    ftype = (fm or {}).get("type")
                    if ftype == "text":
                        inner = err_obj("illegal_argument_exception",
                                        "Text fields are not optimised for operations that require per-document "
                                        "field data like aggregations and sorting, so these operations are "
                                        "disabled by default. Please use a keyword field instead. Alternatively, "
                                        "set fielddata=true on [%s] in order to load field data by uninverting "
                                        "the inverted index. Note that this can use significant memory." % f)
                        raise ApiError(400, {"type": "search_phase_execution_exception",
                                             "reason": "all shards failed", "phase": "query",
                                             "grouped": True, "failed_shards": [], "caused_by": inner},
                                       root=inner)
                    src = d[D_PARSED] if d[D_PARSED] is not None else json.loads(d[D_SRC])
                    vs = [v for v in get_path(src, path) if v is not None]
                    if not vs:
                        vals.append(None)
                    else:
                        vals.append(min(vs, key=sort_norm) if order == "asc" else max(vs, key=sort_norm))
            decorated.append((idx, doc_id, d, base, vals))


        def cmp(a, b):
            r = cmp_vals(a[4], b[4], keys)
            if r:
                return r
            return (a[3] > b[3]) - (a[3] < b[3])
        decorated.sort(key=functools.cmp_to_key(cmp))
        return decorated

    def hit_json(self, h, keys, body):
        idx, doc_id, d = h[0], h[1], h[2]
        hit = {"_index": idx.name}
        if not self.c.typeless():
            hit["_type"] = idx.type_name or "_doc"
        hit["_id"] = doc_id
        if body.get("seq_no_primary_term"):
            hit["_seq_no"] = d[D_SEQ]
            hit["_primary_term"] = 1
        if body.get("version"):
            hit["_version"] = d[D_VER]
        hit["_score"] = None if keys else 1.0
        if d[D_ROUTING] is not None:
            hit["_routing"] = d[D_ROUTING]
        src = self.source_filter(d, None, body.get("_source"))
        if src is not None:
            hit["_source"] = src
        if keys:
            hit["sort"] = [v for v in h[4]]
        return hit

    def h_scroll(self, req):
        body = req.json() or {}
        sid = body.get("scroll_id") or req.param("scroll_id")
        started = time.monotonic()
        with self.c.lock:
            st = self.c.scrolls.get(sid)
            if st is None:
                inner = err_obj("search_context_missing_exception", "No search context found for id [0]")
                raise ApiError(404, {"type": "search_phase_execution_exception", "reason": "all shards failed",
                                     "phase": "query", "grouped": True, "failed_shards": [],
                                     "caused_by": inner}, root=inner)
            page = st["hits"][:st["size"]]
            st["hits"] = st["hits"][st["size"]:]
            out_hits = [self.hit_json(h, st["keys"], st["body"]) for h in page]
        req.params.setdefault("track_total_hits", "true")
        return ok(self.search_response(req, st["body"], started, 1, st["total"], out_hits, st["keys"], sid))

    def h_clear_scroll(self, req):
        body = req.json() or {}
        ids = body.get("scroll_id") or []
        if isinstance(ids, str):
            ids = [ids]
        with self.c.lock:
            n = 0
            for s in ids:
                if self.c.scrolls.pop(s, None) is not None:
                    n += 1
            if not ids:
                n = len(self.c.scrolls)
                self.c.scrolls.clear()
        return ok({"succeeded": True, "num_freed": n})

    def h_count(self, req, expr):
        body = req.json() or {}
        with self.c.lock:
            hits, total_shards = self.search_hits(req, expr, body)
        return ok({"count": len(hits), "_shards": {"total": total_shards, "successful": total_shards,
                                                   "skipped": 0, "failed": 0}})

    def h_delete_by_query(self, req, expr):
        started = time.monotonic()
        body = req.json(required=True)
        if "query" not in body:
            raise ApiError(400, err_obj("action_request_validation_exception",
                                        "Validation Failed: 1: query is missing;"))
        with self.c.lock:
            hits, _ = self.search_hits(req, expr, body)
            deleted = 0
            for h in hits:
                idx, doc_id, d = h[0], h[1], h[2]
                self.check_write_block(idx)
                self.do_delete(idx, doc_id, d[D_ROUTING])
                deleted += 1
        return ok({"took": int((time.monotonic() - started) * 1000), "timed_out": False, "total": len(hits),
                   "deleted": deleted, "batches": 1 if hits else 0, "version_conflicts": 0, "noops": 0,
                   "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
                   "throttled_until_millis": 0, "failures": []})

    def h_refresh(self, req, expr):
        with self.c.lock:
            idxs = self.resolve(expr, req)
            total = sum(i.nshards * (1 + i.replicas()) for i in idxs)
            succ = sum(i.nshards for i in idxs)
        return ok({"_shards": {"total": total, "successful": succ, "failed": 0}})

    # ---- cluster ---------------------------------------------------------
    def h_root(self, req):
        f = self.c.flavor
        v = {}
        if f["os"]:
            v["distribution"] = "opensearch"
        v["number"] = f["number"]
        if not f["os"]:
            v["build_flavor"] = "default"
        v["build_type"] = "tar"
        v["build_hash"] = f["build_hash"]
        v["build_date"] = f["build_date"]
        v["build_snapshot"] = False
        v["lucene_version"] = f["lucene"]
        v["minimum_wire_compatibility_version"] = f["min_wire"]
        v["minimum_index_compatibility_version"] = f["min_index"]
        return ok({"name": self.c.node_name, "cluster_name": self.c.cluster_name,
                   "cluster_uuid": self.c.cluster_uuid, "version": v,
                   "tagline": "The OpenSearch Project: https://opensearch.org/" if f["os"]
                   else "You Know, for Search"})

    def health(self):
        idxs = list(self.c.indices.values())
        prim = sum(i.nshards for i in idxs)
        unassigned = sum(i.nshards * i.replicas() for i in idxs)
        status = "yellow" if unassigned else "green"
        total = prim + unassigned
        return status, prim, unassigned, (100.0 if total == 0 else prim * 100.0 / total)

    def h_health(self, req, expr=None):
        with self.c.lock:
            if expr:
                self.resolve(expr, req)
            status, prim, unassigned, pct = self.health()
            n_idx = len(self.c.indices)
        res = {"cluster_name": self.c.cluster_name, "status": status, "timed_out": False,
               "number_of_nodes": 1, "number_of_data_nodes": 1}
        if self.c.os and self.c.major >= 2:
            res["discovered_master"] = True
            res["discovered_cluster_manager"] = True
        res.update({"active_primary_shards": prim, "active_shards": prim, "relocating_shards": 0,
                    "initializing_shards": 0, "unassigned_shards": unassigned,
                    "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                    "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                    "active_shards_percent_as_number": pct})
        _ = n_idx
        want = req.param("wait_for_status")
        order = {"green": 0, "yellow": 1, "red": 2}
        if want and order.get(status, 2) > order.get(want, 2):
            res["timed_out"] = True
            return ok(res, 408)
        return ok(res)

    def h_cluster_settings(self, req, put):
        if put:
            body = req.json(required=True)
            with self.c.lock:
                out = {"acknowledged": True, "persistent": {}, "transient": {}}
                for scope in ("persistent", "transient"):
                    flat = flatten_settings(body.get(scope) or {})
                    for k, v in flat.items():
                        if v is None:
                            self.c.cluster_settings[scope].pop(k, None)
                        else:
                            self.c.cluster_settings[scope][k] = v
                    out[scope] = nest_settings({k: v for k, v in flat.items() if v is not None})
            return ok(out)
        with self.c.lock:
            flat = to_bool(req.param("flat_settings"))
            return ok({s: (dict(self.c.cluster_settings[s]) if flat else nest_settings(self.c.cluster_settings[s]))
                       for s in ("persistent", "transient")})

    def h_cat_indices(self, req, expr):
        with self.c.lock:
            idxs = self.resolve(expr, req) if expr else list(self.c.indices.values())
            rows = []
            for i in sorted(idxs, key=lambda x: x.name):
                store = i.store_bytes()
                rows.append({
                    "health": "yellow" if i.replicas() else "green",
                    "status": "open", "index": i.name, "uuid": i.uuid,
                    "pri": str(i.nshards), "rep": str(i.replicas()),
                    "docs.count": str(i.count()), "docs.deleted": str(i.deleted),
                    "store.size": store, "pri.store.size": store,
                })
        bytes_unit = req.param("bytes")
        for r in rows:
            for k in ("store.size", "pri.store.size"):
                if bytes_unit == "b":
                    r[k] = str(r[k])
                elif bytes_unit == "kb":
                    r[k] = str(r[k] // 1024)
                elif bytes_unit == "mb":
                    r[k] = str(r[k] >> 20)
                else:
                    r[k] = fmt_bytes(r[k])
        cols = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted",
                "store.size", "pri.store.size"]
        aliases = {"h": "health", "s": "status", "i": "index", "idx": "index", "id": "uuid",
                   "p": "pri", "shards.primary": "pri", "shardsPrimary": "pri", "r": "rep",
                   "shards.replica": "rep", "dc": "docs.count", "docsCount": "docs.count",
                   "dd": "docs.deleted", "ss": "store.size", "storeSize": "store.size"}
        h = req.param("h")
        if h:
            sel = []
            for c in h.split(","):
                c = aliases.get(c, c)
                if c in cols:
                    sel.append(c)
                elif "*" in c:
                    sel += [x for x in cols if fnmatch.fnmatchcase(x, c)]
                else:
                    raise bad_request("Unknown column [%s]" % c)
            cols = sel
        s = req.param("s")
        if s:
            for part in reversed(s.split(",")):
                name, _, direction = part.partition(":")
                name = aliases.get(name, name)
                numeric = name in ("pri", "rep", "docs.count", "docs.deleted")
                rows.sort(key=lambda r: int(r[name]) if numeric else r[name], reverse=direction == "desc")
        fmt = req.param("format") or ("json" if "application/json" in req.headers.get("accept", "") else "text")
        if fmt == "json":
            return ok([{c: r[c] for c in cols} for r in rows])
        verbose = req.has("v") and to_bool(req.param("v"))
        table = ([cols] if verbose else []) + [[r[c] for c in cols] for r in rows]
        widths = [max((len(row[k]) for row in table), default=0) for k in range(len(cols))]
        numeric_cols = {"pri", "rep", "docs.count", "docs.deleted", "store.size", "pri.store.size"}
        lines = []
        for ri, row in enumerate(table):
            cells = []
            for k, v in enumerate(row):
                if cols[k] in numeric_cols and not (verbose and ri == 0):
                    cells.append(v.rjust(widths[k]))
                else:
                    cells.append(v.ljust(widths[k]))
            lines.append(" ".join(cells).rstrip() + "\n")
        return Response(200, text="".join(lines), ctype="text/plain; charset=UTF-8")

    def h_cat_count(self, req, expr):
        with self.c.lock:
            n = sum(i.count() for i in (self.resolve(expr, req) if expr else self.c.indices.values()))
        ts = int(time.time())
        row = [str(ts), time.strftime("%H:%M:%S", time.gmtime(ts)), str(n)]
        if req.param("format") == "json":
            return ok([{"epoch": row[0], "timestamp": row[1], "count": row[2]}])
        text = ("epoch      timestamp count\n" if req.has("v") else "") + " ".join(row) + "\n"
        return Response(200, text=text, ctype="text/plain; charset=UTF-8")


def count_fields(props):
    n = 0
    for fm in props.values():
        if not isinstance(fm, dict):
            continue
        n += 1 + len(fm.get("fields") or {})
        if "properties" in fm:
            n += count_fields(fm["properties"])
    return n


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def get_path(src, path):
    """All values at a dotted path (arrays flattened)."""
    cur = [src]
    for p in path:
        nxt = []
        for c in cur:
            if isinstance(c, list):
                for x in c:
                    if isinstance(x, dict) and p in x:
                        nxt.append(x[p])
            elif isinstance(c, dict) and p in c:
                nxt.append(c[p])
        cur = nxt
        if not cur:
            return []
    out = []
    for v in cur:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def norm_term(v, ftype):
    if ftype in NUMERIC_INT or ftype in NUMERIC_FLOAT:
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ApiError(400, err_obj("query_shard_exception",
                                        "failed to create query: For input string: \"%s\"" % v))
    if ftype == "boolean":
        return str(v).lower() == "true"
    return v


def value_matches(v, c, ftype):
    if ftype in NUMERIC_INT or ftype in NUMERIC_FLOAT:
        try:
            return float(v) == c
        except (TypeError, ValueError):
            return False
    if ftype == "boolean":
        return (v is True or v == "true") == c
    if ftype in ("text", "match_only_text"):
        return str(c) in [t.lower() for t in TOKEN_RE.findall(str(v))]
    if isinstance(v, bool):
        return str(v).lower() == str(c).lower()
    return v == c or str(v) == str(c)


def in_range(v, spec, ftype):
    if v is None:
        return False
    numeric = ftype in NUMERIC_INT or ftype in NUMERIC_FLOAT
    try:
        x = float(v) if numeric else v
        for op, f in (("gte", lambda a, b: a >= b), ("gt", lambda a, b: a > b),
                      ("lte", lambda a, b: a <= b), ("lt", lambda a, b: a < b)):
            if op in spec and spec[op] is not None:
                b = float(spec[op]) if numeric else spec[op]
                if not f(x, b):
                    return False
        return True
    except (TypeError, ValueError):
        return False


def sort_norm(v):
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


def cmp_vals(a, b, keys):
    for (f, order, missing), x, y in zip(keys, a, b):
        if x is None and y is None:
            continue
        if x is None or y is None:
            # missing values sort last by default in both directions
            first = missing == "_first"
            r = -1 if (x is None) == first else 1
            return r
        nx, ny = sort_norm(x), sort_norm(y)
        if nx != ny:
            r = -1 if nx < ny else 1
            return -r if order == "desc" else r
    return 0


def cmp_key(vals, after, keys):
    """>0 when vals sorts after the search_after values."""
    return cmp_vals(vals, list(after), keys)


def filter_obj(src, inc, exc, prefix):
    if not isinstance(src, dict):
        return src
    out = {}
    for k, v in src.items():
        full = prefix + k
        if exc and any(fnmatch.fnmatchcase(full, p) for p in exc):
            continue
        if not inc or any(fnmatch.fnmatchcase(full, p) or p.startswith(full + ".") or
                          fnmatch.fnmatchcase(full, p + ".*") or full.startswith(p + ".") for p in inc):
            if isinstance(v, dict):
                sub_inc = inc if not inc or not any(fnmatch.fnmatchcase(full, p) for p in inc) else []
                v = filter_obj(v, sub_inc, exc, full + ".")
            out[k] = v
    return out


def filter_path(obj, paths):
    """Minimal filter_path: dotted paths with * and ** wildcards."""
    pats = [p.split(".") for p in paths.split(",") if p]

    def walk(o, pats):
        if not pats:
            return o
        if isinstance(o, list):
            res = [walk(x, pats) for x in o]
            res = [x for x in res if x is not _NOTHING]
            return res if res else _NOTHING
        if not isinstance(o, dict):
            return o if any(not p for p in pats) else _NOTHING
        out = {}
        for k, v in o.items():
            sub = []
            whole = False
            for p in pats:
                if not p:
                    whole = True
                    continue
                if p[0] == "**":
                    sub.append(p)
                    sub.append(p[1:])
                    if len(p) > 1 and fnmatch.fnmatchcase(k, p[1]):
                        sub.append(p[2:])
                        if len(p) == 2:
                            whole = True
                elif fnmatch.fnmatchcase(k, p[0]):
                    if len(p) == 1:
                        whole = True
                    else:
                        sub.append(p[1:])
            if whole:
                out[k] = v
            elif sub:
                r = walk(v, sub)
                if r is not _NOTHING and r != {}:
                    out[k] = r
        return out if out else _NOTHING

    r = walk(obj, pats)
    return {} if r is _NOTHING else r


_NOTHING = object()


# --------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------

class FaultRule:
    FIELDS = ("path", "method", "status", "count", "rate", "bulk_item_status", "item_rate",
              "latency_ms", "drop", "reset", "retry_after", "body", "item_count")

    def __init__(self, spec, flavor):
        unknown = set(spec) - set(self.FIELDS)
        if unknown:
            raise bad_request("unknown fault rule field(s): %s" % ", ".join(sorted(unknown)))
        self.spec = dict(spec)
        self.flavor = flavor
        p = spec.get("path", "/")
        self.regex = re.compile(p) if p.startswith("^") else None
        self.path = p
        self.method = (spec.get("method") or "").upper() or None
        self.remaining = spec.get("count")
        self.item_remaining = spec.get("item_count")
        self.rate = spec.get("rate")
        self.fired = 0
        self.items_fired = 0
        for k in ("status", "bulk_item_status"):
            if k in spec and spec[k] not in (429, 500, 502, 503, 504):
                if not (k == "status" and spec[k] == 413):   # 413: the body over http.max_content_length
                    raise bad_request("fault %s must be one of 429, 500, 502, 503, 504 (status also 413)" % k)

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        if self.regex is not None:
            return bool(self.regex.search(path))
        if self.path.startswith("*"):
            return path.endswith(self.path[1:])
        return path.startswith(self.path)

    def is_item_rule(self):
        return "bulk_item_status" in self.spec

    def take(self, rng):
        """Decide whether this request-level rule fires now."""
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            if self.rate is None:
                self.remaining -= 1
                self.fired += 1
                return True
        if self.rate is not None:
            if rng.random() >= self.rate:
                return False
            if self.remaining is not None:
                self.remaining -= 1
        self.fired += 1
        return True

    def fire_item(self, cluster):
        with cluster.stats_lock:
            if self.item_remaining is not None:
                if self.item_remaining <= 0:
                    return False
                if self.spec.get("item_rate") is None:
                    self.item_remaining -= 1
                    self.items_fired += 1
                    return True
            rate = self.spec.get("item_rate", 1.0)
            if cluster.rng.random() >= rate:
                return False
            if self.item_remaining is not None:
                self.item_remaining -= 1
            self.items_fired += 1
            return True

    def item_status(self):
        return self.spec["bulk_item_status"]

    def item_error(self, index):
        st = self.spec["bulk_item_status"]
        if st == 429:
            return rejected_error(self.flavor, index, True)
        e = generic_5xx(st, self.flavor)
        return {k: v for k, v in e["error"].items() if k != "root_cause"} if isinstance(e.get("error"), dict) \
            else {"type": "exception", "reason": str(e)}

    def to_json(self):
        d = dict(self.spec)
        d["fired"] = self.fired
        if self.is_item_rule():
            d["items_fired"] = self.items_fired
        if self.remaining is not None:
            d["remaining"] = self.remaining
        return d


def rejected_error(flavor, index, item):
    os_ = flavor["os"]
    etype = "rejected_execution_exception" if os_ else "es_rejected_execution_exception"
    pool = "OpenSearchThreadPoolExecutor" if os_ else "EsThreadPoolExecutor"
    pkg = "org.opensearch" if os_ else "org.elasticsearch"
    if item:
        reason = ("rejected execution of processing of [%d][indices:data/write/bulk[s][p]]: request: "
                  "BulkShardRequest [[%s][0]] containing [1] requests, target allocation id: standin, "
                  "primary term: 1 on %s[name = standin-node-1/write, queue capacity = 10000, "
                  "%s.common.util.concurrent.%s@1b2c3d4e[Running, pool size = 2, active threads = 2, "
                  "queued tasks = 10000, completed tasks = 123456]]"
                  % (random.randint(1000, 999999), index or "_na_", pool, pkg, pool))
    else:
        reason = ("rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
                  "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, "
                  "max_coordinating_and_primary_bytes=107374182]")
    return {"type": etype, "reason": reason}


def generic_5xx(status, flavor):
    if status == 429:
        e = rejected_error(flavor, None, False)
        return {"error": {"root_cause": [e], **e}, "status": 429}
    if status == 503:
        e = {"type": "cluster_block_exception",
             "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];"}
        return {"error": {"root_cause": [e], **e}, "status": 503}
    if status == 500:
        e = {"type": "exception", "reason": "java.lang.IllegalStateException: injected fault (target stand-in)"}
        return {"error": {"root_cause": [e], **e}, "status": 500}
    return None  # 502/504 come from a proxy: plain text


# --------------------------------------------------------------------------
# HTTP handler and routing
# --------------------------------------------------------------------------

ACCEPTED_CTYPES = ("application/json", "application/x-ndjson")

# URL parameters some endpoint of the imitated APIs accepts. The real servers
# refuse any other with "request [...] contains unrecognized parameter: [x]".
KNOWN_PARAMS = set("""
pretty human error_trace filter_path format v h s bytes help local master_timeout
cluster_manager_timeout timeout wait_for_active_shards refresh routing pipeline require_alias
op_type if_seq_no if_primary_term version version_type _source _source_includes
_source_excludes _source_include _source_exclude stored_fields preference realtime
include_type_name flat_settings include_defaults ignore_unavailable allow_no_indices
expand_wildcards size from sort q df default_operator analyzer analyze_wildcard lenient
track_total_hits rest_total_hits_as_int scroll scroll_id search_type request_cache typed_keys
seq_no_primary_term explain track_scores batched_reduce_size max_concurrent_shard_requests
pre_filter_shard_size allow_partial_search_results ccs_minimize_roundtrips terminate_after
create order cause wait_for_status wait_for_nodes wait_for_no_relocating_shards
wait_for_no_initializing_shards wait_for_events level retry_on_conflict detect_noop lang
conflicts slices scroll_size requests_per_second wait_for_completion max_docs
name index fields health pri time ignore_throttled preserve_existing
master_node_timeout ts include_unloaded_segments completion_fields fielddata_fields groups
""".split())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY, as Netty's http.tcp.no_delay
    server_version = "standin"
    sys_version = ""

    def log_message(self, fmt, *args):  # silence default stderr logging
        pass

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            body = b"".join(chunks)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
        self.raw_body = body                # as sent: what a SigV4 signature covers
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if body and enc in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif body and enc == "deflate":
            body = zlib.decompress(body)
        return body

    def send(self, status, payload, ctype, extra_headers=None, head=False):
        self.send_response_only(status)
        self.send_header("content-type", ctype)
        for k, v in (extra_headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("content-length", str(len(payload)))
        # headers and body in one write
        self._headers_buffer.append(b"\r\n")
        if not head and payload:
            self._headers_buffer.append(payload)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []
        self.wfile.flush()

    def handle_any(self):
        srv = self.server
        cluster = srv.cluster
        t0 = time.monotonic()
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        method = self.command
        status = 0
        note = ""
        try:
            body = self.read_body()
        except (ValueError, OSError, EOFError, zlib.error) as e:
            self.send(400, json.dumps({"error": {"root_cause": [{"type": "parse_exception", "reason": str(e)}],
                                                 "type": "parse_exception", "reason": str(e)},
                                       "status": 400}).encode(), "application/json; charset=UTF-8")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(method, path, params, headers, body)
        # split before unquoting so an id with an encoded "/" stays one segment
        req.segs = [unquote(x) for x in split.path.split("/") if x]
        try:
            if not path.startswith("/_standin"):
                with cluster.stats_lock:
                    key = "%s %s" % (method, path)
                    cluster.stats["requests"][key] = cluster.stats["requests"].get(key, 0) + 1
                    cluster.stats["total_requests"] += 1
                rule, item_rule = self.pick_fault(method, path)
                if rule is not None:
                    note = "fault"
                    lat = rule.spec.get("latency_ms")
                    if lat:
                        time.sleep(lat / 1000.0)
                    if rule.spec.get("drop") or rule.spec.get("reset"):
                        with cluster.stats_lock:
                            cluster.stats["faults_injected"] += 1
                            cluster.stats["dropped_connections"] += 1
                        self.drop(rule.spec.get("reset"))
                        srv.log_line(method, self.path, "drop", len(body), 0, t0)
                        return
                    if "status" in rule.spec:
                        with cluster.stats_lock:
                            cluster.stats["faults_injected"] += 1
                        status = rule.spec["status"]
                        resp = self.fault_response(rule, cluster)
                        self.finish_response(req, resp, method == "HEAD")
                        srv.log_line(method, self.path, status, len(body), -1, t0, "fault")
                        return
                if srv.sigv4 and not self.check_sigv4(req):
                    return
                if srv.auth and not self.check_auth(req):
                    return
                resp = self.route(req, item_rule)
            else:
                resp = self.standin_route(req)
        except ApiError as e:
            resp = Response(e.status, e.body(), e.headers)
        except (MalformedBody, AttributeError, TypeError, ValueError, KeyError) as e:
            # a body of the wrong shape somewhere inside: the servers answer 400 with a parse error
            er = {"type": "x_content_parse_exception", "reason": "[1:1] failed to parse request body: %s" % e}
            resp = Response(400, {"error": {"root_cause": [er], **er}, "status": 400})
            sys.stderr.write("target stand-in: %s %s: malformed request body (%s: %s)\n"
                             % (method, path, type(e).__name__, e))
        except Exception as e:  # a stand-in bug: answer like the server would, and log
            import traceback
            traceback.print_exc(file=sys.stderr)
            er = {"type": "exception", "reason": "%s: %s" % (type(e).__name__, e)}
            resp = Response(500, {"error": {"root_cause": [er], **er}, "status": 500})
        n = self.finish_response(req, resp, method == "HEAD")
        srv.log_line(method, self.path, resp.status, len(body), n, t0, note)

    def pick_fault(self, method, path):
        cluster = self.server.cluster
        rule = None
        item_rule = None
        with cluster.stats_lock:
            for r in cluster.faults:
                if not r.matches(method, path):
                    continue
                if r.is_item_rule():
                    if item_rule is None and path.endswith("/_bulk"):
                        item_rule = r
                    continue
                if rule is None and r.take(cluster.rng):
                    rule = r
        if rule is None and item_rule is not None and item_rule.spec.get("latency_ms"):
            time.sleep(item_rule.spec["latency_ms"] / 1000.0)
        return rule, item_rule

    def fault_response(self, rule, cluster):
        st = rule.spec["status"]
        headers = {}
        if rule.spec.get("retry_after") is not None:
            headers["Retry-After"] = rule.spec["retry_after"]
        if "body" in rule.spec:
            b = rule.spec["body"]
            if isinstance(b, str):
                return Response(st, text=b, headers=headers, ctype="text/plain; charset=UTF-8")
            return Response(st, b, headers)
        if st == 413:   # what OpenSearch/Elasticsearch send over http.max_content_length: no body
            return Response(st, text="", headers=headers, ctype="text/plain; charset=UTF-8")
        body = generic_5xx(st, cluster.flavor)
        if body is None:
            text = {502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                         "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
                    504: "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
                         "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"}[st]
            return Response(st, text=text, headers=headers, ctype="text/html")
        return Response(st, body, headers)

    def drop(self, reset):
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def check_sigv4(self, req):
        """AWS SigV4 as Amazon OpenSearch Service checks it (service es or aoss): the
        signature over the request as sent (path segments encoded once more, sorted query,
        the signed headers, the SHA-256 of the body bytes as sent), the credential scope,
        the session token when one is configured, and a clock skew of 15 minutes at most.
        Refusals are 403 with a {"message": ...} body like the service's."""
        srv = self.server
        akid, secret, region, service, token = srv.sigv4
        h = req.headers.get("authorization", "")

        def deny(msg):
            resp = Response(403, {"message": msg})
            n = self.finish_response(req, resp, req.method == "HEAD")
            srv.log_line(req.method, self.path, 403, len(req.body), n, time.monotonic(), "sigv4")
            return False
        if not h.startswith("AWS4-HMAC-SHA256 "):
            return deny("Missing Authentication Token")
        fields = {}
        for part in h[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        cred = fields.get("Credential", "").split("/")
        if len(cred) != 5 or cred[4] != "aws4_request":
            return deny("Authorization header requires 'Credential' parameter.")
        if cred[0] != akid:
            return deny("The security token included in the request is invalid.")
        if cred[2] != region or cred[3] != service:
            return deny("Credential should be scoped to a valid region or service (%s/%s)." % (region, service))
        amz_date = req.headers.get("x-amz-date", "")
        try:
            t = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return deny("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        if abs(time.time() - t) > 900 or not amz_date.startswith(cred[1]):
            return deny("Signature expired: %s is now earlier or later than the allowed 15 minutes." % amz_date)
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed:
            return deny("'Host' must be a signed header.")
        if token is not None and (req.headers.get("x-amz-security-token") != token
                                  or "x-amz-security-token" not in signed):
            return deny("The security token included in the request is invalid.")
        want = sigv4_signature(req.method, self.path, lambda n: self.headers.get_all(n) or [], signed,
                               getattr(self, "raw_body", b""), amz_date, secret, region, service)
        if not hmac.compare_digest(want, fields.get("Signature", "")):
            return deny("The request signature we calculated does not match the signature you provided. "
                        "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                        "for details.")
        return True

    def check_auth(self, req):
        srv = self.server
        cluster = srv.cluster
        h = req.headers.get("authorization", "")
        user = None
        good = False
        if h.lower().startswith("basic "):
            try:
                dec = base64.b64decode(h[6:].strip()).decode("utf-8")
                user, _, pw = dec.partition(":")
                good = (user, pw) == srv.auth
            except (ValueError, UnicodeDecodeError):
                pass
        if good:
            return True
        if cluster.os:
            resp = Response(401, text="Unauthorized",
                            headers={"WWW-Authenticate": 'Basic realm="OpenSearch Security"'},
                            ctype="text/plain; charset=UTF-8")
        else:
            if user is None:
                reason = "missing authentication credentials for REST request [%s]" % self.path
            else:
                reason = "unable to authenticate user [%s] for REST request [%s]" % (user, self.path)
            www = 'Basic realm="security" charset="UTF-8"'
            e = {"type": "security_exception", "reason": reason, "header": {"WWW-Authenticate": www}}
            resp = Response(401, {"error": {"root_cause": [e], **e}, "status": 401},
                            {"WWW-Authenticate": www})
        n = self.finish_response(req, resp, req.method == "HEAD")
        srv.log_line(req.method, self.path, 401, len(req.body), n, time.monotonic())
        return False

    def finish_response(self, req, resp, head):
        headers = dict(resp.headers)
        if resp.text is not None:
            payload = resp.text.encode("utf-8")
            ctype = resp.ctype or "text/plain; charset=UTF-8"
        elif resp.body is None:
            payload = b""
            ctype = "text/plain; charset=UTF-8"
        else:
            body = resp.body
            fp = req.params.get("filter_path")
            pretty = "pretty" in req.params and req.params.get("pretty") != "false"
            if fp and isinstance(body, dict):
                body = json.loads(encode(body)) if has_raw(body) else body
                body = filter_path(body, fp)
            if pretty:
                if has_raw(body):
                    body = json.loads(encode(body))
                text = json.dumps(body, indent=2, ensure_ascii=False, separators=(",", " : ")) + "\n"
            elif has_raw(body):
                text = encode(body)
            else:
                text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            payload = text.encode("utf-8")
            ctype = resp.ctype or "application/json; charset=UTF-8"
        # Real Elasticsearch sends "X-elastic-product: Elasticsearch" only from 7.14 on;
        # none of the flavors imitated here does, so neither does the stand-in.
        if payload and self.server.compression and "gzip" in req.headers.get("accept-encoding", "").lower():
            payload = gzip.compress(payload, 3)
            headers["content-encoding"] = "gzip"
        self.send(resp.status, payload, ctype, headers, head)
        return len(payload)

    # -- standin control API --
    def standin_route(self, req):
        cluster = self.server.cluster
        p = req.path.rstrip("/")
        m = req.method
        if p == "/_standin/faults":
            if m == "GET":
                with cluster.stats_lock:
                    return ok({"faults": [r.to_json() for r in cluster.faults]})
            if m == "DELETE":
                with cluster.stats_lock:
                    cluster.faults = []
                return ok(ACK)
            if m in ("POST", "PUT"):
                try:
                    spec = json.loads(req.body or b"null")
                except ValueError as e:
                    raise bad_request("fault rules are not JSON: %s" % e)
                specs = spec if isinstance(spec, list) else spec.get("rules", [spec]) \
                    if isinstance(spec, dict) else []
                rules = [FaultRule(s, cluster.flavor) for s in specs]
                with cluster.stats_lock:
                    if m == "PUT" or to_bool(req.params.get("replace")):
                        cluster.faults = rules
                    else:
                        cluster.faults.extend(rules)
                    if "seed" in req.params:
                        cluster.rng.seed(int(req.params["seed"]))
                return ok({"acknowledged": True, "rules": len(cluster.faults)})
        if p == "/_standin/stats":
            if m == "DELETE":
                with cluster.stats_lock:
                    cluster.reset_stats()
                return ok(ACK)
            with cluster.lock:
                docs = {n: i.count() for n, i in sorted(cluster.indices.items())}
            with cluster.stats_lock:
                st = json.loads(json.dumps(cluster.stats))
            st["docs"] = docs
            st["flavor"] = cluster.flavor_name
            return ok(st)
        if p == "/_standin/save" and m == "POST":
            self.server.save()
            return ok(ACK)
        if p == "/_standin/reset" and m == "POST":
            with cluster.lock:
                cluster.indices.clear()
                cluster.templates.clear()
                cluster.index_templates.clear()
                cluster.component_templates.clear()
                cluster.scrolls.clear()
            with cluster.stats_lock:
                cluster.faults = []
                cluster.reset_stats()
            return ok(ACK)
        return Response(400, {"error": "no handler found for uri [%s] and method [%s]" % (req.path, m)})

    # -- the cluster API --
    def route(self, req, item_rule):
        api = self.server.api
        c = api.c
        m = req.method
        path = req.path
        if req.body:
            ct = req.headers.get("content-type")
            if ct is None:
                return Response(406, {"error": "Content-Type header is missing", "status": 406})
            base = ct.split(";")[0].strip().lower()
            if base not in ACCEPTED_CTYPES:
                return Response(406, {"error": "Content-Type header [%s] is not supported" % ct,
                                      "status": 406})
        unknown = [k for k in req.params if k not in KNOWN_PARAMS]
        if unknown:
            raise bad_request("request [%s] contains unrecognized parameter%s: [%s]"
                              % (path, "s" if len(unknown) > 1 else "", "], [".join(unknown)))
        segs = req.segs
        n = len(segs)
        es6 = c.major == 6 and not c.os
        typed_ok = not c.typeless()

        def no_handler():
            return Response(400, {"error": "no handler found for uri [%s] and method [%s]"
                                  % (self.path, m)})

        def bad_method(allowed):
            return Response(405, {"error": "Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]"
                                  % (self.path, m, ", ".join(allowed)), "status": 405},
                            {"Allow": ",".join(allowed)})

        if n == 0:
            if m == "GET":
                return api.h_root(req)
            if m == "HEAD":
                return Response(200, None)
            return bad_method(["HEAD", "GET"])
        s0 = segs[0]
        # ---- cluster level
        if s0 == "_cluster":
            if n >= 2 and segs[1] == "health" and m == "GET":
                return api.h_health(req, segs[2] if n > 2 else None)
            if n == 2 and segs[1] == "settings":
                if m in ("GET", "PUT"):
                    return api.h_cluster_settings(req, m == "PUT")
                return bad_method(["GET", "PUT"])
            return no_handler()
        if s0 == "_cat":
            if n >= 2 and segs[1] == "indices" and m == "GET":
                return api.h_cat_indices(req, segs[2] if n > 2 else None)
            if n >= 2 and segs[1] == "count" and m == "GET":
                return api.h_cat_count(req, segs[2] if n > 2 else None)
            if n >= 2 and segs[1] == "health" and m == "GET":
                status, prim, un, pct = api.health()
                ts = int(time.time())
                row = "%d %s %s %s 1 1 %d %d 0 0 %d 0 - %.1f%%\n" % (
                    ts, time.strftime("%H:%M:%S", time.gmtime(ts)), c.cluster_name, status,
                    prim, prim, un, pct)
                return Response(200, text=row, ctype="text/plain; charset=UTF-8")
            return no_handler()
        if s0 == "_bulk":
            if m in ("POST", "PUT"):
                return api.h_bulk(req, faults=item_rule)
            return bad_method(["POST", "PUT"])
        if s0 in ("_mget", "_refresh") and n == 1 and m not in ("GET", "POST"):
            return bad_method(["GET", "POST"])
        if s0 == "_mget" and n == 1:
            return api.h_mget(req)
        if s0 in ("_search", "_count") and n == 1:
            if m not in ("GET", "POST"):
                return bad_method(["GET", "POST"])
            return api.h_search(req, None) if s0 == "_search" else api.h_count(req, None)
        if s0 == "_search" and n >= 2 and segs[1] == "scroll":
            if m == "DELETE":
                return api.h_clear_scroll(req)
            if n == 3:
                req.params.setdefault("scroll_id", segs[2])
            return api.h_scroll(req)
        if s0 == "_refresh" and n == 1:
            return api.h_refresh(req, None)
        if s0 == "_aliases" and n == 1:
            if m == "POST":
                return api.h_aliases(req)
            if m == "GET":
                return api.h_get_alias(req, None, None)
            return bad_method(["GET", "POST"])
        if s0 == "_alias" and n <= 2:
            if m in ("GET", "HEAD"):
                return api.h_get_alias(req, None, segs[1] if n == 2 else None, head=m == "HEAD")
            return bad_method(["GET", "HEAD"])
        if s0 == "_template":
            name = segs[1] if n > 1 else None
            if n > 2:
                return no_handler()
            if m == "GET":
                return api.h_get_template(req, name)
            if m == "HEAD":
                return api.h_get_template(req, name, head=True)
            if name is None:
                return bad_method(["GET"])
            if m in ("PUT", "POST"):
                return api.h_put_template(req, name)
            if m == "DELETE":
                return api.h_delete_template(req, name)
            return bad_method(["GET", "PUT", "POST", "DELETE", "HEAD"])
        if s0 in ("_index_template", "_component_template") and not es6:
            name = segs[1] if n > 1 else None
            if n > 2:
                return no_handler()
            comp = s0 == "_component_template"
            if m == "GET":
                return api.h_get_component_template(req, name) if comp else api.h_get_index_template(req, name)
            if m == "HEAD":
                r = api.h_get_component_template(req, name) if comp else api.h_get_index_template(req, name)
                return Response(r.status, None)
            if name is None:
                if m == "PUT":
                    return api.h_create_index(req, s0)  # PUT /{index} route, invalid name
                return bad_method(["GET"])
            if m in ("PUT", "POST"):
                return api.h_put_component_template(req, name) if comp else api.h_put_index_template(req, name)
            if m == "DELETE":
                return api.h_delete_component_template(req, name) if comp else \
                    api.h_delete_index_template(req, name)
            return bad_method(["GET", "PUT", "POST", "DELETE", "HEAD"])
        if s0 == "_settings" and n == 1:
            return api.h_get_settings(req, None) if m == "GET" else api.h_put_settings(req, None)
        if s0 == "_mapping" and n == 1 and m == "GET":
            return api.h_get_mapping(req, None)
        if s0.startswith("_") and s0 not in ("_all",):
            if n == 1 and m == "PUT":
                # treated as an index name, like the real servers do
                return api.h_create_index(req, s0)
            if n == 1 and m in ("GET", "HEAD", "DELETE"):
                raise index_not_found(s0)
            if n == 2 and typed_ok:
                # ES 6.8/7.10, OpenSearch 1.x: /{index}/{type} only accepts POST (auto-id index)
                if m != "POST":
                    return bad_method(["POST"])
            if n == 2 and m == "POST" and typed_ok:
                api.validate_index_name(s0)
            return no_handler()
        # ---- index level: s0 is an index expression
        index = s0
        if n == 1:
            if m == "PUT":
                return api.h_create_index(req, index)
            if m == "GET":
                return api.h_get_index(req, index)
            if m == "HEAD":
                try:
                    with c.lock:
                        api.resolve(index, req, allow_missing=False)
                    return Response(200, None)
                except ApiError:
                    return Response(404, None)
            if m == "DELETE":
                return api.h_delete_index(req, index)
            return bad_method(["GET", "PUT", "DELETE", "HEAD"])
        s1 = segs[1]
        if s1 == "_doc" or (es6 and not s1.startswith("_") and n >= 2) or \
                (typed_ok and not es6 and not s1.startswith("_") and n >= 3):
            req_type = s1 if (es6 or s1 != "_doc") else (s1 if es6 else None)
            if es6:
                req_type = s1
            elif s1 != "_doc":
                req_type = s1
            else:
                req_type = None
            return self.route_doc(req, api, index, req_type, segs[2:], item_rule)
        if n == 2 and s1 not in ("_doc",) and not s1.startswith("_"):
            if typed_ok and m == "POST":
                return self.route_doc(req, api, index, s1, [], item_rule)
            if typed_ok:
                return bad_method(["POST"])  # only POST /{index}/{type} exists
            return no_handler()
        if s1 in ("_create", "_update", "_source") and n == 3 and not es6:
            doc_id = segs[2]
            if s1 == "_create":
                if m not in ("PUT", "POST"):
                    return bad_method(["PUT", "POST"])
                return api.h_index_doc(req, index, doc_id, "create")
            if s1 == "_update":
                if m != "POST":
                    return bad_method(["POST"])
                return api.h_update_doc(req, index, doc_id)
            if m in ("GET", "HEAD"):
                if m == "HEAD":
                    return api.h_get_doc(req, index, doc_id, head=True)
                return api.h_get_doc(req, index, doc_id, source_only=True)
        if s1 in ("_create", "_update") and es6:
            api.check_type_name(s1)
        if s1 == "_bulk" and n == 2:
            if m not in ("POST", "PUT"):
                return bad_method(["POST", "PUT"])
            return api.h_bulk(req, index, faults=item_rule)
        if s1 == "_search" and n == 2:
            if m not in ("GET", "POST"):
                return bad_method(["GET", "POST"])
            return api.h_search(req, index)
        if s1 in ("_count", "_mget", "_refresh", "_flush", "_forcemerge") and n == 2 and m not in ("GET", "POST"):
            return bad_method(["GET", "POST"])
        if s1 == "_count" and n == 2:
            return api.h_count(req, index)
        if s1 == "_delete_by_query" and n == 2:
            if m != "POST":
                return bad_method(["POST"])
            return api.h_delete_by_query(req, index)
        if s1 == "_mget" and n == 2:
            return api.h_mget(req, index)
        if s1 == "_refresh" and n == 2:
            return api.h_refresh(req, index)
        if s1 in ("_flush", "_forcemerge") and n == 2:
            return api.h_refresh(req, index)
        if s1 == "_settings":
            if m == "GET":
                return api.h_get_settings(req, index, segs[2] if n > 2 else None)
            if m == "PUT" and n == 2:
                return api.h_put_settings(req, index)
            return bad_method(["GET", "PUT"])
        if s1 == "_mapping" or s1 == "_mappings":
            if m == "GET":
                return api.h_get_mapping(req, index)
            if m in ("PUT", "POST"):
                tname = segs[2] if n > 2 else None
                if tname is not None and not typed_ok:
                    return no_handler()
                return api.h_put_mapping(req, index, tname)
            return bad_method(["GET", "PUT", "POST"])
        if s1 in ("_alias", "_aliases"):
            alias = segs[2] if n > 2 else None
            if m in ("GET", "HEAD"):
                return api.h_get_alias(req, index, alias, head=m == "HEAD")
            if alias is None:
                return bad_method(["GET", "HEAD"])
            if m in ("PUT", "POST"):
                return api.h_put_alias(req, index, alias)
            if m == "DELETE":
                return api.h_delete_alias(req, index, alias)
        if s1 == "_stats" and m == "GET":
            with c.lock:
                idxs = api.resolve(index, req)
                return ok({"_shards": {"total": sum(i.nshards for i in idxs),
                                       "successful": sum(i.nshards for i in idxs), "failed": 0},
                           "indices": {i.name: {"uuid": i.uuid, "primaries": {"docs": {
                               "count": i.count(), "deleted": i.deleted}}} for i in idxs}})
        return no_handler()

    def route_doc(self, req, api, index, req_type, rest, item_rule):
        m = req.method
        es6 = api.c.major == 6 and not api.c.os
        if not rest:
            if m == "POST":
                return api.h_index_doc(req, index, None, None, req_type)
            return Response(405, {"error": "Incorrect HTTP method for uri [%s] and method [%s], allowed: [POST]"
                                  % (self.path, m), "status": 405})
        if rest == ["_bulk"] and req_type is not None:
            return api.h_bulk(req, index, req_type if es6 else None, faults=item_rule)
        if rest == ["_search"] and req_type is not None:
            return api.h_search(req, index)
        if rest == ["_mapping"] and req_type is not None:
            if m in ("PUT", "POST"):
                return api.h_put_mapping(req, index, req_type)
            return api.h_get_mapping(req, index)
        if rest == ["_count"]:
            return api.h_count(req, index)
        doc_id = rest[0]
        if len(rest) == 1:
            if m in ("PUT", "POST"):
                return api.h_index_doc(req, index, doc_id, None, req_type)
            if m == "GET":
                return api.h_get_doc(req, index, doc_id, req_type)
            if m == "HEAD":
                return api.h_get_doc(req, index, doc_id, req_type, head=True)
            if m == "DELETE":
                return api.h_delete_doc(req, index, doc_id, req_type)
            return Response(405, {"error": "Incorrect HTTP method for uri [%s] and method [%s], allowed: "
                                  "[DELETE, POST, GET, PUT, HEAD]" % (self.path, m), "status": 405})
        if len(rest) == 2 and api.c.has_type_param_support():
            if rest[1] == "_create" and m in ("PUT", "POST"):
                return api.h_index_doc(req, index, doc_id, "create", req_type)
            if rest[1] == "_update" and m == "POST":
                return api.h_update_doc(req, index, doc_id, req_type)
            if rest[1] == "_source" and m in ("GET", "HEAD"):
                return api.h_get_doc(req, index, doc_id, req_type, head=m == "HEAD", source_only=m == "GET")
        return Response(400, {"error": "no handler found for uri [%s] and method [%s]" % (self.path, m)})


def sigv4_signature(method, target, header_values, signed, body, amz_date, secret, region, service):
    """AWS SigV4 signature (hex) of a request to a service other than S3: target is the path
    and query as sent, its path segments encoded once more; header_values(name) gives the
    values of a header; body is the bytes as sent (gzip ones included)."""
    raw_path, _, raw_query = target.partition("?")
    cpath = quote(raw_path or "/", safe="/-_.~")
    pairs = []
    for q in raw_query.split("&") if raw_query else []:
        k, _, v = q.partition("=")
        pairs.append((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")))
    cquery = "&".join("%s=%s" % kv for kv in sorted(pairs))
    chdrs = "".join("%s:%s\n" % (n, ",".join(" ".join(v.split()) for v in header_values(n))) for n in signed)
    creq = "\n".join([method, cpath, cquery, chdrs, ";".join(signed), hashlib.sha256(body).hexdigest()])
    day = amz_date[:8]
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, cluster, auth, log_path, data_dir, tls=None):
        super().__init__(addr, Handler)
        self.tls = tls                     # ssl.SSLContext: HTTPS, handshake in the handler thread
        self.cluster = cluster
        self.api = Api(cluster)
        self.auth = auth
        self.compression = True
        self.data_dir = data_dir
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", buffering=1) if log_path else None

    def finish_request(self, request, client_address):
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return                         # the client refused us (e.g. it does not trust the certificate)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def log_line(self, method, path, status, nin, nout, t0, note=""):
        if self.log_file is None:
            return
        ms = (time.monotonic() - t0) * 1000.0
        line = "%s %s %s %s in=%d out=%d %.1fms%s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), method, path, status, nin, nout, ms,
            (" " + note) if note else "")
        with self.log_lock:
            self.log_file.write(line)

    def state_path(self):
        return os.path.join(self.data_dir, "state.json") if self.data_dir else None

    def save(self):
        p = self.state_path()
        if not p:
            return
        with self.cluster.lock:
            data = json.dumps(self.cluster.to_json(), separators=(",", ":"))
        tmp = p + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

    def load(self):
        p = self.state_path()
        if p and os.path.exists(p):
            with open(p) as f:
                j = json.load(f)
            if j.get("flavor") != self.cluster.flavor_name:
                sys.stderr.write("target stand-in: %s holds a %s cluster, not %s\n"
                                 % (p, j.get("flavor"), self.cluster.flavor_name))
                sys.exit(2)
            self.cluster.load_json(j)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Elasticsearch/OpenSearch target-cluster stand-in for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9200, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--flavor", default="opensearch-2.11", choices=sorted(FLAVORS))
    ap.add_argument("--cluster-name", default=None)
    ap.add_argument("--data-dir", help="persist state as JSON here (loaded at start, saved at exit)")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--seed", type=int, default=1, help="seed for rate-based fault injection")
    ap.add_argument("--discard-bulk", action="store_true",
                    help="benchmark sink: _bulk answers success for every item and stores nothing")
    ap.add_argument("--no-compression", action="store_true",
                    help="never gzip responses (by default they are gzipped when the client sends "
                         "Accept-Encoding: gzip, like http.compression=true)")
    ap.add_argument("--sigv4", metavar="AKID:SECRET:REGION:SERVICE[:TOKEN]",
                    help="require AWS SigV4 signatures like Amazon OpenSearch Service (service es or aoss)")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args(argv)
    if (args.username is None) != (args.password is None):
        ap.error("--username and --password go together")
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    name = args.cluster_name or ("opensearch-cluster" if FLAVORS[args.flavor]["os"] else "elasticsearch")
    cluster = Cluster(args.flavor, name, args.seed)
    cluster.discard = args.discard_bulk
    auth = (args.username, args.password) if args.username is not None else None
    if args.data_dir:
        os.makedirs(args.data_dir, exist_ok=True)
    srv = Server((args.host, args.port), cluster, auth, args.log, args.data_dir, tls)
    srv.sigv4 = None
    if args.sigv4:
        parts = args.sigv4.split(":", 4)
        if len(parts) < 4:
            ap.error("--sigv4 AKID:SECRET:REGION:SERVICE[:TOKEN]")
        srv.sigv4 = (parts[0], parts[1], parts[2], parts[3], parts[4] if len(parts) > 4 else None)
    srv.compression = not args.no_compression
    srv.load()
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("target stand-in (%s) listening on %s://%s:%d" % (args.flavor, "https" if tls else "http", args.host, port),
          flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.save()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
