#!/bin/sh
# The CMU Pronouncing Dictionary (npm package cmu-pronouncing-dictionary
# 3.0.0) as grapheme-to-phoneme pairs, `word<TAB>phonemes`, in
# data/cmudict/{train,valid,test}.tsv. Idempotent: does nothing when the three
# files exist. Quiet on success. Decisions (docs/data.md):
# - alternates ("word(2)".."word(4)") become pairs of their own under the base
#   word, so a word with two pronunciations gives two lines;
# - the split is by base word (a hash of it: 90% train, 5% valid, 5% test), so
#   all pronunciations of a word land in the same part;
# - the 22 trailing "# comment"s in values are dropped.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/cmudict"
version=3.0.0

if [ -s "$out/train.tsv" ] && [ -s "$out/valid.tsv" ] && [ -s "$out/test.tsv" ]; then
    exit 0
fi

die() { echo "cmudict.sh: $*" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || die "npm not found (Debian: apt-get install npm)"
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 not found (install python3)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
(cd "$work" && npm pack --silent "cmu-pronouncing-dictionary@$version" >/dev/null 2>"$work/err") ||
    die "npm pack cmu-pronouncing-dictionary@$version failed: $(head -n1 "$work/err")"
tar -xzf "$work/cmu-pronouncing-dictionary-$version.tgz" -C "$work" || die "cannot unpack the npm package"
[ -s "$work/package/index.js" ] || die "package/index.js missing from the npm package"

mkdir -p "$out"
/usr/bin/python3 - "$work/package/index.js" "$out" <<'PY'
import hashlib, re, sys

src, out = sys.argv[1], sys.argv[2]
entry = re.compile(r'^\s*"([^"]+)": "([^"]*)",?$')
word_form = re.compile(r"^([a-z'.\-0-9_]+?)(?:\((\d)\))?$")
phone = re.compile(r"^[A-Z]+[012]?$")
parts = {"train": [], "valid": [], "test": []}
n_entries = 0
words = set()
with open(src, encoding="utf-8") as f:
    for line_no, line in enumerate(f, 1):
        m = entry.match(line.rstrip("\n"))
        if not m:
            continue
        key, value = m.groups()
        value = value.split("#", 1)[0].strip()  # 22 values carry "# place, danish" etc.
        w = word_form.match(key)
        phones = value.split()
        if not w or not phones or not all(phone.match(p) for p in phones):
            sys.exit(f"cmudict.sh: {src}:{line_no}: unexpected entry {line.strip()!r}")
        base = w.group(1)
        bucket = int(hashlib.md5(base.encode()).hexdigest()[:8], 16) % 100
        part = "train" if bucket < 90 else "valid" if bucket < 95 else "test"
        parts[part].append(f"{base}\t{' '.join(phones)}\n")
        n_entries += 1
        words.add(base)
if n_entries != 135155 or len(words) != 126046:
    sys.exit(f"cmudict.sh: expected 135155 entries of 126046 words, found {n_entries} of {len(words)}")
for name, rows in parts.items():
    with open(f"{out}/{name}.tsv.tmp", "w", encoding="utf-8") as f:
        f.writelines(rows)
PY
for part in valid test train; do
    mv "$out/$part.tsv.tmp" "$out/$part.tsv"
done
