#!/usr/bin/env bash
# Builds the Debian packages, installs them on this machine with dpkg, checks
# the installed files work (versions, a short offline capture, unit files),
# then removes and purges them and checks nothing is left behind.
# Needs root and dpkg; exits 77 (skipped) otherwise, or when a searchmig
# package is already installed (we never touch a user's installation).
set -euo pipefail
bin=${SM_BINARY_DIR:?}
src=${SM_SOURCE_DIR:?}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root for dpkg -i"; exit 77; }
command -v dpkg >/dev/null || { echo "SKIP: no dpkg"; exit 77; }
if dpkg-query -W -f='${Status}' searchmig searchmig-agent 2>/dev/null | grep -q installed; then
  echo "SKIP: searchmig packages already installed here"; exit 77
fi
work=$(mktemp -d)
cleanup() {
  dpkg --purge searchmig searchmig-agent >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }

(cd "$bin" && cpack -G DEB -B "$work" >/dev/null)
agent_deb=$(ls "$work"/searchmig-agent_*.deb)
tools_deb=$(ls "$work"/searchmig_*.deb)
echo "built: $(basename "$agent_deb") $(basename "$tools_deb")"

# runtime dependencies come from shlibdeps: the agent must depend on libpcap
dpkg-deb -f "$agent_deb" Depends | grep -q libpcap || fail "agent package does not depend on libpcap"
dpkg-deb -f "$tools_deb" Depends | grep -q libcurl || fail "tools package does not depend on libcurl"

dpkg -i "$agent_deb" "$tools_deb" >/dev/null
getent passwd searchmig >/dev/null || fail "system user searchmig not created"
[[ -d /var/lib/searchmig ]] || fail "/var/lib/searchmig missing"
[[ $(stat -c %U /var/lib/searchmig) == searchmig ]] || fail "/var/lib/searchmig not owned by searchmig"
[[ -f /etc/searchmig/agent.conf ]] || fail "/etc/searchmig/agent.conf missing"
dpkg-query -W -f='${Conffiles}\n' searchmig-agent | grep -q /etc/searchmig/agent.conf || fail "agent.conf is not a conffile"
for t in searchmig-agent searchmig-rfs searchmig-replay searchmig; do
  /usr/bin/$t --version | grep -q "$t" || fail "$t --version"
  [[ -f /usr/share/man/man1/$t.1.gz ]] || fail "man page for $t missing"
done

# a short offline capture with the installed agent
/usr/bin/python3 - "$work/http.pcap" <<'PY'
import sys
from scapy.all import IP, TCP, Ether, wrpcap
c, s = ("10.0.0.1", 40000), ("10.0.0.2", 9200)
req = b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\n\r\n"
resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
pk = [Ether()/IP(src=c[0], dst=s[0])/TCP(sport=c[1], dport=s[1], flags="S", seq=100),
      Ether()/IP(src=s[0], dst=c[0])/TCP(sport=s[1], dport=c[1], flags="SA", seq=500, ack=101),
      Ether()/IP(src=c[0], dst=s[0])/TCP(sport=c[1], dport=s[1], flags="A", seq=101, ack=501),
      Ether()/IP(src=c[0], dst=s[0])/TCP(sport=c[1], dport=s[1], flags="PA", seq=101, ack=501)/req,
      Ether()/IP(src=s[0], dst=c[0])/TCP(sport=s[1], dport=c[1], flags="PA", seq=501, ack=101+len(req))/resp,
      Ether()/IP(src=c[0], dst=s[0])/TCP(sport=c[1], dport=s[1], flags="FA", seq=101+len(req), ack=501+len(resp)),
      Ether()/IP(src=s[0], dst=c[0])/TCP(sport=s[1], dport=c[1], flags="FA", seq=501+len(resp), ack=102+len(req))]
wrpcap(sys.argv[1], pk)
PY
/usr/bin/searchmig-agent --pcap "$work/http.pcap" --port 9200 --output "$work/records.log" --node-id pkgtest
[[ -s "$work/records.log" ]] || fail "installed agent wrote no records"
/usr/bin/python3 -c '
import base64, sys
data = b"".join(base64.b64decode(l) for l in open(sys.argv[1]) if l.strip())
sys.exit(0 if b"GET /_cluster/health" in data and b"HTTP/1.1 200 OK" in data else 1)' "$work/records.log" \
  || fail "records do not hold the request and response"

# unit files
for u in searchmig-agent.service searchmig-replay@.service searchmig-backfill@.service; do
  f=/lib/systemd/system/$u
  [[ -f $f ]] || f=/usr/lib/systemd/system/$u
  [[ -f $f ]] || fail "$u not installed"
  out=$(systemd-analyze verify --man=no "$f" 2>&1 || true)
  if grep -v "Failed to \(connect\|create\|open\)" <<<"$out" | grep -q .; then
    fail "systemd-analyze verify $u: $out"
  fi
done

files=$(dpkg -L searchmig-agent searchmig | grep -v '^/etc/' | while read -r f; do [[ -f $f ]] && echo "$f"; done)
dpkg -r searchmig searchmig-agent >/dev/null
for f in $files; do [[ ! -e $f ]] || fail "$f left after dpkg -r"; done
[[ -f /etc/searchmig/agent.conf ]] || fail "conffile removed by dpkg -r (must stay until purge)"
dpkg --purge searchmig searchmig-agent >/dev/null
[[ ! -e /etc/searchmig/agent.conf ]] || fail "conffile left after purge"
[[ ! -e /var/lib/searchmig ]] || fail "/var/lib/searchmig left after purge"
echo "1 passed, 0 failed"
