// A small strict JSON reader (RFC 8259) and string escaper, enough for
// safetensors headers, checkpoint metadata and metrics lines.
#ifndef ATTN_JSON_H
#define ATTN_JSON_H
#include <stddef.h>
#include "common.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue {
    JsonType type;
    int boolean;
    double number;
    char *string;             // JSON_STRING: decoded UTF-8, NUL-terminated
    int n;                    // JSON_ARRAY / JSON_OBJECT: element count
    struct JsonValue *items;  // elements, or object values
    char **keys;              // JSON_OBJECT: keys, parallel to items
} JsonValue;

// Parses text[0..len) as one JSON value. On error returns -1 with
// "<what> at byte <offset>" (the caller prefixes the file name).
int json_parse(const char *text, size_t len, JsonValue *out);
void json_free(JsonValue *v);
// Object member by key, NULL when absent or when obj is not an object.
const JsonValue *json_get(const JsonValue *obj, const char *key);
// Appends s as a quoted JSON string with escapes.
void json_append_string(StrBuf *sb, const char *s);

#endif
