#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char last_error[1024];

int attn_error(const char *fmt, ...) {
    // Format into a copy first: callers often pass attn_last_error() itself
    // as an argument to add context, and vsnprintf must not read the buffer
    // it writes.
    char message[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    memcpy(last_error, message, sizeof last_error);
    return -1;
}

const char *attn_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

static void out_of_memory(size_t size, const char *file, int line) {
    fprintf(stderr, "attn: out of memory allocating %zu bytes (%s:%d)\n", size, file, line);
    abort();
}

void *malloc_check_(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

void *calloc_check_(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n * size, file, line);
    return p;
}

void *realloc_check_(void *old, size_t size, const char *file, int line) {
    void *p = realloc(old, size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

char *strdup_check_(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = malloc_check_(n, file, line);
    memcpy(p, s, n);
    return p;
}

int read_stream(FILE *f, const char *name, char **data, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc_check(cap);
    for (;;) {  // until EOF: pipes and files that grow have no size to trust
        if (n + 1 >= cap) buf = realloc_check(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return attn_error("%s: read error: %s", name, strerror(e));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int read_file(const char *path, char **data, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0) return attn_error("%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return attn_error("%s: is a directory, expected a file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return attn_error("%s: %s", path, strerror(errno));
    int rc = read_stream(f, path, data, len);
    fclose(f);
    return rc;
}

int stdout_check_open(void) {
    if (fcntl(STDOUT_FILENO, F_GETFD) == -1) return attn_error("standard output is closed; redirect it to a file");
    return 0;
}

int stdout_flush(void) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    int e = errno;
    return attn_error("standard output: write error%s%s (the output is incomplete)", e ? ": " : "", e ? strerror(e) : "");
}

int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fsync_dir_of(const char *path) {
    char *copy = strdup_check(path);
    int fd = open(dirname(copy), O_RDONLY);
    free(copy);
    if (fd < 0) return 0;  // best effort: some file systems refuse
    fsync(fd);
    close(fd);
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    // The rename below would replace whatever `path` is: never a device such
    // as /dev/null or /dev/full, a FIFO or a directory.
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return attn_error("%s: exists and is not a regular file; give a file path", path);
    size_t n = strlen(path) + 32;
    char *tmp = malloc_check(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno; free(tmp);
        return attn_error("%s: cannot write: %s", path, strerror(e));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno; close(fd); unlink(tmp); free(tmp);
            return attn_error("%s: write failed: %s (the previous file is intact)", path, strerror(e));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno; unlink(tmp); free(tmp);
        return attn_error("%s: write failed: %s (the previous file is intact)", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno; unlink(tmp); free(tmp);
        return attn_error("%s: cannot rename into place: %s", path, strerror(e));
    }
    free(tmp);
    return fsync_dir_of(path);
}

void sb_append(StrBuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1) cap *= 2;
        sb->data = realloc_check(sb->data, cap);
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(StrBuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_printf(StrBuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    sb_append(sb, "", 0);  // ensure a buffer exists
    if (sb->len + (size_t)n + 1 > sb->cap) {
        size_t cap = sb->cap;
        while (cap < sb->len + (size_t)n + 1) cap *= 2;
        sb->data = realloc_check(sb->data, cap);
        sb->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void sb_free(StrBuf *sb) { free(sb->data); sb->data = NULL; sb->len = sb->cap = 0; }
