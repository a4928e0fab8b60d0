#!/usr/bin/env python3
"""Import cycles between the library's modules (harness/), in code that is not test-only.

An edge A -> B when the non-test code of module A names an item of module B (crate::, super::,
self:: paths or a child module's name). Test-only code (`#[cfg(test)]` modules, inline or
files) is left out: a test may use any fake. A module's file includes its inline modules, whose
`super::` is resolved from where they stand. Prints each cycle (strongly connected component of
more than one module) and exits 1 when there is one.

A directory whose root is mod.rs (suites/) is a module included by other crates, not a
crate: there `crate::` names the including crate (its macros, its library), which is outside
the directory and makes no edge.

usage: ci/import-cycles.py [harness-dir | suites-dir]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "harness"
files = {}
included = os.path.exists(os.path.join(root, "mod.rs"))
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith(".rs"):
            continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        if rel.startswith(("bin/", "benches/")):
            continue
        parts = rel[:-3].split("/")
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        files[tuple(parts)] = p
mods = set(files)


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def block_end(text, open_at):
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


test_files = set()
for m, p in files.items():
    parent = files.get(m[:-1]) if m else None
    if parent and re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + re.escape(m[-1]) + r"\s*;",
                            strip(open(parent).read())):
        test_files.add(m)


def regions(text, base):
    """(text, module path) pieces of a file: inline modules get their own path; test modules
    are dropped."""
    out = []
    pos = 0
    for mt in re.finditer(r"(#\[cfg\(test\)\]\s*)?(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", text):
        if mt.start() < pos:
            continue
        end = block_end(text, mt.end() - 1)
        out.append((text[pos:mt.start()], base))
        if not mt.group(1) and mt.group(4) != "tests":
            out.extend(regions(text[mt.end():end], base + (mt.group(4),)))
        pos = end + 1
    out.append((text[pos:], base))
    return out


def resolve(segs):
    for k in range(len(segs), -1, -1):
        if tuple(segs[:k]) in mods:
            return tuple(segs[:k])
    return None


def absolute(segs, m, base, children):
    """The module path `segs` names from module `m` (at `base`, inside an inline module), or
    None when it does not start at crate, self, super or a child module of `m`."""
    if segs[0] == "crate":
        return None if included else segs[1:]
    if segs[0] == "self":
        return list(base) + segs[1:]
    if segs[0] == "super":
        b = list(base)
        i = 0
        while i < len(segs) and segs[i] == "super":
            b = b[:-1]
            i += 1
        return b + segs[i:]
    if segs[0] in children:
        return list(m) + segs
    return None


edges = {m: set() for m in mods if m not in test_files}
for m, p in files.items():
    if m in test_files:
        continue
    for text, base in regions(strip(open(p).read()), m):
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
        for mt in re.finditer(r"\b((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            full = absolute(mt.group(1).split("::"), m, base, children)
            target = resolve(full) if full is not None else None
            if target is not None and target != m and target in edges:
                edges[m].add(target)
        for grp in re.finditer(r"\buse\s+(\w+(?:::\w+)*)::\{([^;]*)\};", text):
            pre = absolute(grp.group(1).split("::"), m, base, children)
            if pre is None:
                continue
            for item in re.findall(r"\b(\w+)(?:::(\w+))?", grp.group(2)):
                target = resolve(pre + [x for x in item if x])
                if target is not None and target != m and target in edges:
                    edges[m].add(target)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        visit(v)
cycles = [c for c in sccs if len(c) > 1]
name = lambda m: "::".join(m) or "lib"
for c in cycles:
    print("import cycle: " + " <-> ".join(sorted(name(m) for m in c)))
print(f"{len(edges)} modules, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycles")
sys.exit(1 if cycles else 0)
