#!/usr/bin/python3
"""searchmig-rfs backfill / backfill-status against the target stand-in (and
the S3 stand-in): every fixture snapshot lands exactly (ids, routing, _source
bytes, nothing more), --dry-run bodies, crash safety with SIGKILL + takeover
from the checkpoint, two worker processes without double completion, injected
429/5xx/dropped connections, a mapping rejection in the failures file, S3
repositories equal to fs ones, S3 credential and missing-key errors,
backfill-status exit codes, a target outage (connections refused) ridden through.

Needs SM_SOURCE_DIR and SM_BINARY_DIR (set by ctest)."""
import base64
import functools
import glob
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

PY = '/usr/bin/python3'
SRC = os.environ.get('SM_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..', '..'))
BIN = os.environ.get('SM_BINARY_DIR', os.path.join(SRC, 'build'))
RFS = os.path.join(BIN, 'rfs', 'searchmig-rfs')
TARGET = os.path.join(SRC, 'tests', 'standins', 'target', 'target_standin.py')
S3_SCRIPT = os.path.join(SRC, 'tests', 'standins', 's3', 's3_standin.py')
SNAPS = os.path.join(SRC, 'tests', 'fixtures', 'snapshots')
EXPECTED = os.path.join(SRC, 'tests', 'fixtures', 'expected')
COORD = '.searchmig_backfill'


@functools.lru_cache(maxsize=None)
def standin_module():
    """The target stand-in as a module (its SigV4 signer, for the helper's own requests),
    loaded once."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('target_standin', TARGET)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Proc:
    tls = None        # ssl.SSLContext of a client trusting an HTTPS stand-in
    auth = None       # (user, password) for Basic auth
    sigv4 = None      # (akid, secret, region, service, token) to sign with

    def __init__(self, args, port_file):
        self.tmp = os.path.dirname(port_file)
        self.errpath = port_file + '.stderr'
        self.err = open(self.errpath, 'w')
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('stand-in did not start: ' + open(self.errpath).read())
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)
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
        self.err.close()

    def raw(self, method, path, body=None, ctype='application/json'):
        for attempt in range(2):
            if self.conn is None:
                if self.tls:
                    self.conn = http.client.HTTPSConnection('127.0.0.1', self.port, timeout=30, context=self.tls)
                else:
                    self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
            try:
                hdrs = {'Content-Type': ctype} if body is not None else {}
                if self.auth:
                    hdrs['Authorization'] = 'Basic ' + base64.b64encode(('%s:%s' % self.auth).encode()).decode()
                data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
                if self.sigv4:
                    self.sign(method, path, hdrs, data or b'')
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def sign(self, method, path, hdrs, body):
        akid, secret, region, service, token = self.sigv4
        amz_date = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        hdrs.update({'Host': '127.0.0.1:%d' % self.port, 'X-Amz-Date': amz_date})
        if token:
            hdrs['X-Amz-Security-Token'] = token
        lower = {k.lower(): v for k, v in hdrs.items()}
        signed = sorted(lower)
        sig = standin_module().sigv4_signature(method, path, lambda n: [lower[n]], signed, body, amz_date, secret,
                                               region, service)
        hdrs['Authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, ' \
                                'Signature=%s' % (akid, amz_date[:8], region, service, ';'.join(signed), sig)

    def json(self, method, path, body=None):
        st, data = self.raw(method, path, body)
        return st, (json.loads(data) if data else None)


class Target(Proc):
    def __init__(self, tmp, flavor='opensearch-2.11', *extra, tls=None, auth=None, sigv4=None):
        """tls: (certificate, key) files to serve HTTPS with; auth: (user, password) to require;
        sigv4: (akid, secret, region, service, token or None) signatures to require."""
        pf = os.path.join(tmp, 'target-%d.port' % time.monotonic_ns())
        if sigv4:
            extra += ('--sigv4', ':'.join(x for x in sigv4 if x is not None))
            self.sigv4 = sigv4
        if tls:
            extra += ('--tls-cert', tls[0], '--tls-key', tls[1])
            self.tls = ssl.create_default_context(cafile=tls[0])
        if auth:
            extra += ('--username', auth[0], '--password', auth[1])
            self.auth = auth
        self.typed = flavor.startswith('elasticsearch-6')
        super().__init__([PY, TARGET, '--port', '0', '--port-file', pf, '--flavor', flavor, '--seed', '3'] +
                         list(extra), pf)

    def precreate(self, indices):
        """Indices without dynamic mapping: with several workers the first document of a field would
        otherwise decide its type (the metadata migration creates the real mappings first)."""
        for index in indices:
            st, r = self.json('PUT', '/' + urllib.parse.quote(index), {'mappings': {'dynamic': False}})
            assert st == 200, (st, r)

    def stats(self):
        return self.json('GET', '/_standin/stats')[1]

    def faults(self, rules):
        st, _ = self.json('PUT', '/_standin/faults', rules)
        assert st == 200, st

    def docs(self, index):
        """{(_id, routing): sha256(_source bytes), len} of everything in index."""
        self.json('POST', '/%s/_refresh' % index)
        st, r = self.json('POST', '/%s/_search' % urllib.parse.quote(index),
                          {'size': 10000, 'query': {'match_all': {}}, '_source': False})
        assert st == 200, (st, r)
        out = {}
        for h in r['hits']['hits']:
            fmt = '/%s/_doc/%s/_source' if self.typed else '/%s/_source/%s'
            path = fmt % (urllib.parse.quote(index), urllib.parse.quote(h['_id'], safe=''))
            if h.get('_routing') is not None:
                path += '?routing=' + urllib.parse.quote(h['_routing'], safe='')
            st, raw = self.raw('GET', path)
            assert st == 200, (st, path)
            out[(h['_id'], h.get('_routing', '-'))] = (hashlib.sha256(raw).hexdigest(), len(raw))
        return out

    def coord_items(self):
        self.json('POST', '/%s/_refresh' % COORD)
        st, r = self.json('POST', '/%s/_search' % COORD, {'size': 10000, 'query': {'term': {'kind': 'item'}},
                                                          'seq_no_primary_term': True})
        assert st == 200, (st, r)
        return {h['_id']: h['_source'] for h in r['hits']['hits']}


class S3(Proc):
    def __init__(self, tmp, buckets, key='AKIDBACKFILL', secret='backfill-secret', *extra):
        pf = os.path.join(tmp, 's3-%d.port' % time.monotonic_ns())
        args = [PY, S3_SCRIPT, '--port', '0', '--port-file', pf, '--access-key', key, '--secret-key', secret,
                '--page-size', '3'] + list(extra)
        for b in buckets:
            args += ['--bucket', b]
        super().__init__(args, pf)


class OutageProxy:
    """TCP forwarder to the stand-in on a port of its own. down() closes the
    listener and every forwarded connection, so new connections are refused as
    by a restarting node (the stand-in keeps its data, as the node its disk);
    up() listens again on the same port."""

    def __init__(self, backend_port):
        self.backend = backend_port
        self.lock = threading.Lock()
        self.pairs = set()
        self.lsock = None
        self.port = 0
        self.up()
        self.url = 'http://127.0.0.1:%d' % self.port

    def up(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self):
        s, self.lsock = self.lsock, None
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
        with self.lock:
            pairs, self.pairs = self.pairs, set()
        for pair in pairs:
            for x in pair:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        if self.lsock:
            self.down()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(('127.0.0.1', self.backend))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.add((c, b))
            threading.Thread(target=self._pump, args=(c, b), daemon=True).start()

    def _pump(self, c, b):
        try:
            while True:
                ready, _, _ = select.select([c, b], [], [])
                for x in ready:
                    d = x.recv(65536)
                    if not d:
                        raise OSError('closed')
                    (b if x is c else c).sendall(d)
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.pairs.discard((c, b))
            c.close()
            b.close()


def expected(fixture, snapshot):
    """{index: {(id, routing): (sha, len)}} from tests/fixtures/expected."""
    out = {}
    with open(os.path.join(EXPECTED, '%s.%s.tsv' % (fixture, snapshot))) as f:
        for line in f:
            if not line.strip():
                continue
            idx, _id, routing, _type, sha, n = line.rstrip('\n').split('\t')
            out.setdefault(idx, {})[(_id, routing)] = (sha, int(n))
    return out


def fixtures():
    out = []
    for p in sorted(glob.glob(os.path.join(EXPECTED, '*.tsv'))):
        base = os.path.basename(p)[:-4]
        fixture, _, snap = base.partition('.')
        if os.path.isdir(os.path.join(SNAPS, fixture)):
            out.append((fixture, snap))
    return out


class BackfillTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bf-test-')
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def target(self, *a, **kw):
        t = Target(self.tmp, *a, **kw)
        self.procs.append(t)
        return t

    def run_rfs(self, *args, env=None, timeout=120):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([RFS] + list(args), capture_output=True, text=True, timeout=timeout, env=e)
        return p.returncode, p.stdout, p.stderr

    def backfill(self, t, repo, snap, *extra, env=None):
        return self.run_rfs('backfill', '--repo', repo, '--snapshot', snap, '--target', t.url,
                            '--progress-interval', '0', '--target-backoff-base', '10ms',
                            '--target-backoff-cap', '200ms', *extra, env=env)

    def assert_exact(self, t, exp):
        for index, docs in exp.items():
            got = t.docs(index)
            self.assertEqual(len(got), len(docs), index)
            self.assertEqual(got, docs, index)

    def test_every_fixture_exact(self):
        fx = fixtures()
        self.assertGreaterEqual(len(fx), 5)
        for fixture, snap in fx:
            with self.subTest(fixture=fixture, snapshot=snap):
                t = self.target()
                exp = expected(fixture, snap)
                t.precreate(exp)
                rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--workers', '2',
                                           '--batch-docs', '7', '--split-docs', '500')
                self.assertEqual(rc, 0, err)
                exp = expected(fixture, snap)
                self.assert_exact(t, exp)
                total = sum(len(d) for d in exp.values())
                # nothing sent twice, coordination complete
                self.assertEqual(t.stats()['bulk']['items'], total)
                items = t.coord_items()
                self.assertTrue(items)
                self.assertTrue(all(i['state'] == 'done' for i in items.values()), items)
                self.assertEqual(sum(i['docs_acked'] for i in items.values()), total)
                self.assertEqual(t.json('GET', '/%s/_doc/_done' % COORD)[0], 200)
                rc, out, err = self.run_rfs('backfill-status', '--target', t.url)
                self.assertEqual(rc, 0, out + err)
                self.assertIn('state: complete', out)
                self.assertNotIn('[#', out)
                if shutil.which('script'):          # on a terminal: a progress bar
                    p = subprocess.run(['script', '-qec', '%s backfill-status --target %s' % (RFS, t.url),
                                        '/dev/null'], capture_output=True, text=True, timeout=60)
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    self.assertIn('[########################################] 100%', p.stdout)
                # a second run finds nothing to do
                rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap)
                self.assertEqual(rc, 0, err)
                self.assertEqual(t.stats()['bulk']['items'], total)
                # complete: --cleanup deletes the coordination index, the documents stay
                rc, out, err = self.run_rfs('backfill-status', '--target', t.url, '--cleanup')
                self.assertEqual(rc, 0, out + err)
                self.assertIn('%s deleted' % COORD, out)
                self.assertEqual(t.json('GET', '/%s' % COORD)[0], 404)
                self.assert_exact(t, exp)
                rc, out, err = self.run_rfs('backfill-status', '--target', t.url, '--cleanup')
                self.assertEqual(rc, 0, out + err)
                self.assertIn('nothing deleted', out)
                t.stop()
                self.procs.remove(t)

    def test_https_and_basic_auth(self):
        """The backfill over HTTPS with Basic auth, both checked by the stand-in: with the
        CA given and the password from a file the documents land exactly (the bulk bodies
        go over the client's own TLS connection); without the CA the certificate is
        refused, with a wrong password the 401 is reported; backfill-status works the same."""
        if not shutil.which('openssl'):
            self.skipTest('openssl not installed')
        crt, key = os.path.join(self.tmp, 'tls.crt'), os.path.join(self.tmp, 'tls.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                        '-nodes', '-days', '2', '-keyout', key, '-out', crt, '-subj', '/CN=target',
                        '-addext', 'subjectAltName=IP:127.0.0.1'], check=True, capture_output=True)
        pw = os.path.join(self.tmp, 'pw')
        with open(pw, 'w') as f:
            f.write('s3cret pass\n')
        t = self.target(tls=(crt, key), auth=('migrator', 's3cret pass'))
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        exp = expected(fixture, snap)
        t.precreate(exp)
        repo = os.path.join(SNAPS, fixture)
        auth = ('--target-username', 'migrator', '--target-password-file', pw)
        rc, _, err = self.backfill(t, repo, snap, *auth)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err.lower(), 'certificate|ssl', err)
        rc, _, err = self.backfill(t, repo, snap, '--target-ca-cert', crt, '--target-username', 'migrator',
                                   '--target-max-retries', '0', env={'SM_TARGET_PASSWORD': 'wrong'})
        self.assertNotEqual(rc, 0)
        self.assertIn('401', err)
        rc, _, err = self.backfill(t, repo, snap, '--target-ca-cert', crt, *auth, '--workers', '2')
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, exp)
        self.assertEqual(t.stats()['bulk']['items'], sum(len(d) for d in exp.values()))
        rc, out, err = self.run_rfs('backfill-status', '--target', t.url, '--target-ca-cert', crt, *auth)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('state: complete', out)

    def test_sigv4_target(self):
        """A target that checks AWS SigV4 like Amazon OpenSearch Service (the stand-in's own
        verifier): with the credentials and session token from the environment and gzip bodies
        (the signature covers the compressed bytes) the documents land exactly, over curl and
        over the client's direct bulk connection; a wrong secret or a missing token is the
        service's 403 with its message, and the secret is never printed."""
        creds = ('AKIDSIGV4TEST', 'sigv4/secret+key', 'eu-west-3', 'es', 'TokenSIGV4==')
        t = self.target(sigv4=creds)
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        exp = expected(fixture, snap)
        t.precreate(exp)
        repo = os.path.join(SNAPS, fixture)
        env = {'AWS_ACCESS_KEY_ID': creds[0], 'AWS_SECRET_ACCESS_KEY': creds[1], 'AWS_SESSION_TOKEN': creds[4],
               'AWS_SHARED_CREDENTIALS_FILE': '/nonexistent', 'AWS_CONFIG_FILE': '/nonexistent'}
        sig = ('--target-aws-region', 'eu-west-3', '--target-max-retries', '0')
        for bad, want in (({'AWS_SECRET_ACCESS_KEY': 'not-the-secret-77'}, 'signature we calculated does not match'),
                          ({'AWS_SESSION_TOKEN': ''}, 'security token included in the request is invalid')):
            rc, _, err = self.backfill(t, repo, snap, *sig, env=dict(env, **bad))
            self.assertNotEqual(rc, 0)
            self.assertIn('403', err)
            self.assertIn(want, err)
            self.assertNotIn('not-the-secret-77', err)
        rc, _, err = self.backfill(t, repo, snap, *sig, '--target-gzip', '--workers', '2', env=env)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, exp)
        self.assertEqual(t.stats()['bulk']['items'], sum(len(d) for d in exp.values()))

    def test_dry_run(self):
        fixture, snap = 'ES_6_8_Single', 'global_state_snapshot'
        out = os.path.join(self.tmp, 'bulk.ndjson')
        rc, _, err = self.run_rfs('backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap,
                                  '--dry-run', out, '--index-rename', 'posts_2024_01_01=renamed')
        self.assertEqual(rc, 0, err)
        with open(out, 'rb') as f:
            lines = f.read().split(b'\n')
        self.assertEqual(lines[-1], b'')
        lines = lines[:-1]
        self.assertEqual(len(lines) % 2, 0)
        got = {}
        for a, s in zip(lines[::2], lines[1::2]):
            act = json.loads(a)
            self.assertEqual(list(act), ['index'])
            meta = act['index']
            self.assertNotIn('_type', meta)
            self.assertIsInstance(json.loads(s), dict)
            got.setdefault(meta['_index'], {})[(meta['_id'], meta.get('routing', '-'))] = \
                (hashlib.sha256(s).hexdigest(), len(s))
        exp = expected(fixture, snap)
        exp['renamed'] = exp.pop('posts_2024_01_01')
        self.assertEqual(got, exp)
        # typed bodies for Elasticsearch 6 targets
        rc, _, err = self.run_rfs('backfill', '--repo', os.path.join(SNAPS, 'ES_5_6_Updates_Deletes'),
                                  '--snapshot', 'rfs_snapshot', '--dry-run', out, '--dry-run-typed')
        self.assertEqual(rc, 0, err)
        with open(out, 'rb') as f:
            types = sorted(json.loads(line)['index']['_type'] for line in f.read().split(b'\n')[:-1:2])
        self.assertEqual(types, ['type1', 'type2', 'type2'])
        # the "split" strategy for multi-type indices: one type to its own index
        rc, _, err = self.run_rfs('backfill', '--repo', os.path.join(SNAPS, 'ES_5_6_Updates_Deletes'),
                                  '--snapshot', 'rfs_snapshot', '--dry-run', out, '--type-index',
                                  'test_updates_deletes/type1=split_t1')
        self.assertEqual(rc, 0, err)
        with open(out, 'rb') as f:
            idx = sorted(json.loads(line)['index']['_index'] for line in f.read().split(b'\n')[:-1:2])
        self.assertEqual(idx, ['split_t1', 'test_updates_deletes', 'test_updates_deletes'])

    def test_crash_resume_from_checkpoint(self):
        fixture, snap = 'ES_1_7_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.faults([{'path': '*_bulk', 'latency_ms': 120}])
        args = ['--batch-docs', '25', '--inflight', '2', '--lease', '3s', '--checkpoint-interval', '100ms',
                '--poll-interval', '300ms', '--split-docs', '0']
        e = dict(os.environ)
        cmd = [RFS, 'backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap, '--target', t.url,
               '--progress-interval', '0', '--worker-id', 'victim'] + args
        victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e)
        item_id = 'index-1.7.5~0~0~0'
        ck = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st, d = t.json('GET', '/%s/_doc/%s' % (COORD, item_id))
            if st == 200 and d['_source'].get('docs_acked', 0) >= 500:
                ck = d['_source']
                break
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.assertIsNotNone(ck, 'no checkpoint reached')
        st, d = t.json('GET', '/%s/_doc/%s' % (COORD, item_id))
        ck = d['_source']
        self.assertEqual(ck['state'], 'leased')
        self.assertEqual(ck['owner'], 'victim')
        self.assertLess(ck['docs_acked'], total, 'killed too late: the shard was finished')
        # requests of the dead worker still sleeping in the stand-in are counted when they finish
        before, stable_since = t.stats()['bulk']['items'], time.monotonic()
        while time.monotonic() - stable_since < 0.6:
            time.sleep(0.1)
            now = t.stats()['bulk']['items']
            if now != before:
                before, stable_since = now, time.monotonic()
        # status while the dead worker's lease is pending: work remains
        rc, out, _ = self.run_rfs('backfill-status', '--target', t.url)
        self.assertEqual(rc, 3, out)
        t.faults([])
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--worker-id', 'rescuer', *args)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, exp)
        after = t.stats()['bulk']['items']
        resent_by_rescuer = after - before
        # the rescuer resumed at the checkpoint: it sent only what was not acknowledged
        self.assertLessEqual(resent_by_rescuer, total - ck['docs_acked'])
        self.assertLess(resent_by_rescuer, total)
        self.assertLess(after - total, total)       # duplicates overall: less than a shard
        items = t.coord_items()
        it = items[item_id]
        self.assertEqual(it['state'], 'done')
        self.assertEqual(it['owner'], 'rescuer')
        self.assertEqual(it.get('takeovers'), 1)
        self.assertEqual(t.stats()['docs'].get('index-1.7.5'), total)

    def test_paused_worker_loses_lease(self):
        """A worker frozen past its lease: another takes the item over and finishes it; the frozen one,
        resumed, finds its lease gone (409 on the conditional write) and never marks the item."""
        fixture, snap = 'ES_1_7_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.faults([{'path': '*_bulk', 'latency_ms': 100}])
        args = ['--batch-docs', '25', '--inflight', '1', '--lease', '2s', '--checkpoint-interval', '100ms',
                '--poll-interval', '200ms', '--split-docs', '0', '--progress-interval', '0']
        base = [RFS, 'backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap, '--target', t.url]
        sleeper = subprocess.Popen(base + ['--worker-id', 'sleeper'] + args, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        item_id = 'index-1.7.5~0~0~0'
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st, d = t.json('GET', '/%s/_doc/%s' % (COORD, item_id))
            if st == 200 and d['_source'].get('docs_acked', 0) >= 200:
                break
            time.sleep(0.05)
        sleeper.send_signal(signal.SIGSTOP)
        try:
            t.faults([])
            rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--worker-id', 'rescuer', *args)
            self.assertEqual(rc, 0, err)
            done = t.coord_items()[item_id]
            self.assertEqual(done['state'], 'done')
            self.assertEqual(done['owner'], 'rescuer')
            self.assertEqual(done['takeovers'], 1)
        finally:
            sleeper.send_signal(signal.SIGCONT)
        _, err = sleeper.communicate(timeout=60)
        self.assertEqual(sleeper.returncode, 0, err)
        self.assertIn('lost the lease', err)
        after = t.coord_items()[item_id]
        self.assertEqual(after, done)           # the sleeper wrote nothing after the takeover
        self.assert_exact(t, exp)
        self.assertEqual(t.stats()['docs'].get('index-1.7.5'), total)

    def test_sigterm_releases_item(self):
        fixture, snap = 'ES_1_7_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.faults([{'path': '*_bulk', 'latency_ms': 100}])
        args = ['--batch-docs', '25', '--lease', '1h', '--checkpoint-interval', '100ms', '--split-docs', '0',
                '--progress-interval', '0']
        base = [RFS, 'backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap, '--target', t.url]
        p = subprocess.Popen(base + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        item_id = 'index-1.7.5~0~0~0'
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st, d = t.json('GET', '/%s/_doc/%s' % (COORD, item_id))
            if st == 200 and d['_source'].get('docs_acked', 0) >= 100:
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3, err)
        it = t.coord_items()[item_id]
        self.assertEqual(it['state'], 'available')        # released at once, despite the 1h lease
        self.assertGreater(it['docs_acked'], 0)
        self.assertLess(it['docs_acked'], total)
        t.faults([])
        before = t.stats()['bulk']['items']
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, *args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(t.stats()['bulk']['items'] - before, total - it['docs_acked'])
        self.assert_exact(t, exp)

    def test_segment_checksums_streamed_exact(self):
        """--segment-checksums streamed on every fixture, shards split into
        items of a sixth of the documents (one document for the small ones) on
        2 workers (ranges that end inside a segment read its rest to finish the
        check, ranges that start inside one leave it to the range before):
        exactly the documents, every item done."""
        for fixture, snap in fixtures():
            with self.subTest(fixture=fixture, snapshot=snap):
                t = self.target()
                exp = expected(fixture, snap)
                t.precreate(exp)
                split = max(1, sum(len(d) for d in exp.values()) // 6)
                rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--workers', '2',
                                           '--segment-checksums', 'streamed', '--split-docs', str(split))
                self.assertEqual(rc, 0, err)
                self.assert_exact(t, exp)
                items = t.coord_items()
                self.assertTrue(all(i['state'] == 'done' for i in items.values()), items)
                t.stop()
                self.procs.remove(t)

    def damaged_copy(self, fixture, text, at, byte):
        """A copy of the fixture with the byte at text + at replaced, text being
        found in exactly one blob of the shards."""
        repo = os.path.join(self.tmp, 'repo')
        shutil.copytree(os.path.join(SNAPS, fixture), repo)
        hits = []
        for blob in glob.glob(os.path.join(repo, 'indices', '*', '0', '__*')):
            with open(blob, 'rb') as f:
                data = bytearray(f.read())
            i = data.find(text)
            if i >= 0:
                data[i + at:i + at + 1] = byte
                with open(blob, 'wb') as f:
                    f.write(data)
                hits.append(blob)
        self.assertEqual(len(hits), 1)
        return repo

    def test_segment_checksums_damaged_segment(self):
        """One letter of a document changed inside the stored fields of a copy
        of the ES 7.10 fixture (an LZ4 literal, so the document still decodes,
        as "sanple"): first (the default) sends nothing of it and retries the
        item until it fails; streamed fails the item at once, naming the
        segment whose documents may be damaged; off sends the damaged
        document."""
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        repo = self.damaged_copy(fixture, b'a sample blog p', 4, b'n')
        exp = expected(fixture, snap)['posts_2023_02_25']
        for mode in ('first', 'streamed', 'off'):
            with self.subTest(mode=mode):
                t = self.target()
                rc, _, err = self.backfill(t, repo, snap, '--index', 'posts_2023_02_25', '--segment-checksums', mode,
                                           '--max-item-attempts', '2', '--poll-interval', '100ms')
                items = list(t.coord_items().values())
                self.assertEqual(len(items), 1)
                if mode == 'off':
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(items[0]['state'], 'done')
                    (doc_id, _), = exp.keys()
                    st, src = t.raw('GET', '/posts_2023_02_25/_source/%s' % doc_id)
                    self.assertEqual(st, 200)
                    self.assertIn(b'a sanple blog post', src)
                else:
                    self.assertEqual(rc, 1, err)
                    self.assertEqual(items[0]['state'], 'failed')
                    self.assertIn('checksum failed', items[0]['error'])
                    self.assertEqual(t.stats()['bulk']['items'], 0)   # one document: its batch was held back
                    if mode == 'first':
                        self.assertEqual(items[0]['attempts'], 2)
                        self.assertNotIn('may be damaged', items[0]['error'])
                    else:
                        self.assertEqual(items[0].get('attempts', 0), 0)   # not retried
                        self.assertIn('documents of segment _0 may be damaged', items[0]['error'])
                        self.assertIn('may be damaged', err)
                t.stop()
                self.procs.remove(t)
        # the second segment of posts_2024_01_01 (two documents) damaged the
        # same way, the shard split into one-document items: the item that
        # starts at the segment's first document ends inside it and reads the
        # rest to finish the check (the item after it leaves the check to it,
        # as with first)
        shutil.rmtree(repo)
        repo = self.damaged_copy(fixture, b'her Man In Me', 12, b'x')   # "The Other Man In Mx": its 2nd document
        t = self.target()
        rc, _, err = self.backfill(t, repo, snap, '--index', 'posts_2024_01_01', '--segment-checksums', 'streamed',
                                   '--split-docs', '1', '--poll-interval', '100ms')
        self.assertEqual(rc, 1, err)
        items = sorted(t.coord_items().values(), key=lambda i: (i['start_seg'], i['start_doc']))
        self.assertEqual([(i['start_seg'], i['start_doc'], i['end_seg'], i['end_doc'], i['state']) for i in items],
                         [(0, 0, 1, 0, 'done'), (1, 0, 1, 1, 'failed'), (1, 1, 2, 0, 'done')])
        self.assertIn('documents of segment _1 may be damaged', items[1]['error'])
        rc, _, err = self.run_rfs('backfill', '--repo', repo, '--snapshot', snap, '--dry-run', '/dev/null',
                                  '--segment-checksums', 'sometimes')
        self.assertEqual(rc, 2)
        self.assertIn('--segment-checksums first|streamed|off', err)

    def test_unreadable_shard_fails_item(self):
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        repo = os.path.join(self.tmp, 'repo')
        shutil.copytree(os.path.join(SNAPS, fixture), repo)
        # truncate every data blob of the shards: lengths no longer match the file lists
        for victim in glob.glob(os.path.join(repo, 'indices', '*', '0', '__*')):
            with open(victim, 'r+b') as f:
                f.truncate(os.path.getsize(victim) // 2)
        t = self.target()
        rc, _, err = self.backfill(t, repo, snap, '--max-item-attempts', '2', '--poll-interval', '100ms')
        self.assertEqual(rc, 1, err)
        self.assertIn('work items failed', err)
        items = t.coord_items()
        failed = [i for i in items.values() if i['state'] == 'failed']
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]['attempts'], 2)
        self.assertTrue(failed[0]['error'])
        rc, out, _ = self.run_rfs('backfill-status', '--target', t.url)
        self.assertEqual(rc, 1, out)
        self.assertIn('failed: ', out)
        self.assertEqual(t.json('GET', '/%s/_doc/_done' % COORD)[0], 404)
        # failed items: --cleanup keeps the index (the failures are in it) unless --force
        rc, out, _ = self.run_rfs('backfill-status', '--target', t.url, '--cleanup')
        self.assertEqual(rc, 1, out)
        self.assertIn('not deleted: items failed', out)
        self.assertEqual(t.json('GET', '/%s' % COORD)[0], 200)
        rc, out, err = self.run_rfs('backfill-status', '--target', t.url, '--cleanup', '--force')
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(t.json('GET', '/%s' % COORD)[0], 404)

    def test_missing_shard_metadata_others_go_on(self):
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        repo = os.path.join(self.tmp, 'repo')
        shutil.copytree(os.path.join(SNAPS, fixture), repo)
        # the shard file list of the index with 3 documents disappears
        with open(os.path.join(repo, 'index.latest'), 'rb') as f:
            gen = int.from_bytes(f.read(), 'big')
        with open(os.path.join(repo, 'index-%d' % gen)) as f:
            index_id = json.load(f)['indices']['posts_2024_01_01']['id']
        victims = glob.glob(os.path.join(repo, 'indices', index_id, '0', 'snap-*.dat'))
        self.assertEqual(len(victims), 1)
        os.unlink(victims[0])
        t = self.target()
        rc, _, err = self.backfill(t, repo, snap, '--max-item-attempts', '1', '--poll-interval', '100ms')
        self.assertEqual(rc, 1, err)
        items = t.coord_items()
        self.assertEqual(sorted(i['state'] for i in items.values()), ['done', 'failed'])
        exp = expected(fixture, snap)
        self.assertEqual(t.docs('posts_2023_02_25'), exp['posts_2023_02_25'])
        failed = [i for i in items.values() if i['state'] == 'failed'][0]
        self.assertEqual(failed['index'], 'posts_2024_01_01')
        self.assertIn('snap-', failed['error'])

    def test_source_types_like_docs(self):
        """SMILE, CBOR, LZF and JSON sources (a Lucene 8 index written by real Lucene with
        tests/integration/rfs/SourceTypes.java) land on the target exactly as `docs` writes them;
        the YAML one is in the failures file, and so is the one without _source (not skipped
        unseen)."""
        jars = '/usr/share/java/lucene-core-8.7.0.jar'
        if not shutil.which('javac') or not os.path.exists(jars):
            self.skipTest('javac or liblucene8-java missing')
        gen = os.path.join(SRC, 'tests', 'integration', 'rfs', 'SourceTypes.java')
        src_test = os.path.join(SRC, 'tests', 'integration', 'rfs', 'source_types_test.py')
        if not os.path.exists(gen) or not os.path.exists(src_test):
            self.skipTest('SourceTypes.java missing')
        with open(os.path.join(SRC, 'tests', 'unit', 'test_smile.c')) as f:
            csrc = f.read()
        start = csrc.index('ALL_TOKENS_HEX[] =')
        smile_hex = ''.join(part.split('"')[1] for part in csrc[start:csrc.index(';', start)].split('\n')[1:])
        cbor_hex = 'd9d9f7bf61610161629f0203ff6163c249010000000000000000ff'
        lzf_hex = (b'ZV\x00\x00\x05{"lzf' + b'ZV\x01\x00\x05\x00\x04\x03":1}').hex()
        subprocess.run(['javac', '-d', self.tmp, '-cp', jars, gen], check=True)
        idx = os.path.join(self.tmp, 'index')
        os.mkdir(idx)
        subprocess.run(['java', '-cp', self.tmp + ':' + jars, 'SourceTypes', idx, smile_hex, cbor_hex, lzf_hex],
                       check=True, stdout=subprocess.DEVNULL)
        rc, out, _ = self.run_rfs('docs', '--lucene-dir', idx, '--index', 'src')
        want = {}
        for line in out.encode().split(b'\n')[:-1]:
            d = json.loads(line)
            raw = line[line.index(b'"_source":') + 10:-1]
            want[(d['_id'], '-')] = (hashlib.sha256(raw).hexdigest(), len(raw))
        self.assertEqual(sorted(k[0] for k in want), ['cbor-doc', 'json-doc', 'lzf-doc', 'smile-doc'])
        t = self.target()
        fails = os.path.join(self.tmp, 'failures.ndjson')
        rc, _, err = self.run_rfs('backfill', '--lucene-dir', idx, '--index', 'src', '--target', t.url,
                                  '--progress-interval', '0', '--failures-file', fails)
        self.assertEqual(rc, 1, err)
        self.assertEqual(t.docs('src'), want)
        with open(fails) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual([(r['id'], r['error']['type']) for r in recs],
                         [('yaml-doc', 'source_conversion'), ('nosource-doc', 'no_source')])
        self.assertIn('cannot be re-indexed', recs[1]['error']['reason'])

    def outage(self, *extra):
        """Backfills ES_1_7_5 through an OutageProxy that refuses connections
        for 6 s once 300 documents are checkpointed; returns stderr after
        checking the exact end state."""
        fixture, snap = 'ES_1_7_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.faults([{'path': '*_bulk', 'latency_ms': 60}])
        px = OutageProxy(t.port)
        self.procs.append(px)
        cmd = [RFS, 'backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap, '--target', px.url,
               '--progress-interval', '0', '--batch-docs', '25', '--split-docs', '0', '--checkpoint-interval',
               '100ms', '--poll-interval', '300ms', '--target-backoff-base', '10ms', '--target-backoff-cap', '200ms',
               *extra]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        acked = 0
        while time.monotonic() < deadline and acked < 300:
            st, d = t.json('GET', '/%s/_doc/index-1.7.5~0~0~0' % COORD)
            acked = d['_source'].get('docs_acked', 0) if st == 200 else 0
            time.sleep(0.05)
        self.assertGreaterEqual(acked, 300, 'no checkpoint before the outage')
        px.down()
        time.sleep(6)      # the client's own retries (10-200 ms backoff, 5 retries) end long before
        self.assertIsNone(p.poll(), 'the backfill gave up during the outage')
        px.up()
        # (the default --lease is 5 minutes: waiting for it would time out here)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn('connection refused', err)
        self.assert_exact(t, exp)
        items = t.coord_items()
        self.assertTrue(all(i['state'] == 'done' for i in items.values()), items)
        self.assertEqual(sum(i['docs_acked'] for i in items.values()), total)
        self.assertLess(t.stats()['bulk']['items'] - total, total)   # resumed from the checkpoint
        self.assertTrue(all(i.get('takeovers', 0) == 0 for i in items.values()), items)
        return err

    def test_target_outage_rides_through(self):
        """The target refuses connections for far longer than the HTTP
        retries last (a node restart): requests wait for it (--target-down-wait,
        default 5m) and the backfill ends exact, no item attempt lost."""
        err = self.outage()
        self.assertRegex(err, r'target http://127\.0\.0\.1:[0-9]+ unreachable \(connection refused\): waiting '
                              r'for it, requests are retried for up to [0-9]+ s more')
        self.assertNotIn('attempt 1 failed', err)

    def test_target_outage_past_down_wait_resumes_own_item(self):
        """An outage longer than --target-down-wait fails the item attempt and
        the write of its end; the worker, still alive, takes its own item back
        at once instead of waiting out its 5-minute lease."""
        err = self.outage('--target-down-wait', '1s', '--bulk-retries', '0')
        self.assertIn('attempt 1 failed', err)
        self.assertRegex(err, r'connection refused after [0-9]+ attempts \(unreachable for [0-9]+ s\)')

    def test_unreachable_target_fails_fast(self):
        """A target that never answered is a wrong URL, not an outage: the
        normal retries, then a clear error (exit 1), no down wait."""
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        t0 = time.monotonic()
        rc, _, err = self.run_rfs('backfill', '--repo', os.path.join(SNAPS, 'ES_1_7_5'), '--snapshot', 'test_1',
                                  '--target', 'http://127.0.0.1:%d' % port, '--progress-interval', '0',
                                  '--target-backoff-base', '10ms', '--target-backoff-cap', '100ms', timeout=60)
        self.assertEqual(rc, 1, err)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertIn('127.0.0.1:%d' % port, err)
        self.assertIn('connection refused', err)
        self.assertNotIn('waiting for it', err)

    def test_two_processes_split_work(self):
        fixture, snap = 'ES_2_4_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.precreate(exp)
        t.faults([{'path': '*_bulk', 'latency_ms': 80}])
        procs = []
        for n in range(2):
            cmd = [RFS, 'backfill', '--repo', os.path.join(SNAPS, fixture), '--snapshot', snap, '--target', t.url,
                   '--progress-interval', '100ms', '--worker-id', 'w%d' % n, '--split-docs', '250', '--batch-docs', '50',
                   '--inflight', '1', '--poll-interval', '200ms']
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            # live progress, plain lines when stderr is not a terminal
            self.assertRegex(err, r'backfill: [0-9.]+s docs_acked=[0-9]+ docs_rejected=0 docs_per_s=')
            self.assertNotIn('\r', err)
        self.assert_exact(t, exp)
        items = t.coord_items()
        self.assertGreaterEqual(len(items), 8)
        self.assertTrue(all(i['state'] == 'done' for i in items.values()))
        owners = {i['owner'] for i in items.values()}
        self.assertEqual(owners, {'w0', 'w1'})
        # no item was done twice: every document was sent exactly once
        self.assertEqual(sum(i['docs_acked'] for i in items.values()), total)
        self.assertEqual(t.stats()['bulk']['items'], total)
        self.assertTrue(all(i.get('takeovers', 0) == 0 for i in items.values()))

    def test_faults_still_exact(self):
        fixture, snap = 'ES_2_4_5', 'test_1'
        exp = expected(fixture, snap)
        total = sum(len(d) for d in exp.values())
        t = self.target()
        t.precreate(exp)
        t.faults([
            {'path': '*_bulk', 'status': 429, 'count': 4},
            {'path': '*_bulk', 'status': 503, 'count': 3},
            {'path': '*_bulk', 'status': 502, 'count': 2},
            {'path': '*_bulk', 'drop': True, 'count': 3},
            {'path': '*_bulk', 'bulk_item_status': 429, 'item_count': 40},
        ])
        fails = os.path.join(self.tmp, 'failures.ndjson')
        rc, out, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--batch-docs', '100',
                                     '--failures-file', fails, '--workers', '2', '--split-docs', '700',
                                     '--target-gzip')
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, exp)
        st = t.stats()
        self.assertGreaterEqual(st['faults_injected'], 12)
        self.assertGreaterEqual(st['bulk']['items_rejected'], 40)
        self.assertFalse(os.path.exists(fails) and os.path.getsize(fails))
        self.assertEqual(sum(i['docs_acked'] for i in t.coord_items().values()), total)

    def test_mapping_rejection_in_failures_file(self):
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        exp = expected(fixture, snap)
        t = self.target()
        st, r = t.json('PUT', '/test-index', {'mappings': {'dynamic': 'strict', 'properties': {}}})
        self.assertEqual(st, 200, r)
        fails = os.path.join(self.tmp, 'failures.ndjson')
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--failures-file', fails)
        self.assertEqual(rc, 1, err)
        self.assertIn('rejected', err)
        with open(fails) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual(sorted((r['index'], r['id']) for r in recs),
                         sorted(('test-index', k[0]) for k in exp['test-index']))
        for r in recs:
            self.assertEqual(r['status'], 400)
            self.assertEqual(r['error']['type'], 'strict_dynamic_mapping_exception')
            self.assertIn('reason', r['error'])
            self.assertIsInstance(r['source'], dict)
        self.assertEqual(t.docs('test-index'), {})
        rc, out, _ = self.run_rfs('backfill-status', '--target', t.url, '--json')
        self.assertEqual(rc, 1, out)
        self.assertEqual(json.loads(out)['docs_rejected'], len(recs))

    def test_ingest_pipelines(self):
        """The snapshot's documents already went through the source's ingest pipelines: by default
        the bulk requests say pipeline=_none, so an index whose index.default_pipeline is not on
        the target (the stand-in has no pipelines, like a cluster they were not migrated to)
        still gets every document; --ingest-pipeline default lets the default pipeline run (here:
        every document rejected, "pipeline with id [enrich] does not exist", in the failures
        file); --ingest-pipeline NAME runs NAME; a final pipeline runs whatever is asked."""
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        exp = expected(fixture, snap)
        repo = os.path.join(SNAPS, fixture)
        ndocs = len(exp['test-index'])

        def target_with(settings):
            t = self.target()
            st, r = t.json('PUT', '/test-index', {'settings': settings, 'mappings': {'dynamic': False}})
            self.assertEqual(st, 200, r)
            return t

        t = target_with({'index.default_pipeline': 'enrich'})
        rc, _, err = self.backfill(t, repo, snap, '--index', 'test-index')
        self.assertEqual(rc, 0, err)
        self.assertEqual(t.docs('test-index'), exp['test-index'])
        for settings, extra, missing in (({'index.default_pipeline': 'enrich'}, ['--ingest-pipeline', 'default'],
                                          'enrich'),
                                         ({}, ['--ingest-pipeline', 'geo/ip v2'], 'geo/ip v2'),
                                         ({'index.final_pipeline': 'audit'}, [], 'audit')):
            t = target_with(settings)
            fails = os.path.join(self.tmp, 'failures-%s.ndjson' % missing.replace('/', '_').replace(' ', '_'))
            rc, _, err = self.backfill(t, repo, snap, '--index', 'test-index', '--failures-file', fails, *extra)
            self.assertEqual(rc, 1, err)
            with open(fails) as f:
                recs = [json.loads(line) for line in f]
            self.assertEqual(len(recs), ndocs, missing)
            self.assertTrue(all(r['error']['reason'] == 'pipeline with id [%s] does not exist' % missing
                                for r in recs), recs[0])
            self.assertEqual(t.docs('test-index'), {})

    def test_write_blocked_index_fails_item_not_documents(self):
        """A block on the target index (index.blocks.write: 403; the flood-stage disk block
        read_only_allow_delete: 429 on OpenSearch) is not the documents' fault: the items fail
        after their retries with the block as the reason, no document goes to the failures
        file; once the block is lifted a new run finishes exactly."""
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        exp = expected(fixture, snap)
        for block, status in (('index.blocks.write', 403), ('index.blocks.read_only_allow_delete', 429)):
            t = self.target()
            st, r = t.json('PUT', '/test-index', {'settings': {block: True}})
            self.assertEqual(st, 200, r)
            fails = os.path.join(self.tmp, 'failures-%d.ndjson' % status)
            rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--failures-file', fails,
                                       '--max-item-attempts', '2', '--poll-interval', '100ms',
                                       '--target-backoff-base', '10ms', '--target-backoff-cap', '50ms')
            self.assertEqual(rc, 1, err)
            self.assertIn('work items failed', err)
            self.assertFalse(os.path.exists(fails) and os.path.getsize(fails), 'documents in the failures file')
            failed = [i for i in t.coord_items().values() if i['state'] == 'failed']
            self.assertTrue(failed)
            for i in failed:
                self.assertIn('item status %d (cluster_block_exception)' % status, i['error'])
            st, r = t.json('PUT', '/test-index/_settings', {block: None})
            self.assertEqual(st, 200, r)
            rc, out, _ = self.run_rfs('backfill-status', '--target', t.url, '--cleanup', '--force')
            self.assertEqual(rc, 0, out)
            rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--failures-file', fails)
            self.assertEqual(rc, 0, err)
            self.assert_exact(t, exp)

    def test_oversized_document_to_failures_file(self):
        """A document whose bulk request alone gets HTTP 413 (larger than the target's
        http.max_content_length) goes to the failures file; the shard's other documents are
        indexed and the item completes (before, the item failed on every attempt)."""
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        exp = expected(fixture, snap)
        t = self.target()
        t.precreate(exp)
        t.faults([{'path': '*_bulk', 'status': 413, 'count': 1}])
        fails = os.path.join(self.tmp, 'failures.ndjson')
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap, '--failures-file', fails,
                                   '--batch-docs', '1', '--max-item-attempts', '1')
        self.assertEqual(rc, 1, err)
        self.assertIn('1 documents were rejected', err)
        with open(fails) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]['status'], 413)
        self.assertEqual(recs[0]['error']['type'], 'request_entity_too_large')
        self.assertIsInstance(recs[0]['source'], dict)
        want = {k: v for k, v in exp['test-index'].items() if k[0] != recs[0]['id']}
        self.assertEqual(len(want), len(exp['test-index']) - 1)
        self.assertEqual(t.docs('test-index'), want)
        self.assertEqual(sorted(i['state'] for i in t.coord_items().values()), ['done'])

    def test_s3_same_as_fs_and_errors(self):
        fixture, snap = 'OS_2_11_Deletes_w_Soft_Multi_Seg', 'rfs_snapshot'
        s3 = S3(self.tmp, ['snaps=' + SNAPS])
        self.procs.append(s3)
        env = {'AWS_ACCESS_KEY_ID': 'AKIDBACKFILL', 'AWS_SECRET_ACCESS_KEY': 'backfill-secret',
               'AWS_REGION': 'us-east-1'}
        t = self.target()
        rc, _, err = self.backfill(t, 's3://snaps/' + fixture, snap, '--s3-endpoint', s3.url, env=env)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, expected(fixture, snap))
        st = s3.json('GET', '/_standin/stats')[1]
        self.assertGreater(st.get('GET', 0), 0)
        # the reader's other commands open --repo through rfs_dir_open_uri (endpoint from SM_S3_ENDPOINT)
        env_ep = dict(env, SM_S3_ENDPOINT=s3.url)
        rc, out, err = self.run_rfs('snapshots', '--repo', 's3://snaps/' + fixture, env=env_ep)
        self.assertEqual(rc, 0, err)
        self.assertIn(snap, out)
        rc, out, err = self.run_rfs('docs', '--repo', 's3://snaps/' + fixture, '--snapshot', snap, env=env_ep)
        self.assertEqual(rc, 0, err)
        tsv = subprocess.run([PY, os.path.join(SRC, 'tests', 'integration', 'rfs', 'docs_to_tsv.py')], input=out.encode(),
                             capture_output=True, check=True).stdout.decode()
        with open(os.path.join(EXPECTED, '%s.%s.tsv' % (fixture, snap))) as f:
            self.assertEqual(tsv.split('\n'), f.read().split('\n'))
        # the same through ES 1.x LZF blobs and another layout
        t2 = self.target()
        rc, _, err = self.backfill(t2, 's3://snaps/ES_1_7_4_compressed', 'snap1x', '--s3-endpoint', s3.url, env=env)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t2, expected('ES_1_7_4_compressed', 'snap1x'))
        # --segment-checksums streamed downloads the stored fields once instead of twice: same
        # documents, fewer bytes from S3 (a read-ahead window smaller than the files, as real
        # segments are larger than the default 1 MiB window)
        served = {}
        for mode in ('first', 'streamed'):
            s3.json('DELETE', '/_standin/stats')
            tm = self.target()
            exp = expected('ES_2_4_5', 'test_1')
            tm.precreate(exp)
            rc, _, err = self.backfill(tm, 's3://snaps/ES_2_4_5', 'test_1', '--s3-endpoint', s3.url,
                                       '--segment-checksums', mode, '--s3-readahead', '16KiB', env=env)
            self.assertEqual(rc, 0, err)
            self.assert_exact(tm, exp)
            served[mode] = s3.json('GET', '/_standin/stats')[1]['bytes']
        print('S3 bytes served: first %d, streamed %d' % (served['first'], served['streamed']))
        self.assertLess(served['streamed'], served['first'] * 0.75)
        # S3 throttling (503 SlowDown on every 4th request) is retried, with 20 workers sharing one S3 dir
        # (more than its 16 pooled clients): same documents
        slow = S3(self.tmp, ['snaps=' + SNAPS], 'AKIDBACKFILL', 'backfill-secret', '--slowdown-every', '4')
        self.procs.append(slow)
        t3 = self.target()
        exp = expected('ES_2_4_5', 'test_1')
        t3.precreate(exp)
        rc, _, err = self.backfill(t3, 's3://snaps/ES_2_4_5', 'test_1', '--s3-endpoint', slow.url, '--workers', '20',
                                   '--split-docs', '100', '--s3-readahead', '4KiB', env=env)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t3, exp)
        self.assertGreater(slow.json('GET', '/_standin/stats')[1].get('slowdown', 0), 3)
        # wrong secret: 403 naming the key id, never the secret
        bad = dict(env, AWS_SECRET_ACCESS_KEY='not-the-secret-42')
        rc, _, err = self.backfill(t, 's3://snaps/' + fixture, snap, '--s3-endpoint', s3.url,
                                   '--coordination-index', 'other', env=bad)
        self.assertEqual(rc, 1)
        self.assertIn('SignatureDoesNotMatch', err)
        self.assertIn('AKIDBACKFILL', err)
        self.assertNotIn('not-the-secret-42', err)
        bad = dict(env, AWS_ACCESS_KEY_ID='AKIDUNKNOWN')
        rc, _, err = self.backfill(t, 's3://snaps/' + fixture, snap, '--s3-endpoint', s3.url,
                                   '--coordination-index', 'other', env=bad)
        self.assertEqual(rc, 1)
        self.assertIn('InvalidAccessKeyId', err)
        self.assertIn('AKIDUNKNOWN', err)
        # a prefix without a repository: the missing key is named
        rc, _, err = self.backfill(t, 's3://snaps/NoSuchRepo', snap, '--s3-endpoint', s3.url,
                                   '--coordination-index', 'other', env=env)
        self.assertEqual(rc, 1)
        self.assertIn('NoSuchRepo', err)
        rc, _, err = self.backfill(t, 's3://nobucket/x', snap, '--s3-endpoint', s3.url,
                                   '--coordination-index', 'other', env=env)
        self.assertEqual(rc, 1)
        self.assertIn('no such bucket', err)

    def test_s3_session_token(self):
        """Temporary credentials: the S3 stand-in requires the session token on every request,
        signed; with AWS_SESSION_TOKEN set the backfill is exact, without it (or with another
        token) the stand-in's InvalidToken is reported and nothing is sent."""
        s3 = S3(self.tmp, ['snaps=' + SNAPS], 'ASIATEMPORARY', 'temp-secret', '--session-token', 'FwoGZXIvYXdzEXAMPLE')
        self.procs.append(s3)
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        env = {'AWS_ACCESS_KEY_ID': 'ASIATEMPORARY', 'AWS_SECRET_ACCESS_KEY': 'temp-secret', 'AWS_REGION': 'us-east-1'}
        t = self.target()
        exp = expected(fixture, snap)
        t.precreate(exp)
        for token in (None, 'SomeOtherToken'):
            e = dict(env, **({'AWS_SESSION_TOKEN': token} if token else {}))
            rc, _, err = self.backfill(t, 's3://snaps/' + fixture, snap, '--s3-endpoint', s3.url, env=e)
            self.assertEqual(rc, 1, err)
            self.assertIn('InvalidToken', err)
            self.assertNotIn('temp-secret', err)
        self.assertEqual(t.stats()['bulk']['items'], 0)
        rc, _, err = self.backfill(t, 's3://snaps/' + fixture, snap, '--s3-endpoint', s3.url,
                                   env=dict(env, AWS_SESSION_TOKEN='FwoGZXIvYXdzEXAMPLE'))
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, exp)

    def test_status_past_10000_items(self):
        """backfill-status counts with aggregations on the target: past the 10000 documents a
        search returns, the totals, the items left and the exit code stay right, and failed
        items are listed (the first 100, then how many more)."""
        t = self.target()
        fixture, snap = 'ES_7_10_Single', 'global_state_snapshot'
        t.precreate(expected(fixture, snap))
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap)
        self.assertEqual(rc, 0, err)
        real = len(t.coord_items())
        lines = []
        for i in range(10150):
            state = 'done' if i < 10040 else 'failed' if i < 10145 else 'available'
            doc = {'kind': 'item', 'state': state, 'index': 'big', 'shard': i, 'est_docs': 10,
                   'docs_acked': 10 if state == 'done' else 0, 'bytes': 1000 if state == 'done' else 0}
            if state == 'failed':
                doc['error'] = 'boom %d' % i
            lines.append(json.dumps({'index': {'_index': COORD, '_id': 'big~%d~0~0' % i}}))
            lines.append(json.dumps(doc))
        st, r = t.raw('POST', '/_bulk?refresh=true', ('\n'.join(lines) + '\n').encode(), 'application/x-ndjson')
        self.assertEqual(st, 200)
        self.assertFalse(json.loads(r)['errors'])
        self.assertEqual(t.json('DELETE', '/%s/_doc/_done' % COORD)[0], 200)
        rc, out, err = self.run_rfs('backfill-status', '--target', t.url, '--json')
        self.assertEqual(rc, 3, out + err)            # items left: more to do
        s = json.loads(out)
        self.assertEqual(s['items'], real + 10150)
        self.assertEqual(s['done'], real + 10040)
        self.assertEqual(s['failed'], 105)
        self.assertEqual(s['left'], 5)
        self.assertEqual(s['docs'], sum(len(d) for d in expected(fixture, snap).values()) + 10040 * 10)
        rc, out, err = self.run_rfs('backfill-status', '--target', t.url)
        self.assertEqual(rc, 3, out + err)
        self.assertIn('items: %d total, %d done, 0 in progress, 5 left, 105 failed' % (real + 10150, real + 10040), out)
        self.assertEqual(out.count('\nfailed: big~'), 100)
        self.assertIn('failed: ... and 5 more items', out)

    def test_typed_target_and_status_before_setup(self):
        t = self.target('elasticsearch-6.8')
        rc, out, _ = self.run_rfs('backfill-status', '--target', t.url)
        self.assertEqual(rc, 3, out)
        self.assertIn('no backfill', out)
        fixture, snap = 'ES_6_8_Single', 'global_state_snapshot'
        rc, _, err = self.backfill(t, os.path.join(SNAPS, fixture), snap)
        self.assertEqual(rc, 0, err)
        self.assert_exact(t, expected(fixture, snap))
        # Elasticsearch 7.10 and OpenSearch 1.3 targets: typeless
        for flavor in ('elasticsearch-7.10', 'opensearch-1.3'):
            t2 = self.target(flavor)
            rc, _, err = self.backfill(t2, os.path.join(SNAPS, 'ES_5_6_Updates_Deletes'), 'rfs_snapshot')
            self.assertEqual(rc, 0, err)
            self.assert_exact(t2, expected('ES_5_6_Updates_Deletes', 'rfs_snapshot'))
        # another snapshot in the same coordination index is refused
        rc, _, err = self.backfill(t, os.path.join(SNAPS, 'ES_7_10_Single'), snap + 'x')
        self.assertEqual(rc, 1)


if __name__ == '__main__':
    if not os.access(RFS, os.X_OK):
        print('SKIP: %s not built' % RFS)
        sys.exit(77)
    unittest.main(verbosity=2)
