#!/usr/bin/python3
"""Reads `searchmig-rfs docs` output (NDJSON) and prints the sorted TSV form of
tests/fixtures/expected/*.tsv: index, _id, _routing, _type, sha256 and length
of the _source bytes exactly as written on the line. Checks that every line is
valid JSON, that keys come in the documented order, and that _source is an
object."""
import hashlib
import json
import sys

KEY = b'"_source":'


def main():
    data = open(sys.argv[1], 'rb').read() if len(sys.argv) > 1 else sys.stdin.buffer.read()
    rows = []
    for n, line in enumerate(data.split(b'\n')[:-1], 1):
        doc = json.loads(line)
        keys = list(doc.keys())
        allowed = ['_index', '_id', '_routing', '_type', '_source']
        if [k for k in allowed if k in keys] != keys or keys[:2] != ['_index', '_id'] or keys[-1] != '_source':
            sys.exit('line %d: unexpected keys %s' % (n, keys))
        if not isinstance(doc['_source'], dict):
            sys.exit('line %d: _source is not an object' % n)
        src = line[line.index(KEY) + len(KEY):-1]
        rows.append('\t'.join([doc['_index'], doc['_id'], doc.get('_routing', '-'), doc.get('_type', '-'),
                               hashlib.sha256(src).hexdigest(), str(len(src))]))
    if data and not data.endswith(b'\n'):
        sys.exit('output does not end with a newline')
    for r in sorted(rows):
        print(r)


main()
