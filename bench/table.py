#!/usr/bin/python3
"""Turns the JSON lines of bench/run.sh into the markdown table of bench/results.md.

    bench/table.py RESULTS.jsonl THREADS
"""
import json
import platform
import sys
import time

# Target tokens per training batch (DESIGN.md section 6).
BATCH_TOKENS = {"tiny": 128 * 10, "small": 64 * 40, "base": 64 * 40}


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


# Fields where more is better; of several rounds the table takes the best
# of each side (the machine's speed drifts between runs, and a round's
# slowness is noise, not a property of either side). Memory takes the worst.
SPEEDS = ("train_tokens_per_s", "decode_sentences_per_s", "greedy_tokens_per_s", "greedy_sentences_per_s",
          "beam_sentences_per_s")


def side(r):
    """attn's bf16 runs are a side of their own."""
    return "attn-bf16" if r["impl"] == "attn" and "bf16" in r.get("gemm", "") else r["impl"]


def merge_rounds(rows):
    by, rounds = {}, {}
    for r in rows:
        key = (side(r), r.get("preset"))
        rounds[key] = rounds.get(key, 0) + 1
        if key not in by:
            by[key] = dict(r)
            continue
        best = by[key]
        for f in SPEEDS:
            if f in r and (f not in best or r[f] > best[f]):
                best[f] = r[f]
                if f == "train_tokens_per_s":
                    best["train_step_s"] = r.get("train_step_s")
        if "peak_rss_mb" in r:
            best["peak_rss_mb"] = max(best.get("peak_rss_mb", 0), r["peak_rss_mb"])
    return by, max(rounds.values(), default=0)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    threads = sys.argv[2]
    peak = max((r["gflops"] for r in rows if r["impl"] == "peak"), default=None)
    load = next((r for r in rows if r["impl"] == "load"), None)
    by, n_rounds = merge_rounds(r for r in rows if r["impl"] in ("attn", "pytorch"))
    out = []
    out.append(f"# attn vs PyTorch: training and decoding speed\n")
    out.append(f"Measured by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
               f"{cpu_name()}, {threads} threads, float32. FMA peak (measured): {fmt(peak, 1)} GFLOP/s. "
               f"Each side ran {n_rounds} time(s) per config, alternating with the other; the table gives "
               "each side's best speed and worst peak memory. Columns: docs/speed.md.")
    if load:
        out.append(f"Load average {load['start']} at the start, {load['end']} at the end, on {load['cores']} cores "
                   f"(OMP_WAIT_POLICY={load['omp_wait_policy']}); with more than about half a core busy elsewhere "
                   "the timings, the peak included, are skewed.\n")
    else:
        out.append("")
    out.append("## Training (target tokens/s, full step: forward, loss, backward, Adam)\n")
    out.append("| config | attn tok/s | PyTorch tok/s | ratio | attn GFLOP/s | % of peak | PyTorch GFLOP/s | % of peak | attn RSS MB | PyTorch RSS MB |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, tokens in BATCH_TOKENS.items():
        a, t = by.get(("attn", name)), by.get(("pytorch", name))
        if not a and not t:
            continue
        # Model FLOP/s: attn bench's count of the step's matrix work (the same
        # model on both sides) times steps per second.
        gflop = a and a.get("model_gflop_per_step")

        def rate(r):
            return None if not r or not gflop else r["train_tokens_per_s"] / tokens * gflop

        def share(g):
            return "n/a" if g is None or not peak else f"{100 * g / peak:.0f}%"

        ga, gt = rate(a), rate(t)
        out.append(f"| {name} | {fmt(a and a['train_tokens_per_s'])} | {fmt(t and t['train_tokens_per_s'])} | "
                   f"{ratio(a and a['train_tokens_per_s'], t and t['train_tokens_per_s'])} | {fmt(ga, 1)} | {share(ga)} | "
                   f"{fmt(gt, 1)} | {share(gt)} | {fmt(a and a['peak_rss_mb'])} | {fmt(t and t['peak_rss_mb'])} |")
    out.append("\n## Decoding (64 sentences x 40 steps, key/value cache, no early stop)\n")
    out.append("| config | attn greedy sent/s | PyTorch greedy sent/s | ratio | attn greedy tok/s | PyTorch greedy tok/s "
               "| attn beam-4 sent/s | PyTorch beam-4 sent/s | ratio |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in BATCH_TOKENS:
        a, t = by.get(("attn", name)), by.get(("pytorch", name))
        if not a and not t:
            continue
        ga = a and a.get("decode_sentences_per_s")
        gt = t and t.get("greedy_sentences_per_s")
        ba = a and a.get("beam_sentences_per_s")
        bt = t and t.get("beam_sentences_per_s")
        out.append(f"| {name} | {fmt(ga, 1)} | {fmt(gt, 1)} | {ratio(ga, gt)} | {fmt(a and a.get('greedy_tokens_per_s'))} | "
                   f"{fmt(t and t.get('greedy_tokens_per_s'))} | {fmt(ba, 1)} | {fmt(bt, 1)} | {ratio(ba, bt)} |")
    bf16 = [name for name in BATCH_TOKENS if ("attn-bf16", name) in by]
    if bf16:
        out.append("\n## bf16 products (AVX512-BF16, float32 sums and weights) against attn's float32\n")
        out.append("The last loss is that of the bench's last step (the same batch at every step, so it falls): "
                   "it compares the precisions.\n")
        out.append("| config | float32 tok/s | bf16 tok/s | ratio | float32 last loss | bf16 last loss | difference |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name in bf16:
            a, b = by.get(("attn", name)), by[("attn-bf16", name)]
            la, lb = a and a.get("last_loss"), b.get("last_loss")
            diff = "n/a" if la is None or lb is None or la == 0 else f"{100 * (lb - la) / la:+.3f}%"
            out.append(f"| {name} | {fmt(a and a['train_tokens_per_s'])} | {fmt(b['train_tokens_per_s'])} | "
                       f"{ratio(b['train_tokens_per_s'], a and a['train_tokens_per_s'])} | "
                       f"{fmt(la, 5)} | {fmt(lb, 5)} | {diff} |")
    out.append("\nRaw JSON lines:\n")
    out.append("```")
    out.extend(json.dumps(r) for r in rows)
    out.append("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
