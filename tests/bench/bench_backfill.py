#!/usr/bin/python3
"""Backfill benchmark: end-to-end docs/s and MB/s into a sink that discards
bulk bodies (bench_backfill_sink.c; coordination requests are forwarded to the
target stand-in), next to the decode-only speed of the snapshot reader
(bench_backfill_decode.c: the same shards, the same reading work, no output)
in the same run; 1 and 2 workers against 1 and 2 decoding threads.

Input: bench_backfill_corpus.py, an Elasticsearch 7.10-layout snapshot whose
SM_BENCH_SHARDS shards (default 4) are real Lucene 8.7 indices of
SM_BENCH_MB megabytes of _source each (default 300: 981k documents, 1.3 GB
of bulk bodies in all, 140 MB on disk), cached in the build directory (made
once, ~10 s).
The backfill runs with its defaults (one work item per shard, --inflight 2,
--batch-docs 1000, no gzip); SM_BENCH_SEGMENT_CHECKSUMS=streamed runs it and
the decode-only reader with --segment-checksums streamed (one read of the
stored fields instead of two).
Exit 77 when Java/Lucene jars are missing.

Runs are interleaved (decode 1, decode 2, backfill 1, backfill 2, ...),
SM_BENCH_RUNS rounds (default 3); each figure is the best round, with the
range over the rounds. Times are whole processes (start, GET /, setup and
coordination included); CPU is user+sys of the measured process, plus the
sink's for the end-to-end runs (it shares the cores). One extra round with
--target-gzip shows what compressing the bodies costs. From the reader
threads' CPU (the backfill's SM_DEBUG=backfill lines) and all CPU, the bench
also estimates the ratio and the scaling on an idle machine (the shared
build machine rarely is one).
Checks only that every document was sent (no timing assertions)."""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

PY = '/usr/bin/python3'
SRC = os.environ.get('SM_SOURCE_DIR', '.')
BIN = os.environ.get('SM_BINARY_DIR', 'build')
RFS = os.path.join(BIN, 'rfs', 'searchmig-rfs')
HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_of(pid):
    f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')


def start(args, pf):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(pf):
            return p, int(open(pf).read())
        time.sleep(0.05)
    raise RuntimeError('did not start: %s' % args)


def sink_stats(port):
    return json.load(urllib.request.urlopen('http://127.0.0.1:%d/_sink/stats' % port))


def rng(v, fmt):
    return (fmt % min(v)) if len(v) < 2 else ((fmt % min(v)) + '-' + (fmt % max(v)))


def main():
    shards = int(os.environ.get('SM_BENCH_SHARDS', '4'))
    mb = int(os.environ.get('SM_BENCH_MB', '300'))
    runs = int(os.environ.get('SM_BENCH_RUNS', '3'))
    crc_mode = os.environ.get('SM_BENCH_SEGMENT_CHECKSUMS', 'first')
    corpus = os.path.join(BIN, 'bench-backfill', 'corpus-%dx%d' % (shards, mb))
    env = dict(os.environ, SM_SOURCE_DIR=SRC, SM_BINARY_DIR=BIN)
    g = subprocess.run([PY, os.path.join(HERE, 'bench_backfill_corpus.py'), corpus, str(shards), str(mb)], env=env)
    if g.returncode:
        return g.returncode
    repo = os.path.join(corpus, 'repo')
    decoder = os.environ.get('SM_BENCH_DECODE', os.path.join(BIN, 'tests', 'bench_backfill_decode'))
    sink = os.environ.get('SM_BENCH_SINK', os.path.join(BIN, 'tests', 'bench_backfill_sink'))
    tmp = tempfile.mkdtemp(prefix='bf-bench-')
    procs = []
    try:
        pf = os.path.join(tmp, 'target.port')
        tp, tport = start([PY, os.path.join(SRC, 'tests', 'standins', 'target', 'target_standin.py'), '--port', '0',
                           '--port-file', pf], pf)
        procs.append(tp)
        pf = os.path.join(tmp, 'sink.port')
        sp, sport = start([sink, str(tport), pf], pf)
        procs.append(sp)
        ndocs = body = None
        denv = dict(os.environ, SM_LOG_LEVEL='debug', SM_DEBUG='backfill')
        res = {}      # key -> [(wall, cpu[, sink cpu, busiest reader thread cpu])] per round
        seq = [0]

        def decode(threads):
            t0, c0 = time.monotonic(), cpu_children()
            p = subprocess.run([decoder, repo, 'bench', str(threads)], capture_output=True, text=True, check=True,
                               env=dict(os.environ, SM_BENCH_SEGMENT_CHECKSUMS=crc_mode))
            res.setdefault('decode%d' % threads, []).append((time.monotonic() - t0, cpu_children() - c0))
            return int(p.stdout.split()[1])

        def backfill(workers, extra=(), key=None):
            nonlocal body
            seq[0] += 1
            s0, sc0 = sink_stats(sport), cpu_of(sp.pid)
            t0, c0 = time.monotonic(), cpu_children()
            r = subprocess.run([RFS, 'backfill', '--repo', repo, '--snapshot', 'bench', '--target',
                                'http://127.0.0.1:%d' % sport, '--workers', str(workers), '--coordination-index',
                                'bench-%d' % seq[0], '--progress-interval', '0', '--segment-checksums', crc_mode]
                               + list(extra),
                               capture_output=True, text=True, env=denv)
            wall, c = time.monotonic() - t0, cpu_children() - c0
            s1, sc1 = sink_stats(sport), cpu_of(sp.pid)
            if r.returncode or ('%d documents indexed' % ndocs) not in r.stderr:
                raise RuntimeError('backfill failed or did not send every document: %s' % r.stderr)
            reader = {}      # worker -> CPU seconds of its reader thread (debug lines, one per item)
            for m in re.finditer(r'worker (\S+): item .*? reader cpu (\d+) ms', r.stderr):
                reader[m.group(1)] = reader.get(m.group(1), 0) + int(m.group(2)) / 1000
            res.setdefault(key or 'backfill%d' % workers, []).append((wall, c, sc1 - sc0, max(reader.values())))
            if not extra:
                body = s1['bulk_bytes'] - s0['bulk_bytes']

        for _ in range(runs):
            ndocs = decode(1)
            decode(2)
            backfill(1)
            backfill(2)
        backfill(1, ['--target-gzip'], 'gzip1')
        best = {k: min(v, key=lambda x: x[0]) for k, v in res.items()}
        walls = {k: [x[0] for x in v] for k, v in res.items()}
        mbs = body / 1e6
        print('bench_backfill: %d shards, %d documents, %.1f MB of bulk bodies; %d rounds (best, range); '
              'segment checksums %s' % (shards, ndocs, mbs, runs, crc_mode))
        for t in (1, 2):
            k = 'decode%d' % t
            print('decode-only %d thread%s: %.2fs (%s) cpu %.2fs  %.0f docs/s  %.0f MB/s' %
                  (t, 's' if t > 1 else ' ', best[k][0], rng(walls[k], '%.2f'), best[k][1], ndocs / best[k][0],
                   mbs / best[k][0]))
        for w in (1, 2):
            k = 'backfill%d' % w
            ratios = [d[0] / b[0] for d, b in zip(res['decode%d' % w], res[k])]
            print('end-to-end %d worker%s: %.2fs (%s) cpu %.2fs + sink %.2fs  %.0f docs/s  %.0f MB/s  '
                  'ratio to decode-only %d thread%s %.2f (rounds %s)' %
                  (w, 's' if w > 1 else ' ', best[k][0], rng(walls[k], '%.2f'), best[k][1], best[k][2],
                   ndocs / best[k][0], mbs / best[k][0], w, 's' if w > 1 else '',
                   best['decode%d' % w][0] / best[k][0], rng(ratios, '%.2f')))
        g1 = res['gzip1'][0]
        print('end-to-end 1 worker --target-gzip: %.2fs cpu %.2fs  %.0f docs/s  %.0f MB/s (uncompressed)  '
              'ratio to decode-only %.2f' % (g1[0], g1[1], ndocs / g1[0], mbs / g1[0], best['decode1'][0] / g1[0]))
        print('cpu per document: decode %.2f us, end-to-end %.2f us (+ sink %.2f us)' %
              (best['decode1'][1] / ndocs * 1e6, best['backfill1'][1] / ndocs * 1e6,
               best['backfill1'][2] / ndocs * 1e6))
        print('scaling 1 -> 2: end-to-end %.2fx, decode-only %.2fx (the cores this run had)' %
              (best['backfill1'][0] / best['backfill2'][0], best['decode1'][0] / best['decode2'][0]))
        # Without other load on the machine the wall time is at least the
        # busiest thread's CPU (the reader of a worker; one decoding thread)
        # and at least all CPU (backfill + sink) spread over the cores.
        cores = os.cpu_count()
        dcpu = min(x[1] for x in res['decode1'])
        est = {}
        for w in (1, 2):
            v = res['backfill%d' % w]
            est[w] = max(min(x[3] for x in v), min(x[1] + x[2] for x in v) / cores)
        print('cpu-bound estimate on %d idle cores: reader thread %.2fs (1 worker), %.2fs (busiest of 2); ratio to '
              'decode-only 1 worker %.2f, 2 workers %.2f; scaling 1 -> 2 %.2fx' %
              (cores, min(x[3] for x in res['backfill1']), min(x[3] for x in res['backfill2']), dcpu / est[1],
               (dcpu / min(2, cores)) / est[2], est[1] / est[2]))
        st = sink_stats(sport)
        print('sink: %d bulk requests, %.1f MB' % (st['bulk_requests'], st['bulk_bytes'] / 1e6))
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
