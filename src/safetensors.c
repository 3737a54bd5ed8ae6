#include "safetensors.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "json.h"

// Largest header we accept: real ones are kilobytes; metadata with embedded
// tokenizers can reach megabytes.
#define ST_MAX_HEADER (256L << 20)

static uint64_t read_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int cmp_range(const void *a, const void *b) {
    const long *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

// Reads one tensor entry of the header into t; data is copied out of the file.
static int load_tensor(const char *path, const char *name, const JsonValue *entry,
                       const char *data, long data_len, StTensor *t, long *range) {
    const JsonValue *dtype = json_get(entry, "dtype"), *shape = json_get(entry, "shape"),
                    *offs = json_get(entry, "data_offsets");
    if (!dtype || dtype->type != JSON_STRING || !shape || shape->type != JSON_ARRAY ||
        !offs || offs->type != JSON_ARRAY || offs->n != 2)
        return attn_error("%s: tensor '%s': malformed header entry", path, name);
    if (strcmp(dtype->string, "F32") != 0)
        return attn_error("%s: tensor '%s': dtype %s is not supported (only F32)", path, name, dtype->string);
    if (shape->n > ST_MAX_DIMS)
        return attn_error("%s: tensor '%s': %d dimensions, at most %d supported", path, name, shape->n, ST_MAX_DIMS);
    t->ndim = shape->n;
    t->numel = 1;
    for (int d = 0; d < shape->n; d++) {
        double v = shape->items[d].number;
        if (shape->items[d].type != JSON_NUMBER || v < 0 || v > 1e12 || v != (long)v)
            return attn_error("%s: tensor '%s': bad shape", path, name);
        t->shape[d] = (long)v;
        t->numel *= t->shape[d];
        if (t->numel > (1L << 40)) return attn_error("%s: tensor '%s': shape too large", path, name);
    }
    for (int i = 0; i < 2; i++) {
        double v = offs->items[i].number;
        if (offs->items[i].type != JSON_NUMBER || v < 0 || v > 1e15 || v != (long)v)  // bound first: the cast of a huge double is undefined
            return attn_error("%s: tensor '%s': bad data_offsets", path, name);
        range[i] = (long)v;
    }
    if (range[1] < range[0] || range[1] > data_len)
        return attn_error("%s: tensor '%s': data_offsets [%ld, %ld] outside the %ld data bytes (truncated file?)",
                          path, name, range[0], range[1], data_len);
    if (range[1] - range[0] != t->numel * 4)
        return attn_error("%s: tensor '%s': %ld bytes for %ld floats", path, name, range[1] - range[0], t->numel);
    t->name = strdup_check(name);
    t->data = malloc_check((size_t)t->numel * sizeof(float));
    memcpy(t->data, data + range[0], (size_t)t->numel * sizeof(float));
    return 0;
}

static int load_metadata(const char *path, const JsonValue *meta, SafeTensors *st) {
    if (meta->type != JSON_OBJECT) return attn_error("%s: __metadata__ is not an object", path);
    st->meta_keys = calloc_check((size_t)meta->n, sizeof(char *));
    st->meta_values = calloc_check((size_t)meta->n, sizeof(char *));
    for (int i = 0; i < meta->n; i++) {
        if (meta->items[i].type != JSON_STRING)
            return attn_error("%s: __metadata__ value of '%s' is not a string", path, meta->keys[i]);
        st->meta_keys[i] = strdup_check(meta->keys[i]);
        st->meta_values[i] = strdup_check(meta->items[i].string);
        st->n_meta++;
    }
    return 0;
}

static int parse_file(const char *path, const char *buf, size_t len, SafeTensors *st) {
    if (len < 8) return attn_error("%s: not a safetensors file (%zu bytes, truncated?)", path, len);
    uint64_t header_len = read_le64((const unsigned char *)buf);
    if (header_len > ST_MAX_HEADER || header_len > len - 8)
        return attn_error("%s: not a safetensors file or truncated (header length %llu, file %zu bytes)",
                          path, (unsigned long long)header_len, len);
    JsonValue header;
    if (json_parse(buf + 8, header_len, &header) != 0)
        return attn_error("%s: corrupt safetensors header: %s", path, attn_last_error());
    int rc = 0;
    if (header.type != JSON_OBJECT) { json_free(&header); return attn_error("%s: header is not a JSON object", path); }
    const char *data = buf + 8 + header_len;
    long data_len = (long)(len - 8 - header_len);
    long *ranges = malloc_check((size_t)(header.n + 1) * 2 * sizeof(long));
    st->tensors = calloc_check((size_t)header.n + 1, sizeof(StTensor));
    for (int i = 0; i < header.n && rc == 0; i++) {
        if (!strcmp(header.keys[i], "__metadata__")) { rc = load_metadata(path, &header.items[i], st); continue; }
        rc = load_tensor(path, header.keys[i], &header.items[i], data, data_len,
                         &st->tensors[st->n_tensors], &ranges[2 * st->n_tensors]);
        if (rc == 0) st->n_tensors++;
    }
    if (rc == 0) {
        qsort(ranges, (size_t)st->n_tensors, 2 * sizeof(long), cmp_range);
        for (int i = 1; i < st->n_tensors && rc == 0; i++)
            if (ranges[2 * i] < ranges[2 * i - 1]) rc = attn_error("%s: tensors overlap in the data section", path);
    }
    free(ranges);
    json_free(&header);
    return rc;
}

int st_load(const char *path, SafeTensors *st) {
    memset(st, 0, sizeof *st);
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len)) return -1;
    int rc = parse_file(path, buf, len, st);
    free(buf);
    if (rc) st_free(st);
    return rc;
}

void st_free(SafeTensors *st) {
    for (int i = 0; i < st->n_tensors; i++) { free(st->tensors[i].name); free(st->tensors[i].data); }
    for (int i = 0; i < st->n_meta; i++) { free(st->meta_keys[i]); free(st->meta_values[i]); }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

static void build_header(StrBuf *h, const StTensor *tensors, int n,
                         const char *const *keys, const char *const *values, int n_meta) {
    sb_puts(h, "{");
    if (n_meta > 0) {
        sb_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(h, ",");
            json_append_string(h, keys[i]);
            sb_puts(h, ":");
            json_append_string(h, values[i]);
        }
        sb_puts(h, "}");
    }
    long offset = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) sb_puts(h, ",");
        json_append_string(h, tensors[i].name);
        sb_puts(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < tensors[i].ndim; d++) sb_printf(h, "%s%ld", d ? "," : "", tensors[i].shape[d]);
        sb_printf(h, "],\"data_offsets\":[%ld,%ld]}", offset, offset + tensors[i].numel * 4);
        offset += tensors[i].numel * 4;
    }
    sb_puts(h, "}");
    while (h->len % 8) sb_puts(h, " ");  // align the data section, as the reference writer does
}

int st_save(const char *path, const StTensor *tensors, int n_tensors,
            const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    StrBuf h = {0};
    build_header(&h, tensors, n_tensors, meta_keys, meta_values, n_meta);
    size_t total = 8 + h.len;
    for (int i = 0; i < n_tensors; i++) total += (size_t)tensors[i].numel * 4;
    unsigned char *out = malloc_check(total);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    memcpy(out + 8, h.data, h.len);
    size_t pos = 8 + h.len;
    for (int i = 0; i < n_tensors; i++) {  // float32 is little-endian on every target we build for
        memcpy(out + pos, tensors[i].data, (size_t)tensors[i].numel * 4);
        pos += (size_t)tensors[i].numel * 4;
    }
    int rc = write_file_atomic(path, out, total);
    free(out);
    sb_free(&h);
    return rc;
}
