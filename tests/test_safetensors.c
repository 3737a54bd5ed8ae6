#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "common.h"
#include "safetensors.h"

static char path[256];

static int write_raw(const char *p, const void *data, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    fwrite(data, 1, n, f);
    fclose(f);
    return 0;
}

static int load_fails_with(const char *p, const char *needle) {
    SafeTensors st;
    if (st_load(p, &st) == 0) { st_free(&st); return 0; }
    return strstr(attn_last_error(), needle) != NULL;
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/attn_test_st_%d.safetensors", (int)getpid());
    float a[6] = {1, 2, 3, 4, 5, 6}, b[1] = {-7.5f};
    StTensor ts[2] = {
        {.name = "layer.weight", .ndim = 2, .shape = {2, 3}, .numel = 6, .data = a},
        {.name = "bias", .ndim = 1, .shape = {1}, .numel = 1, .data = b},
    };
    const char *keys[] = {"config", "note"}, *values[] = {"{\"d_model\": 4}", "tab\there \"quoted\""};
    CHECK(st_save(path, ts, 2, keys, values, 2) == 0, "save");
    SafeTensors st;
    CHECK(st_load(path, &st) == 0, "load");
    const StTensor *w = st_find(&st, "layer.weight");
    CHECK(w && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && !memcmp(w->data, a, sizeof a), "tensor round trip");
    CHECK(st_find(&st, "bias") && st_find(&st, "bias")->data[0] == -7.5f, "second tensor");
    CHECK(st_meta(&st, "note") && !strcmp(st_meta(&st, "note"), values[1]), "metadata round trip");
    CHECK(st_find(&st, "nope") == NULL && st_meta(&st, "nope") == NULL, "absent names");
    st_free(&st);

    char *buf; size_t len;
    read_file(path, &buf, &len);
    char bad[sizeof path + 8];
    snprintf(bad, sizeof bad, "%s.bad", path);
    write_raw(bad, buf, len - 3);
    CHECK(load_fails_with(bad, "outside"), "truncated data: %s", attn_last_error());
    write_raw(bad, buf, 5);
    CHECK(load_fails_with(bad, "truncated"), "truncated length: %s", attn_last_error());
    char *corrupt = malloc(len);
    memcpy(corrupt, buf, len);
    corrupt[8] = '#';
    write_raw(bad, corrupt, len);
    CHECK(load_fails_with(bad, "corrupt safetensors header"), "corrupt header: %s", attn_last_error());
    const char *first = strstr(attn_last_error(), "corrupt safetensors header");
    CHECK(first && !strstr(first + 1, "corrupt safetensors header") && strstr(attn_last_error(), "at byte"),
          "corrupt header: the reason, said once: %s", attn_last_error());
    memcpy(corrupt, buf, len);
    char *dt = strstr(corrupt + 8, "F32");
    if (dt) memcpy(dt, "F16", 3);
    write_raw(bad, corrupt, len);
    CHECK(load_fails_with(bad, "not supported"), "wrong dtype: %s", attn_last_error());
    memset(corrupt, 0xff, 8);
    write_raw(bad, corrupt, len);
    CHECK(load_fails_with(bad, "header length"), "absurd header length: %s", attn_last_error());
    static const char huge_offset[] = "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}    ";
    unsigned char raw[8 + sizeof huge_offset + 4] = {0};
    raw[0] = (unsigned char)(sizeof huge_offset - 1);
    memcpy(raw + 8, huge_offset, sizeof huge_offset - 1);
    write_raw(bad, raw, 8 + sizeof huge_offset - 1 + 4);
    CHECK(load_fails_with(bad, "bad data_offsets"), "an offset beyond any integer: %s", attn_last_error());
    CHECK(load_fails_with("/tmp", "directory"), "directory: %s", attn_last_error());
    CHECK(load_fails_with("/nonexistent/x.safetensors", "No such file"), "missing file: %s", attn_last_error());
    free(corrupt);
    free(buf);
    unlink(bad);
    unlink(path);
    TEST_EXIT();
}
