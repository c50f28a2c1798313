#!/usr/bin/python3
"""Integration test of searchmig-rfs on the fixture repositories:
snapshots / indices (table and JSON), docs against the exact expected document
sets in tests/fixtures/expected/, docs --lucene-dir on a restored shard, and
clear failures on corrupt repositories.

usage: cli_test.py SEARCHMIG_RFS SOURCE_DIR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

RFS, SRC = sys.argv[1], sys.argv[2]
FIX = os.path.join(SRC, 'tests/fixtures/snapshots')
EXP = os.path.join(SRC, 'tests/fixtures/expected')
TSV = os.path.join(SRC, 'tests/integration/rfs/docs_to_tsv.py')
failures = []

# fixture -> [(snapshot, uuid, version, [(index, shards, [docs per shard])])]
REPOS = {
    'ES_1_7_4_compressed': [
        ('snap1x_uncompressed', None, '1.7.4', [('idx', 5, [18, 6, 7, 12, 7])]),
        ('snap1x', None, '1.7.4', [('idx', 5, [18, 6, 7, 12, 7])]),
    ],
    'ES_1_7_5': [('test_1', None, '1.7.5', [('index-1.7.5', 1, [2702])])],
    'ES_2_4_5': [('test_1', None, '2.4.5', [('index-2.4.5', 1, [2003])])],
    'ES_5_6_Updates_Deletes': [('rfs_snapshot', 'FGgvQ_1CTymrGgoBFrwNTg', '5.6.16',
                                [('test_updates_deletes', 1, [3])])],
    'ES_6_8_Single': [('global_state_snapshot', '5imyqv54TKyHTPTCOAOt2g', '6.8.24',
                       [('posts_2023_02_25', 1, [1]), ('posts_2024_01_01', 1, [3])])],
    'ES_7_10_Single': [('global_state_snapshot', '7_1RHMshSc6c0cuzX1NCDg', '7.10.2',
                        [('posts_2023_02_25', 1, [1]), ('posts_2024_01_01', 1, [3])])],
    'ES_7_10_Updates_Deletes_w_Soft': [('rfs_snapshot', '4qK_DdtfTcao0zoxNElf9Q', '7.10.2',
                                        [('test_updates_deletes', 1, [3])])],
    'OS_2_11_Deletes_w_Soft_Multi_Seg': [('rfs_snapshot', 'uSnbT3z3Q_q4GImbzkrjkQ', '2.11.1',
                                          [('test-index', 1, [4])])],
}
# Lucene formats the lucene layer still marks untested (docs/lucene.md).
UNTESTED = {'OS_2_11_Deletes_w_Soft_Multi_Seg'}


def run(*args, ok=True):
    p = subprocess.run([RFS] + list(args), capture_output=True)
    if ok and p.returncode != 0:
        fail('%s: exit %d: %s' % (' '.join(args), p.returncode, p.stderr.decode(errors='replace')))
    return p


def fail(msg):
    failures.append(msg)
    print('FAIL:', msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def test_help_version():
    p = run('--help')
    for cmd in ('snapshots', 'indices', 'docs', 'restore-shard'):
        check(cmd.encode() in p.stdout, '--help lists %s' % cmd)
    check(run('--version').stdout.startswith(b'searchmig-rfs '), '--version')
    check(run('nosuchcmd', ok=False).returncode == 2, 'unknown command exits 2')
    check(run('docs', '--repo', FIX, ok=False).returncode == 2, 'docs without --snapshot exits 2')
    check(b'--snapshot' in run('docs', '--help').stdout, 'docs --help')


def test_snapshots_and_indices():
    for repo, snaps in REPOS.items():
        path = os.path.join(FIX, repo)
        js = json.loads(run('snapshots', '--repo', path, '--json').stdout)
        check([s['name'] for s in js] == [s[0] for s in snaps], '%s: snapshot names %s' % (repo, js))
        table = run('snapshots', '--repo', path).stdout.decode()
        for (name, uuid, version, indices), s in zip(snaps, js):
            check(s['uuid'] == uuid and s['version'] == version and s['state'] == 'SUCCESS',
                  '%s/%s: %s' % (repo, name, s))
            check(s['indices'] == [i[0] for i in indices], '%s/%s indices %s' % (repo, name, s['indices']))
            check(isinstance(s['start_time_millis'], int) and s['end_time_millis'] >= s['start_time_millis'],
                  '%s/%s times' % (repo, name))
            check(any(line.startswith(name + ' ') and version in line for line in table.splitlines()),
                  '%s: table row for %s' % (repo, name))
            extra = ['--allow-untested'] if repo in UNTESTED else []
            ix = json.loads(run('indices', '--repo', path, '--snapshot', name, '--json', *extra).stdout)
            check([i['name'] for i in ix] == [i[0] for i in indices], '%s/%s: index list' % (repo, name))
            for (iname, shards, docs), i in zip(indices, ix):
                check(i['number_of_shards'] == shards, '%s/%s/%s shards' % (repo, name, iname))
                check([s['docs'] for s in i['shards']] == docs,
                      '%s/%s/%s docs per shard %s != %s' % (repo, name, iname, [s['docs'] for s in i['shards']], docs))
                check(i['settings'].get('index.number_of_shards') == str(shards), '%s/%s settings' % (repo, name))
                check(isinstance(i['mappings'], dict) and i['mappings'], '%s/%s mappings' % (repo, name))
                check(i['size_bytes'] > 0, '%s/%s size' % (repo, name))
            text = run('indices', '--repo', path, '--snapshot', name, *extra).stdout.decode()
            check('shards=%d' % indices[0][1] in text and 'mappings:' in text, '%s/%s indices table' % (repo, name))
    ix = json.loads(run('indices', '--repo', os.path.join(FIX, 'OS_2_11_Deletes_w_Soft_Multi_Seg'), '--snapshot',
                        'rfs_snapshot', '--json', '--allow-untested').stdout)
    check(ix[0]['created_product'] == 'OpenSearch', 'OpenSearch index is recognised')


def docs_tsv(args):
    p = run('docs', *args)
    t = subprocess.run([TSV], input=p.stdout, capture_output=True)
    if t.returncode != 0:
        fail('docs %s: output check: %s' % (' '.join(args), t.stderr.decode()))
    return t.stdout.decode()


def test_docs_expected_sets():
    for repo, snaps in REPOS.items():
        for name, _, _, _ in snaps:
            extra = ['--allow-untested'] if repo in UNTESTED else []
            want = open(os.path.join(EXP, '%s.%s.tsv' % (repo, name))).read()
            for mode in ('first', 'streamed'):
                got = docs_tsv(['--repo', os.path.join(FIX, repo), '--snapshot', name,
                                '--segment-checksums', mode] + extra)
                if got != want:
                    fail('%s/%s (--segment-checksums %s): document set differs from expected (%d vs %d lines)'
                         % (repo, name, mode, got.count('\n'), want.count('\n')))
    # filters: --index pattern and --shard
    got = docs_tsv(['--repo', os.path.join(FIX, 'ES_7_10_Single'), '--snapshot', 'global_state_snapshot',
                    '--index', 'posts_2024*'])
    check(got.count('\n') == 3 and 'posts_2023' not in got, '--index filter')
    got = docs_tsv(['--repo', os.path.join(FIX, 'ES_1_7_4_compressed'), '--snapshot', 'snap1x', '--shard', '3'])
    check(got.count('\n') == 12, '--shard filter')
    p = run('docs', '--repo', os.path.join(FIX, 'ES_7_10_Single'), '--snapshot', 'global_state_snapshot',
            '--index', 'nomatch*', ok=False)
    check(p.returncode == 1 and b'matches' in p.stderr, 'no matching index is an error')


def test_lucene_dir(tmp):
    dest = os.path.join(tmp, 'shard')
    os.mkdir(dest)
    run('restore-shard', '--repo', os.path.join(FIX, 'ES_7_10_Updates_Deletes_w_Soft'), '--snapshot',
        'rfs_snapshot', '--index', 'test_updates_deletes', '--shard', '0', '--dest', dest)
    check(sorted(os.listdir(dest))[-1] == 'segments_3', 'restore-shard writes Lucene names')
    got = docs_tsv(['--lucene-dir', dest, '--index', 'test_updates_deletes'])
    want = open(os.path.join(EXP, 'ES_7_10_Updates_Deletes_w_Soft.rfs_snapshot.tsv')).read()
    check(got == want, 'docs --lucene-dir equals docs --repo')
    out = os.path.join(tmp, 'out.ndjson')
    run('docs', '--lucene-dir', dest, '--index', 'x', '--output', out)
    check(open(out, 'rb').read().count(b'\n') == 3, '--output FILE')


def test_corrupt(tmp):
    soft = os.path.join(tmp, 'soft')
    shutil.copytree(os.path.join(FIX, 'ES_7_10_Updates_Deletes_w_Soft'), soft)
    shard = 'indices/ADqaSwRmQGeZpfc8raDTtA/0/'
    os.chmod(soft, 0o755)
    for root, dirs, files in os.walk(soft):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    os.remove(os.path.join(soft, shard + '__mA4kerekSIS2eEUXp5FCYQ'))      # _1.cfs (_0 is fully soft-deleted)
    p = run('docs', '--repo', soft, '--snapshot', 'rfs_snapshot', ok=False)
    check(p.returncode == 1 and (shard + '__mA4kerekSIS2eEUXp5FCYQ').encode() in p.stderr,
          'missing blob: exit 1 naming the blob (%r)' % p.stderr)
    with open(os.path.join(soft, shard + 'snap-4qK_DdtfTcao0zoxNElf9Q.dat'), 'r+b') as fp:
        fp.seek(120)
        b = fp.read(1)
        fp.seek(120)
        fp.write(bytes([b[0] ^ 1]))
    p = run('indices', '--repo', soft, '--snapshot', 'rfs_snapshot', ok=False)
    check(p.returncode == 1 and b'snap-4qK_DdtfTcao0zoxNElf9Q.dat: footer CRC' in p.stderr,
          'flipped shard metadata: CRC error naming the blob (%r)' % p.stderr)
    # one LZ4 literal of a stored document changed ("sample" -> "sanple": it still decodes):
    # first: an error before the document is written; streamed: after it, saying so; off: written
    damaged = os.path.join(tmp, 'damaged')
    shutil.copytree(os.path.join(FIX, 'ES_7_10_Single'), damaged)
    hits = 0
    for root, _, files in os.walk(damaged):
        for f in files:
            path = os.path.join(root, f)
            data = bytearray(open(path, 'rb').read())
            at = data.find(b'a sample blog p')
            if f.startswith('__') and at >= 0:
                data[at + 4] = ord('n')
                open(path, 'wb').write(data)
                hits += 1
    check(hits == 1, 'one blob damaged (%d)' % hits)
    for mode, rc, written, msg in (('first', 1, False, b'checksum failed'), ('streamed', 1, True, b'may be damaged'),
                                   ('off', 0, True, b'')):
        p = run('docs', '--repo', damaged, '--snapshot', 'global_state_snapshot', '--index', 'posts_2023_02_25',
                '--segment-checksums', mode, ok=False)
        check(p.returncode == rc and msg in p.stderr and (b'sanple' in p.stdout) == written,
              'damaged segment, --segment-checksums %s: exit %d, stderr %r, written %s'
              % (mode, p.returncode, p.stderr[-300:], b'sanple' in p.stdout))
    p = run('docs', '--repo', damaged, '--snapshot', 'global_state_snapshot', '--segment-checksums', 'later',
            ok=False)
    check(p.returncode == 2 and b'--segment-checksums first|streamed|off' in p.stderr, 'bad --segment-checksums')
    p = run('docs', '--repo', os.path.join(FIX, 'ES_6_8_Single'), '--snapshot', 'nope', ok=False)
    check(p.returncode == 1 and b"no snapshot 'nope'" in p.stderr, 'unknown snapshot')
    p = run('snapshots', '--repo', tmp, ok=False)
    check(p.returncode == 1 and b'not a snapshot repository' in p.stderr, 'not a repository')


def main():
    tmp = tempfile.mkdtemp(prefix='rfs-cli-')
    try:
        test_help_version()
        test_snapshots_and_indices()
        test_docs_expected_sets()
        test_lucene_dir(tmp)
        test_corrupt(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print('%d failures' % len(failures))
        sys.exit(1)
    print('ok')


main()
