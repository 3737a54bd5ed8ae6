#include <string.h>
#include <stdlib.h>
#include "test.h"
#include "json.h"

static int parses(const char *s) {
    JsonValue v;
    int rc = json_parse(s, strlen(s), &v);
    if (rc == 0) json_free(&v);
    return rc == 0;
}

int main(void) {
    const char *doc = "{\"a\": [1, -2.5e3, true, null], \"s\": \"x\\n\\u00f1\\ud83d\\ude00\", \"o\": {}}";
    JsonValue v;
    CHECK(json_parse(doc, strlen(doc), &v) == 0, "parse a document");
    const JsonValue *a = json_get(&v, "a");
    CHECK(a && a->type == JSON_ARRAY && a->n == 4 && a->items[0].number == 1 && a->items[1].number == -2500
          && a->items[2].type == JSON_BOOL && a->items[2].boolean && a->items[3].type == JSON_NULL, "array members");
    const JsonValue *s = json_get(&v, "s");
    CHECK(s && !strcmp(s->string, "x\n\xC3\xB1\xF0\x9F\x98\x80"), "string escapes and surrogate pair");
    CHECK(json_get(&v, "o") && json_get(&v, "o")->type == JSON_OBJECT && json_get(&v, "missing") == NULL, "lookup");
    json_free(&v);
    CHECK(!parses("{\"a\":1,}"), "trailing comma rejected");
    CHECK(!parses("[1 2]"), "missing comma rejected");
    CHECK(!parses("\"abc"), "unterminated string rejected");
    CHECK(!parses("\"\\ud800\""), "lone surrogate rejected");
    CHECK(!parses("01"), "leading zero rejected");
    CHECK(!parses("{\"a\\u0000b\":1}") && strstr(attn_last_error(), "u0000"), "a NUL escape is rejected, not cut: %s", attn_last_error());
    CHECK(!parses("{} x"), "trailing garbage rejected");
    CHECK(!parses("\"\xC0\xAF\""), "invalid UTF-8 rejected");
    char deep[200];
    memset(deep, '[', 100); deep[100] = 0;
    CHECK(!parses(deep), "deep nesting rejected without crash");
    StrBuf sb = {0};
    json_append_string(&sb, "q\"\\\t\x01");
    CHECK(!strcmp(sb.data, "\"q\\\"\\\\\\t\\u0001\""), "escaping: %s", sb.data);
    JsonValue back;
    CHECK(json_parse(sb.data, sb.len, &back) == 0 && !strcmp(back.string, "q\"\\\t\x01"), "escape round trip");
    json_free(&back);
    sb_free(&sb);
    TEST_EXIT();
}
