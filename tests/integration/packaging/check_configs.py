#!/usr/bin/python3
"""Every shipped way of starting a tool parses: the config examples through the
systemd units' ExecStart lines, and the command lines of the Kubernetes
manifests and the compose file, run with --check-config (full option parse:
config file, environment, command line; prints the settings, exits 0). A
config with a typo must fail with exit 2 naming the closest key.
Usage: check_configs.py SOURCE_DIR BUILD_DIR"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

SRC, BUILD = sys.argv[1], sys.argv[2]
PK = os.path.join(SRC, "packaging")
TOOLS = {
    "searchmig-agent": os.path.join(BUILD, "agent", "searchmig-agent"),
    "searchmig-replay": os.path.join(BUILD, "replay", "searchmig-replay"),
    "searchmig-rfs": os.path.join(BUILD, "rfs", "searchmig-rfs"),
}
failures = []
checked = 0


def check(argv, what, expect=None):
    """argv[0] is a tool name or /usr/bin path; runs it with --check-config."""
    global checked
    tool = TOOLS[os.path.basename(argv[0])]
    p = subprocess.run([tool] + argv[1:] + ["--check-config"], capture_output=True, text=True)
    ok = p.returncode == 0 and "configuration ok" in p.stdout
    for k, v in (expect or {}).items():
        if f"{k} = {v}\n" not in p.stdout:
            ok = False
            p.stderr += f"\n(expected '{k} = {v}' in the printed settings)"
    if not ok:
        failures.append(f"{what}: {' '.join(argv)}: rc={p.returncode}\n{p.stdout[-800:]}{p.stderr[-800:]}")
    checked += 1
    return p


# systemd units with the example configs in place of /etc/searchmig/*.conf
examples = {
    "agent.conf": "agent.conf.example",
    "backfill.conf": "backfill.conf.example",
    "replay-%i.conf": "replay-main.conf.example",
}
for unit in sorted(os.listdir(os.path.join(PK, "systemd"))):
    text = open(os.path.join(PK, "systemd", unit)).read()
    for m in re.finditer(r"^ExecStart=(.*)$", text, re.M):
        argv = shlex.split(m.group(1))
        for i, a in enumerate(argv):
            if a.startswith("/etc/searchmig/"):
                argv[i] = os.path.join(PK, "config", examples[os.path.basename(a)])
        check(argv, f"systemd/{unit}")

# values from the examples really arrive (the file was read, not ignored)
check(["searchmig-replay", "--config", os.path.join(PK, "config", "replay-main.conf.example")],
      "replay example values", {"kafka-topic": "logging-traffic-topic", "remove-auth-header": "true",
                                "summary-interval": "30000ms", "tuples-gzip": "true"})

# Dockerfiles: ENTRYPOINT + CMD as the image runs by default
def dockerfile_argv(path):
    text = open(path).read()
    ep = yaml.safe_load(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))
    cmd = re.search(r"^CMD (.*)$", text, re.M)
    return ep, yaml.safe_load(cmd.group(1)) if cmd else []


def localize(argv):
    """configs mounted from ConfigMaps/volumes: stand in with the shipped examples"""
    return [os.path.join(PK, "config", examples.get(os.path.basename(a), "agent.conf.example"))
            if a.startswith("/etc/searchmig/") and a.endswith(".conf") else a for a in argv]


for f in sorted(os.listdir(os.path.join(PK, "docker"))):
    ep, cmd = dockerfile_argv(os.path.join(PK, "docker", f))
    if cmd != ["--help"]:
        check(localize(ep + cmd), f"docker/{f}")

# Kubernetes manifests and the compose file: command + args of each container
def containers(doc):
    if isinstance(doc, dict):
        if "image" in doc or "build" in doc:
            yield doc
        for v in doc.values():
            yield from containers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from containers(v)


for d in ("k8s", "compose"):
    for f in sorted(os.listdir(os.path.join(PK, d))):
        for doc in yaml.safe_load_all(open(os.path.join(PK, d, f))):
            for c in containers(doc):
                if d == "k8s":
                    cmd, args = c.get("command"), c.get("args")
                    image_ep = ["searchmig-agent"] if "agent" in c.get("image", "") else None
                else:
                    if "build" not in c:
                        continue   # third-party images (Kafka, OpenSearch)
                    cmd, args = c.get("entrypoint"), c.get("command")
                    image_ep = dockerfile_argv(os.path.join(SRC, c["build"]["dockerfile"]))[0]
                if cmd is None:
                    cmd = image_ep
                if cmd is None or os.path.basename(cmd[0]) not in TOOLS:
                    continue
                check(localize(list(cmd) + list(args or [])), f"{d}/{f}")

# a typo in a config file: exit 2, the closest key named
with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as t:
    t.write("target = http://localhost:9200\nspeedup-facter = 2\n")
p = subprocess.run([TOOLS["searchmig-replay"], "--config", t.name, "--check-config"], capture_output=True, text=True)
os.unlink(t.name)
if p.returncode != 2 or "speedup-factor" not in p.stderr:
    failures.append(f"typo not reported: rc={p.returncode} {p.stderr}")
checked += 1

if failures:
    print("\n\n".join(failures))
    sys.exit(1)
print(f"ok: {checked} command lines checked")
assert checked >= 11, checked   # 3 units + example values + 1 Dockerfile + 3 k8s + 2 compose + typo
