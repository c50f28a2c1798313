#!/usr/bin/python3
"""S3 stand-in: serves local directory trees as S3 buckets (read-only) with
SigV4 verification, for searchmig's S3 repository tests.

    /usr/bin/python3 s3_standin.py --port 0 --port-file F --bucket NAME=DIR \
        [--access-key AKID --secret-key SECRET] [--region us-east-1] [--page-size N]

Path-style addressing only (http://host:port/bucket/key). Implements:
  HEAD/GET object (Range: bytes=a-b, a-, -n; 206 + Content-Range; 416),
  GET bucket ?list-type=2 (prefix, delimiter, max-keys, continuation-token,
  start-after; IsTruncated/NextContinuationToken; CommonPrefixes),
  SigV4 header auth: 403 InvalidAccessKeyId for an unknown key id,
  403 SignatureDoesNotMatch when the signature or the payload hash is wrong,
  403 AccessDenied when Authorization is missing; 404 NoSuchBucket/NoSuchKey.
  --session-token T: temporary credentials: 403 InvalidToken unless every
  request carries x-amz-security-token T (and signs it).
  --slowdown-every N: every Nth object/list request gets 503 SlowDown (retry tests).
  GET /_standin/stats: request counts ({"GET": n, "HEAD": n, "LIST": n,
  "bytes": n, "denied": n}); DELETE /_standin/stats resets them.
Only the standard library is used."""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

STATS = {}
LOCK = threading.Lock()


def count(k, n=1):
    with LOCK:
        STATS[k] = STATS.get(k, 0) + n


def enc(s, safe='-_.~'):
    return urllib.parse.quote(s, safe=safe)


def canonical_query(raw):
    if not raw:
        return ''
    parts = []
    for p in raw.split('&'):
        if not p:
            continue
        k, _, v = p.partition('=')
        parts.append((enc(urllib.parse.unquote(k)), enc(urllib.parse.unquote(v))))
    parts.sort()
    return '&'.join('%s=%s' % kv for kv in parts)


def hmac_sha256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'AmazonS3'
    sys_version = ''

    def log_message(self, fmt, *args):
        if self.server.log:
            self.server.log.write('%s\n' % (fmt % args))
            self.server.log.flush()

    def send(self, status, body=b'', headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status, code, message, resource='', head=False, extra=''):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                '<Resource>%s</Resource>%s<RequestId>standin</RequestId></Error>' %
                (code, escape(message), escape(resource), extra)).encode()
        if status == 403:
            count('denied')
        self.send(status, body, {'Content-Type': 'application/xml'}, head)

    def check_auth(self, path, query, head):
        """Verifies SigV4; answers the error and returns False when it fails."""
        if not self.server.access_key:
            return True
        auth = self.headers.get('Authorization')
        if not auth or not auth.startswith('AWS4-HMAC-SHA256 '):
            self.error(403, 'AccessDenied', 'Access Denied', path, head)
            return False
        fields = {}
        for part in auth[len('AWS4-HMAC-SHA256 '):].split(','):
            k, _, v = part.strip().partition('=')
            fields[k] = v
        cred = fields.get('Credential', '').split('/')
        if len(cred) != 5 or cred[4] != 'aws4_request':
            self.error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed', path, head)
            return False
        akid, date, region, service = cred[:4]
        if akid != self.server.access_key:
            self.error(403, 'InvalidAccessKeyId',
                       'The AWS Access Key Id you provided does not exist in our records.', path, head,
                       '<AWSAccessKeyId>%s</AWSAccessKeyId>' % escape(akid))
            return False
        if region != self.server.region or service != 's3':
            self.error(400, 'AuthorizationHeaderMalformed',
                       "The authorization header is malformed; the region '%s' is wrong; expecting '%s'" %
                       (region, self.server.region), path, head)
            return False
        signed = fields.get('SignedHeaders', '').split(';')
        amz_date = self.headers.get('x-amz-date', '')
        payload = self.headers.get('x-amz-content-sha256')
        if 'host' not in signed or not amz_date.startswith(date) or payload is None:
            self.error(403, 'AccessDenied', 'missing signed host, x-amz-date or x-amz-content-sha256', path, head)
            return False
        if self.server.session_token is not None:
            # temporary credentials: the token must come, signed, with every request
            if self.headers.get('x-amz-security-token') != self.server.session_token:
                self.error(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.', path, head)
                return False
            if 'x-amz-security-token' not in signed:
                self.error(403, 'AccessDenied', 'x-amz-security-token is not signed', path, head)
                return False
        body_len = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(body_len) if body_len else b''
        if payload != 'UNSIGNED-PAYLOAD' and payload != hashlib.sha256(body).hexdigest():
            self.error(400, 'XAmzContentSHA256Mismatch',
                       "The provided 'x-amz-content-sha256' header does not match what was computed.", path, head)
            return False
        hdrs = []
        for name in signed:
            vals = self.headers.get_all(name) or []
            hdrs.append('%s:%s\n' % (name, ','.join(' '.join(v.split()) for v in vals)))
        creq = '\n'.join([self.command, path, canonical_query(query), ''.join(hdrs), ';'.join(signed), payload])
        scope = '%s/%s/%s/aws4_request' % (date, region, service)
        sts = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
        k = hmac_sha256(('AWS4' + self.server.secret_key).encode(), date)
        k = hmac_sha256(k, region)
        k = hmac_sha256(k, service)
        k = hmac_sha256(k, 'aws4_request')
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, fields.get('Signature', '')):
            self.error(403, 'SignatureDoesNotMatch',
                       'The request signature we calculated does not match the signature you provided. '
                       'Check your key and signing method.', path, head,
                       '<AWSAccessKeyId>%s</AWSAccessKeyId><StringToSign>%s</StringToSign>'
                       '<CanonicalRequest>%s</CanonicalRequest>' % (escape(akid), escape(sts), escape(creq)))
            return False
        return True

    def do_DELETE(self):
        if self.path.startswith('/_standin/stats'):
            with LOCK:
                STATS.clear()
            return self.send(200, b'{}', {'Content-Type': 'application/json'})
        self.error(405, 'MethodNotAllowed', 'read-only stand-in', self.path)

    def do_HEAD(self):
        self.handle_get(True)

    def do_GET(self):
        self.handle_get(False)

    def handle_get(self, head):
        path, _, query = self.path.partition('?')
        if path.startswith('/_standin/stats'):
            with LOCK:
                body = json.dumps(STATS).encode()
            return self.send(200, body, {'Content-Type': 'application/json'}, head)
        if not self.check_auth(path, query, head):
            return
        if self.server.slowdown_every:
            with LOCK:
                self.server.nreq += 1
                slow = self.server.nreq % self.server.slowdown_every == 0
            if slow:
                count('slowdown')
                return self.error(503, 'SlowDown', 'Please reduce your request rate.', path, head)
        parts = path.lstrip('/').split('/', 1)
        bucket = urllib.parse.unquote(parts[0])
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ''
        root = self.server.buckets.get(bucket)
        if root is None:
            return self.error(404, 'NoSuchBucket', 'The specified bucket does not exist', bucket, head,
                              '<BucketName>%s</BucketName>' % escape(bucket))
        if not key:
            return self.list_objects(bucket, root, urllib.parse.parse_qs(query, keep_blank_values=True), head)
        fpath = os.path.join(root, *key.split('/'))
        if '..' in key.split('/') or not os.path.isfile(fpath):
            return self.error(404, 'NoSuchKey', 'The specified key does not exist.', key, head,
                              '<Key>%s</Key>' % escape(key))
        size = os.path.getsize(fpath)
        hdrs = {'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes',
                'Last-Modified': formatdate(os.path.getmtime(fpath), usegmt=True),
                'ETag': '"%s"' % hashlib.md5(fpath.encode()).hexdigest()}
        rng = self.headers.get('Range')
        start, end, status = 0, size - 1, 200
        if rng and not head:
            try:
                unit, _, spec = rng.partition('=')
                a, _, b = spec.partition('-')
                if unit.strip() != 'bytes' or ',' in spec:
                    raise ValueError
                if a == '':
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                if start >= size or start > end:
                    return self.error(416, 'InvalidRange', 'The requested range is not satisfiable', key, head,
                                      '<ActualObjectSize>%d</ActualObjectSize>' % size)
                status = 206
                hdrs['Content-Range'] = 'bytes %d-%d/%d' % (start, end, size)
            except ValueError:
                pass
        if head:
            count('HEAD')
            self.send_response(200)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header('Content-Length', str(size))
            self.end_headers()
            return
        with open(fpath, 'rb') as f:
            f.seek(start)
            data = f.read(end - start + 1) if size else b''
        count('GET')
        count('bytes', len(data))
        self.send(status, data, hdrs)

    def list_objects(self, bucket, root, q, head):
        count('LIST')
        if q.get('list-type', [''])[0] != '2':
            return self.error(400, 'InvalidArgument', 'only ListObjectsV2 (list-type=2) is implemented', bucket,
                              head)
        prefix = q.get('prefix', [''])[0]
        delim = q.get('delimiter', [''])[0]
        max_keys = int(q.get('max-keys', ['1000'])[0])
        max_keys = min(max_keys, self.server.page_size)
        token = q.get('continuation-token', [''])[0]
        after = base64.urlsafe_b64decode(token.encode()).decode() if token else q.get('start-after', [''])[0]
        keys = []
        for dirpath, _, files in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for f in files:
                k = f if rel == '.' else rel.replace(os.sep, '/') + '/' + f
                if k.startswith(prefix):
                    keys.append(k)
        keys.sort()
        entries = []     # (sort key, is_prefix, name)
        seen = set()
        for k in keys:
            rest = k[len(prefix):]
            if delim and delim in rest:
                cp = prefix + rest[:rest.index(delim) + len(delim)]
                if cp not in seen:
                    seen.add(cp)
                    entries.append((cp, True))
            else:
                entries.append((k, False))
        entries = [e for e in entries if e[0] > after]
        page, more = entries[:max_keys], len(entries) > max_keys
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
               '2006-03-01/"><Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>'
               '<Delimiter>%s</Delimiter><IsTruncated>%s</IsTruncated>' %
               (escape(bucket), escape(prefix), len(page), max_keys, escape(delim), 'true' if more else 'false')]
        if more:
            out.append('<NextContinuationToken>%s</NextContinuationToken>' %
                       base64.urlsafe_b64encode(page[-1][0].encode()).decode())
        for name, is_prefix in page:
            if not is_prefix:
                fp = os.path.join(root, *name.split('/'))
                out.append('<Contents><Key>%s</Key><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>'
                           % (escape(name), os.path.getsize(fp)))
        for name, is_prefix in page:
            if is_prefix:
                out.append('<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>' % escape(name))
        out.append('</ListBucketResult>')
        self.send(200, ''.join(out).encode(), {'Content-Type': 'application/xml'}, head)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--bucket', action='append', default=[], help='NAME=DIR (repeatable)')
    ap.add_argument('--access-key', default='AKIDSTANDIN')
    ap.add_argument('--secret-key', default='standin-secret')
    ap.add_argument('--no-auth', action='store_true', help='accept unsigned requests')
    ap.add_argument('--session-token', help='temporary credentials: require this x-amz-security-token, signed')
    ap.add_argument('--region', default='us-east-1')
    ap.add_argument('--page-size', type=int, default=1000, help='largest ListObjectsV2 page')
    ap.add_argument('--slowdown-every', type=int, default=0, help='503 SlowDown on every Nth request')
    ap.add_argument('--log')
    a = ap.parse_args()
    srv = ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    srv.daemon_threads = True
    srv.buckets = {}
    for b in a.bucket:
        name, _, d = b.partition('=')
        srv.buckets[name] = os.path.abspath(d)
    srv.access_key = None if a.no_auth else a.access_key
    srv.secret_key = a.secret_key
    srv.session_token = a.session_token
    srv.region = a.region
    srv.page_size = max(1, a.page_size)
    srv.slowdown_every = max(0, a.slowdown_every)
    srv.nreq = 0
    srv.log = open(a.log, 'a') if a.log else None
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % port)
        os.rename(tmp, a.port_file)
    print('s3 stand-in listening on http://127.0.0.1:%d' % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
