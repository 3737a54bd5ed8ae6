#include <string.h>
#include "test.h"
#include "utf8.h"

static int decode_len(const char *s, size_t n) { uint32_t cp; return utf8_decode(s, n, &cp); }

int main(void) {
    uint32_t cp = 0;
    CHECK(utf8_decode("A", 1, &cp) == 1 && cp == 'A', "ascii");
    CHECK(utf8_decode("\xC3\xB1", 2, &cp) == 2 && cp == 0xF1, "2-byte n-tilde");
    CHECK(utf8_decode("\xE2\x96\x81", 3, &cp) == 3 && cp == 0x2581, "3-byte word marker");
    CHECK(utf8_decode("\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600, "4-byte emoji");
    CHECK(decode_len("\xC0\xAF", 2) == -1, "overlong 2-byte slash rejected");
    CHECK(decode_len("\xE0\x80\xAF", 3) == -1, "overlong 3-byte rejected");
    CHECK(decode_len("\xF0\x80\x80\xAF", 4) == -1, "overlong 4-byte rejected");
    CHECK(decode_len("\xED\xA0\x80", 3) == -1, "surrogate D800 rejected");
    CHECK(decode_len("\xED\xBF\xBF", 3) == -1, "surrogate DFFF rejected");
    CHECK(decode_len("\xF4\x90\x80\x80", 4) == -1, "above U+10FFFF rejected");
    CHECK(decode_len("\xF4\x8F\xBF\xBF", 4) == 4, "U+10FFFF accepted");
    CHECK(decode_len("\x80", 1) == -1, "lone continuation rejected");
    CHECK(decode_len("\xE2\x96", 2) == -1, "truncated sequence rejected");
    CHECK(decode_len("\xFF", 1) == -1, "0xFF rejected");
    const char *mixed = "ab\xC3\xB1" "c\xE2\x28\xA1";
    CHECK(utf8_first_invalid(mixed, strlen(mixed)) == 5, "first invalid offset");
    CHECK(utf8_first_invalid("plain", 5) == -1, "valid string");
    char buf[4];
    uint32_t cps[] = {0x24, 0xA2, 0x20AC, 0x10348};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        int n = utf8_encode(cps[i], buf);
        ok &= n == i + 1 && utf8_decode(buf, n, &cp) == n && cp == cps[i];
    }
    CHECK(ok, "encode/decode round trip of 1..4-byte code points");
    CHECK(utf8_encode(0xD800, buf) == 0 && utf8_encode(0x110000, buf) == 0, "encode refuses surrogates and > U+10FFFF");
    TEST_EXIT();
}
