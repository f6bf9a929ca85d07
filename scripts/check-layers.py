#!/usr/bin/env python3
"""Fails when an #include points from a lower layer of sparseae to a higher one, when two
folders include each other (directly or through others), or when the umbrella header
include/sparseae/sparseae.hpp leaves out a public header.

The layers, ground floor first (README, "Source layout"):
  0 math and core     src/math, src/core; the public headers of the basic types
  1 io and model      src/io, src/checkpoint, src/model, src/data, src/metrics; their headers
  2 backends          src/backend (cpu, cuda), kernels/
  3 train             src/train; trainer.hpp, compare.hpp, recipe_search.hpp
  4 compress/pca/report  src/compress, src/pca, src/report, src/fit; lossless.hpp, pca.hpp, fit.hpp
  5 front ends        src/cli, src/bindings (Python), bench/, the umbrella header sparseae.hpp
Tests may include anything and are not checked.

Usage: check-layers.py [ROOT]     (ROOT: the repository, default: this script's parent's parent)
       check-layers.py --self-test
"""
import os
import re
import sys
from collections import defaultdict

LAYER_NAMES = ["math/core", "io/model", "backends", "train", "compress/pca/report", "front ends"]

FOLDER_LAYERS = {
    "src/math": 0, "src/core": 0,
    "src/io": 1, "src/checkpoint": 1, "src/model": 1, "src/data": 1, "src/metrics": 1,
    "src/backend": 2, "kernels": 2,
    "src/train": 3,
    "src/compress": 4, "src/pca": 4, "src/report": 4, "src/fit": 4,
    "src/cli": 5, "src/bindings": 5, "bench": 5,
}

PUBLIC_HEADER_LAYERS = {
    "error": 0, "matrix": 0, "ops": 0, "version": 0, "backend": 0, "buffer": 0, "csr": 0,
    "io": 1, "generator": 1, "model": 1, "network": 1, "metrics": 1, "checkpoint": 1,
    "inference": 1, "train_config": 1,
    "trainer": 3, "compare": 3, "recipe_search": 3,
    "lossless": 4, "pca": 4, "fit": 4,
    "sparseae": 5,
}

SOURCE_SUFFIXES = (".cpp", ".hpp", ".cu", ".cuh", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SEARCH_DIRS = ["include", "", "src"]  # the targets' include directories, in order


def layer_of(path):
    """The layer of a repository-relative path, or None for files outside the layering."""
    if path.startswith("include/sparseae/"):
        name = os.path.splitext(os.path.basename(path))[0]
        if name not in PUBLIC_HEADER_LAYERS:
            raise SystemExit(f"check-layers: {path}: a public header with no layer; add it to "
                             "PUBLIC_HEADER_LAYERS in scripts/check-layers.py")
        return PUBLIC_HEADER_LAYERS[name]
    for folder, layer in FOLDER_LAYERS.items():
        if path == folder or path.startswith(folder + "/"):
            return layer
    if path.startswith("src/"):
        raise SystemExit(f"check-layers: {path}: a source folder with no layer; add it to "
                         "FOLDER_LAYERS in scripts/check-layers.py")
    return None


def folder_of(path):
    return "include/sparseae" if path.startswith("include/") else os.path.dirname(path)


def resolve(including, target, files):
    candidates = [os.path.normpath(os.path.join(os.path.dirname(including), target))]
    candidates += [os.path.normpath(os.path.join(d, target)) for d in SEARCH_DIRS]
    for candidate in candidates:
        if candidate in files:
            return candidate
    return None


def find_violations(sources):
    """sources: {repository-relative path: text}. Returns the error lines."""
    errors = []
    folder_edges = defaultdict(set)
    for path in sorted(sources):
        layer = layer_of(path)
        if layer is None:
            continue
        for line_number, target in (
                (sources[path].count("\n", 0, m.start()) + 1, m.group(1))
                for m in INCLUDE.finditer(sources[path])):
            included = resolve(path, target, sources)
            if included is None:
                continue  # a system or generated header
            included_layer = layer_of(included)
            if included_layer is None:
                errors.append(f"{path}:{line_number}: includes {included}, which is outside "
                              "the library's layers")
                continue
            if included_layer > layer:
                errors.append(f"{path}:{line_number}: includes {included}: layer "
                              f"{included_layer} ({LAYER_NAMES[included_layer]}) from layer "
                              f"{layer} ({LAYER_NAMES[layer]}), pointing up")
            if folder_of(path) != folder_of(included):
                folder_edges[folder_of(path)].add(folder_of(included))
    errors += folder_cycles(folder_edges)
    errors += umbrella_gaps(sources)
    return errors


def umbrella_gaps(sources):
    """The public headers that sparseae.hpp, which says it includes them all, leaves out."""
    umbrella = "include/sparseae/sparseae.hpp"
    if umbrella not in sources:
        return []
    included = set(INCLUDE.findall(sources[umbrella]))
    return [f"{umbrella}: does not include sparseae/{os.path.basename(path)}"
            for path in sorted(sources)
            if path.startswith("include/sparseae/") and path != umbrella
            and f"sparseae/{os.path.basename(path)}" not in included]


def folder_cycles(edges):
    """One error per folder loop found by a depth-first search of the folder graph."""
    errors, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                loop = stack[stack.index(nxt):] + [nxt]
                errors.append("folder loop: " + " -> ".join(loop))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return errors


def read_tree(root):
    sources = {}
    for top in ["include", "src", "kernels", "bench"]:
        for directory, _, names in os.walk(os.path.join(root, top)):
            for name in names:
                if name.endswith(SOURCE_SUFFIXES):
                    full = os.path.join(directory, name)
                    with open(full, encoding="utf-8") as f:
                        sources[os.path.relpath(full, root)] = f.read()
    return sources


def self_test():
    """The checker must see an upward include and a folder loop in a made-up tree."""
    tree = {
        "src/core/a.cpp": '#include "train/t.hpp"\n',
        "src/train/t.hpp": '#include "sparseae/error.hpp"\n',
        "include/sparseae/error.hpp": "",
        "src/io/x.hpp": '#include "model/y.hpp"\n',
        "src/model/y.hpp": '#include "io/x.hpp"\n',
    }
    errors = find_violations(tree)
    assert any("src/core/a.cpp:1: includes src/train/t.hpp" in e for e in errors), errors
    assert any(e.startswith("folder loop: src/io -> src/model -> src/io") for e in errors), errors
    assert len(errors) == 2, errors
    assert umbrella_gaps({"include/sparseae/sparseae.hpp": '#include "sparseae/error.hpp"\n',
                          "include/sparseae/error.hpp": "", "include/sparseae/io.hpp": ""}) == [
        "include/sparseae/sparseae.hpp: does not include sparseae/io.hpp"]
    assert find_violations({"src/train/t.hpp": '#include "sparseae/error.hpp"\n',
                            "include/sparseae/error.hpp": ""}) == []
    print("check-layers self-test: an upward include, a folder loop and an umbrella gap are found")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    sources = read_tree(root)
    errors = find_violations(sources)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"check-layers: {len(errors)} include(s) break the layering", file=sys.stderr)
        return 1
    print(f"check-layers: {len(sources)} files, every include points down or across")
    return 0


if __name__ == "__main__":
    sys.exit(main())
