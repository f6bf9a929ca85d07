#!/usr/bin/python3
"""Builds the real-data fidelity benchmark's count matrices from files that Debian packages ship.

Every set is N rows x 512 columns of non-negative integer counts, written as a MatrixMarket
coordinate file (1-based, non-zeros only, sorted by row then column) plus one line of
sets.tsv. Only files of the packages named in SETS are read (found with dpkg-query -L), in
sorted order; nothing is random and nothing depends on the clock, so the same package
versions give byte-identical files. build-sets.sh installs the packages first.

usage: build-sets.py [OUT] [--only NAME[,NAME...]]     (OUT defaults to bench/real-data/sets)

Standard library only, except the image set, which decodes PNG/JPEG with python3-pil
(Debian's Pillow): run it with Debian's /usr/bin/python3.
"""

import ast
import collections
import gzip
import io
import lzma
import os
import re
import subprocess
import sys
import time
import tokenize

COLS = 512
MAX_ROWS = 100_000
MIN_ROWS = 10_000
PYV = f"3.{sys.version_info.minor}"  # Debian's python3 names the versioned packages below


# ----------------------------------------------------------------------------- packages

class MissingFiles(RuntimeError):
    pass


_versions = {}
_roots = {}


def pkg_version(pkg):
    if pkg not in _versions:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout:
            raise MissingFiles(f"package {pkg} is not installed (run bench/real-data/build-sets.sh)")
        _versions[pkg] = r.stdout.strip()
    return _versions[pkg]


def pkg_files(pkg, pattern, cache):
    """Sorted (package path, readable path) of pkg's files whose package path matches pattern.

    Reads the installed files; where dpkg left them out (a path-exclude in dpkg.cfg.d, as
    slim container images have for /usr/share/doc), extracts the package's .deb into cache."""
    pkg_version(pkg)
    out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True, check=True).stdout
    rx = re.compile(pattern)
    paths = sorted({p for p in out.splitlines() if rx.search(p)})
    root = "/"
    if any(not os.path.lexists(p) for p in paths):
        root = extract_deb(pkg, cache)
    found = []
    for p in paths:
        real = os.path.join(root, p.lstrip("/"))
        if os.path.isfile(real):  # follows symlinks; skips directories that match
            found.append((p, real))
    if not found:
        raise MissingFiles(f"package {pkg} has no file matching {pattern!r}")
    return found


def extract_deb(pkg, cache):
    if pkg in _roots:
        return _roots[pkg]
    ver = pkg_version(pkg)
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    quoted = ver.replace(":", "%3a")
    candidates = [os.path.join(d, f) for d in ("/var/cache/apt/archives", debs)
                  if os.path.isdir(d) for f in sorted(os.listdir(d))
                  if f.startswith(f"{pkg}_{quoted}_") and f.endswith(".deb")]
    if not candidates:
        subprocess.run(["apt-get", "download", "-qq", f"{pkg}={ver}"], cwd=debs, check=True)
        candidates = [os.path.join(debs, f) for f in sorted(os.listdir(debs))
                      if f.startswith(f"{pkg}_{quoted}_") and f.endswith(".deb")]
    root = os.path.join(cache, "root", pkg)
    os.makedirs(root, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", candidates[0], root], check=True)
    print(f"  {pkg}: files missing under / (dpkg path-exclude?); read from its .deb instead", flush=True)
    _roots[pkg] = root
    return root


def open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "rt", encoding="utf-8", errors="replace")


def fasta_records(path):
    """(header, sequence) of each record, sequence upper-cased."""
    header, chunks = None, []
    with open_text(path) as f:
        for line in f:
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(chunks).upper()
                header, chunks = line[1:].strip(), []
            else:
                chunks.append(line.strip())
    if header is not None:
        yield header, "".join(chunks).upper()


def fnv1a(text):
    """32-bit FNV-1a of the UTF-8 bytes: a hash that is the same in every run and on every machine."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


class Hasher(dict):
    """token -> column (FNV-1a mod 512), memoised."""

    def __missing__(self, token):
        col = fnv1a(token) % COLS
        self[token] = col
        return col


def row_of(counter):
    """A Counter of column -> count as a sorted list of (column, count), zeros and None dropped."""
    return sorted((c, n) for c, n in counter.items() if c is not None and n > 0)


# ----------------------------------------------------------------------------- the sets

# 1. DNA: canonical 5-mers of 400-bp windows. One genome per species, so that windows of
#    near-identical strains do not sit on both sides of a train/validation split.
DNA_GENOMES = [
    ("ragout-examples", r"/E\.Coli/references/MG1655-K12\.fasta\.gz$"),
    ("ragout-examples", r"/H\.Pylori/references/ELS37\.fasta\.gz$"),
    ("ragout-examples", r"/S\.Aureus/references/COL\.fasta\.gz$"),
    ("ragout-examples", r"/V\.Cholerae/references/H1\.fasta\.gz$"),
    ("kleborate-examples", r"/Klebs_HS11286\.fna\.xz$"),
]
DNA_WINDOW = 400
DNA_K = 5


def canonical_kmer_columns(k):
    """Every k-mer string -> the column of its canonical form (the smaller of it and its
    reverse complement); columns are the canonical k-mers in sorted order. Odd k: 4^k / 2."""
    comp = str.maketrans("ACGT", "TGCA")
    kmers = [""]
    for _ in range(k):
        kmers = [p + b for p in kmers for b in "ACGT"]
    canon = {s: min(s, s.translate(comp)[::-1]) for s in kmers}
    order = {c: i for i, c in enumerate(sorted(set(canon.values())))}
    return {s: order[c] for s, c in canon.items()}


def build_dna(cache):
    cols = canonical_kmer_columns(DNA_K)
    assert len(set(cols.values())) == COLS
    rows, pkgs = [], []
    for pkg, pattern in DNA_GENOMES:
        pkgs.append(pkg)
        for _, path in pkg_files(pkg, pattern, cache):
            for _, seq in fasta_records(path):
                for start in range(0, len(seq) - DNA_WINDOW + 1, DNA_WINDOW):
                    w = seq[start:start + DNA_WINDOW]
                    c = collections.Counter(map(cols.get, [w[i:i + DNA_K] for i in range(DNA_WINDOW - DNA_K + 1)]))
                    if c.get(None, 0) > (DNA_WINDOW - DNA_K + 1) // 10:
                        continue  # windows that are more than 10 % N or other ambiguity codes
                    rows.append(row_of(c))
    return rows, pkgs


# 2. Protein: 3-mers over Murphy et al.'s 8-letter reduced alphabet (8^3 = 512), one row per
#    protein, from the UniProt sequences that mmseqs2-examples ships.
PROTEIN_GROUPS = ["LVIMC", "AG", "ST", "P", "FYW", "EDNQ", "KR", "H"]
PROTEIN_EXTRA = {"B": "D", "Z": "E", "J": "L", "U": "C", "O": "K"}  # ambiguity codes, rare residues


def build_protein(cache):
    letters = "abcdefgh"
    table = {}
    for g, group in enumerate(PROTEIN_GROUPS):
        for aa in group:
            table[aa] = letters[g]
    for aa, like in PROTEIN_EXTRA.items():
        table[aa] = table[like]
    trans = str.maketrans({chr(c): table.get(chr(c), "x") for c in range(32, 127)})
    cols = {a + b + c: i for i, (a, b, c) in enumerate((a, b, c) for a in letters for b in letters for c in letters)}
    rows = []
    pkg = "mmseqs2-examples"
    for _, path in pkg_files(pkg, r"/example-data/DB\.fasta\.gz$", cache):
        for _, seq in fasta_records(path):
            s = seq.translate(trans)
            row = row_of(collections.Counter(map(cols.get, [s[i:i + 3] for i in range(len(s) - 2)])))
            if row:
                rows.append(row)
    return rows, [pkg]


# 3. Text: bag of words, FNV-1a of the lowercased word mod 512, one row per paragraph (a
#    block between blank lines) of at least 5 words of the Python documentation's sources.
TEXT_MIN_WORDS = 5
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def build_text(cache):
    pkg = f"python{PYV}-doc"
    hasher = Hasher()
    rows = []
    for _, path in pkg_files(pkg, r"/html/_sources/.*\.txt$", cache):
        with open_text(path) as f:
            text = f.read()
        for para in re.split(r"\n[ \t]*\n", text):
            words = WORD.findall(para.lower())
            if len(words) >= TEXT_MIN_WORDS:
                rows.append(row_of(collections.Counter(map(hasher.__getitem__, words))))
    return rows, [pkg]


# 4. Code: hashed token counts (identifiers, numbers, operators and punctuation; FNV-1a mod
#    512, case kept) of each outermost function or method of the Python library code that
#    Debian ships: the standard library, lib2to3, distutils, setuptools and pip.
CODE_PACKAGES = [f"libpython{PYV}-minimal", f"libpython{PYV}-stdlib", "python3-lib2to3",
                 "python3-distutils", "python3-setuptools", "python3-pip"]
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d[\w.]*|\*\*=?|//=?|->|:=|[=!<>+\-*/%&|^]=|<<|>>|[^\s\w]")


def outer_functions(body):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from outer_functions(node.body)


def build_code(cache):
    hasher = Hasher()
    rows = []
    for pkg in CODE_PACKAGES:
        for _, path in pkg_files(pkg, r"\.py$", cache):
            with open(path, "rb") as f:
                src = f.read()
            try:
                tree = ast.parse(src)
            except (SyntaxError, ValueError):
                continue  # test data in Python 2 syntax and the like
            encoding, _ = tokenize.detect_encoding(io.BytesIO(src).readline)
            lines = re.split(r"\r\n|\r|\n", src.decode(encoding, errors="replace"))  # ast's line ends
            for fn in outer_functions(tree.body):
                body = "\n".join(lines[fn.lineno - 1:fn.end_lineno])
                row = row_of(collections.Counter(map(hasher.__getitem__, TOKEN.findall(body))))
                if row:
                    rows.append(row)
    return rows, CODE_PACKAGES


# 5. Image: 8x8x8 RGB colour histograms (top 3 bits of each channel; column r*64 + g*8 + b) of
#    the 64x64-pixel tiles (4096 pixels, so counts up to 4096) of the wallpapers of two
#    desktops. A picture shipped at several sizes (symlinks, or NAME_WxH copies) counts once,
#    at its largest; previews (screenshot.*) are left out. Partial edge tiles are dropped.
IMAGE_PACKAGES = ["mate-backgrounds", "plasma-workspace-wallpapers"]
TILE = 64


def build_image(cache):
    from PIL import Image, ImageChops  # python3-pil

    lut_lo = [(((v >> 5) & 3) << 6) for v in range(256)]  # the red channel's low 2 of 3 bits
    lut_g = [((v >> 5) << 3) for v in range(256)]
    lut_b = [(v >> 5) for v in range(256)]
    lut_hi = [255 if v >= 128 else 0 for v in range(256)]  # the red channel's top bit, as a mask
    rows = []
    for pkg in IMAGE_PACKAGES:
        files = pkg_files(pkg, r"\.(png|jpe?g)$", cache)
        groups = {}
        for name, path in files:
            base = os.path.basename(name)
            if base.startswith("screenshot."):
                continue
            stem = re.sub(r"_?\d+x\d+$", "", os.path.splitext(base)[0])
            groups.setdefault((os.path.dirname(name), stem), []).append((name, path))
        for key in sorted(groups):
            best = None
            for name, path in groups[key]:
                with Image.open(path) as im:
                    area = im.size[0] * im.size[1]
                if best is None or area > best[0]:
                    best = (area, name, path)
            with Image.open(best[2]) as im:
                rgb = im.convert("RGB")
            r, g, b = rgb.split()
            lo = ImageChops.add(ImageChops.add(r.point(lut_lo), g.point(lut_g)), b.point(lut_b))
            hi = r.point(lut_hi)
            w, h = rgb.size
            for y in range(0, h - TILE + 1, TILE):
                for x in range(0, w - TILE + 1, TILE):
                    box = (x, y, x + TILE, y + TILE)
                    t = lo.crop(box)
                    all_ = t.histogram()
                    red_hi = t.histogram(mask=hi.crop(box))
                    row = [(c, all_[c] - red_hi[c]) for c in range(256) if all_[c] - red_hi[c]]
                    row += [(256 + c, red_hi[c]) for c in range(256) if red_hi[c]]
                    rows.append(row)
    return rows, IMAGE_PACKAGES


SETS = [
    # name, kind, what a row is, builder
    ("dna-kmer5", "DNA k-mers",
     "a 400-bp window of a bacterial genome (one per species: E. coli, H. pylori, S. aureus, V. cholerae, "
     "K. pneumoniae); columns: the 512 canonical 5-mers (k-mer and reverse complement merged)", build_dna),
    ("protein-kmer3", "protein k-mers",
     "a UniProt protein; columns: 3-mers over the 8-letter reduced alphabet "
     "LVIMC/AG/ST/P/FYW/EDNQ/KR/H (8^3)", build_protein),
    ("text-words", "text bag-of-words",
     "a paragraph (>= 5 words) of the Python documentation sources (reST); "
     "columns: FNV-1a(lowercased word) mod 512", build_text),
    ("code-tokens", "source-code tokens",
     "an outermost function or method of Python library code; "
     "columns: FNV-1a(token) mod 512 over identifiers, numbers, operators", build_code),
    ("image-rgb", "image colour histograms",
     "a 64x64-pixel tile of a desktop wallpaper; columns: 8x8x8 RGB colour bins (r*64+g*8+b)", build_image),
]


# ----------------------------------------------------------------------------- output

def cap(rows):
    """At most MAX_ROWS rows: every k-th row, from the first."""
    if len(rows) <= MAX_ROWS:
        return rows
    k = -(-len(rows) // MAX_ROWS)
    return rows[::k]


def write_mtx(path, name, what, rows):
    nnz = sum(len(r) for r in rows)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write("%%MatrixMarket matrix coordinate integer general\n")
        f.write(f"% sparseae real-data set {name}: one row = {what.encode('ascii', 'replace').decode()}\n")
        f.write(f"{len(rows)} {COLS} {nnz}\n")
        buf = []
        for i, row in enumerate(rows, 1):
            for c, n in row:
                buf.append(f"{i} {c + 1} {n}\n")
            if len(buf) > 200_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    os.replace(tmp, path)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "sets")
    only = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--only":
            only = set(args.pop(0).split(","))
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            out = a
    names = [s[0] for s in SETS]
    if only and not only <= set(names):
        print(f"build-sets: unknown set(s) {sorted(only - set(names))}; sets: {names}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    cache = os.path.join(out, ".cache")
    manifest = os.path.join(out, "sets.tsv")
    header = "name\tkind\tfile\trows\tcols\tnnz_per_row\tmax_count\ttotal_count\tsource_packages\trow\n"
    lines = {}
    if only and os.path.exists(manifest):  # keep the other sets' lines
        with open(manifest, encoding="utf-8") as f:
            for line in f.readlines()[1:]:
                lines[line.split("\t", 1)[0]] = line
    for name, kind, what, build in SETS:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        print(f"{name}: building ...", flush=True)
        rows, pkgs = build(cache)
        rows = cap(rows)
        assert all(rows), f"{name}: an empty row"
        if len(rows) < MIN_ROWS:
            print(f"{name}: only {len(rows)} rows (< {MIN_ROWS})", file=sys.stderr)
        fname = f"{name}.mtx"
        write_mtx(os.path.join(out, fname), name, what, rows)
        nnz = sum(len(r) for r in rows)
        mx = max(n for r in rows for _, n in r)
        total = sum(n for r in rows for _, n in r)
        src = ",".join(f"{p}={pkg_version(p)}" for p in dict.fromkeys(pkgs))
        lines[name] = (f"{name}\t{kind}\t{fname}\t{len(rows)}\t{COLS}\t{nnz / len(rows):.1f}\t{mx}\t{total}"
                       f"\t{src}\t{what}\n")
        print(f"{name}: {len(rows)} rows, {nnz / len(rows):.1f} non-zeros/row, max {mx}, total {total} "
              f"({time.monotonic() - t0:.1f} s)", flush=True)
    with open(manifest + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        f.write(header)
        for name in names:
            if name in lines:
                f.write(lines[name])
    os.replace(manifest + ".tmp", manifest)
    print(f"wrote {out}/sets.tsv")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MissingFiles as e:
        print(f"build-sets: {e}", file=sys.stderr)
        sys.exit(1)
