#!/usr/bin/python3
"""Backfill benchmark: end-to-end docs/s and MB/s into a sink that discards
bulk bodies (bench_backfill_sink.c; coordination requests are forwarded to the
target stand-in), next to the decode-only speed of the reader (`searchmig-rfs docs`
to /dev/null) on the same Lucene index in the same run; 1 and 2 workers.

Input: a Lucene index written by tests/lucene-gen (GenIndex bench, real
Lucene 8.7; SM_BENCH_MB megabytes of _source, default 60), read with
`backfill --lucene-dir`. Exit 77 when Java/Lucene jars are missing.
Each figure is the best of 2 runs (whole processes).
Prints one line per measurement and checks only that everything was sent
(no timing assertions)."""
import json
import os
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
JARS = '/usr/share/java/lucene-core-8.7.0.jar:/usr/share/java/lucene-backward-codecs-8.7.0.jar'


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start(args, pf):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(pf):
            return p, int(open(pf).read())
        time.sleep(0.05)
    raise RuntimeError('did not start: %s' % args)


def main():
    if not (shutil.which('java') and shutil.which('javac') and os.path.exists(JARS.split(':')[0])):
        print('SKIP: java/javac/liblucene8-java missing')
        return 77
    mb = int(os.environ.get('SM_BENCH_MB', '60'))
    tmp = tempfile.mkdtemp(prefix='bf-bench-')
    procs = []
    try:
        classes = os.path.join(BIN, 'lucene-gen', 'classes')
        if not os.path.exists(os.path.join(classes, 'GenIndex.class')):
            env = dict(os.environ, SM_SOURCE_DIR=SRC, SM_BINARY_DIR=BIN)
            subprocess.run(['sh', os.path.join(SRC, 'tests', 'lucene-gen', 'run.sh'), 'compile'], check=True, env=env)
        idx = os.path.join(tmp, 'idx')
        subprocess.run(['java', '-cp', JARS + ':' + classes, 'GenIndex', 'write', idx, 'speed', 'nocfs', 'bench',
                        str(mb)], check=True, stdout=subprocess.DEVNULL)
        # decode only: the reader's iterator, no output (best of 2 runs, as the end-to-end runs)
        decoder = os.environ.get('SM_BENCH_DECODE', os.path.join(BIN, 'tests', 'bench_backfill_decode'))
        dec_s = dec_cpu = None
        for _ in range(2):
            t0, c0 = time.monotonic(), cpu()
            p = subprocess.run([decoder, idx], capture_output=True, text=True, check=True)
            s, c = time.monotonic() - t0, cpu() - c0
            dec_s = s if dec_s is None else min(dec_s, s)
            dec_cpu = c if dec_cpu is None else min(dec_cpu, c)
        ndocs = int(p.stdout.split()[1])
        out = subprocess.run([RFS, 'backfill', '--lucene-dir', idx, '--index', 'bench', '--dry-run', '-'],
                             capture_output=True, check=True).stdout
        body_bytes = len(out)
        print('bench_backfill: %d documents, %.1f MB of bulk bodies' % (ndocs, body_bytes / 1e6))
        print('decode-only: %.2fs (cpu %.2fs) %.0f docs/s %.1f MB/s' % (dec_s, dec_cpu, ndocs / dec_s,
                                                                        body_bytes / 1e6 / dec_s))
        pf = os.path.join(tmp, 'target.port')
        tp, tport = start([PY, os.path.join(SRC, 'tests', 'standins', 'target', 'target_standin.py'), '--port', '0',
                           '--port-file', pf], pf)
        procs.append(tp)
        pf = os.path.join(tmp, 'sink.port')
        sink = os.environ.get('SM_BENCH_SINK', os.path.join(BIN, 'tests', 'bench_backfill_sink'))
        sp, sport = start([sink, str(tport), pf], pf)
        procs.append(sp)
        results = {}
        for workers in (1, 2):
            best = best_cpu = None
            for run in range(2):
                t0, c0 = time.monotonic(), cpu()
                r = subprocess.run([RFS, 'backfill', '--lucene-dir', idx, '--index', 'bench', '--target',
                                    'http://127.0.0.1:%d' % sport, '--workers', str(workers), '--coordination-index',
                                    'bench-%d-%d' % (workers, run), '--split-docs', str(max(1, ndocs // 8)),
                                    '--progress-interval', '0', '--inflight', '2'], capture_output=True, text=True)
                secs, c = time.monotonic() - t0, cpu() - c0
                if r.returncode:
                    print(r.stderr)
                    return 1
                if ('%d documents indexed' % ndocs) not in r.stderr:
                    print('not every document was sent:', r.stderr)
                    return 1
                best = secs if best is None else min(best, secs)
                best_cpu = c if best_cpu is None else min(best_cpu, c)
            results[workers] = best
            print('end-to-end %d worker%s: %.2fs (cpu %.2fs) %.0f docs/s %.1f MB/s (ratio to decode-only %.2f)' %
                  (workers, 's' if workers > 1 else '', best, best_cpu, ndocs / best, body_bytes / 1e6 / best,
                   dec_s / best))
        stats = json.load(urllib.request.urlopen('http://127.0.0.1:%d/_sink/stats' % sport))
        print('sink: %d bulk requests, %.1f MB' % (stats['bulk_requests'], stats['bulk_bytes'] / 1e6))
        print('scaling 1 -> 2 workers: %.2fx' % (results[1] / results[2]))
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
