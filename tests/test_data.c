// Tests of src/data.c: reading (CRLF, BOM, UTF-8 errors with line and column,
// bad files), whitespace and case normalization, every cleaning rule, splits.
#include "test.h"
#include "common.h"
#include "data.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/attn_test_data_XXXXXX";

// Writes bytes to a file in the temp dir and returns its path (static buffer).
static const char *write_tmp(const char *name, const char *bytes, size_t n) {
    static char path[4][256];
    static int which = 0;
    char *p = path[which++ % 4];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    FILE *f = fopen(p, "wb");
    if (n) fwrite(bytes, 1, n, f);
    fclose(f);
    return p;
}
#define WRITE_TMP(name, lit) write_tmp(name, lit, sizeof(lit) - 1)

static int error_has(const char *needle) { return strstr(attn_last_error(), needle) != NULL; }

// ----------------------------------------------------------------------------

static void test_lines(void) {
    DataLines tl;
    const char *p = WRITE_TMP("crlf.txt", "\xEF\xBB\xBF" "one\r\ntwo\r\n\r\nlast");
    int rc = data_lines_read(&tl, p);
    CHECK(rc == 0 && tl.n == 4, "lines: BOM + CRLF file reads as 4 lines (n=%d)", tl.n);
    CHECK(rc == 0 && !strcmp(tl.lines[0], "one") && !strcmp(tl.lines[1], "two") && tl.lines[2][0] == '\0' &&
          !strcmp(tl.lines[3], "last"), "lines: BOM skipped, CR stripped, blank line kept, last line without newline");
    if (rc == 0) data_lines_free(&tl);

    p = WRITE_TMP("bad.txt", "fine\nstill fine\nab\xC3(x\n");
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("bad.txt:3:3: invalid UTF-8 (byte 0xC3)"), "lines: invalid UTF-8 names line 3 column 3: %s", attn_last_error());
    p = WRITE_TMP("overlong.txt", "ok\n\xC0\xAF\n");
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("overlong.txt:2:1: invalid UTF-8"), "lines: overlong form rejected: %s", attn_last_error());
    p = WRITE_TMP("surrogate.txt", "a\tb\n\xED\xA0\x80\tz\n");
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("surrogate.txt:2:1: invalid UTF-8"), "lines: surrogate rejected: %s", attn_last_error());
    p = write_tmp("nul.txt", "a\tb\nc\0d\te\n", 10);
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("nul.txt:2:2: NUL byte"), "lines: NUL byte names line and column: %s", attn_last_error());

    p = WRITE_TMP("empty.txt", "");
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("empty.txt: empty file"), "lines: empty file is an error: %s", attn_last_error());
    p = WRITE_TMP("bomonly.txt", "\xEF\xBB\xBF");
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("empty file"), "lines: a BOM alone is an empty file");
    rc = data_lines_read(&tl, tmp_dir);
    CHECK(rc != 0 && error_has("is a directory"), "lines: a directory is an error: %s", attn_last_error());
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no_such_file", tmp_dir);
    rc = data_lines_read(&tl, missing);
    CHECK(rc != 0 && error_has("no_such_file"), "lines: a missing file is an error: %s", attn_last_error());

    // A line just over the limit fails with its line number; one at the limit passes.
    size_t n = DATA_MAX_LINE_BYTES + 1;
    char *big = malloc(n + 16);
    memcpy(big, "x\ty\n", 4);
    memset(big + 4, 'a', n);
    big[4 + n] = '\n';
    p = write_tmp("long.txt", big, n + 5);
    rc = data_lines_read(&tl, p);
    CHECK(rc != 0 && error_has("long.txt:2: line is 1048577 bytes"), "lines: over-long line names line 2: %s", attn_last_error());
    big[4 + n - 1] = '\n';  // line 2 is exactly the limit
    p = write_tmp("limit.txt", big, n + 4);
    rc = data_lines_read(&tl, p);
    CHECK(rc == 0 && tl.n == 2 && strlen(tl.lines[1]) == DATA_MAX_LINE_BYTES, "lines: a line of exactly the limit is accepted");
    if (rc == 0) data_lines_free(&tl);
    free(big);
}

static void test_read_parallel(void) {
    ParallelText pt;
    const char *p = WRITE_TMP("ok.tsv", "hola\thello\r\n\nadiós mundo\tgoodbye world\n");
    int rc = parallel_read_tsv(&pt, p);
    CHECK(rc == 0 && pt.n == 3, "tsv: 3 pairs including a blank line");
    CHECK(rc == 0 && !strcmp(pt.src[0], "hola") && !strcmp(pt.tgt[0], "hello") && pt.src[1][0] == 0 &&
          pt.tgt[1][0] == 0 && !strcmp(pt.tgt[2], "goodbye world") && pt.line[2] == 3,
          "tsv: sides split at the tab, CR stripped, blank line is an empty pair, line numbers kept");
    if (rc == 0) parallel_free(&pt);

    p = WRITE_TMP("notab.tsv", "a\tb\nno tab here\n");
    rc = parallel_read_tsv(&pt, p);
    CHECK(rc != 0 && error_has("notab.tsv:2: no tab"), "tsv: missing tab names line 2: %s", attn_last_error());
    p = WRITE_TMP("twotabs.tsv", "a\tb\tc\n");
    rc = parallel_read_tsv(&pt, p);
    CHECK(rc != 0 && error_has("twotabs.tsv:1: more than one tab"), "tsv: two tabs is an error: %s", attn_last_error());

    const char *s = WRITE_TMP("src.txt", "uno\ndos\tdos\n");
    const char *t = WRITE_TMP("tgt.txt", "one\r\ntwo\r\n");
    rc = parallel_read_files(&pt, s, t);
    CHECK(rc == 0 && pt.n == 2 && !strcmp(pt.src[1], "dos dos") && !strcmp(pt.tgt[1], "two"),
          "files: aligned files pair line by line, a tab inside a side becomes a space");
    if (rc == 0) parallel_free(&pt);
    t = WRITE_TMP("tgt3.txt", "one\ntwo\nthree\n");
    rc = parallel_read_files(&pt, s, t);
    CHECK(rc != 0 && error_has("has 2 lines but") && error_has("has 3"), "files: unequal line counts are an error: %s", attn_last_error());

    // Writing and reading back gives the same pairs.
    ParallelText w = {0};
    parallel_append(&w, "α β", "a b", 1);
    parallel_append(&w, "x", "y", 2);
    parallel_append(&w, "skip", "me", 3);
    int idx[2] = {1, 0};
    char path[300];
    snprintf(path, sizeof path, "%s/out.tsv", tmp_dir);
    rc = parallel_write_tsv(&w, idx, 2, path);
    ParallelText r;
    rc = rc == 0 ? parallel_read_tsv(&r, path) : rc;
    CHECK(rc == 0 && r.n == 2 && !strcmp(r.src[0], "x") && !strcmp(r.src[1], "α β") && !strcmp(r.tgt[1], "a b"),
          "write: selected pairs written in the given order and read back");
    if (rc == 0) parallel_free(&r);
    parallel_free(&w);
}

static void test_normalize(void) {
    char a[] = "  hello \t  world  ";
    size_t n = normalize_whitespace(a);
    CHECK(!strcmp(a, "hello world") && n == 11, "normalize: trim and collapse ASCII spaces and tabs ('%s')", a);
    char b[] = "\xC2\xA0" "a\xE3\x80\x80\xE2\x80\x83" "b\xE2\x80\xAF";  // NBSP a IDEOGRAPHIC-SPACE EM-SPACE b NNBSP
    normalize_whitespace(b);
    CHECK(!strcmp(b, "a b"), "normalize: Unicode spaces count as whitespace ('%s')", b);
    char c[] = "";
    CHECK(normalize_whitespace(c) == 0, "normalize: empty string stays empty");

    char d[] = "HeLLo ÀÉÎÕÜ ÑÇ × Straße ĀĞŁŽ Ÿ İ ΑΒΓ ΆΈΏ ДЖЯ ЁЂ 123!";
    utf8_lowercase(d);
    CHECK(!strcmp(d, "hello àéîõü ñç × straße āğłž ÿ i αβγ άέώ джя ёђ 123!"), "lowercase: ASCII, Latin-1, Latin Ext-A, Greek, Cyrillic ('%s')", d);

    CHECK(has_control_char("a\x01" "b") && has_control_char("\x7f") && has_control_char("x\xC2\x85") &&
          has_control_char("a\rb"), "control: C0, DEL, C1 (U+0085) and a lone CR are control characters");
    CHECK(!has_control_char("tab\tis fine, é and 中 too"), "control: TAB and ordinary text are not");
    CHECK(count_whitespace_tokens(" a bb  ccc ") == 3 && count_whitespace_tokens("") == 0, "tokens: whitespace token count");
    CHECK(count_code_points("añ中😀") == 4, "chars: code points, not bytes");
}

static void test_clean(void) {
    ParallelText pt = {0};
    parallel_append(&pt, "  el  perro ", "the dog", 1);          // kept, normalized
    parallel_append(&pt, "bad\x01", "x", 2);                     // control
    parallel_append(&pt, "   ", "nothing", 3);                   // empty (after normalization)
    parallel_append(&pt, "a b c d e f", "g", 4);                 // ratio 6 > 3
    parallel_append(&pt, "el perro", "the  dog", 5);              // duplicate of line 1 after normalization
    parallel_append(&pt, "1 2 3 4 5 6 7 8 9 10 11", "1 2 3 4 5 6 7 8 9 10 11", 6);  // too long (tokens)
    parallel_append(&pt, "x", "y\xC2\x9F", 7);                   // control (C1)
    parallel_append(&pt, "one two three", "uno", 8);              // ratio exactly 3: kept
    parallel_append(&pt, "abcdefghijklmnopqrstu", "y", 9);        // too long (chars: 21 > 20)
    parallel_append(&pt, "EL PERRO", "THE DOG", 10);              // kept: case differs (no lowercasing)
    CleanConfig cfg;
    clean_config_default(&cfg);
    cfg.max_tokens = 10;
    cfg.max_chars = 20;
    cfg.max_ratio = 3;
    CleanStats st;
    parallel_clean(&pt, &cfg, &st);
    CHECK(st.n_in == 10 && st.n_kept == 3 && pt.n == 3, "clean: 3 of 10 pairs kept (kept %ld)", st.n_kept);
    CHECK(st.dropped[CLEAN_CONTROL] == 2, "clean: control rule dropped 2 (%ld)", st.dropped[CLEAN_CONTROL]);
    CHECK(st.dropped[CLEAN_EMPTY] == 1, "clean: empty rule dropped 1 (%ld)", st.dropped[CLEAN_EMPTY]);
    CHECK(st.dropped[CLEAN_TOO_LONG] == 2, "clean: too-long rule (tokens and chars) dropped 2 (%ld)", st.dropped[CLEAN_TOO_LONG]);
    CHECK(st.dropped[CLEAN_RATIO] == 1, "clean: ratio rule dropped 1 (%ld)", st.dropped[CLEAN_RATIO]);
    CHECK(st.dropped[CLEAN_DUPLICATE] == 1, "clean: duplicate rule dropped 1 (%ld)", st.dropped[CLEAN_DUPLICATE]);
    CHECK(pt.n == 3 && !strcmp(pt.src[0], "el perro") && pt.line[0] == 1 && pt.line[1] == 8 && pt.line[2] == 10,
          "clean: survivors normalized and in input order");
    parallel_free(&pt);

    // Lowercasing happens before the duplicate check; limits of 0 are off.
    parallel_append(&pt, "Ébano", "EBONY", 1);
    parallel_append(&pt, "ébano", "ebony", 2);
    parallel_append(&pt, "a", "b c d e f g h i j k l m", 3);
    clean_config_default(&cfg);
    cfg.lowercase = 1;
    cfg.max_ratio = 0;
    cfg.max_tokens = 0;
    parallel_clean(&pt, &cfg, &st);
    CHECK(pt.n == 2 && !strcmp(pt.src[0], "ébano") && !strcmp(pt.tgt[0], "ebony") && st.dropped[CLEAN_DUPLICATE] == 1,
          "clean: lowercased pairs deduplicated; ratio and length limits off at 0");
    parallel_free(&pt);

    cfg.dedup = 0;
    parallel_append(&pt, "a", "b", 1);
    parallel_append(&pt, "a", "b", 2);
    parallel_clean(&pt, &cfg, &st);
    CHECK(pt.n == 2, "clean: dedup off keeps duplicates");
    parallel_free(&pt);
}

static void test_split(void) {
    int n = 1000, order[1000], order2[1000], nv, nt;
    int rc = split_indices(n, 0.05, 100, 7, order, &nv, &nt);
    CHECK(rc == 0 && nv == 50 && nt == 100, "split: fraction 0.05 -> 50 valid, count 100 -> 100 test");
    char seen[1000] = {0};
    int ok = 1;
    for (int i = 0; i < n; i++) { if (seen[order[i]]++) ok = 0; }
    for (int i = 1; i < n; i++)
        if (i != nv && i != nv + nt && order[i] <= order[i - 1]) ok = 0;
    CHECK(rc == 0 && ok, "split: a permutation, each part in input order");
    split_indices(n, 0.05, 100, 7, order2, &nv, &nt);
    CHECK(!memcmp(order, order2, sizeof order), "split: same seed, same split");
    split_indices(n, 0.05, 100, 8, order2, &nv, &nt);
    CHECK(memcmp(order, order2, sizeof order) != 0, "split: another seed, another split");
    rc = split_indices(n, 600, 500, 1, order, &nv, &nt);
    CHECK(rc != 0 && error_has("exceed"), "split: valid + test > n is an error: %s", attn_last_error());
    rc = split_indices(n, 2.5, 0, 1, order, &nv, &nt);
    CHECK(rc != 0 && error_has("whole count"), "split: a fractional count is an error: %s", attn_last_error());
    rc = split_indices(n, 1e300, 0, 1, order, &nv, &nt);
    CHECK(rc != 0 && error_has("more than"), "split: a size beyond any integer is an error: %s", attn_last_error());
    rc = split_indices(n, 0, 0, 1, order, &nv, &nt);
    CHECK(rc == 0 && nv == 0 && nt == 0, "split: sizes 0 put everything in train");
}

// Reads every line of a stream of `bytes`; returns what line_stream_next
// returned last (0 at the end, -1 on an error) and joins the lines with '|'.
static int stream_lines(const char *bytes, size_t n, int exact, char *joined, size_t cap) {
    FILE *f = fmemopen((void *)bytes, n, "r");
    LineStream ls;
    line_stream_init(&ls, f, "in", exact);
    char *line;
    size_t len;
    int rc;
    joined[0] = '\0';
    while ((rc = line_stream_next(&ls, &line, &len)) > 0) {
        if (joined[0]) strncat(joined, "|", cap - strlen(joined) - 1);
        strncat(joined, line, cap - strlen(joined) - 1);
    }
    line_stream_free(&ls);
    fclose(f);
    return rc;
}

static void test_line_stream(void) {
    char got[256];
    static const char crlf[] = "\xEF\xBB\xBF" "one\r\ntwo\r\n\nlast";
    int rc = stream_lines(crlf, sizeof crlf - 1, 0, got, sizeof got);
    CHECK(rc == 0 && !strcmp(got, "one|two||last"), "stream: BOM skipped, CR cut, blank line kept, last line without newline: '%s'", got);
    rc = stream_lines(crlf, sizeof crlf - 1, 1, got, sizeof got);
    CHECK(rc == 0 && !strcmp(got, "\xEF\xBB\xBF" "one\r|two\r||last"), "stream exact: BOM and CR kept");
    static const char bad[] = "fine\nab\xC3(x\n";
    rc = stream_lines(bad, sizeof bad - 1, 0, got, sizeof got);
    CHECK(rc < 0 && error_has("in:2:3: invalid UTF-8 (byte 0xC3)"), "stream: invalid UTF-8 names line and column: %s", attn_last_error());
    rc = stream_lines("a\nb\0c\n", 6, 1, got, sizeof got);
    CHECK(rc < 0 && error_has("in:2:2: NUL byte"), "stream: NUL byte names line and column: %s", attn_last_error());
    rc = stream_lines("", 0, 0, got, sizeof got);
    CHECK(rc == 0 && got[0] == '\0', "stream: empty input has no lines");
}

int main(void) {
    if (!mkdtemp(tmp_dir)) { printf("FAIL cannot create a temp dir\n"); return 1; }
    test_lines();
    test_line_stream();
    test_read_parallel();
    test_normalize();
    test_clean();
    test_split();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) printf("INFO could not remove %s\n", tmp_dir);
    TEST_EXIT();
}
