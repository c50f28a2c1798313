#!/usr/bin/python3
"""eBPF capture engines against real traffic (curl -> the capture tests'
server.py, which records every byte it received and sent per connection).

  lo       pcap, ebpf-tc and ebpf-socket capture the same loopback traffic at
           once (IPv4 and IPv6); each equals the server's record byte for byte
  netns    the same across a veth pair between two network namespaces
           (pcap and ebpf-tc on the server's veth, ebpf-socket from the root
           namespace without naming an interface)
  ports    a port added to the kernel port map while running is captured
           from then on, without restart (both eBPF engines)
  procfilter  ebpf-socket --cgroup DIR (a server in a cgroup below DIR) and
           --pid (another server) each record only their server's connections;
           one switched from --pid to --cgroup while running follows
  compat   a server that makes a 32-bit call (int $0x80, ia32 getpid) with a
           64-bit writev's registers on the connection before its real
           write: ebpf-socket records only the real bytes
  detach   after SIGTERM no program, filter or qdisc of ours remains
  cleanup  filters left by a SIGKILLed ebpf-tc are removed by --cleanup and
           by the next start
Exit 77 (skipped) where BPF or namespaces are not permitted."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "capture", "server.py")
sys.path.insert(0, os.path.join(HERE, "..", "capture"))
import capcommon  # noqa: E402
BIN = os.path.join(os.environ.get("SM_BINARY_DIR", "."), "tests", "capture_dump")
SKIP = 77


class Skip(Exception):
    pass


def start_server(recdir, bind, prefix=()):
    p = subprocess.Popen(list(prefix) + ["/usr/bin/python3", SERVER, "--bind", bind, "--record", recdir],
                         stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def workload(urls, work, prefix=()):
    payload = os.path.join(work, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(300000))   # > 1 syscall, > 1 ring-buffer event
    for base in urls:
        for c in (["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                   base + "/small", base + "/big", base + "/chunked"],
                  ["curl", "-sS", "-o", "/dev/null", "-H", "Expect:", "--data-binary", "@" + payload, base + "/echo"],
                  ["curl", "-sS", "-o", "/dev/null", "-I", base + "/small"],
                  ["curl", "-sS", "-o", "/dev/null", base + "/close"]):
            subprocess.run(list(prefix) + c, check=True, timeout=30)


class Dump:
    def __init__(self, work, name, args, prefix=()):
        self.out = os.path.join(work, name)
        os.makedirs(self.out)
        self.ready = os.path.join(work, name + ".ready")
        self.errf = open(os.path.join(work, name + ".err"), "w+")
        self.name = name
        self.p = subprocess.Popen(list(prefix) + [BIN, "--out", self.out, "--ready-file", self.ready] + list(args),
                                  stderr=self.errf)

    def wait_ready(self, secs=40):
        end = time.time() + secs
        while time.time() < end:
            if os.path.exists(self.ready):
                return
            if self.p.poll() is not None:
                self.errf.seek(0)
                msg = self.errf.read().strip()
                if self.p.returncode == SKIP:
                    raise Skip("%s: %s" % (self.name, msg))
                raise RuntimeError("%s exited %d: %s" % (self.name, self.p.returncode, msg))
            time.sleep(0.05)
        raise RuntimeError("%s not ready" % self.name)

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise RuntimeError("%s did not stop" % self.name)
        if sig == signal.SIGTERM and self.p.returncode != 0:
            self.errf.seek(0)
            raise RuntimeError("%s exited %d: %s" % (self.name, self.p.returncode, self.errf.read()))

    def log(self):
        self.errf.seek(0)
        return self.errf.read()


def stop_all(dumps):
    for d in dumps:
        try:
            d.stop()
        except Exception:  # noqa: BLE001 - report the first failure below
            pass


def sh(cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def prog_ids(pid):
    """BPF programs held by a process (fdinfo prog_id of its fds)."""
    ids = set()
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def tcx_links(pid):
    """(ifindex, attach_type) of the tcx links a process holds (fdinfo of its link fds)."""
    links = []
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if info.get("link_type", "").strip() == "tcx":
            links.append((int(info["ifindex"]), info["attach_type"].split()[0]))
    return sorted(links)


def prog_type(i):
    """bpftool's type of program id i ("sched_cls", "tracing", "tracepoint", ...)."""
    out = sh(["bpftool", "prog", "show", "id", str(i)], check=False).stdout
    parts = out.split(":", 1)[1].split() if ":" in out else []
    return parts[0] if parts else "?"


def live_progs(ids, secs=5):
    """Those of ids still loaded (program freeing is deferred: wait a little)."""
    end = time.time() + secs
    while True:
        left = [i for i in ids if sh(["bpftool", "prog", "show", "id", str(i)], check=False).returncode == 0]
        if not left or time.time() > end:
            return left
        time.sleep(0.2)


def our_filters(dev="lo"):
    """TC filters with our priority (21325 = 0x534d) on dev."""
    left = []
    for d in ("ingress", "egress"):
        out = sh(["tc", "filter", "show", "dev", dev, d], check=False).stdout
        if "pref 21325" in out:
            left.append("tc filter %s %s" % (dev, d))
    return left


def has_clsact(dev="lo", prefix=()):
    return "clsact" in sh(list(prefix) + ["tc", "qdisc", "show", "dev", dev], check=False).stdout


def mode_lo(work):
    recdir = os.path.join(work, "rec")
    os.makedirs(recdir)
    srv, port = start_server(recdir, "::")
    dumps = []
    try:
        for eng in ("pcap", "ebpf-tc", "ebpf-socket"):
            args = ["--engine", eng, "--port", str(port)] + (["--iface", "lo"] if eng != "ebpf-socket" else [])
            dumps.append(Dump(work, eng, args))
        for d in dumps:
            d.wait_ready()
        workload(["http://127.0.0.1:%d" % port, "http://[::1]:%d" % port], work)
        time.sleep(1)
    finally:
        stop_all(dumps)
        srv.kill()
        srv.wait()
    rec = capcommon.recorded(recdir)
    errs = []
    for d in dumps:
        errs += capcommon.compare(rec, capcommon.read_result(d.out), "lo " + d.name)
    return errs


def mode_netns(work):
    if not shutil.which("ip"):
        raise Skip("ip not installed")
    tag = "smeb%d" % (os.getpid() % 100000)
    nss, nsc = tag + "s", tag + "c"
    if sh(["ip", "netns", "add", nss], check=False).returncode != 0:
        raise Skip("cannot create network namespaces")
    dumps, srv = [], None
    try:
        sh(["ip", "netns", "add", nsc])
        sh(["ip", "link", "add", tag + "a", "netns", nss, "type", "veth", "peer", "name", tag + "b", "netns", nsc])
        for ns, dev, addr in ((nss, tag + "a", "10.251.0.1/24"), (nsc, tag + "b", "10.251.0.2/24")):
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        ins, inc = ["ip", "netns", "exec", nss], ["ip", "netns", "exec", nsc]
        recdir = os.path.join(work, "rec")
        os.makedirs(recdir)
        srv, port = start_server(recdir, "10.251.0.1", ins)
        for eng in ("pcap", "ebpf-tc"):
            dumps.append(Dump(work, eng, ["--engine", eng, "--iface", tag + "a", "--port", str(port)], ins))
        dumps.append(Dump(work, "ebpf-socket", ["--engine", "ebpf-socket", "--port", str(port)]))
        # the default attach (tcx where the kernel has it) above; classic clsact filters on the
        # client's end of the same link (one ebpf-tc agent per interface)
        dumps.append(Dump(work, "ebpf-tc-classic", ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", tag + "b",
                                                     "--port", str(port)], inc))
        for d in dumps:
            d.wait_ready()
        workload(["http://10.251.0.1:%d" % port], work, inc)
        time.sleep(1)
        stop_all(dumps)
        rec = capcommon.recorded(recdir)
        errs = []
        for d in dumps:
            errs += capcommon.compare(rec, capcommon.read_result(d.out), "netns " + d.name)
        for ns, dev in ((ins, tag + "a"), (inc, tag + "b")):
            if has_clsact(dev, ns):
                errs.append("clsact qdisc left on %s" % dev)
        return errs
    finally:
        stop_all(dumps)
        if srv:
            srv.kill()
            srv.wait()
        sh(["ip", "netns", "del", nsc], check=False)
        sh(["ip", "netns", "del", nss], check=False)


def mode_gone(work):
    """An interface deleted under a running capture: its hooks go with it, so every engine
    attached to it must stop with an error that names it (pcap: libpcap's "The interface
    disappeared"; ebpf-tc with tcx links and with classic filters: checked every second),
    not run on capturing nothing."""
    if not shutil.which("ip"):
        raise Skip("ip not installed")
    tag = "smgn%d" % (os.getpid() % 100000)
    if sh(["ip", "netns", "add", tag], check=False).returncode != 0:
        raise Skip("cannot create network namespaces")
    ins = ["ip", "netns", "exec", tag]
    dumps = []
    try:
        sh(["ip", "-n", tag, "link", "add", tag + "a", "type", "veth", "peer", "name", tag + "b"])
        for dev in (tag + "a", tag + "b"):
            sh(["ip", "-n", tag, "link", "set", dev, "up"])
        dumps = [Dump(work, "pcap", ["--engine", "pcap", "--iface", tag + "a", "--port", "9"], ins),
                 Dump(work, "ebpf-tc", ["--engine", "ebpf-tc", "--iface", tag + "a", "--port", "9"], ins),
                 Dump(work, "ebpf-tc-classic", ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", tag + "b",
                                                "--port", "9"], ins)]
        for d in dumps:
            d.wait_ready()
        ids = set()
        for d in dumps[1:]:
            ids |= prog_ids(d.p.pid)
        sh(["ip", "-n", tag, "link", "del", tag + "a"])   # takes its peer along
        errs = []
        for d in dumps:
            try:
                d.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                errs.append("%s still running 10 s after its interface was deleted" % d.name)
                continue
            log = d.log()
            if d.p.returncode == 0 or "disappeared" not in log:
                errs.append("%s: exit %d, want an error naming the vanished interface: %s"
                            % (d.name, d.p.returncode, log.strip()[-300:]))
        left = live_progs(ids)
        if left:
            errs.append("programs left after the interfaces went: %s" % left)
        return errs
    finally:
        for d in dumps:
            if d.p.poll() is None:
                d.p.kill()
        sh(["ip", "netns", "del", tag], check=False)


def mode_ports(work):
    recdir = os.path.join(work, "rec")
    os.makedirs(recdir)
    srv, port = start_server(recdir, "127.0.0.1")
    dumps = []
    errs = []
    try:
        pf = os.path.join(work, "ports")
        for eng in ("ebpf-tc", "ebpf-socket"):
            args = ["--engine", eng, "--port", "1", "--ports-file", pf] + (["--iface", "lo"] if eng == "ebpf-tc" else [])
            dumps.append(Dump(work, eng, args))
        for d in dumps:
            d.wait_ready()
        url = "http://127.0.0.1:%d/small" % port
        subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True, timeout=30)   # not captured
        before = set(capcommon.recorded(recdir))
        with open(pf, "w") as f:
            f.write("1\n%d\n" % port)
        for d in dumps:
            d.p.send_signal(signal.SIGUSR1)
        for d in dumps:
            end = time.time() + 10
            while not os.path.exists(os.path.join(d.out, "ports-applied")) and time.time() < end:
                time.sleep(0.05)
        time.sleep(0.3)   # the flow table follows on its next 100 ms tick
        subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True, timeout=30)   # captured
        time.sleep(1)
    finally:
        stop_all(dumps)
        srv.kill()
        srv.wait()
    rec = capcommon.recorded(recdir)
    after = {p: r for p, r in rec.items() if p not in before}
    if len(before) != 1 or len(after) != 1:
        return ["expected one connection before and one after the change, got %d/%d" % (len(before), len(after))]
    for d in dumps:
        got = capcommon.read_result(d.out)
        if any(c["cport"] in before for c in got.values()):
            errs.append("%s captured the connection made before its port was added" % d.name)
        errs += capcommon.compare(after, got, "ports " + d.name)
    return errs


def mode_iov(work):
    """readv/writev, recvmsg/sendmsg with several buffers, and a write beyond the
    per-call limit (1 MiB): the rest is an exact "truncated" gap."""
    recdir = os.path.join(work, "rec")
    os.makedirs(recdir)
    srv = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "iov_server.py"), recdir],
                           stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline())
    d = Dump(work, "ebpf-socket", ["--engine", "ebpf-socket", "--port", str(port)])
    try:
        d.wait_ready()
        for i in range(4):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(os.urandom(150000 + i))
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
            c.close()
        srv.wait(timeout=30)
        time.sleep(0.5)
    finally:
        d.stop()
        if srv.poll() is None:
            srv.kill()
    rec = capcommon.recorded(recdir)
    got = capcommon.read_result(d.out)
    bycport = {c["cport"]: c for c in got.values()}
    errs = []
    ports = sorted(rec, key=lambda p: len(rec[p]["c2s"]))   # 150000 + i bytes: order of i
    if len(got) != 4:
        errs.append("captured %d connections, expected 4" % len(got))
    for i, p in enumerate(ports):
        g, r = bycport.get(p), rec[p]
        if not g:
            errs.append("conn %d not captured" % i)
            continue
        if g["c2s"] != r["c2s"]:
            errs.append("conn %d c2s: %d bytes, server read %d" % (i, len(g["c2s"]), len(r["c2s"])))
        if i < 3:
            if g["s2c"] != r["s2c"] or g["gaps"]:
                errs.append("conn %d s2c: %d bytes, server wrote %d, gaps %s" % (i, len(g["s2c"]), len(r["s2c"]), g["gaps"]))
        else:
            # 64 events per call, each within one buffer and <= 16 KiB: buffers of
            # 3 and 97 bytes take one event each, the 1.5 MiB one gets 62
            limit = 3 + 97 + 62 * 16384
            want_gap = [("s2c", len(r["s2c"]) - limit, "truncated")]
            if g["s2c"] != r["s2c"][:limit] or g["gaps"] != want_gap:
                errs.append("conn 3 (1.5 MiB writev): %d bytes, gaps %s; want the first %d bytes and %s"
                            % (len(g["s2c"]), g["gaps"], limit, want_gap))
    return errs


def cgroup2_root():
    """Mount point of the cgroup v2 hierarchy (/sys/fs/cgroup or, hybrid, .../unified)."""
    with open("/proc/mounts") as f:
        for line in f:
            w = line.split()
            if len(w) > 2 and w[2] == "cgroup2":
                return w[1]
    return None


def mode_procfilter(work):
    """ebpf-socket --cgroup and --pid: two servers on two ports, one of them in a
    cgroup v2 directory made here (nested one level below the directory the
    filter names); --cgroup DIR records exactly that server's connections,
    --pid the other's, and an unfiltered dump both."""
    root = cgroup2_root()
    if not root:
        raise Skip("no cgroup v2 hierarchy mounted")
    cg = os.path.join(root, "searchmig-test-%d" % os.getpid())
    inner = os.path.join(cg, "inner")
    try:
        os.mkdir(cg)
        os.mkdir(inner)
    except OSError as e:
        raise Skip("cannot make a cgroup under %s: %s" % (root, e))
    rec_in, rec_out = os.path.join(work, "rec-in"), os.path.join(work, "rec-out")
    os.makedirs(rec_in)
    os.makedirs(rec_out)
    srv_in = srv_out = None
    dumps = []
    try:
        # the shell joins the cgroup, then becomes the server: every thread of it is inside
        srv_in = subprocess.Popen(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec /usr/bin/python3 "$1" --bind '
                                   '127.0.0.1 --record "$2"', inner, SERVER, rec_in], stdout=subprocess.PIPE, text=True)
        port_in = int(srv_in.stdout.readline())
        srv_out, port_out = start_server(rec_out, "127.0.0.1")
        ports = ["--port", str(port_in), "--port", str(port_out)]
        pf = os.path.join(work, "procs")
        with open(pf, "w") as f:
            f.write("%d\n%d\n" % (port_in, port_out))
        dumps = [Dump(work, "cgroup", ["--engine", "ebpf-socket", "--cgroup", cg] + ports),
                 Dump(work, "pid", ["--engine", "ebpf-socket", "--pid", str(srv_out.pid)] + ports),
                 Dump(work, "all", ["--engine", "ebpf-socket"] + ports),
                 # starts on --pid of the outside server, switched to --cgroup while running
                 Dump(work, "switch", ["--engine", "ebpf-socket", "--pid", str(srv_out.pid), "--ports-file", pf]
                      + ports)]
        for d in dumps:
            d.wait_ready()
        urls = ["http://127.0.0.1:%d" % port_in, "http://127.0.0.1:%d" % port_out]
        workload(urls, work)
        time.sleep(1)
        # client ports of the first round, per server (the two servers' clients may share ports)
        first_in, first_out = set(capcommon.recorded(rec_in)), set(capcommon.recorded(rec_out))
        with open(pf, "a") as f:
            f.write("cgroup %s\n" % cg)
        dumps[3].p.send_signal(signal.SIGUSR1)
        end = time.time() + 10
        while not os.path.exists(os.path.join(dumps[3].out, "ports-applied")) and time.time() < end:
            time.sleep(0.05)
        workload(urls, work)
        time.sleep(1)
    finally:
        stop_all(dumps)
        for p in (srv_in, srv_out):
            if p:
                p.kill()
                p.wait()
        for d in (inner, cg):
            try:
                os.rmdir(d)
            except OSError:
                pass
    errs = []
    os.makedirs(os.path.join(work, "bad"), exist_ok=True)
    for args, want in ((["--engine", "ebpf-socket", "--cgroup", work], "not a cgroup v2 directory"),
                       (["--engine", "ebpf-socket", "--cgroup", cg], "No such file"),          # removed above
                       (["--engine", "pcap", "--iface", "lo", "--cgroup", root], "go with --engine ebpf-socket")):
        r = subprocess.run([BIN, "--out", os.path.join(work, "bad"), "--max-seconds", "1", "--port", "9"] + args,
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or want not in r.stderr:
            errs.append("%s: exit %d, expected an error with '%s': %s" % (args, r.returncode, want, r.stderr.strip()))
    r_in, r_out = capcommon.recorded(rec_in), capcommon.recorded(rec_out)
    if not r_in or not r_out:
        return ["the servers recorded %d and %d connections" % (len(r_in), len(r_out))]

    def check(d, want_in, want_out, label):
        """A dump's connections, split by server port (client ports repeat across the two),
        against what each server recorded."""
        got = capcommon.read_result(d.out)
        part_in = {k: c for k, c in got.items() if c["sport"] == port_in}
        part_out = {k: c for k, c in got.items() if c["sport"] == port_out}
        e = []
        if len(part_in) + len(part_out) != len(got):
            e.append("%s: connections to neither server" % label)
        return e + capcommon.compare(want_in, part_in, label + " (cgroup server)") + \
            capcommon.compare(want_out, part_out, label + " (other server)")

    errs += check(dumps[0], r_in, {}, "--cgroup")
    errs += check(dumps[1], {}, r_out, "--pid")
    errs += check(dumps[2], r_in, r_out, "unfiltered")
    sw_in = {p: r for p, r in r_in.items() if p not in first_in}
    sw_out = {p: r for p, r in r_out.items() if p in first_out}
    if not sw_in or not sw_out or len(sw_in) + len(sw_out) != (len(r_in) + len(r_out)) // 2:
        errs.append("rounds: %d + %d of %d connections in the switch's expectation"
                    % (len(sw_in), len(sw_out), len(r_in) + len(r_out)))
    errs += check(dumps[3], sw_in, sw_out, "--pid then --cgroup (SIGUSR1)")
    with open(os.path.join(dumps[3].out, "events.txt")) as f:
        if "procs rc=0 " not in f.read():
            errs.append("the switch's process filter was not applied")
    return errs


def mode_compat(work):
    helper = os.path.join(os.path.dirname(BIN), "compat_server")
    if not os.path.exists(helper):
        raise Skip("compat_server not built")
    portf = os.path.join(work, "compat.port")
    srv = subprocess.Popen([helper, portf, "3"])
    d = None
    try:
        for _ in range(100):
            if os.path.exists(portf) and open(portf).read().strip():
                break
            time.sleep(0.05)
        port = int(open(portf).read())
        d = Dump(work, "ebpf-socket", ["--engine", "ebpf-socket", "--port", str(port)])
        d.wait_ready()
        for i in range(3):
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(b"hi %d\n" % i)
                got = b""
                while True:
                    b = c.recv(100)
                    if not b:
                        break
                    got += b
                if got != b"hello\n":
                    return ["compat_server answered %r" % got]
        if srv.wait(timeout=30) == SKIP:
            raise Skip("compat_server: x86_64 only")
        if srv.returncode != 0:
            return ["compat_server exited %d" % srv.returncode]
        time.sleep(0.5)
        d.stop()
    finally:
        if d:
            d.stop()
        if srv.poll() is None:
            srv.kill()
    got = capcommon.read_result(d.out)
    errs = []
    if len(got) != 3:
        errs.append("captured %d connections, expected 3" % len(got))
    for c in got.values():
        if c["s2c"] != b"hello\n" or c["gaps"]:
            errs.append("port %d s2c %r, gaps %s: want b'hello\\n' only" % (c["cport"], c["s2c"][:40], c["gaps"]))
    return errs


def mode_detach(work):
    had_clsact = has_clsact()
    for sig in (signal.SIGTERM, signal.SIGINT):
        dumps = [Dump(work, "tc%d" % sig, ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", "lo", "--port", "9"]),
                 Dump(work, "sk%d" % sig, ["--engine", "ebpf-socket", "--port", "9"])]
        for d in dumps:
            d.wait_ready()
        ids = set()
        for d in dumps:
            ids |= prog_ids(d.p.pid)
        # ebpf-tc: ingress + egress; ebpf-socket: raw (BTF) tracepoints sys_enter, sys_exit,
        # inet_sock_set_state, and no perf-event syscall tracepoints (each made every system
        # call on the host build a trace record: docs/ebpf.md)
        sock_types = sorted(prog_type(i) for i in prog_ids(dumps[1].p.pid))
        if len(ids) != 2 + 3 or "tc filter lo ingress" not in our_filters() or sock_types != ["tracing"] * 3:
            stop_all(dumps)
            return ["while running, expected our filter, 5 programs, ebpf-socket's 3 of type tracing; saw %s, "
                    "%d programs, ebpf-socket's %s" % (our_filters(), len(ids), sock_types)]
        for d in dumps:
            d.p.send_signal(sig)
        for d in dumps:
            d.p.wait(timeout=30)
            if d.p.returncode != 0:
                return ["%s exited %d on signal %d" % (d.name, d.p.returncode, sig)]
        left = live_progs(ids) + our_filters()
        if left:
            return ["after signal %d left behind: %s" % (sig, left)]
        if has_clsact() and not had_clsact:
            return ["clsact qdisc on lo left behind"]
    # a failed open (no such interface) leaves nothing either
    r = subprocess.run([BIN, "--engine", "ebpf-tc", "--iface", "lo,nosuchif0", "--out", work], capture_output=True,
                       text=True)
    if r.returncode == 0 or "nosuchif0" not in r.stderr:
        return ["open with a missing interface: rc %d, %s" % (r.returncode, r.stderr.strip())]
    left = our_filters()
    return ["after a failed open left behind: %s" % left] if left else []


def tcx_killed(work, had_clsact):
    """The default attach (tcx links on kernels from 6.6): the links die with the process, so
    an agent killed by SIGKILL leaves no program, filter or qdisc behind."""
    d = Dump(work, "tcx", ["--engine", "ebpf-tc", "--iface", "lo", "--port", "9"])
    d.wait_ready()
    links, ids = tcx_links(d.p.pid), prog_ids(d.p.pid)
    d.stop(signal.SIGKILL)
    if not links:
        if "no tcx on this kernel" in d.log():
            return []   # older kernel: the classic path below is the one in use
        return ["default attach: no tcx link held and no fallback reported: " + d.log()]
    errs = []
    if links != [(socket.if_nametoindex("lo"), "46")]:   # BPF_TCX_INGRESS only on loopback
        errs.append("tcx links held: %r, expected lo ingress only" % links)
    if "tcx links attached" not in d.log():
        errs.append("no 'tcx links attached' in the log: " + d.log())
    left = live_progs(ids) + our_filters()
    if left:
        errs.append("a tcx agent killed by SIGKILL left behind: %s" % left)
    if has_clsact() and not had_clsact:
        errs.append("a tcx agent created a clsact qdisc on lo")
    return errs


def mode_cleanup(work):
    had_clsact = has_clsact()
    errs = tcx_killed(work, had_clsact)
    try:
        d = Dump(work, "killed", ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", "lo", "--port", "9"])
        d.wait_ready()
        d.stop(signal.SIGKILL)
        if "tc filter lo ingress" not in our_filters():
            return ["no filter left after SIGKILL: the test cannot check cleanup"]
        agent = os.path.join(os.environ.get("SM_BINARY_DIR", "."), "agent", "searchmig-agent")
        if os.path.exists(agent):   # the agent's own --cleanup
            r = subprocess.run([agent, "--cleanup", "--interface", "lo"], capture_output=True, text=True)
            ok = r.returncode == 0 and "removed 1 TC filter" in r.stderr
        else:
            r = subprocess.run([BIN, "--cleanup", "lo"], capture_output=True, text=True)
            ok = r.returncode == 0 and "removed=1" in r.stdout
        if not ok:
            errs.append("--cleanup lo: rc %d, %s %s" % (r.returncode, r.stdout.strip(), r.stderr.strip()))
        if our_filters():
            errs.append("after --cleanup: %s" % our_filters())
        # a stale filter is also removed by the next start
        d = Dump(work, "killed2", ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", "lo", "--port", "9"])
        d.wait_ready()
        d.stop(signal.SIGKILL)
        d = Dump(work, "next", ["--engine", "ebpf-tc", "--iface", "lo", "--port", "9"])   # any mode removes it
        d.wait_ready()
        d.stop()
        if "removed a stale ingress filter" not in d.log():
            errs.append("next start did not report removing the stale filter: " + d.log())
        if our_filters():
            errs.append("after restart and stop: %s" % our_filters())
        # a live agent's filter is neither replaced by a second agent nor removed by --cleanup
        live = Dump(work, "live", ["--engine", "ebpf-tc", "--tc-attach", "tc", "--iface", "lo", "--port", "9"])
        live.wait_ready()
        before = our_filters()
        second = Dump(work, "second", ["--engine", "ebpf-tc", "--iface", "lo", "--port", "9"])   # tcx or not
        try:
            second.wait_ready()
            second.stop()
            errs.append("a second ebpf-tc agent on lo started beside a live one")
        except RuntimeError as e:
            if "another searchmig-agent is capturing on lo" not in str(e):
                errs.append("second agent on lo: unexpected failure: %s" % e)
        r = subprocess.run([BIN, "--cleanup", "lo"], capture_output=True, text=True)
        if r.returncode != 0 or "removed=0" not in r.stdout:
            errs.append("--cleanup beside a live agent: rc %d, %s %s" % (r.returncode, r.stdout, r.stderr))
        if our_filters() != before or not before:
            errs.append("the live agent's filter changed: %r -> %r" % (before, our_filters()))
        live.stop()
        if our_filters():
            errs.append("after the live agent stopped: %s" % our_filters())
        r = subprocess.run([BIN, "--cleanup", "nosuchif0"], capture_output=True, text=True)
        if r.returncode == 0 or "nosuchif0" not in r.stderr:
            errs.append("--cleanup of a missing interface: rc %d, %s" % (r.returncode, r.stderr))
    finally:
        subprocess.run([BIN, "--cleanup", "lo"], capture_output=True)
        if not had_clsact and has_clsact():   # SIGKILL leaves the qdisc we created
            sh(["tc", "qdisc", "del", "dev", "lo", "clsact"], check=False)
    return errs


def main():
    mode = sys.argv[1]
    if os.geteuid() != 0:
        print("SKIP: needs root (BPF, TC, tracepoints)")
        return SKIP
    if not os.path.exists(BIN):
        print("SKIP: capture_dump not built")
        return SKIP
    work = tempfile.mkdtemp(prefix="ebpf-%s-" % mode)
    try:
        errs = globals()["mode_" + mode](work)
    except Skip as e:
        print("SKIP: %s" % e)
        return SKIP
    for e in errs:
        print("FAIL:", e)
    if errs:
        print("work dir kept:", work)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
