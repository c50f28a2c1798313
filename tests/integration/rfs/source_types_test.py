#!/usr/bin/python3
"""End to end _source conversion: a Lucene 8 index written at test time by
real Lucene (SourceTypes.java) holds SMILE, CBOR, JSON, LZF and YAML sources;
`searchmig-rfs docs --lucene-dir` must convert SMILE/CBOR, decompress LZF, keep JSON (CR/LF ->
space) and refuse YAML with exit code 1. Skips (77) without javac/Lucene 8.

usage: source_types_test.py SEARCHMIG_RFS SOURCE_DIR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

RFS, SRC = sys.argv[1], sys.argv[2]
JARS = '/usr/share/java/lucene-core-8.7.0.jar'
if not shutil.which('javac') or not os.path.exists(JARS):
    print('SKIP: javac or %s missing' % JARS)
    sys.exit(77)

# The SMILE document of tests/unit/test_smile.c (every value token).
src = open(os.path.join(SRC, 'tests/unit/test_smile.c')).read()
start = src.index('ALL_TOKENS_HEX[] =')
smile_hex = ''.join(part.split('"')[1] for part in src[start:src.index(';', start)].split('\n')[1:])
cbor_hex = 'd9d9f7bf61610161629f0203ff6163c249010000000000000000ff'
# LZF: a stored chunk and a compressed chunk (literal run of 4: control byte 3) of JSON
lzf_hex = (b'ZV\x00\x00\x05{"lzf' + b'ZV\x01\x00\x05\x00\x04\x03":1}').hex()

want_smile = ('{"e":"","n":null,"f":false,"t":true,"i32":-1000,"i32max":2147483647,'
              '"i64":-1711120727418,"i64min":-9223372036854775808,'
              '"big":1180591620717411303424,"nbig":-1180591620717411303424,'
              '"flt":1.5,"dbl":0.1,"dbl2":1.0E21,"bd":-123.45,"bd2":5E-10,"sa":"' + 'a' * 33 +
              '","tu":"\u00e9","su":"' + '\u00e9' * 17 + '","la":"' + 'b' * 70 + '","lu":"' +
              '\u00e9\\n\\"' * 30 + '","b7":"AAECAwQFBgcICQ==","raw":"AP8Q","si":-16,"sp":15,"":0,'
              '"\u00e9t\u00e9":null,"' + 'k' * 70 + '":[[],{}]}')

tmp = tempfile.mkdtemp(prefix='rfs-src-')
try:
    subprocess.run(['javac', '-d', tmp, '-cp', JARS, os.path.join(SRC, 'tests/integration/rfs/SourceTypes.java')],
                   check=True)
    idx = os.path.join(tmp, 'index')
    os.mkdir(idx)
    subprocess.run(['java', '-cp', tmp + ':' + JARS, 'SourceTypes', idx, smile_hex, cbor_hex, lzf_hex], check=True)
    p = subprocess.run([RFS, 'docs', '--lucene-dir', idx, '--index', 'src'], capture_output=True)
    lines = p.stdout.decode('utf-8').splitlines()
    got = {json.loads(l)['_id']: l[l.index('"_source":') + 10:-1] for l in lines}
    errors = []
    if p.returncode != 1:
        errors.append('exit code %d, want 1 (YAML refused)' % p.returncode)
    if b'yaml-doc' not in p.stderr or b'NOT written' not in p.stderr:
        errors.append('YAML document not reported: %r' % p.stderr)
    if b'1 live documents have no _source' not in p.stderr:
        errors.append('the document without _source not reported: %r' % p.stderr)
    if got.get('lzf-doc') != '{"lzf":1}':
        errors.append('LZF source: %r' % got.get('lzf-doc'))
    if sorted(got) != ['cbor-doc', 'json-doc', 'lzf-doc', 'smile-doc']:
        errors.append('documents written: %s' % sorted(got))
    if got.get('smile-doc') != want_smile:
        errors.append('SMILE source:\n got  %s\n want %s' % (got.get('smile-doc'), want_smile))
    if got.get('cbor-doc') != '{"a":1,"b":[2,3],"c":18446744073709551616}':
        errors.append('CBOR source: %s' % got.get('cbor-doc'))
    if got.get('json-doc') != '{"x":   1}':
        errors.append('JSON source: %r' % got.get('json-doc'))
    for e in errors:
        print('FAIL:', e)
    if errors:
        sys.exit(1)
    print('ok')
finally:
    shutil.rmtree(tmp, ignore_errors=True)
