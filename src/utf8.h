// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequences.
#ifndef ATTN_UTF8_H
#define ATTN_UTF8_H
#include <stddef.h>
#include <stdint.h>

// Decodes one code point from s[0..n). Returns its length in bytes (1-4), or
// -1 when the bytes at s do not start a valid sequence.
int utf8_decode(const char *s, size_t n, uint32_t *cp);

// Encodes cp into out (at least 4 bytes); returns the length, 0 if invalid.
int utf8_encode(uint32_t cp, char *out);

// Returns -1 when s[0..n) is valid UTF-8, else the offset of the first bad byte.
long utf8_first_invalid(const char *s, size_t n);

#endif
