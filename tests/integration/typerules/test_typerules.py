#!/usr/bin/python3
"""searchmig-rfs backfill --metadata-report: the type rules of the metadata
migration (split / union of multi-type ES 5/6 indices) and legacy booleans of
ES 1.x/2.x documents, against the target stand-in.

metadata migrate (--multi-type split|union, --report R) then backfill with
--metadata-report R: every document lands in exactly the index (and, on a
typed target, the _type) that the report's type_rules name, no more; with
ES_2_4_5, whose boolean field holds "on"/"no"/0/..., every document is
accepted (0 rejected, the values true/false as 1.x/2.x read them), while the
same backfill without the report has rejections.

Needs SM_SOURCE_DIR and SM_BINARY_DIR (set by ctest)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'metadata'))
import test_metadata as md  # noqa: E402  (Standin, run_md, docs_of)

RFS = md.RFS
SNAPS = md.SNAPS
MULTI = (os.path.join(SNAPS, 'ES_5_6_Updates_Deletes'), 'rfs_snapshot')
LEGACY = (os.path.join(SNAPS, 'ES_2_4_5'), 'test_1')


def legacy_bool(v):
    """What ES 1.x/2.x made of a boolean field value (None: not a legacy spelling)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0
    if isinstance(v, str):
        if v.lower() in ('on', 'yes', '1'):
            return True
        if v.lower() in ('off', 'no', '0'):
            return False
    return None


class TypeRulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='sm-typerules-')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.standins = []

    def tearDown(self):
        for s in self.standins:
            s.stop()

    def standin(self, flavor):
        s = md.Standin(flavor, self.tmp)
        self.standins.append(s)
        return s

    def path(self, name):
        return os.path.join(self.tmp, name)

    def backfill(self, t, repo, snap, *extra, expect_rc=0):
        cmd = [RFS, 'backfill', '--repo', repo, '--snapshot', snap, '--target', t.url, '--quiet',
               '--batch-docs', '100'] + list(extra)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, expect_rc, '%s\n%s' % (' '.join(cmd), p.stderr))
        return p.stderr

    def hits(self, t, index):
        t.req('POST', '/%s/_refresh' % index)
        st, r = t.req('POST', '/%s/_search' % urllib.parse.quote(index), {'size': 10000, 'query': {'match_all': {}}})
        self.assertEqual(st, 200, r)
        return r['hits']['hits']

    def landed(self, t, rep):
        """{(index, type or None, id)} of every document in the report's target indices."""
        out = set()
        indices = {e['index'] for r in rep['type_rules'].values() for e in r['types'].values()}
        for index in sorted(indices):
            for h in self.hits(t, index):
                out.add((h['_index'], h.get('_type') if t.typed else None, h['_id']))
        return out

    def expected(self, t, rep, repo, snap):
        out = set()
        for d in md.docs_of(repo, snap):
            types = rep['type_rules'][d['_index']]['types']
            e = types[d['_type']] if d.get('_type') in types else list(types.values())[0]
            out.add((e['index'], e['type'] if t.typed else None, d['_id']))
        return out

    def one_multi(self, flavor, strategy, want):
        t = self.standin(flavor)
        repo, snap = MULTI
        rpath = self.path('md-%s-%s.json' % (flavor, strategy))
        rep, _ = md.run_md(self, 'migrate', ['--repo', repo, '--snapshot', snap, '--multi-type', strategy], t, rpath)
        rule = rep['type_rules']['test_updates_deletes']
        self.assertEqual(rule['mode'], strategy)
        self.backfill(t, repo, snap, '--metadata-report', rpath)
        got = self.landed(t, rep)
        self.assertEqual(got, self.expected(t, rep, repo, snap))
        self.assertEqual(got, want)
        # the dry run writes the same actions
        dry = self.path('dry-%s-%s.ndjson' % (flavor, strategy))
        args = ['--metadata-report', rpath, '--dry-run', dry] + (['--dry-run-typed'] if t.typed else [])
        p = subprocess.run([RFS, 'backfill', '--repo', repo, '--snapshot', snap] + args, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(dry) as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        acts = {(a['index']['_index'], a['index'].get('_type'), a['index']['_id']) for a in lines[0::2]}
        self.assertEqual(acts, want)

    def test_multi_type_split_and_union(self):
        split_typeless = {('test_updates_deletes_type1', None, 'complexdoc'),
                          ('test_updates_deletes_type2', None, 'updateddoc'),
                          ('test_updates_deletes_type2', None, 'unchangeddoc')}
        union_typeless = {('test_updates_deletes', None, i) for i in ('complexdoc', 'updateddoc', 'unchangeddoc')}
        with self.subTest('opensearch-2.11 split'):
            self.one_multi('opensearch-2.11', 'split', split_typeless)
        with self.subTest('opensearch-2.11 union'):
            self.one_multi('opensearch-2.11', 'union', union_typeless)
        with self.subTest('elasticsearch-7.10 split'):
            self.one_multi('elasticsearch-7.10', 'split', split_typeless)
        with self.subTest('elasticsearch-6.8 split (typed: each index keeps its type)'):
            self.one_multi('elasticsearch-6.8', 'split', {('test_updates_deletes_type1', 'type1', 'complexdoc'),
                                                          ('test_updates_deletes_type2', 'type2', 'updateddoc'),
                                                          ('test_updates_deletes_type2', 'type2', 'unchangeddoc')})
        with self.subTest('elasticsearch-6.8 union (typed: _doc)'):
            self.one_multi('elasticsearch-6.8', 'union',
                           {('test_updates_deletes', '_doc', i) for i in ('complexdoc', 'updateddoc', 'unchangeddoc')})

    def test_single_type_none_drop_keep(self):
        cases = (('ES_1_7_4_compressed', 'snap1x', 'opensearch-2.11', 'drop', {None}),
                 ('ES_1_7_4_compressed', 'snap1x', 'elasticsearch-6.8', 'keep', {'t1'}),
                 ('ES_6_8_Single', 'global_state_snapshot', 'opensearch-2.11', 'none', {None}))
        for fx, snap, flavor, mode, types in cases:
            with self.subTest(fixture=fx, flavor=flavor):
                repo = os.path.join(SNAPS, fx)
                t = self.standin(flavor)
                rpath = self.path('md-single-%s-%s.json' % (fx, flavor))
                rep, _ = md.run_md(self, 'migrate', ['--repo', repo, '--snapshot', snap], t, rpath)
                self.assertEqual({r['mode'] for r in rep['type_rules'].values()}, {mode})
                self.backfill(t, repo, snap, '--metadata-report', rpath)
                want = self.expected(t, rep, repo, snap)
                self.assertTrue(want)
                self.assertEqual({ty for _, ty, _ in want}, types)
                self.assertEqual(self.landed(t, rep), want)

    def test_legacy_booleans(self):
        repo, snap = LEGACY
        t = self.standin('opensearch-2.11')
        rpath = self.path('md-legacy.json')
        rep, _ = md.run_md(self, 'migrate', ['--repo', repo, '--snapshot', snap], t, rpath)
        item = [i for i in rep['items'] if i['kind'] == 'index' and i['name'] == 'index-2.4.5'][0]
        self.assertTrue(any('boolean field [bool]' in n for n in item['notes']), item['notes'])
        docs = md.docs_of(repo, snap)
        # the stand-in, like 6.0+, takes true/false/"true"/"false" (and JSON 0/1, which real clusters reject)
        legacy = [d for d in docs if d['_source'].get('bool', True) not in (True, False, 'true', 'false')]
        self.assertGreater(len(legacy), 100)
        # without the report the target rejects them (into the failures file)
        fail1 = self.path('failures-plain.ndjson')
        self.backfill(t, repo, snap, '--coordination-index', '.bf-plain', '--failures-file', fail1, expect_rc=1)
        with open(fail1) as f:
            rejected = [json.loads(x) for x in f if x.strip()]
        self.assertEqual(len(rejected), len(legacy))
        self.assertTrue(all('[boolean]' in r['error']['reason'] for r in rejected))
        # with it: every document accepted, values as 1.x/2.x read them
        st, _ = t.req('DELETE', '/index-2.4.5')
        self.assertEqual(st, 200)
        st, _ = t.req('PUT', '/index-2.4.5', item['body'])
        self.assertEqual(st, 200)
        fail2 = self.path('failures-report.ndjson')
        err = self.backfill(t, repo, snap, '--coordination-index', '.bf-report', '--failures-file', fail2,
                            '--metadata-report', rpath)
        self.assertIn(' 0 rejected', err)
        self.assertFalse(os.path.exists(fail2) and os.path.getsize(fail2), 'documents rejected')
        got = {h['_id']: h['_source'] for h in self.hits(t, 'index-2.4.5')}
        self.assertEqual(set(got), {d['_id'] for d in docs})
        for d in docs:
            src = d['_source']
            if 'bool' in src:
                v = src['bool']
                want = v if isinstance(v, bool) or v in ('true', 'false') else legacy_bool(v)
                self.assertIsNotNone(want, d)
                self.assertEqual(got[d['_id']]['bool'], want, d)
                self.assertIs(type(got[d['_id']]['bool']), type(want), d)
            # nothing else changed
            self.assertEqual({k: v for k, v in got[d['_id']].items() if k != 'bool'},
                             {k: v for k, v in src.items() if k != 'bool'})

    def test_bad_report(self):
        repo, snap = MULTI
        bad = self.path('bad.json')
        with open(bad, 'w') as f:
            json.dump({'items': []}, f)
        for args, msg in ((['--metadata-report', bad], 'type_rules'),
                          (['--metadata-report', self.path('missing.json')], 'missing.json'),
                          (['--coerce-legacy-booleans'], '--metadata-report')):
            p = subprocess.run([RFS, 'backfill', '--repo', repo, '--snapshot', snap, '--dry-run', '-'] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(msg, p.stderr)


if __name__ == '__main__':
    unittest.main()
