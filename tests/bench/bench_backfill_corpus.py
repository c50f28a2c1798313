#!/usr/bin/python3
"""Benchmark corpus for the backfill: an Elasticsearch 7.10-layout snapshot
repository whose shards are real Lucene 8.7 indices written by
tests/lucene-gen (GenIndex bench), cached in the build directory.

    bench_backfill_corpus.py OUT_DIR SHARDS MB_PER_SHARD

GenIndex writes the Lucene index once (MB_PER_SHARD megabytes of _source);
every shard of index `bench` is that index (hard links, so the shards are
the same bytes: decoding work is identical per shard, and ids repeat across
shards, which the benchmark's sink does not care about). The repository
metadata (index.latest, index-0, snap-/meta-*.dat with CodecUtil header and
footer, JSON payloads as the reader accepts them) is written here, so the
benchmark reads through rfs/repo + rfs/snapshot like a real backfill.
Nothing is rebuilt when OUT_DIR/done names the same parameters.
Exit 77 when Java or the Lucene jars are missing."""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

JARS = '/usr/share/java/lucene-core-8.7.0.jar:/usr/share/java/lucene-backward-codecs-8.7.0.jar'
SNAP_UUID = 'benchsnapshotuuid00000'
INDEX_ID = 'benchindexid0000000000'
META_BLOB = 'benchmetablob0000000'
VERSION_ID = 7100299        # Elasticsearch 7.10.2 (Lucene 8.7.0)


def codec_blob(codec, payload):
    """CodecUtil header (magic, codec name, version 1), payload, footer with the CRC32."""
    name = codec.encode()
    b = struct.pack('>I', 0x3fd76c17) + bytes([len(name)]) + name + struct.pack('>I', 1) + payload
    b += struct.pack('>II', 0xc02893e8, 0)
    return b + struct.pack('>Q', zlib.crc32(b))


def base36(n):
    s = ''
    while True:
        n, r = divmod(n, 36)
        s = '0123456789abcdefghijklmnopqrstuvwxyz'[r] + s
        if not n:
            return s


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def main():
    out, shards, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    stamp = 'shards=%d mb=%d v1\n' % (shards, mb)
    done = os.path.join(out, 'done')
    if os.path.exists(done) and open(done).read() == stamp:
        return 0
    if not (shutil.which('java') and shutil.which('javac') and os.path.exists(JARS.split(':')[0])):
        print('SKIP: java/javac/liblucene8-java missing')
        return 77
    src = os.environ.get('SM_SOURCE_DIR', '.')
    binary = os.environ.get('SM_BINARY_DIR', 'build')
    classes = os.path.join(binary, 'lucene-gen', 'classes')
    if not os.path.exists(os.path.join(classes, 'GenIndex.class')):
        env = dict(os.environ, SM_SOURCE_DIR=src, SM_BINARY_DIR=binary)
        subprocess.run(['sh', os.path.join(src, 'tests', 'lucene-gen', 'run.sh'), 'compile'], check=True, env=env)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    lucene = os.path.join(out, 'lucene')
    subprocess.run(['java', '-cp', JARS + ':' + classes, 'GenIndex', 'write', lucene, 'speed', 'nocfs', 'bench',
                    str(mb)], check=True, stdout=subprocess.DEVNULL)
    repo = os.path.join(out, 'repo')
    idir = os.path.join(repo, 'indices', INDEX_ID)
    files = []
    for k, name in enumerate(sorted(os.listdir(lucene))):
        p = os.path.join(lucene, name)
        if name == 'write.lock' or not os.path.isfile(p):
            continue
        size = os.path.getsize(p)
        with open(p, 'rb') as f:
            f.seek(size - 8)
            crc = struct.unpack('>Q', f.read(8))[0]     # Lucene footer checksum
        files.append((name, '__bench%04d' % k, size, crc))
    gens = []
    for s in range(shards):
        sdir = os.path.join(idir, str(s))
        os.makedirs(sdir)
        for phys, blob, size, crc in files:
            os.link(os.path.join(lucene, phys), os.path.join(sdir, blob))
        meta = {'name': SNAP_UUID, 'index_version': 0, 'start_time': 0, 'time': 0,
                'number_of_files': len(files), 'total_size': sum(f[2] for f in files),
                'files': [{'name': blob, 'physical_name': phys, 'length': size, 'checksum': base36(crc),
                           'written_by': '8.7.0'} for phys, blob, size, crc in files]}
        write(os.path.join(sdir, 'snap-%s.dat' % SNAP_UUID), codec_blob('snapshot', json.dumps(meta).encode()))
        gens.append('benchgen%d' % s)
    imeta = {'bench': {'settings': {'index': {'number_of_shards': str(shards), 'number_of_replicas': '0',
                                              'uuid': 'benchuuid', 'version': {'created': str(VERSION_ID)}}},
                       'mappings': {'_doc': {'properties': {}}}, 'aliases': {}}}
    write(os.path.join(idir, 'meta-%s.dat' % META_BLOB), codec_blob('index-metadata', json.dumps(imeta).encode()))
    snap = {'snapshot': {'name': 'bench', 'uuid': SNAP_UUID, 'version_id': VERSION_ID, 'indices': ['bench'],
                         'state': 'SUCCESS', 'start_time': 0, 'end_time': 0}}
    write(os.path.join(repo, 'snap-%s.dat' % SNAP_UUID), codec_blob('snapshot', json.dumps(snap).encode()))
    write(os.path.join(repo, 'meta-%s.dat' % SNAP_UUID), codec_blob('metadata', b'{"meta-data":{}}'))
    ident = 'benchident-_na_-1-1-1'
    data = {'snapshots': [{'name': 'bench', 'uuid': SNAP_UUID, 'state': 1, 'version': '7.10.2',
                           'index_metadata_lookup': {INDEX_ID: ident}}],
            'indices': {'bench': {'id': INDEX_ID, 'snapshots': [SNAP_UUID], 'shard_generations': gens}},
            'min_version': '7.9.0', 'index_metadata_identifiers': {ident: META_BLOB}}
    write(os.path.join(repo, 'index-0'), json.dumps(data).encode())
    write(os.path.join(repo, 'index.latest'), struct.pack('>Q', 0))
    write(done, stamp.encode())
    return 0


if __name__ == '__main__':
    sys.exit(main())
