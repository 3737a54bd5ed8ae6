#include "json.h"
#include <stdlib.h>
#include <string.h>
#include "utf8.h"

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    int depth;
} Parser;

static int fail(Parser *p, const char *what) {
    return attn_error("%s at byte %zu", what, p->pos);
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int parse_value(Parser *p, JsonValue *v);

static int hex4(Parser *p, uint32_t *out) {
    if (p->pos + 4 > p->len) return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static int parse_escape(Parser *p, StrBuf *sb) {
    char c = p->s[p->pos++];
    const char *simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (int i = 0; simple[i]; i += 2)
        if (c == simple[i]) { sb_append(sb, &simple[i + 1], 1); return 0; }
    if (c != 'u') return fail(p, "bad escape");
    uint32_t cp;
    if (hex4(p, &cp)) return -1;
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
        uint32_t low;
        if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "unpaired surrogate");
        p->pos += 2;
        if (hex4(p, &low)) return -1;
        if (low < 0xDC00 || low > 0xDFFF) return fail(p, "unpaired surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail(p, "unpaired surrogate");
    } else if (cp == 0) {
        return fail(p, "\\u0000 in a string (strings are NUL-terminated here)");  // it would cut the string silently
    }
    char buf[4];
    sb_append(sb, buf, (size_t)utf8_encode(cp, buf));
    return 0;
}

static int parse_string(Parser *p, char **out) {
    StrBuf sb = {0};
    p->pos++;  // opening quote
    sb_append(&sb, "", 0);
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') { p->pos++; *out = sb.data; return 0; }
        if (c < 0x20) { sb_free(&sb); return fail(p, "control character in string"); }
        if (c == '\\') {
            p->pos++;
            if (p->pos >= p->len || parse_escape(p, &sb)) { sb_free(&sb); return p->pos >= p->len ? fail(p, "truncated string") : -1; }
            continue;
        }
        uint32_t cp;
        int n = utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
        if (n < 0) { sb_free(&sb); return fail(p, "invalid UTF-8 in string"); }
        sb_append(&sb, p->s + p->pos, (size_t)n);
        p->pos += (size_t)n;
    }
    sb_free(&sb);
    return fail(p, "unterminated string");
}

static int parse_number(Parser *p, JsonValue *v) {
    size_t start = p->pos;
    const char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
    if (s[p->pos] == '0') p->pos++;
    else while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) return fail(p, "number too long");
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    v->type = JSON_NUMBER;
    v->number = strtod(buf, NULL);
    return 0;
}

static int parse_literal(Parser *p, JsonValue *v) {
    static const struct { const char *word; JsonType type; int boolean; } lits[] = {
        {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].word);
        if (p->pos + n <= p->len && !memcmp(p->s + p->pos, lits[i].word, n)) {
            p->pos += n;
            v->type = lits[i].type;
            v->boolean = lits[i].boolean;
            return 0;
        }
    }
    return fail(p, "unexpected character");
}

// Arrays and objects share one loop: members are "key": value when is_object.
static int parse_container(Parser *p, JsonValue *v, int is_object) {
    char close = is_object ? '}' : ']';
    if (++p->depth > JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    v->type = is_object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; p->depth--; return 0; }
    int cap = 0;
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = realloc_check(v->items, (size_t)cap * sizeof *v->items);
            if (is_object) v->keys = realloc_check(v->keys, (size_t)cap * sizeof *v->keys);
        }
        skip_ws(p);
        if (is_object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a key");
            if (parse_string(p, &v->keys[v->n])) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { free(v->keys[v->n]); return fail(p, "expected ':'"); }
            p->pos++;
        }
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        v->n++;
        if (parse_value(p, &v->items[v->n - 1])) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated array or object");
        char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') { p->pos--; return fail(p, "expected ',' or closing bracket"); }
    }
    p->depth--;
    return 0;
}

static int parse_value(Parser *p, JsonValue *v) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    char c = p->s[p->pos];
    if (c == '{') return parse_container(p, v, 1);
    if (c == '[') return parse_container(p, v, 0);
    if (c == '"') { v->type = JSON_STRING; return parse_string(p, &v->string); }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    return parse_literal(p, v);
}

int json_parse(const char *text, size_t len, JsonValue *out) {
    Parser p = {text, len, 0, 0};
    memset(out, 0, sizeof *out);
    if (parse_value(&p, out)) { json_free(out); return -1; }
    skip_ws(&p);
    if (p.pos != len) { json_free(out); return fail(&p, "trailing characters"); }
    return 0;
}

void json_free(JsonValue *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

void json_append_string(StrBuf *sb, const char *s) {
    sb_append(sb, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': sb_puts(sb, "\\\""); break;
        case '\\': sb_puts(sb, "\\\\"); break;
        case '\n': sb_puts(sb, "\\n"); break;
        case '\r': sb_puts(sb, "\\r"); break;
        case '\t': sb_puts(sb, "\\t"); break;
        default:
            if (*c < 0x20) sb_printf(sb, "\\u%04x", *c);
            else sb_append(sb, (const char *)c, 1);
        }
    }
    sb_append(sb, "\"", 1);
}
