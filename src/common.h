// Shared plumbing: the error convention, checked allocation, whole-file I/O.
//
// Errors: library functions return 0 on success and -1 on failure after
// recording a one-line message with attn_error(). Only the command line
// (src/main.c) prints it, as "attn: <message>", and exits non-zero.
#ifndef ATTN_COMMON_H
#define ATTN_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ATTN_VERSION "0.1.0"

// Records the message (printf-style) and returns -1, so that a failing
// function can `return attn_error("%s: line %d: missing tab", path, line);`.
// attn_last_error() may be an argument, to add context to the last message.
int attn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *attn_last_error(void);

// Allocation failures are not recoverable here: print where and abort.
void *malloc_check_(size_t size, const char *file, int line);
void *calloc_check_(size_t n, size_t size, const char *file, int line);
void *realloc_check_(void *p, size_t size, const char *file, int line);
char *strdup_check_(const char *s, const char *file, int line);
#define malloc_check(n) malloc_check_(n, __FILE__, __LINE__)
#define calloc_check(n, s) calloc_check_(n, s, __FILE__, __LINE__)
#define realloc_check(p, n) realloc_check_(p, n, __FILE__, __LINE__)
#define strdup_check(s) strdup_check_(s, __FILE__, __LINE__)

// Reads a whole regular file into a NUL-terminated buffer; *len gets its size.
// Fails with a clear message for a missing file, a directory, or an I/O error.
int read_file(const char *path, char **data, size_t *len);
// Reads an open stream (stdin) to its end the same way; `name` is for errors.
int read_stream(FILE *f, const char *name, char **data, size_t *len);

// Writes atomically: a temp file beside `path`, fsync, rename over `path`,
// fsync of the directory. `path` is either the old or the new file, never torn.
// Fails when `path` exists and is not a regular file (a device, a directory).
int write_file_atomic(const char *path, const void *data, size_t len);

// For commands whose results go to stdout. stdout_check_open() first: with
// descriptor 1 closed, the next open() would take it and the results would
// land in that file. stdout_flush() last: it flushes, and output lost to a
// full disk or a closed descriptor becomes an error instead of exit status 0.
int stdout_check_open(void);
int stdout_flush(void);

// 1 when both paths name one existing file (the same device and inode):
// an output about to be truncated must not be one of the inputs.
int same_file(const char *a, const char *b);

// Seconds on the monotonic clock, for timing (never steps back with the wall clock).
double monotonic_seconds(void);

// A growable NUL-terminated string, for building JSON, metadata and output.
typedef struct { char *data; size_t len, cap; } StrBuf;
void sb_append(StrBuf *sb, const char *s, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(StrBuf *sb);

#endif
