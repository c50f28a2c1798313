#!/usr/bin/python3
"""Every searchmig* command line written in README.md and docs/*.md (code
blocks, with their continuation lines, and inline code) uses only options its
program and subcommand accept, as the programs' own --help lists them; the
option tables of the pages about one program name only that program's options
(hidden ones, marked "(hidden)", must at least be in the program). A renamed or
removed option then fails here instead of leaving a command in the docs that
no longer works. Label unit: runs each program's --help only."""
import glob, os, re, subprocess, sys

SRC = os.environ.get('SM_SOURCE_DIR', '.')
BIN = os.environ.get('SM_BINARY_DIR', 'build')
PROGS = {'searchmig-agent': 'agent/searchmig-agent', 'searchmig-replay': 'replay/searchmig-replay',
         'searchmig-rfs': 'rfs/searchmig-rfs', 'searchmig': 'console/searchmig'}
_help = {}

def help_text(prog, sub):
    """--help of prog [sub...] (sub: a tuple of words), or None when that is not a command"""
    key = (prog, sub)
    if key not in _help:
        exe = os.path.join(BIN, PROGS[prog])
        if not os.path.exists(exe):
            sys.exit('%s is not built (%s)' % (prog, exe))
        args = [exe] + list(sub or ()) + ['--help']
        p = subprocess.run(args, capture_output=True, text=True)
        t = p.stdout + p.stderr
        _help[key] = t if p.returncode == 0 and 'Usage' in t else None
    return _help[key]

def command_help(prog, words):
    """the deepest (sub)command of prog that the leading words name, and its help"""
    lead = []
    for w in words[:2]:
        if not re.match(r'^[a-z][a-z-]*$', w):
            break
        lead.append(w)
    for k in range(len(lead), 0, -1):
        sub = tuple(lead[:k])
        t = help_text(prog, sub)
        if t is not None and t != help_text(prog, None):
            return ' '.join(sub), t
    return None, help_text(prog, None)

def commands(text):
    """(line number, program, words) of each command line in code spans and blocks"""
    out = []
    lines = text.split('\n')
    in_block = False
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.strip().startswith('```'):
            in_block = not in_block
            i += 1
            continue
        cands = []
        if in_block:
            cmd, j = l, i
            # continuation lines: a trailing backslash, or (usage synopses)
            # indented lines after a command line
            while j + 1 < len(lines) and (cmd.rstrip().endswith('\\') or
                                          ('searchmig' in l and re.match(r'^\s+[\[-]', lines[j + 1]))):
                j += 1
                cmd = cmd.rstrip().rstrip('\\') + ' ' + lines[j]
            cands.append(cmd)
            i = j
        else:
            cands += re.findall(r'`([^`]*)`', l)
        for c in cands:
            for m in re.finditer(r'(?:^|[\s;|&(/])(searchmig(?:-agent|-replay|-rfs)?)(?=\s)(.*)', c):
                prog, rest = m.group(1), m.group(2)
                rest = re.split(r'\s(?:\||&&|;|#)\s', rest)[0]
                out.append((i + 1, prog, rest.split()))
        i += 1
    return out

# option tables (rows starting "| `--") of the pages about one program: the
# options of any of the programs listed
TABLES = {'agent.md': [('searchmig-agent', None)], 'replay.md': [('searchmig-replay', None)],
          'http-client.md': [('searchmig-rfs', ('backfill',)), ('searchmig-replay', None)]}

def known(flag, t):
    return t is not None and re.search(r'(^|[\s,\[(|])' + re.escape(flag) + r'([\s=,\]|)]|$)', t, re.M)

def main():
    bad = 0
    checked = 0
    files = [os.path.join(SRC, 'README.md')] + sorted(glob.glob(os.path.join(SRC, 'docs', '*.md')))
    for f in files:
        text = open(f).read()
        for ln, prog, words in commands(text):
            sub, t = command_help(prog, words)
            for flag in re.findall(r'(?<![\w-])--[a-z0-9][a-z0-9-]*', ' '.join(words)):
                checked += 1
                if not known(flag, t):
                    bad += 1
                    print('%s:%d: %s%s: unknown option %s' % (os.path.relpath(f, SRC), ln, prog,
                                                            ' ' + sub if sub else '', flag))
        for ln, row in enumerate(text.split('\n'), 1):
            progs = TABLES.get(os.path.basename(f))
            if not progs or not row.startswith('| `--'):
                continue
            cell = row.split('|')[1]
            for flag in re.findall(r'(?<![\w-])--[a-z0-9][a-z0-9-]*(?![\w*-])', cell):
                checked += 1
                if '(hidden)' in cell:   # not in --help: the name must be in the program
                    ok = any(flag[2:].encode() in open(os.path.join(BIN, PROGS[p]), 'rb').read() for p, _ in progs)
                else:
                    ok = any(known(flag, help_text(p, sub)) for p, sub in progs)
                if not ok:
                    bad += 1
                    print('%s:%d: option table: %s is not an option of %s' % (os.path.relpath(f, SRC), ln, flag,
                          ' or '.join(p + (' ' + ' '.join(sub) if sub else '') for p, sub in progs)))
    print('%d options checked in %d files, %d unknown' % (checked, len(files), bad))
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
