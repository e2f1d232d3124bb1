#!/usr/bin/env python3
"""Check the crate's layering (README, "Layout"): which top-level module may import which, and no import
circles between files.

A module's imports are the paths it names: `crate::..`, `super::..`, `self::..` and, in a module with
children, `child::..`. A module naming its own descendants (a parent using the children it declares) is
not counted; a child using its parent's shared types is. Tests (`#[cfg(test)] mod tests`) are left out.

`python3 tools/check_layers.py` exits 1 with the offending files when a rule is broken (tests/run.sh runs
it); `--graph` prints every import between top-level modules.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# What each top-level module may import, lowest first (lib.rs and main.rs assemble everything).
# The workspace's own crates count as layers too (`crates/`).
CRATES = {"iai_policy"}
MAY_IMPORT = {
    "admission": set(),
    "api": set(),
    "face": {"admission"},
    "config": {"admission", "api", "face"},
    "store": {"admission", "api"},
    "index": {"admission", "face", "store"},
    "jobs": {"admission", "face", "index", "store"},
    "audit": {"api", "store"},
    "wire": {"admission", "api", "audit", "config"},
    "cam": {"api", "store", "wire", "iai_policy"},
    "actions": {"admission", "api", "audit", "cam", "config", "face", "index", "jobs", "store", "wire"},
    "check_index": {"index", "jobs", "store"},
}
ASSEMBLY = {"crate", "main"}


def test_only():
    """Files declared under `#[cfg(test)]` (`#[cfg(test)] mod tests;`): left out like inline tests."""
    out = set()
    for path in SRC.rglob("*.rs"):
        for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", path.read_text()):
            folder = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
            out.update({folder / f"{name}.rs", folder / name / "mod.rs"})
    return out


def modules():
    """Module path -> file, e.g. `store::sql::persons` -> src/store/sql/persons.rs."""
    found = {}
    skipped = test_only()
    for path in SRC.rglob("*.rs"):
        if path in skipped:
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        name = "::".join(parts)
        found["crate" if name == "lib" else name] = path
    return found


def code_of(path):
    text = path.read_text()
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)  # strings: no paths in them
    return re.sub(r"//[^\n]*", "", text)


def use_paths(text):
    """Every path named, with `use a::{b, c::{d}}` expanded."""
    paths = re.findall(r"\b((?:[A-Za-z_]\w*::)+[A-Za-z_]\w*)", text)
    for tree in re.findall(r"\buse\s+([^;]*);", text):
        tree = re.sub(r"\s+as\s+\w+", "", tree)
        paths.extend(expand(re.sub(r"\s+", "", tree)))
    return paths


def expand(tree):
    if "{" not in tree:
        return [tree.removesuffix("::self")]
    head, rest = tree.split("{", 1)
    inner = rest[: rest.rfind("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in filter(None, items):
        out.extend(expand(head + item))
    return out


def resolve(current, path, known):
    parts = path.split("::")
    here = [] if current == "crate" else current.split("::")
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] in ("super", "self"):
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
    elif "::".join(here + parts[:1]) in known:
        base = here  # a child module named by its bare name
    else:
        return None
    for i in range(len(parts), -1, -1):
        name = "::".join(base + parts[:i]) or "crate"
        if name in known:
            return name
    return None


def imports():
    known = modules()
    # `#[macro_export]` macros are named `crate::<macro>`: they belong to the module defining them.
    macros = {}
    for name, path in known.items():
        for macro in re.findall(r"#\[macro_export\]\s*macro_rules!\s*(\w+)", path.read_text()):
            macros[f"crate::{macro}"] = name
    edges = {}
    for name, path in known.items():
        deps = set()
        for p in use_paths(code_of(path)):
            if p.split("::")[0] in CRATES:
                deps.add(p.split("::")[0])
                continue
            target = macros.get(p) or resolve(name, p, known)
            if target and target != name and not target.startswith(
                ("" if name == "crate" else name + "::")
            ):
                deps.add(target)
        edges[name] = deps
    return known, edges


def top(name):
    return name.split("::")[0]


def circles(edges):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    known, edges = imports()
    problems = []
    for group in circles(edges):
        problems.append("import circle: " + " <-> ".join(group))
    for name, deps in sorted(edges.items()):
        layer = top(name)
        if layer in ASSEMBLY:
            continue
        if layer not in MAY_IMPORT:
            problems.append(f"{known[name].relative_to(ROOT)}: module `{layer}` is not in the layer table")
            continue
        for dep in sorted(deps):
            if top(dep) != layer and top(dep) not in MAY_IMPORT[layer]:
                problems.append(f"{known[name].relative_to(ROOT)}: `{layer}` may not import `{dep}`")
    if "--graph" in sys.argv:
        layers = {}
        for name, deps in edges.items():
            for dep in deps:
                if top(dep) != top(name):
                    layers.setdefault(top(name), set()).add(top(dep))
        for layer in sorted(layers):
            print(f"{layer} -> {', '.join(sorted(layers[layer]))}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"layers: {len(known)} modules, no import circle, every import allowed")


if __name__ == "__main__":
    main()
