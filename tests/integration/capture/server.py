#!/usr/bin/python3
"""Tiny HTTP/1.1 keep-alive server for the capture tests. It records, per
connection, every byte it received and sent (RECORD/<client-port>.c2s and
.s2c), which is exactly what a capture must reassemble.

usage: server.py --bind ADDR --record DIR   (prints the port on stdout)
  GET /small   -> short text        GET /big -> 300000 deterministic bytes
  GET /chunked -> chunked body      POST /echo -> echoes the body
  HEAD any     -> headers only      GET /close -> Connection: close"""
import argparse
import os
import random
import socket
import sys
import threading

BIG = random.Random(42).randbytes(300000)


def read_request(sock, buf, rec):
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        rec.write(d)
        rec.flush()
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    method, path, _ = lines[0].split(b" ", 2)
    hdrs = {}
    for ln in lines[1:]:
        k, v = ln.split(b":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get(b"content-length", b"0"))
    while len(buf) < n:
        d = sock.recv(65536)
        if not d:
            return None, buf
        rec.write(d)
        rec.flush()
        buf += d
    body, buf = buf[:n], buf[n:]
    return (method, path, hdrs, body), buf


def handle(sock, addr, recdir):
    port = addr[1]
    with open(os.path.join(recdir, "%d.c2s" % port), "wb") as rin, \
            open(os.path.join(recdir, "%d.s2c" % port), "wb") as rout:
        def send(b):
            sock.sendall(b)
            rout.write(b)
            rout.flush()
        buf = b""
        while True:
            req, buf = read_request(sock, buf, rin)
            if req is None:
                break
            method, path, hdrs, body = req
            close = path == b"/close" or hdrs.get(b"connection", b"").lower() == b"close"
            extra = b"Connection: close\r\n" if close else b""
            if path == b"/chunked":
                head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + extra + b"\r\n"
                payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"abc" * 100, b"d" * 5000)) + b"0\r\n\r\n"
            else:
                data = {b"/big": BIG, b"/echo": body}.get(path, b"small response\n")
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n%s\r\n" % (
                    len(data), extra)
                payload = data
            send(head if method == b"HEAD" else head + payload)
            if close:
                break
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", required=True)
    a = ap.parse_args()
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((a.bind, a.port))
    ls.listen(64)
    print(ls.getsockname()[1], flush=True)
    while True:
        s, addr = ls.accept()
        threading.Thread(target=handle, args=(s, addr, a.record), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
