#!/usr/bin/python3
"""Server for run_ebpf.py's iov mode: connection i reads with one syscall
family and writes with another, so every hook of ebpf-socket is used:
  0: recvmsg_into (2 buffers) / sendmsg (3 buffers)
  1: os.readv (3 buffers)     / os.writev (3 buffers)
  2: os.read                  / os.write
  3: os.read                  / one os.writev of 1.5 MiB (beyond the 1 MiB per-call limit)
It reads until EOF, then writes the data back reversed (connection 3: a
1.5 MiB pattern), and records both directions in DIR/<i>.c2s|s2c.
Prints its port, serves 4 connections, exits."""
import os
import socket
import sys

rec = sys.argv[1]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print(ls.getsockname()[1], flush=True)
for i in range(4):
    s, _ = ls.accept()
    fd = s.fileno()
    got = bytearray()
    while True:
        if i == 0:
            a, b = bytearray(7), bytearray(65536)
            n, _, _, _ = s.recvmsg_into([a, b])
            chunk = (a + b)[:n]
        elif i == 1:
            bufs = [bytearray(5), bytearray(1000), bytearray(65536)]
            n = os.readv(fd, bufs)
            chunk = b"".join(bufs)[:n]
        else:
            chunk = os.read(fd, 65536)
            n = len(chunk)
        if n == 0:
            break
        got += chunk
    out = bytes(reversed(got)) if i < 3 else bytes(range(256)) * 6144
    if i == 0:
        parts = [out[:10], out[10:20], out[20:]]
        sent = 0
        while sent < len(out):   # sendmsg may send less: resend the rest
            rest = out[sent:]
            sent += s.sendmsg([rest[:10], rest[10:20], rest[20:]])
    elif i == 1 or i == 3:
        parts = [out[:3], out[3:100], out[100:]]
        n = os.writev(fd, parts)
        if n != len(out):
            os.write(fd, out[n:])
    else:
        os.write(fd, out)
    with open(os.path.join(rec, "%d.c2s" % s.getpeername()[1]), "wb") as f:
        f.write(got)
    with open(os.path.join(rec, "%d.s2c" % s.getpeername()[1]), "wb") as f:
        f.write(out)
    s.close()
