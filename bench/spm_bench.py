#!/usr/bin/python3
"""SentencePiece BPE on the same corpus and vocabulary size as attn's tokenizer.

usage: spm_bench.py CORPUS VOCAB_SIZE WORKDIR
Prints one line: learn_seconds encode_seconds n_tokens n_lines roundtrip_exact.
One thread for learning and encoding; byte fallback on and no normalization,
so SentencePiece does what attn does (attn keeps every space; see
docs/tokenizer.md). Encoding is timed on the in-memory list of lines, without
file I/O, which favours SentencePiece: attn's number includes reading stdin
and writing the ids.
"""
import os
import sys
import time

import sentencepiece as spm


def main():
    corpus, vocab_size, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    prefix = os.path.join(workdir, "spm")
    with open(corpus, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    start = time.perf_counter()
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, num_threads=1, input_sentence_size=0,
        minloglevel=2)
    learn_seconds = time.perf_counter() - start

    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    start = time.perf_counter()
    ids = sp.encode(lines, out_type=int, num_threads=1)
    encode_seconds = time.perf_counter() - start
    n_tokens = sum(len(x) for x in ids)
    exact = all(sp.decode(x) == line for x, line in zip(ids, lines))
    print(f"{learn_seconds:.3f} {encode_seconds:.3f} {n_tokens} {len(lines)} {int(exact)}")


if __name__ == "__main__":
    main()
