#!/usr/bin/python3
"""searchmig console: bad configuration gives clear errors naming the key or
the host; clusters check reports versions, unreachable clusters and wrong
credentials against real stand-in clusters."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ["SM_SOURCE_DIR"]
BIN = os.environ["SM_BINARY_DIR"]
CONSOLE = os.path.join(BIN, "console", "searchmig")
STANDIN = os.path.join(SRC, "tests", "standins", "target", "target_standin.py")
TMP = tempfile.mkdtemp(prefix="sm-console-")


def start(flavor, *extra):
    pf = os.path.join(TMP, flavor + ".port")
    p = subprocess.Popen(["/usr/bin/python3", STANDIN, "--port", "0", "--port-file", pf, "--flavor", flavor, *extra],
                         stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(pf) and os.path.getsize(pf):
            break
        time.sleep(0.1)
    with open(pf) as f:
        return p, "http://127.0.0.1:" + f.read().strip()


def run(yaml, *args, env=None):
    path = os.path.join(TMP, "m.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    e = dict(os.environ)
    e.pop("SM_SOURCE_PASSWORD", None)
    e.pop("SM_TARGET_PASSWORD", None)
    e.update(env or {})
    return subprocess.run([CONSOLE, "--config", path, *args], capture_output=True, text=True, env=e, timeout=60)


class Console(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.src, cls.src_url = start("elasticsearch-7.10", "--username", "admin", "--password", "s3cret")
        cls.tgt, cls.tgt_url = start("opensearch-2.11")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.src, cls.tgt):
            p.terminate()
            p.wait()

    def yaml(self, src_user="admin"):
        return (f"source:\n  url: {self.src_url}\n  username: {src_user}\n"
                f"target:\n  url: {self.tgt_url}\nwork-dir: {TMP}/work\n")

    def test_unknown_key_names_it_and_suggests(self):
        r = run("source:\n  url: http://x:9200\n  usernme: bob\n", "clusters", "check")
        self.assertEqual(r.returncode, 2)
        self.assertIn("m.yaml:3: unknown key 'source-usernme' (did you mean 'source-username'?)", r.stderr)

    def test_bad_value_names_key(self):
        r = run("backfill-workers: lots\n", "clusters", "check")
        self.assertEqual(r.returncode, 2)
        self.assertIn("backfill-workers", r.stderr)
        self.assertIn("m.yaml:1", r.stderr)

    def test_yaml_syntax_error(self):
        r = run("source: [unclosed\n", "clusters", "check")
        self.assertEqual(r.returncode, 2)
        self.assertIn("YAML error", r.stderr)

    def test_check_ok_with_password_from_env(self):
        r = run(self.yaml(), "clusters", "check", env={"SM_SOURCE_PASSWORD": "s3cret"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("elasticsearch  7.10.2", r.stdout)
        self.assertIn("opensearch     2.11", r.stdout)
        self.assertIn("supported", r.stdout)
        self.assertNotIn("s3cret", r.stdout + r.stderr)

    def test_wrong_credentials(self):
        r = run(self.yaml(), "clusters", "check", env={"SM_SOURCE_PASSWORD": "wrong"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stdout)
        self.assertIn(self.src_url, r.stdout)

    def test_unreachable_host_named(self):
        r = run(f"source:\n  url: http://127.0.0.1:9\ntarget:\n  url: {self.tgt_url}\nwork-dir: {TMP}/work\n",
                "clusters", "check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAILED", r.stdout)
        self.assertIn("http://127.0.0.1:9/: connection refused", r.stdout)

    def test_missing_setting_named(self):
        r = run(f"target:\n  url: {self.tgt_url}\nwork-dir: {TMP}/work\n", "metadata", "evaluate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("'snapshot.repo' is not set", r.stderr)


if __name__ == "__main__":
    res = unittest.main(exit=False, verbosity=2).result
    print(f"{res.testsRun - len(res.failures) - len(res.errors)} passed, {len(res.failures) + len(res.errors)} failed")
    sys.exit(0 if res.wasSuccessful() else 1)
