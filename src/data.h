// Parallel text: reading (a TSV or two aligned files), cleaning with a count
// per dropping rule, deterministic shuffled train/valid/test splits, writing.
// Decisions (line limit, what counts as a control character, lowercasing
// coverage) are in docs/data.md.
#ifndef ATTN_DATA_H
#define ATTN_DATA_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// The longest accepted input line, in bytes. Longer lines are an error that
// names the file and line: a multi-megabyte "sentence" is a broken file, and
// refusing it keeps every later buffer bounded.
#define DATA_MAX_LINE_BYTES (1 << 20)

// ----------------------------------------------------------------------------
// Lines of a text file
//
// Every command reads text lines through these two readers, so all of them
// accept and refuse the same input: a leading BOM is skipped, CRLF is a line
// end, a missing final newline is fine; invalid UTF-8 (with the byte column),
// a NUL byte and a line over DATA_MAX_LINE_BYTES are errors of one line,
// "NAME:LINE[:COLUMN]: ...". NAME is the path, or "standard input".

// All lines of a file ("-" is standard input), each NUL-terminated, without
// the line end. Also fails on a missing file, a directory, an empty file.
typedef struct {
    char **lines;   // (n) views into `text`
    int n;
    char *text;     // the file's bytes, line ends replaced by NULs
} DataLines;

int data_lines_read(DataLines *tl, const char *path);
void data_lines_free(DataLines *tl);

// One line at a time from a stream, for commands that answer as they read.
// With `exact`, only the '\n' is cut: a CR before it and a BOM stay part of
// the text (the tokenizer's encode/decode round-trip any bytes).
typedef struct {
    FILE *in;
    const char *name;   // for errors
    int exact;
    long line_no;       // of the line last returned, 1-based
    char *buf;          // getline's buffer
    size_t cap;
} LineStream;

void line_stream_init(LineStream *ls, FILE *in, const char *name, int exact);
// Sets *line (NUL-terminated, valid until the next call) and *len to the next
// line; returns 1, or 0 at the end of the input, -1 on an error.
int line_stream_next(LineStream *ls, char **line, size_t *len);
void line_stream_free(LineStream *ls);

// ----------------------------------------------------------------------------
// Parallel text

typedef struct {
    char **src;     // (n) NUL-terminated UTF-8, each owned (malloc'd)
    char **tgt;     // (n)
    int *line;      // (n) 1-based line of the pair in its input file(s)
    int n, cap;
} ParallelText;

// Splits a `first<TAB>second` line in place at its one tab: *second points
// after it. Fails with "NAME:LINE: no tab (expected EXPECTED)" or "... more
// than one tab ..." (EXPECTED says what the columns hold: "src<TAB>tgt").
int split_tab_pair(char *line, char **second, const char *name, long line_no, const char *expected);

// `src<TAB>tgt` per line; exactly one tab per line, else an error naming the
// file and line ("no tab" / "more than one tab").
int parallel_read_tsv(ParallelText *pt, const char *path);
// Two aligned files, line i of one with line i of the other; the files must
// have the same number of lines. A tab inside a line becomes a space.
int parallel_read_files(ParallelText *pt, const char *src_path, const char *tgt_path);
// Copies src and tgt in (used by the readers and by tests).
void parallel_append(ParallelText *pt, const char *src, const char *tgt, int line);
void parallel_free(ParallelText *pt);

// Writes pairs idx[0..n) (all pairs in order when idx is NULL) as a TSV,
// atomically.
int parallel_write_tsv(const ParallelText *pt, const int *idx, int n, const char *path);

// ----------------------------------------------------------------------------
// Cleaning

// Rules that drop a pair, in the order they are tested; a pair counts under
// the first rule it breaks.
enum {
    CLEAN_CONTROL,    // a control character (C0 except TAB, DEL, C1) on either side
    CLEAN_EMPTY,      // a side is empty after whitespace normalization
    CLEAN_TOO_LONG,   // a side over max_tokens whitespace tokens or max_chars code points
    CLEAN_RATIO,      // longer/shorter side, in tokens, above max_ratio
    CLEAN_DUPLICATE,  // the same (src, tgt) pair as an earlier kept pair
    CLEAN_N_RULES
};
extern const char *const clean_rule_names[CLEAN_N_RULES];  // "control", "empty", ...

typedef struct {
    int max_tokens;      // per side, whitespace tokens; 0 = no limit (default 250)
    int max_chars;       // per side, code points; 0 = no limit (default 0)
    double max_ratio;    // token-length ratio cap; 0 = off (default 9, as Moses)
    int dedup;           // drop exact duplicate pairs (default 1)
    int lowercase;       // lowercase both sides (default 0)
} CleanConfig;

typedef struct {
    long n_in, n_kept;
    long dropped[CLEAN_N_RULES];
} CleanStats;

void clean_config_default(CleanConfig *cfg);

// Normalizes whitespace on both sides (trim, collapse runs of ASCII and
// Unicode spaces to one ' '), optionally lowercases, then drops the pairs that
// break a rule, keeping the survivors in their original order.
void parallel_clean(ParallelText *pt, const CleanConfig *cfg, CleanStats *stats);

// In-place helpers, exposed for the tokenizers and tests. Both only shrink
// the string (the result is never longer than the input).
size_t normalize_whitespace(char *s);   // returns the new length
size_t utf8_lowercase(char *s);          // ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
// 1 when s holds a control character that the cleaning rule drops.
int has_control_char(const char *s);
long count_whitespace_tokens(const char *s);
long count_code_points(const char *s);

// ----------------------------------------------------------------------------
// Splitting

// A split size: >= 1 means that many pairs, in (0, 1) a fraction of n
// (rounded to nearest), 0 means none.
// Fills order with a permutation of 0..n-1 drawn from `seed`, then sorts each
// part back into input order: valid = order[0, n_valid), test = the next
// n_test, train = the rest. Fails when valid + test exceed n.
int split_indices(int n, double valid, double test, uint64_t seed,
                  int *order, int *n_valid, int *n_test);

#endif
