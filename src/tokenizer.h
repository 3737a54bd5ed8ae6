// Tokenizers: characters, whitespace-separated words, and BPE (with
// BPE-dropout), learned from text lines, saved as plain text.
//
// Special ids, fixed for every type: 0 <pad>, 1 <unk>, 2 <s>, 3 </s>.
// encode never emits <pad>/<s>/</s>; the caller adds <s> and </s>.
//
// Spaces (char and BPE): a space is written as the piece marker U+2581 "▁".
// BPE prepends one "▁" to a non-empty text and splits words before every "▁",
// so "a  b" becomes "▁a" "▁" "▁b" and decode gives back the text byte for
// byte, leading, trailing and repeated spaces included. A literal U+2581 in
// the text is never a piece: it is written with byte pieces (or <unk>).
// Unknown characters become byte pieces <0x00>..<0xFF> when byte fallback is
// on (BPE default), else <unk>. Words: split on spaces and tabs, joined by
// one space. See docs/tokenizer.md for the file format and the details.
//
// Thread safety: all functions may be called concurrently on one Tokenizer
// (the BPE word cache that encode fills is guarded by a mutex).
#ifndef ATTN_TOKENIZER_H
#define ATTN_TOKENIZER_H
#include <stddef.h>
#include "rng.h"

enum { TOK_PAD = 0, TOK_UNK = 1, TOK_BOS = 2, TOK_EOS = 3, TOK_N_SPECIAL = 4 };

typedef enum { TOKENIZER_CHAR, TOKENIZER_WORD, TOKENIZER_BPE } TokenizerType;

typedef struct {
    int vocab_size;       // cap on the whole vocabulary, specials and byte pieces
                          // included; BPE merges until it is reached; 0 = no cap
                          // (char/word only)
    long min_frequency;   // characters, words and merged pairs seen fewer times
                          // are left out (>= 1)
    int byte_fallback;    // char/BPE: unknown characters as UTF-8 byte pieces
                          // instead of <unk> (adds 256 pieces)
} TokenizerOptions;

typedef struct Tokenizer Tokenizer;

// Defaults: BPE vocab 8000, min_frequency 2, byte_fallback 1;
// char/word no cap, min_frequency 1, byte_fallback 0.
void tokenizer_options_default(TokenizerOptions *opts, TokenizerType type);
const char *tokenizer_type_name(TokenizerType type);               // "char", "word", "bpe"
int tokenizer_type_from_name(const char *name, TokenizerType *type); // -1 on an unknown name

// Learns from n_lines UTF-8 lines (no '\n' inside). opts NULL = defaults.
// Fails on invalid UTF-8 (naming the line) or options out of range.
int tokenizer_learn(Tokenizer **out, TokenizerType type, const char *const *lines,
                    long n_lines, const TokenizerOptions *opts);

// Encodes text (NUL-terminated UTF-8) into ids[0..n); returns n, or -1 on
// invalid UTF-8 or when more than max_ids ids are needed
// (max_ids >= strlen(text) + 1 always suffices). dropout_p > 0 (BPE only)
// skips each merge with probability p, drawing from rng; p = 0 is plain BPE
// (rng may be NULL), p = 1 gives characters.
int tokenizer_encode(const Tokenizer *t, const char *text, int *ids, int max_ids,
                     float dropout_p, Rng *rng);

// Writes the text of ids[0..n) to out (NUL-terminated); returns its length in
// bytes, or -1 if an id is out of range or cap is too small
// (cap >= n * tokenizer_max_piece_bytes(t) + 1 always suffices). Stops at
// </s>, skips <pad> and <s>; <unk> becomes "⁇" (U+2047); byte pieces that do
// not form valid UTF-8 become U+FFFD.
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, char *out, size_t cap);
int tokenizer_max_piece_bytes(const Tokenizer *t);

TokenizerType tokenizer_type(const Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);
const char *tokenizer_piece(const Tokenizer *t, int id);         // NULL if out of range
int tokenizer_piece_id(const Tokenizer *t, const char *piece);   // -1 if not a piece

// Plain-text serialization (UTF-8, no NULs; fits a JSON string value once
// escaped). *text is malloc'ed; the caller frees it.
int tokenizer_to_string(const Tokenizer *t, char **text);
int tokenizer_from_string(const char *text, Tokenizer **out);
int tokenizer_save(const Tokenizer *t, const char *path);  // atomic write
int tokenizer_load(const char *path, Tokenizer **out);     // errors name the file
void tokenizer_free(Tokenizer *t);                         // NULL is fine

#endif
