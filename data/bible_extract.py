#!/usr/bin/python3
"""Spanish (RV 1909) -> English (WEB) verse pairs from two `mod2imp` exports.

Usage: bible_extract.py SPA.imp ENG.imp OUTDIR [-v]

Writes OUTDIR/{train,valid,test}.tsv (Spanish<TAB>English, one verse a line,
in canonical order) and OUTDIR/stats.txt (what was dropped and why). With -v
it also prints the stats. Standard library only. The decisions are explained
in docs/data.md ("The Bible corpus").
"""
import hashlib
import html
import math
import re
import sys

# --------------------------------------------------------------------------
# Reading mod2imp output: "$$$Book C:V" lines, each followed by the verse's
# raw OSIS markup (possibly over several lines).

KEY_RE = re.compile(r"^(.+) (\d+):(\d+)$")


def read_imp(path):
    verses = {}  # (book, chapter, verse) -> markup
    order = []
    key, buf = None, []

    def flush():
        if key is not None:
            verses[key] = " ".join(buf)
            order.append(key)

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("$$$"):
                flush()
                m = KEY_RE.match(line[3:])
                key = (m.group(1), int(m.group(2)), int(m.group(3))) if m else None
                buf = []
            else:
                buf.append(line)
    flush()
    return verses, order


# --------------------------------------------------------------------------
# Markup to plain text.
#
# mod2imp -s and diatheke -f plain delete a footnote without leaving a space,
# so "God<note>..</note><w>created" becomes "Godcreated". Here every removed
# element that may separate words leaves a GAP mark, resolved at the end: a
# space when the mark sits between two non-space characters and the next one
# starts a word, nothing otherwise ("earth<note/>." stays "earth.").

GAP = "\x01"
# Elements dropped together with their text: footnotes and cross-references,
# non-canonical headings (section titles, book titles), speaker labels.
NOTE_RE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
TITLE_RE = re.compile(r"<title\b(?![^>]*canonical=\"true\")[^>]*>.*?</title>", re.S)
SPEAKER_RE = re.compile(r"<speaker\b[^>]*>.*?</speaker>", re.S)
# Tags that mark structure (paragraphs, poetry lines, lists, chapters): they
# separate words, so they become a GAP.
STRUCT_RE = re.compile(r"</?(?:div|l|lg|lb|p|list|item|chapter|milestone|title|verse)\b[^>]*>")
# Every other tag (w, q, transChange, seg, name, hi, ...) wraps words: drop the
# tag and keep its text as it is.
TAG_RE = re.compile(r"<[^>]*>")
# RV 1909 writes words the translators supplied as <transChange> glued to the
# neighbouring <w> tags ("Rehum</w><transChange>y</transChange><w>Baana"):
# those boundaries separate words, except before an enclitic pronoun
# ("díjo</w><transChange>le</transChange>" is "díjole").
ENCLITICS = "le|lo|la|les|los|las|se|me|te|nos|os"
TC_AFTER_RE = re.compile(r"</transChange>(?=<w\b)")
TC_BEFORE_RE = re.compile(r"</w>(?=<transChange\b[^>]*>(?!(?:" + ENCLITICS + r")</transChange>))")
GLOSSARY_RE = re.compile(r"<div\b[^>]*type=\"glossary\".*", re.S)
OPENERS = "“‘\"(¿¡["


def resolve_gaps(t):
    out = []
    n = len(t)
    for i, ch in enumerate(t):
        if ch != GAP:
            out.append(ch)
            continue
        prev = out[-1] if out else " "
        j = i + 1
        while j < n and t[j] == GAP:
            j += 1
        nxt = t[j] if j < n else " "
        if prev.isspace() or nxt.isspace() or prev in OPENERS:
            continue
        if nxt.isalnum() or nxt in OPENERS:
            out.append(" ")
    return "".join(out)


def markup_to_text(markup):
    t = GLOSSARY_RE.sub("", markup)
    t = TC_AFTER_RE.sub("</transChange>" + GAP, t)
    t = TC_BEFORE_RE.sub("</w>" + GAP, t)
    t = NOTE_RE.sub(GAP, t)
    t = TITLE_RE.sub(GAP, t)
    t = SPEAKER_RE.sub(GAP, t)
    t = STRUCT_RE.sub(GAP, t)
    t = TAG_RE.sub("", t)
    t = html.unescape(t)
    t = resolve_gaps(t)
    return " ".join(t.split())


# RV 1909 prints the first word of a chapter in capitals ("EN el principio",
# "RESPÓNDEME" after a psalm title): title-case the first all-caps word of
# verse 1 so that the model does not learn a typographic accident.
CAPS_RE = re.compile(r"\b([A-ZÁÉÍÓÚÑÜ])([A-ZÁÉÍÓÚÑÜ]+)\b")


def fix_chapter_caps(text):
    return CAPS_RE.sub(lambda m: m.group(1) + m.group(2).lower(), text, count=1)


# --------------------------------------------------------------------------
# Alignment checks.
#
# RV 1909 squeezes its own versification into KJV numbering: in a few
# chapters every verse is one off (Num 13: Spanish 13:2 is English 13:1), with
# an empty verse and the overflow glued onto a chapter's last verse. Such a
# chapter is detected by comparing how well the verse lengths match when
# paired straight and when shifted by one; it is dropped as a whole.

def log_ratio(a, b):
    return abs(math.log((len(a) + 10) / (len(b) + 10)))


def alignment_cost(spa, eng, shift):
    """Mean |log length ratio| pairing Spanish verse v+shift with English v."""
    costs = []
    for v in range(1, len(eng)):
        if 0 < v + shift < len(spa) and spa[v + shift] and eng[v]:
            costs.append(log_ratio(spa[v + shift], eng[v]))
    return sum(costs) / len(costs) if len(costs) >= 3 else 0.0


def chapter_is_shifted(spa, eng):
    """A chapter RV 1909 shifted: a verse with English text but no Spanish
    (the Spanish moved it to a neighbour, so nearby verses are misaligned
    too), or verse lengths that match badly when paired straight (a mean
    |log ratio| above 0.25, where most chapters have 0.05-0.15) and clearly
    better with a shift of 1 to 5 verses."""
    if any(eng[v] and not spa[v] for v in range(1, len(eng))):
        return True
    straight = alignment_cost(spa, eng, 0)
    if straight <= 0.25:
        return False
    for shift in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
        if 0 < alignment_cost(spa, eng, shift) < 0.8 * straight:
            return True
    return False


# A verse pair whose character lengths differ by more than this factor (or by
# the smoothing in log_ratio) is not a translation of one verse by the other:
# overflow glued onto a last verse, a verse WEB moved elsewhere, etc.
MAX_LENGTH_RATIO = 1.8


def implausible(spa, eng):
    return log_ratio(spa, eng) > math.log(MAX_LENGTH_RATIO)


# --------------------------------------------------------------------------
# Split: valid and test are whole held-out chapters, picked by a hash of the
# chapter's name (stable across Python versions and machines).

VALID_VERSES = 1000
TEST_VERSES = 1000


def chapter_hash(book, chapter):
    return hashlib.sha1(f"{book} {chapter}".encode()).hexdigest()


def split_chapters(pairs):
    per_chapter = {}
    for (book, chapter, _), _, _ in pairs:
        per_chapter[(book, chapter)] = per_chapter.get((book, chapter), 0) + 1
    ranked = sorted(per_chapter, key=lambda c: chapter_hash(*c))
    valid, test = set(), set()
    n_valid = n_test = 0
    for c in ranked:
        if n_valid < VALID_VERSES:
            valid.add(c)
            n_valid += per_chapter[c]
        elif n_test < TEST_VERSES:
            test.add(c)
            n_test += per_chapter[c]
        else:
            break
    return valid, test


def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _, spa, eng in rows:
            f.write(f"{spa}\t{eng}\n")


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    spa_raw, _ = read_imp(argv[1])
    eng_raw, eng_order = read_imp(argv[2])
    out_dir, verbose = argv[3], len(argv) == 5 and argv[4] == "-v"

    stats = {}

    def drop(rule, n=1):
        stats[rule] = stats.get(rule, 0) + n

    # Chapters of the English text, in canonical order, verse 0 left out.
    chapters = {}
    for key in eng_order:
        book, chapter, verse = key
        if chapter == 0 or verse == 0:
            continue
        chapters.setdefault((book, chapter), []).append(verse)

    pairs = []
    for (book, chapter), verse_list in chapters.items():
        if (book, chapter, 1) not in spa_raw:
            drop("English verse without a Spanish counterpart (deuterocanon, extra verses)", len(verse_list))
            continue
        top = max(verse_list)
        spa = [""] * (top + 1)
        eng = [""] * (top + 1)
        for v in verse_list:
            eng[v] = markup_to_text(eng_raw[(book, chapter, v)])
            if (book, chapter, v) in spa_raw:
                spa[v] = markup_to_text(spa_raw[(book, chapter, v)])
        spa[1] = fix_chapter_caps(spa[1])
        if chapter_is_shifted(spa, eng):
            drop("verse in a chapter RV 1909 shifted (an empty Spanish verse, or lengths that fit a shift of 1-5 verses)", len(verse_list))
            continue
        for v in verse_list:
            if not spa[v] or not eng[v]:
                drop("English verse empty (WEB leaves out a few KJV verses)")
            elif implausible(spa[v], eng[v]):
                drop(f"length ratio above {MAX_LENGTH_RATIO} (merged or moved verses)")
            else:
                pairs.append(((book, chapter, v), spa[v], eng[v]))

    valid_ch, test_ch = split_chapters(pairs)
    parts = {"train": [], "valid": [], "test": []}
    for row in pairs:
        c = row[0][:2]
        parts["valid" if c in valid_ch else "test" if c in test_ch else "train"].append(row)
    # Refrains repeat verbatim across chapters: a held-out verse that is also a
    # training pair would be a free point for a model that memorizes.
    seen = {(spa, eng) for _, spa, eng in parts["train"]}
    for name in ("valid", "test"):
        rows = [r for r in parts[name] if (r[1], r[2]) not in seen]
        drop(f"{name} verse identical to a training pair", len(parts[name]) - len(rows))
        parts[name] = rows
    for name, rows in parts.items():
        write_tsv(f"{out_dir}/{name}.tsv.tmp", rows)

    lines = [f"English verses (WEB, chapters >= 1, verses >= 1): {sum(len(v) for v in chapters.values())}"]
    lines += [f"dropped {n}: {rule}" for rule, n in sorted(stats.items())]
    kept = sum(len(rows) for rows in parts.values())
    lines.append(f"kept pairs: {kept} (train {len(parts['train'])}, valid {len(parts['valid'])} "
                 f"in {len(valid_ch)} chapters, test {len(parts['test'])} in {len(test_ch)} chapters)")
    with open(f"{out_dir}/stats.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    if verbose:
        print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv)
