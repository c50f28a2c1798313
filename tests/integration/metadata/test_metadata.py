#!/usr/bin/python3
"""searchmig-rfs metadata evaluate|migrate against the target stand-in.

For every fixture snapshot and target flavor (opensearch-2.11,
elasticsearch-7.10, elasticsearch-6.8): evaluate leaves the target empty and
lists what migrate then creates; the created indices and templates read back
equal the report's bodies (which the rule-specific checks below pin down);
a second migrate reports `exists` and changes nothing; the snapshot's
documents (searchmig-rfs docs) bulk-indexed by the report's type rules are
all accepted. Also: --multi-type split, --replicas/--drop-allocation, a
corrupt index metadata blob, a target rejecting an item (its reason in the
report), a live source cluster, usage errors.

Needs SM_SOURCE_DIR and SM_BINARY_DIR (set by ctest)."""
import glob
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

SRC = os.environ.get('SM_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..', '..'))
BIN = os.environ.get('SM_BINARY_DIR', os.path.join(SRC, 'build'))
RFS = os.path.join(BIN, 'rfs', 'searchmig-rfs')
TARGET = os.path.join(SRC, 'tests', 'standins', 'target', 'target_standin.py')
SNAPS = os.path.join(SRC, 'tests', 'fixtures', 'snapshots')

FIXTURES = [
    ('ES_1_7_4_compressed', 'snap1x'),
    ('ES_1_7_5', 'test_1'),
    ('ES_2_4_5', 'test_1'),
    ('ES_5_6_Updates_Deletes', 'rfs_snapshot'),
    ('ES_6_8_Single', 'global_state_snapshot'),
    ('ES_7_10_Single', 'global_state_snapshot'),
    ('ES_7_10_Updates_Deletes_w_Soft', 'rfs_snapshot'),
    ('OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'),
]
FLAVORS = ['opensearch-2.11', 'elasticsearch-7.10', 'elasticsearch-6.8', 'opensearch-1.3']
# ctest runs one flavor per test (SM_MD_FLAVORS=opensearch-2.11) so each stays short
if os.environ.get('SM_MD_FLAVORS'):
    FLAVORS = os.environ['SM_MD_FLAVORS'].split(',')
PRIVATE = ('index.uuid', 'index.version.created', 'index.creation_date', 'index.provided_name')


class Standin:
    def __init__(self, flavor, tmp):
        self.flavor = flavor
        pf = os.path.join(tmp, 'port-%s-%d' % (flavor, time.monotonic_ns()))
        self.err = open(pf + '.stderr', 'w')
        self.errpath = pf + '.stderr'
        self.proc = subprocess.Popen(['/usr/bin/python3', TARGET, '--port', '0', '--port-file', pf, '--flavor', flavor],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 20
        while not os.path.exists(pf):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('stand-in did not start: ' + open(self.errpath).read())
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read())
        self.url = 'http://127.0.0.1:%d' % self.port
        self.typed = flavor == 'elasticsearch-6.8'

    def req(self, method, path, body=None, ndjson=False):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        hdr = {}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            hdr['Content-Type'] = 'application/x-ndjson' if ndjson else 'application/json'
        c.request(method, path, data, hdr)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw.decode(errors='replace')

    def get(self, path):
        st, b = self.req('GET', path)
        return b if st == 200 else None

    def state(self):
        """Everything metadata migrate can create, for before/after comparisons."""
        out = {'indices': self.get('/_all?flat_settings=true'), 'templates': self.get('/_template')}
        if not self.typed:
            out['index_templates'] = self.get('/_index_template')
            out['component_templates'] = self.get('/_component_template')
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()
        with open(self.errpath) as f:
            err = f.read()
        if 'Traceback' in err:
            raise AssertionError('stand-in traceback:\n' + err)


def run_md(tc, mode, args, target, report, expect_rc=0):
    cmd = [RFS, 'metadata', mode, '--target', target.url, '--report', report] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    tc.assertEqual(p.returncode, expect_rc, '%s\nstdout:\n%s\nstderr:\n%s' % (' '.join(cmd), p.stdout, p.stderr))
    with open(report) as f:
        rep = json.load(f)
    return rep, p.stdout


def items(rep, kind=None, action=None):
    return [i for i in rep['items'] if (kind is None or i['kind'] == kind) and (action is None or i['action'] == action)]


def flat_settings_of(target, name):
    b = target.get('/%s/_settings?flat_settings=true' % name)
    return b[name]['settings']


def docs_of(repo, snap):
    p = subprocess.run([RFS, 'docs', '--repo', repo, '--snapshot', snap], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


class MetadataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='sm-md-')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.standins = []

    def tearDown(self):
        for s in self.standins:
            s.stop()

    def standin(self, flavor):
        s = Standin(flavor, self.tmp)
        self.standins.append(s)
        return s

    def rep_path(self, name):
        return os.path.join(self.tmp, name + '.json')

    # ---- readback comparison ----

    def check_created(self, target, rep):
        for it in items(rep):
            if it['action'] != 'create':
                continue
            self.assertTrue(it['done'], it)
            body, name = it['body'], it['name']
            if it['kind'] == 'index':
                got = target.get('/%s?flat_settings=true' % name)[name]
                for k, v in body.get('settings', {}).items():
                    self.assertEqual(got['settings'].get(k), v, '%s: setting %s' % (name, k))
                for k in PRIVATE:
                    self.assertNotIn(k, body.get('settings', {}), name)
                if 'mappings' in body:
                    gm = got['mappings']
                    bm = body['mappings']
                    if target.typed:
                        self.assertEqual(list(gm), list(bm), name)
                        gm, bm = gm[list(gm)[0]], bm[list(bm)[0]]
                    # templates may add fields: every field of the body is there, as given
                    for f, fm in bm.get('properties', {}).items():
                        self.assertEqual(gm['properties'].get(f), fm, '%s: field %s' % (name, f))
                for a, meta in body.get('aliases', {}).items():
                    self.assertIn(a, got['aliases'], name)
                    self.assertEqual(got['aliases'][a], meta, '%s alias %s' % (name, a))
                src = json.loads(json.dumps(it))  # the source shard count is kept
                self.assertEqual(got['settings']['index.number_of_shards'],
                                 body['settings']['index.number_of_shards'], src['name'])
            elif it['kind'] == 'template':
                got = target.get('/_template/%s' % name)[name]
                self.assertEqual(got['index_patterns'], body['index_patterns'])
                self.assertEqual(got.get('mappings', {}), body.get('mappings', {}))
                self.assertEqual(set(got.get('aliases', {})), set(body.get('aliases', {})))
            elif it['kind'] == 'index_template':
                got = target.get('/_index_template/%s' % name)['index_templates'][0]['index_template']
                self.assertEqual(got['index_patterns'], body['index_patterns'])
                self.assertEqual(got.get('composed_of', []), body.get('composed_of', []))
            elif it['kind'] == 'component_template':
                got = target.get('/_component_template/%s' % name)['component_templates'][0]['component_template']
                self.assertEqual(got['template'].get('mappings'), body['template'].get('mappings'))

    def bulk_docs(self, target, rep, repo, snap):
        """Bulk-indexes the snapshot's documents as the backfill would (type rules of the report)."""
        docs = docs_of(repo, snap)
        rules = rep['type_rules']
        lines = []
        n = 0
        for d in docs:
            rule = rules.get(d['_index'])
            if rule is None:
                continue  # index not migrated (skipped)
            t = rule['types'].get(d.get('_type'), None) if d.get('_type') else None
            if t is None:
                t = list(rule['types'].values())[0]
            meta = {'_index': t['index'], '_id': d['_id']}
            if target.typed:
                meta['_type'] = t['type']
            if d.get('_routing') is not None:
                meta['routing'] = d['_routing']
            lines.append(json.dumps({'index': meta}))
            lines.append(json.dumps(d['_source']))
            n += 1
        if not lines:
            return 0
        st, b = target.req('POST', '/_bulk?refresh=true', '\n'.join(lines) + '\n', ndjson=True)
        self.assertEqual(st, 200, b)
        errs = [list(i.values())[0] for i in b['items'] if list(i.values())[0].get('error')]
        # 1.x/2.x lenient booleans ("on", "no", 0, ...): the report warns about them (lenient_booleans)
        # and they are the only documents the target may reject
        lenient = [e for e in errs if 'of type [boolean]' in e['error']['reason']]
        if lenient:
            idx = {i['name']: i for i in rep['items'] if i['kind'] == 'index'}
            for e in lenient:
                self.assertTrue(any('boolean field' in x for x in idx[e['_index']]['notes']), e)
        self.assertEqual([e for e in errs if e not in lenient], [], 'documents rejected')
        self.assertLess(len(errs), n)
        return n

    # ---- the matrix ----

    def test_fixture_matrix(self):
        for flavor in FLAVORS:
            for fx, snap in FIXTURES:
                with self.subTest(flavor=flavor, fixture=fx):
                    self.one_fixture(flavor, fx, snap)

    def one_fixture(self, flavor, fx, snap):
        t = self.standin(flavor)
        repo = os.path.join(SNAPS, fx)
        args = ['--repo', repo, '--snapshot', snap]
        before = t.state()
        ev, out = run_md(self, 'evaluate', args, t, self.rep_path('ev-%s-%s' % (flavor, fx)))
        self.assertEqual(t.state(), before, 'evaluate changed the target')
        self.assertIn('KIND', out)
        self.assertEqual(ev['target']['version'][:3], flavor.split('-')[1][:3])
        to_create = sorted((i['kind'], i['name']) for i in items(ev, action='create'))
        self.assertTrue(any(k == 'index' for k, _ in to_create), to_create)
        for i in items(ev, action='skip'):
            self.assertTrue(i['notes'], i)
            if i['name'].startswith('.'):
                self.assertIn("starts with '.'", i['notes'][0])
        mig, _ = run_md(self, 'migrate', args, t, self.rep_path('mig-%s-%s' % (flavor, fx)))
        created = sorted((i['kind'], i['name']) for i in items(mig, action='create'))
        self.assertEqual(created, to_create)
        self.check_created(t, mig)
        self.check_rules(flavor, fx, t, mig)
        # idempotent
        state = t.state()
        again, _ = run_md(self, 'migrate', args, t, self.rep_path('again-%s-%s' % (flavor, fx)))
        self.assertEqual(items(again, action='create'), [])
        self.assertEqual(sorted((i['kind'], i['name']) for i in items(again, action='exists')), created)
        self.assertEqual(t.state(), state, 'second migrate changed the target')
        # the documents fit the created indices
        n = self.bulk_docs(t, mig, repo, snap)
        self.assertGreater(n, 0)

    def check_rules(self, flavor, fx, t, rep):
        """What the transformation table specifies, per fixture."""
        typed = t.typed
        idx = {i['name']: i for i in items(rep, 'index')}
        for i in idx.values():
            if i['action'] != 'create':
                continue
            s = i['body']['settings']
            for k in PRIVATE:
                self.assertNotIn(k, s)
            rules = [x['rule'] for x in i['transformations']]
            self.assertIn('private_settings', rules)
            self.assertIn('routing_shards', rules)
            self.assertIn('index.number_of_routing_shards', s)
            m = i['body'].get('mappings', {})
            if typed:
                self.assertEqual(len(m), 1, m)
                m = list(m.values())[0]
            else:
                self.assertIn('properties', m)
            text = json.dumps(m)
            self.assertNotIn('"type": "string"', text)
            self.assertNotIn('_all', m)
            self.assertNotIn('include_in_all', text)
            self.assertNotIn('not_analyzed', text)
        if fx == 'ES_1_7_5':
            body = idx['index-1.7.5']['body']['mappings']
            m = body['_doc'] if typed else body
            p = m['properties']
            self.assertEqual(p['string'], {'type': 'text'})
            self.assertEqual(p['parent_multi_field']['fields']['raw'], {'type': 'keyword'})
            self.assertEqual(p['string_with_index_analyzer'], {'type': 'text', 'analyzer': 'standard'})
            self.assertNotIn('doc_values_format', p['long_with_custom_doc_values'])
            self.assertEqual(rep['type_rules']['index-1.7.5']['mode'], 'union')
            self.assertEqual(idx['index-1.7.5']['body']['settings']['index.number_of_routing_shards'], '1')
            tpl = items(rep, 'template')[0]
            self.assertEqual(tpl['body']['index_patterns'], ['te*'])
        if fx == 'ES_2_4_5':
            m = idx['index-2.4.5']['body']['mappings']
            m = m['_doc'] if typed else m
            self.assertEqual(m['properties']['string_with_norms_enabled'], {'type': 'keyword', 'norms': True})
            self.assertEqual(m['properties']['string_with_norms_disabled'], {'type': 'text', 'norms': False})
        if fx == 'ES_5_6_Updates_Deletes':
            i = idx['test_updates_deletes']
            m = i['body']['mappings']
            m = m['_doc'] if typed else m
            self.assertEqual(sorted(m['properties']), ['content', 'contents', 'title'])
            tr = rep['type_rules']['test_updates_deletes']
            self.assertEqual(tr['mode'], 'union')
            self.assertEqual(sorted(tr['types']), ['type1', 'type2'])
        if fx == 'ES_7_10_Single':
            s = idx['posts_2024_01_01']['body']['settings']
            if flavor == 'elasticsearch-7.10':
                self.assertEqual(s['index.routing.allocation.include._tier_preference'], 'data_content')
            else:
                self.assertNotIn('index.routing.allocation.include._tier_preference', s)
            self.assertEqual(s['index.number_of_routing_shards'], '1024')
            if typed:
                tpl = {i['name']: i for i in items(rep, 'template')}['posts_index_template']
                self.assertIn('composable_to_legacy', [x['rule'] for x in tpl['transformations']])
                self.assertEqual(sorted(tpl['body']['mappings']['_doc']['properties']), ['author', 'contents', 'tags'])
                self.assertEqual([i['action'] for i in items(rep, 'component_template') if i['name'] == 'posts_template'],
                                 ['skip'])
            else:
                self.assertEqual([i['name'] for i in items(rep, 'index_template', 'create')], ['posts_index_template'])
                self.assertEqual([i['name'] for i in items(rep, 'component_template', 'create')], ['posts_template'])
        if fx == 'OS_2_11_Deletes_w_Soft_Multi_Seg':
            s = idx['test-index']['body']['settings']
            self.assertEqual(s['index.soft_deletes.enabled'], 'true')
            self.assertEqual(s['index.refresh_interval'], '-1')
            if flavor.startswith('opensearch'):
                self.assertEqual(s['index.replication.type'], 'DOCUMENT')
            else:
                self.assertNotIn('index.replication.type', s)

    # ---- options ----

    def test_split_replicas_allocation(self):
        t = self.standin('opensearch-2.11')
        repo = os.path.join(SNAPS, 'ES_5_6_Updates_Deletes')
        rep, _ = run_md(self, 'migrate', ['--repo', repo, '--snapshot', 'rfs_snapshot', '--multi-type', 'split',
                                          '--replicas', '2'], t, self.rep_path('split'))
        created = [i['name'] for i in items(rep, 'index', 'create')]
        self.assertEqual(created, ['test_updates_deletes_type1', 'test_updates_deletes_type2'])
        self.assertEqual([i['action'] for i in items(rep, 'index') if i['name'] == 'test_updates_deletes'], ['skip'])
        tr = rep['type_rules']['test_updates_deletes']
        self.assertEqual(tr['mode'], 'split')
        self.assertEqual(tr['types']['type1']['index'], 'test_updates_deletes_type1')
        g = t.get('/test_updates_deletes_type1')['test_updates_deletes_type1']
        self.assertEqual(sorted(g['mappings']['properties']), ['title'])
        g2 = t.get('/test_updates_deletes_type2')['test_updates_deletes_type2']
        self.assertEqual(sorted(g2['mappings']['properties']), ['content', 'contents'])
        self.assertEqual(flat_settings_of(t, 'test_updates_deletes_type1')['index.number_of_replicas'], '2')
        self.assertEqual(self.bulk_docs(t, rep, repo, 'rfs_snapshot'), 3)
        _, cnt = t.req('GET', '/test_updates_deletes_type1/_count')
        self.assertEqual(cnt['count'], 1)

        t2 = self.standin('elasticsearch-7.10')
        repo = os.path.join(SNAPS, 'ES_7_10_Single')
        rep, _ = run_md(self, 'migrate', ['--repo', repo, '--snapshot', 'global_state_snapshot', '--drop-allocation',
                                          '--index', 'posts_*,-posts_2023*', '--template', 'nothing'], t2,
                        self.rep_path('alloc'))
        self.assertEqual([i['name'] for i in items(rep, 'index', 'create')], ['posts_2024_01_01'])
        skipped = {i['name']: i['notes'][0] for i in items(rep, action='skip')}
        self.assertIn('--index', skipped['posts_2023_02_25'])
        self.assertIn('--template', skipped['posts_index_template'])
        s = flat_settings_of(t2, 'posts_2024_01_01')
        self.assertFalse([k for k in s if k.startswith('index.routing.allocation')], s)
        # --overwrite replaces
        rep, _ = run_md(self, 'migrate', ['--repo', repo, '--snapshot', 'global_state_snapshot', '--overwrite',
                                          '--index', 'posts_2024_01_01', '--replicas', '0'], t2, self.rep_path('ow'))
        self.assertEqual([i['action'] for i in items(rep, 'index') if i['name'] == 'posts_2024_01_01'], ['overwrite'])
        self.assertEqual(flat_settings_of(t2, 'posts_2024_01_01')['index.number_of_replicas'], '0')

    def test_bad_input(self):
        # corrupt index metadata blob: that index fails, naming the blob; the other goes on
        repo = os.path.join(self.tmp, 'corrupt')
        shutil.copytree(os.path.join(SNAPS, 'ES_6_8_Single'), repo)
        blobs = sorted(glob.glob(os.path.join(repo, 'indices', '*', 'meta-*.dat')))
        self.assertEqual(len(blobs), 2)
        with open(blobs[0], 'r+b') as f:
            f.seek(40)
            f.write(b'\xff\xff\xff\xff')
        t = self.standin('opensearch-2.11')
        rep, _ = run_md(self, 'migrate', ['--repo', repo, '--snapshot', 'global_state_snapshot'], t,
                        self.rep_path('corrupt'), expect_rc=1)
        failed = items(rep, 'index', 'failed')
        self.assertEqual(len(failed), 1)
        rel = os.path.relpath(blobs[0], repo)
        self.assertIn(rel, failed[0]['problems'][0])
        self.assertIn(failed[0]['name'], failed[0]['problems'][0])
        self.assertEqual(len(items(rep, 'index', 'create')), 1)

        # the target rejects an item: its reason is in the report, the others are created
        t = self.standin('opensearch-2.11')
        st, _ = t.req('PUT', '/current_posts', {})
        self.assertEqual(st, 200)
        rep, out = run_md(self, 'migrate', ['--repo', os.path.join(SNAPS, 'ES_7_10_Single'), '--snapshot',
                                            'global_state_snapshot'], t, self.rep_path('reject'), expect_rc=1)
        failed = items(rep, 'index', 'failed')
        self.assertEqual(sorted(i['name'] for i in failed), ['posts_2023_02_25', 'posts_2024_01_01'])
        for i in failed:
            self.assertIn('invalid_index_name_exception', i['error'])
            self.assertIn('current_posts', i['error'])
        self.assertIn('invalid_index_name_exception', out)
        self.assertEqual(len(items(rep, 'index_template', 'create')), 1)
        self.assertIsNotNone(t.get('/_index_template/posts_index_template'))

        # an index name that is an alias on the target: conflict, evaluate exits 1, migrate leaves it
        t = self.standin('elasticsearch-7.10')
        st, _ = t.req('PUT', '/other', {'aliases': {'posts_2024_01_01': {}}})
        self.assertEqual(st, 200)
        for mode in ('evaluate', 'migrate'):
            rep, _ = run_md(self, mode, ['--repo', os.path.join(SNAPS, 'ES_7_10_Single'), '--snapshot',
                                         'global_state_snapshot'], t, self.rep_path('alias-' + mode), expect_rc=1)
            c = items(rep, 'index', 'conflict')
            self.assertEqual([i['name'] for i in c], ['posts_2024_01_01'])
            self.assertIn('alias on the target', c[0]['problems'][0])
            self.assertFalse(c[0]['done'])
        self.assertEqual(sorted(t.get('/_all')), ['other', 'posts_2023_02_25'])
        # usage errors
        for args in ([], ['evaluate'], ['evaluate', '--target', t.url], ['nope', '--target', t.url, '--source', t.url],
                     ['evaluate', '--target', t.url, '--repo', repo, '--snapshot', 's', '--multi-type', 'x']):
            p = subprocess.run([RFS, 'metadata'] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
        # unreachable target
        p = subprocess.run([RFS, 'metadata', 'evaluate', '--target', 'http://127.0.0.1:1', '--target-max-retries',
                            '0', '--repo', repo, '--snapshot', 'global_state_snapshot'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn('target', p.stderr)

    def test_live_source(self):
        # a 6.8 cluster populated from the snapshot is the live source for OpenSearch 2.11
        src = self.standin('elasticsearch-6.8')
        run_md(self, 'migrate', ['--repo', os.path.join(SNAPS, 'ES_6_8_Single'), '--snapshot',
                                 'global_state_snapshot'], src, self.rep_path('live-src'))
        # and a template created directly on the source
        st, b = src.req('PUT', '/_template/two_types', {'index_patterns': ['zz*'], 'mappings': {
            'doc': {'properties': {'a': {'type': 'keyword'}}}}})
        self.assertEqual(st, 200, b)
        tgt = self.standin('opensearch-2.11')
        rep, _ = run_md(self, 'migrate', ['--source', src.url], tgt, self.rep_path('live'))
        self.assertEqual(rep['source']['kind'], 'cluster')
        self.assertEqual(sorted(i['name'] for i in items(rep, 'index', 'create')),
                         ['posts_2023_02_25', 'posts_2024_01_01'])
        got = tgt.get('/posts_2024_01_01')['posts_2024_01_01']
        self.assertEqual(sorted(got['mappings']['properties']), ['author', 'contents', 'tags'])
        self.assertIn('another_alias', got['aliases'])
        self.assertEqual(tgt.get('/_template/two_types')['two_types']['mappings'],
                         {'properties': {'a': {'type': 'keyword'}}})


if __name__ == '__main__':
    if not os.path.exists(RFS):
        print('searchmig-rfs not built: ' + RFS, file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
