#!/usr/bin/env bash
# Builds the real-data benchmark sets: installs the Debian packages whose files they are made
# from (when any is missing), then runs build-sets.py with Debian's python3 (it needs the
# python3-pil and the Python documentation of that interpreter's version).
#   bench/real-data/build-sets.sh [OUT] [--only NAME[,NAME...]]    (OUT: bench/real-data/sets)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]; }

if ! installed python3; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3 >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3 >/dev/null; }
fi
pyv=$(/usr/bin/python3 -c 'import sys; print(f"3.{sys.version_info.minor}")')

packages=(
  python3-pil                                               # decodes the wallpapers
  ragout-examples kleborate-examples                        # dna-kmer5: bacterial genomes
  mmseqs2-examples                                          # protein-kmer3: UniProt proteins
  "python$pyv-doc"                                          # text-words: the Python docs' sources
  "libpython$pyv-minimal" "libpython$pyv-stdlib"            # code-tokens: Python library code
  python3-lib2to3 python3-distutils python3-setuptools python3-pip
  mate-backgrounds plasma-workspace-wallpapers              # image-rgb: wallpapers
)
missing=()
for package in "${packages[@]}"; do installed "$package" || missing+=("$package"); done
if ((${#missing[@]} > 0)); then
  echo "build-sets: installing ${missing[*]}"
  if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

exec /usr/bin/python3 "$here/build-sets.py" "$@"
