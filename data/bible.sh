#!/bin/sh
# Spanish (Reina-Valera 1909) -> English (World English Bible) verse pairs
# from Debian's SWORD modules, into data/bible/{train,valid,test}.tsv
# (Spanish<TAB>English). Idempotent: does nothing when the three files exist.
# Quiet on success; VERBOSE=1 prints what was dropped (also kept in
# data/bible/stats.txt). See docs/data.md for the decisions.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/bible"
python=/usr/bin/python3

if [ -s "$out/train.tsv" ] && [ -s "$out/valid.tsv" ] && [ -s "$out/test.tsv" ]; then
    exit 0
fi

die() { echo "bible.sh: $*" >&2; exit 1; }

# The SWORD tools and modules: install them when missing (needs root).
packages="libsword-utils sword-text-web sword-text-kjv sword-text-sparv"
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null || die "apt-get install$missing failed"
fi
[ -x "$python" ] || die "$python not found (install python3)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mod2imp spaRV1909eb > "$work/spa.imp" 2>"$work/err" || die "mod2imp spaRV1909eb failed: $(head -n1 "$work/err")"
mod2imp engWEB2015eb > "$work/eng.imp" 2>"$work/err" || die "mod2imp engWEB2015eb failed: $(head -n1 "$work/err")"
[ -s "$work/spa.imp" ] && [ -s "$work/eng.imp" ] || die "mod2imp printed nothing: are the SWORD modules installed?"

mkdir -p "$out"
if [ "${VERBOSE:-0}" = 1 ]; then v=-v; else v=; fi
"$python" "$here/bible_extract.py" "$work/spa.imp" "$work/eng.imp" "$out" $v
for part in valid test train; do   # train last: its presence marks a finished run
    mv "$out/$part.tsv.tmp" "$out/$part.tsv"
done
