#!/usr/bin/env python3
"""Lists the cycles among the "uses" edges of a `cargo modules dependencies`
graph (a dot file or standard input); exits 1 if there is one."""
import re, sys
edges = {}
for line in (open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin):
    m = re.match(r'\s*"([^"]+)" -> "([^"]+)" \[label="uses"', line)
    if m:
        a, b = m.groups()
        edges.setdefault(a, set()).add(b); edges.setdefault(b, set())
sys.setrecursionlimit(10000)
idx, low, st, on, sccs, i = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = i[0]; i[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        c = []
        while True:
            w = st.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
for v in sorted(edges):
    if v not in idx: sc(v)
for c in sccs:
    print('CYCLE:', ' '.join(c))
    for a in c:
        for b in sorted(edges[a]):
            if b in c: print('   ', a, '->', b)
print(len(edges), 'modules,', sum(len(e) for e in edges.values()), '"uses" edges,', len(sccs), 'cycles')
sys.exit(1 if sccs else 0)
