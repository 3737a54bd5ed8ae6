#!/usr/bin/python3
"""The PyTorch yardstick of `make bench` (issue 6, DESIGN.md section 6).

    bench/torch_bench.py --preset tiny|small|base [--threads 2] [--steps N]
                         [--no-decode] [--beam 4]

Runs, on random data, the same model as attn (tools/reference.py's Seq2Seq:
nn.Transformer, post-LN, ReLU, dropout 0.1 at every site, label smoothing
0.1, Adam) and prints one JSON line:
  train_tokens_per_s      target tokens per second of a full training step
                          (forward, loss, backward, Adam) after warm-up
  peak_rss_mb             the process's peak resident memory after training
  greedy_tokens_per_s     greedy decoding with a hand-written key/value cache,
  greedy_sentences_per_s  64 sentences x 40 steps (no early stop)
  beam_sentences_per_s    the same with beam search (--beam K, 0 skips it)

PyTorch gets its best settings here: OpenBLAS with OPENBLAS_CORETYPE=SkylakeX
(--openblas-coretype; Debian's OpenBLAS 0.3.21 does not recognise newer
processors and otherwise falls back to a slow SSE3 kernel),
OMP_WAIT_POLICY=PASSIVE, and torch and OpenBLAS both on --threads threads
(the last two unless set in the environment). Debian's torch calls whatever
libblas.so.3 is installed: without libopenblas0-pthread it is the slow
reference BLAS. Run one preset per process so that peak_rss_mb belongs to
that preset.
"""
import argparse
import json
import math
import os
import resource
import sys
import time


def flag_from_argv(argv, name, default):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


# Must be set before torch (and the OpenBLAS it loads) starts. The core type
# is a flag, not an inherited variable, so that a stray OPENBLAS_CORETYPE in
# the environment cannot silently change the yardstick.
os.environ["OPENBLAS_CORETYPE"] = flag_from_argv(sys.argv, "--openblas-coretype", "SkylakeX")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", flag_from_argv(sys.argv, "--threads", "2"))
os.environ.setdefault("OMP_NUM_THREADS", flag_from_argv(sys.argv, "--threads", "2"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from reference import BOS_ID, build_model, loss_fn  # noqa: E402

# DESIGN.md section 6. "vocab shared": one vocabulary and one embedding table
# for source and target; the generator has its own weight (not tied).
PRESETS = {
    "tiny": dict(d_model=128, n_heads=4, d_ff=512, layers=2, vocab=64, batch=128, src_len=12, tgt_len=10, shared=0),
    "small": dict(d_model=256, n_heads=4, d_ff=1024, layers=3, vocab=8000, batch=64, src_len=40, tgt_len=40, shared=1),
    "base": dict(d_model=512, n_heads=8, d_ff=2048, layers=6, vocab=16000, batch=64, src_len=40, tgt_len=40, shared=1),
}
DROPOUT = 0.1
SMOOTHING = 0.1
DECODE_SENTENCES = 64
DECODE_STEPS = 40


def make_model(p):
    cfg = dict(src_vocab=p["vocab"], tgt_vocab=p["vocab"], d_model=p["d_model"], n_heads=p["n_heads"],
               d_ff=p["d_ff"], n_enc_layers=p["layers"], n_dec_layers=p["layers"], activation="relu",
               norm_first=0, tie_generator=0, share_embeddings=p["shared"], pos_max_len=128,
               dropout_emb=DROPOUT, dropout_residual=DROPOUT, dropout_attn=DROPOUT, dropout_ffn=DROPOUT)
    return build_model(cfg)


def random_batch(gen, p, batch, src_len, tgt_len):
    """Full-length sentences of random non-special tokens (ids 4..V-1)."""
    src = torch.randint(4, p["vocab"], (batch, src_len), generator=gen)
    tgt = torch.randint(4, p["vocab"], (batch, tgt_len + 1), generator=gen)
    tgt[:, 0] = BOS_ID
    return src, tgt[:, :-1].contiguous(), tgt[:, 1:].contiguous()


def bench_train(model, p, steps, warmup):
    gen = torch.Generator().manual_seed(1)
    src, tgt_in, tgt_out = random_batch(gen, p, p["batch"], p["src_len"], p["tgt_len"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(src, tgt_in), tgt_out, SMOOTHING)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    tokens = int((tgt_out != 0).sum()) * steps
    return tokens / dt, dt / steps


# ---------------------------------------------------------------------------
# Incremental decoding with a key/value cache, written against the modules of
# nn.TransformerDecoderLayer (post-LN): what a careful PyTorch user would do.


def split_heads(x, n_heads):
    """(N, T, C) -> (N, H, T, C/H)."""
    N, T, C = x.shape
    return x.view(N, T, n_heads, C // n_heads).transpose(1, 2)


def merge_heads(x):
    N, H, T, hs = x.shape
    return x.transpose(1, 2).reshape(N, T, H * hs)


def attend(q, k, v):
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class CachedDecoder:
    """Per-layer self-attention caches (N, H, steps, hs) and cross-attention keys/values."""

    def __init__(self, model, memory, steps):
        self.model = model
        self.layers = list(model.transformer.decoder.layers)
        self.H = model.cfg["n_heads"]
        C = model.cfg["d_model"]
        N = memory.shape[0]
        hs = C // self.H
        self.cross_k, self.cross_v = [], []
        for layer in self.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            kv = F.linear(memory, w[C:], b[C:])
            self.cross_k.append(split_heads(kv[..., :C], self.H))
            self.cross_v.append(split_heads(kv[..., C:], self.H))
        self.self_k = [torch.empty(N, self.H, steps, hs) for _ in self.layers]
        self.self_v = [torch.empty(N, self.H, steps, hs) for _ in self.layers]

    def reorder(self, index, t):
        """Beam search: hypothesis i continues hypothesis index[i] (caches up to step t)."""
        for i in range(len(self.layers)):
            self.self_k[i][:, :, : t + 1] = self.self_k[i][index, :, : t + 1]
            self.self_v[i][:, :, : t + 1] = self.self_v[i][index, :, : t + 1]

    def step(self, tokens, t):
        """tokens (N,) at position t -> logits (N, V)."""
        m = self.model
        C = m.cfg["d_model"]
        x = m.tgt_embed(tokens[:, None]) * math.sqrt(C) + m.pe[t]
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            qkv = F.linear(x, sa.in_proj_weight, sa.in_proj_bias)
            q, k, v = (split_heads(z, self.H) for z in qkv.split(C, dim=-1))
            self.self_k[i][:, :, t: t + 1] = k
            self.self_v[i][:, :, t: t + 1] = v
            h = attend(q, self.self_k[i][:, :, : t + 1], self.self_v[i][:, :, : t + 1])
            x = layer.norm1(x + F.linear(merge_heads(h), sa.out_proj.weight, sa.out_proj.bias))
            ca = layer.multihead_attn
            q = split_heads(F.linear(x, ca.in_proj_weight[:C], ca.in_proj_bias[:C]), self.H)
            h = attend(q, self.cross_k[i], self.cross_v[i])
            x = layer.norm2(x + F.linear(merge_heads(h), ca.out_proj.weight, ca.out_proj.bias))
            x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
        x = m.transformer.decoder.norm(x)
        return m.generator(x[:, 0])


@torch.no_grad()
def greedy(model, src, steps):
    memory = model.encode(src)
    dec = CachedDecoder(model, memory, steps)
    tokens = torch.full((src.shape[0],), BOS_ID, dtype=torch.long)
    out = []
    for t in range(steps):
        tokens = dec.step(tokens, t).argmax(-1)
        out.append(tokens)
    return torch.stack(out, 1)


@torch.no_grad()
def beam_search(model, src, steps, beam):
    B = src.shape[0]
    memory = model.encode(src).repeat_interleave(beam, dim=0)
    dec = CachedDecoder(model, memory, steps)
    tokens = torch.full((B * beam,), BOS_ID, dtype=torch.long)
    scores = torch.zeros(B, beam)
    scores[:, 1:] = -1e9  # all beams start as the same hypothesis
    history = torch.empty(B * beam, 0, dtype=torch.long)
    base = (torch.arange(B) * beam)[:, None]
    for t in range(steps):
        logp = torch.log_softmax(dec.step(tokens, t), dim=-1)
        V = logp.shape[-1]
        total = (scores[:, :, None] + logp.view(B, beam, V)).view(B, beam * V)
        scores, flat = total.topk(beam, dim=-1)
        parent = (base + flat // V).view(-1)
        tokens = (flat % V).view(-1)
        dec.reorder(parent, t)
        history = torch.cat([history[parent], tokens[:, None]], 1)
    return history.view(B, beam, steps)[:, 0]


def bench_decode(model, p, beam):
    model.eval()
    gen = torch.Generator().manual_seed(2)
    src = torch.randint(4, p["vocab"], (DECODE_SENTENCES, p["src_len"]), generator=gen)
    greedy(model, src[:8], 4)  # warm-up
    t0 = time.perf_counter()
    greedy(model, src, DECODE_STEPS)
    dt = time.perf_counter() - t0
    result = {"greedy_tokens_per_s": DECODE_SENTENCES * DECODE_STEPS / dt,
              "greedy_sentences_per_s": DECODE_SENTENCES / dt}
    if beam > 0:
        beam_search(model, src[:8], 4, beam)
        t0 = time.perf_counter()
        beam_search(model, src, DECODE_STEPS, beam)
        dt = time.perf_counter() - t0
        result["beam_size"] = beam
        result["beam_sentences_per_s"] = DECODE_SENTENCES / dt
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="timed training steps (default: by preset)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--beam", type=int, default=4, help="beam size for the beam-search timing, 0 to skip")
    ap.add_argument("--openblas-coretype", default="SkylakeX",
                    help="OPENBLAS_CORETYPE for PyTorch's matrix multiplies (default SkylakeX)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    p = PRESETS[args.preset]
    steps = args.steps or {"tiny": 20, "small": 5, "base": 3}[args.preset]
    model = make_model(p)
    tokens_per_s, step_s = bench_train(model, p, steps, args.warmup)
    result = {"impl": "pytorch", "preset": args.preset, "threads": args.threads,
              "torch": torch.__version__, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
              "train_tokens_per_s": round(tokens_per_s, 1), "train_step_s": round(step_s, 4),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if not args.no_decode:
        result.update({k: round(v, 1) if isinstance(v, float) else v
                       for k, v in bench_decode(model, p, args.beam).items()})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
