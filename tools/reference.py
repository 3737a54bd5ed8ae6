#!/usr/bin/python3
"""The PyTorch reference of attn (DESIGN.md section 1), and its golden fixtures.

As a module (run with Debian's /usr/bin/python3, torch 1.13, numpy):
    from reference import Seq2Seq, build_model, read_safetensors, write_safetensors
    model = build_model({"src_vocab": 20, "tgt_vocab": 20, "d_model": 16, ...})

As a script:
    reference.py fixtures OUTDIR     writes the golden fixtures of tests/test_model.c

A config dict uses the keys of attn's `model_config` (src/config.c):
src_vocab, tgt_vocab, d_model, n_heads, d_ff, n_enc_layers, n_dec_layers,
activation ("relu" | "gelu"), norm_first, tie_generator, share_embeddings,
pos_max_len (or max_len), dropout_emb, dropout_residual, dropout_attn,
dropout_ffn. Values may be strings, as they come out of a checkpoint.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# ---------------------------------------------------------------------------
# safetensors (torch 1.13 has no safetensors package): F32 only, which is
# all attn writes; I32/I64 are read too, for convenience.

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """Returns (tensors: dict name -> numpy array, metadata: dict str -> str)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    body = data[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * np.dtype(dtype).itemsize or end > len(body):
            raise ValueError(f"{path}: tensor {name}: byte range does not match its shape")
        tensors[name] = np.frombuffer(body[begin:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict (insertion order kept) name -> array-like; stored as F32."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arr = np.ascontiguousarray(np.asarray(value, dtype="<f4"))
        blob = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# The model


def sinusoid_table(max_len, d_model):
    """pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(same); float64 then float32, as attn."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    i = np.arange(d_model)
    angle = pos / np.power(10000.0, (i - i % 2).astype(np.float64) / d_model)
    table = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.tensor(table.astype(np.float32))


def _as_int(x):
    return int(float(x)) if isinstance(x, str) else int(x)


def _as_float(x):
    return float(x)


def normalize_config(cfg):
    """A config dict with typed values and every key present."""
    activation = cfg.get("activation", "relu")
    if not isinstance(activation, str):
        activation = "gelu" if int(activation) == 1 else "relu"
    out = {
        "src_vocab": _as_int(cfg["src_vocab"]),
        "tgt_vocab": _as_int(cfg["tgt_vocab"]),
        "d_model": _as_int(cfg["d_model"]),
        "n_heads": _as_int(cfg["n_heads"]),
        "d_ff": _as_int(cfg["d_ff"]),
        "n_enc_layers": _as_int(cfg["n_enc_layers"]),
        "n_dec_layers": _as_int(cfg["n_dec_layers"]),
        "activation": activation.strip().lower(),
        "norm_first": _as_int(cfg.get("norm_first", 0)),
        "tie_generator": _as_int(cfg.get("tie_generator", 0)),
        "share_embeddings": _as_int(cfg.get("share_embeddings", 0)),
        "pos_max_len": _as_int(cfg.get("pos_max_len", cfg.get("max_len", 256))),
    }
    for key in ("dropout_emb", "dropout_residual", "dropout_attn", "dropout_ffn"):
        out[key] = _as_float(cfg.get(key, 0.0))
    if out["activation"] not in ("relu", "gelu"):
        raise ValueError(f"activation must be relu or gelu, got {out['activation']!r}")
    return out


def config_text(cfg):
    """The config in attn's `model_config` syntax (key = value lines)."""
    cfg = normalize_config(cfg)
    lines = []
    for key, value in cfg.items():
        if isinstance(value, bool):
            value = int(value)
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


class Seq2Seq(nn.Module):
    """DESIGN.md section 1; parameter names are the checkpoint's tensor names."""

    def __init__(self, cfg):
        super().__init__()
        cfg = normalize_config(cfg)
        self.cfg = cfg
        d = cfg["d_model"]
        self.src_embed = nn.Embedding(cfg["src_vocab"], d)
        self.tgt_embed = nn.Embedding(cfg["tgt_vocab"], d)
        self.transformer = nn.Transformer(
            d, cfg["n_heads"], cfg["n_enc_layers"], cfg["n_dec_layers"], cfg["d_ff"], 0.0,
            activation=cfg["activation"], batch_first=True, norm_first=bool(cfg["norm_first"]),
            layer_norm_eps=1e-5)
        self.generator = nn.Linear(d, cfg["tgt_vocab"])
        self.emb_dropout = nn.Dropout(cfg["dropout_emb"])
        self._set_dropouts(cfg)
        # attn's embedding init: N(0, d^-0.5), so embedding * sqrt(d) has unit variance.
        nn.init.normal_(self.src_embed.weight, 0.0, d ** -0.5)
        nn.init.normal_(self.tgt_embed.weight, 0.0, d ** -0.5)
        if cfg["share_embeddings"]:
            self.tgt_embed.weight = self.src_embed.weight
        if cfg["tie_generator"]:
            self.generator.weight = self.tgt_embed.weight
        self.register_buffer("pe", sinusoid_table(cfg["pos_max_len"], d), persistent=False)

    def _set_dropouts(self, cfg):
        """nn.Transformer has one rate; attn has four sites, set here one by one."""
        layers = list(self.transformer.encoder.layers) + list(self.transformer.decoder.layers)
        for layer in layers:
            layer.dropout.p = cfg["dropout_ffn"]
            for name in ("dropout1", "dropout2", "dropout3"):
                if hasattr(layer, name):
                    getattr(layer, name).p = cfg["dropout_residual"]
            layer.self_attn.dropout = cfg["dropout_attn"]
            if hasattr(layer, "multihead_attn"):
                layer.multihead_attn.dropout = cfg["dropout_attn"]

    def embed(self, table, tokens):
        x = table(tokens) * math.sqrt(self.cfg["d_model"]) + self.pe[: tokens.shape[1]]
        return self.emb_dropout(x)

    def encode(self, src):
        src_pad = src == PAD_ID
        return self.transformer.encoder(self.embed(self.src_embed, src), src_key_padding_mask=src_pad)

    def decode(self, tgt_in, memory, src):
        T = tgt_in.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tgt_in.device), diagonal=1)
        h = self.transformer.decoder(self.embed(self.tgt_embed, tgt_in), memory, tgt_mask=causal,
                                     tgt_key_padding_mask=tgt_in == PAD_ID,
                                     memory_key_padding_mask=src == PAD_ID)
        return self.generator(h)

    def forward(self, src, tgt_in):
        """src (B, S), tgt_in (B, T) int64 -> logits (B, T, tgt_vocab)."""
        return self.decode(tgt_in, self.encode(src), src)


def build_model(config):
    """A Seq2Seq from a config dict (see the module docstring)."""
    return Seq2Seq(config)


def loss_fn(logits, tgt_out, smoothing):
    """Mean label-smoothed cross-entropy over non-pad targets (attn's loss)."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD_ID,
                           label_smoothing=smoothing)


def named_tensors(model):
    """Parameters in state_dict order, a tied tensor once under its first name (as attn)."""
    return list(model.named_parameters())


# ---------------------------------------------------------------------------
# Golden fixtures

FIXTURE_CASES = [
    # name, config overrides, seed
    ("postln_relu_untied", dict(norm_first=0, activation="relu", tie_generator=0, share_embeddings=0,
                                src_vocab=23, tgt_vocab=19, n_enc_layers=2, n_dec_layers=2), 1),
    ("preln_gelu_tied", dict(norm_first=1, activation="gelu", tie_generator=1, share_embeddings=0,
                             src_vocab=21, tgt_vocab=17, n_enc_layers=1, n_dec_layers=3), 2),
    ("postln_gelu_shared_tied", dict(norm_first=0, activation="gelu", tie_generator=1, share_embeddings=1,
                                     src_vocab=20, tgt_vocab=20, n_enc_layers=3, n_dec_layers=1), 3),
    ("preln_relu_shared", dict(norm_first=1, activation="relu", tie_generator=0, share_embeddings=1,
                               src_vocab=18, tgt_vocab=18, n_enc_layers=2, n_dec_layers=2), 4),
]

SMOOTHING = 0.1


def fixture_batch(gen, src_vocab, tgt_vocab):
    """Three pairs with padding on both sides; one source and one target fill their length."""
    src_lens, tgt_lens = [7, 4, 1], [3, 6, 2]
    S, T = max(src_lens), max(tgt_lens)
    B = len(src_lens)
    src = torch.zeros(B, S, dtype=torch.long)
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        n = src_lens[b]
        src[b, : n - 1] = torch.randint(4, src_vocab, (n - 1,), generator=gen)
        src[b, n - 1] = EOS_ID
        m = tgt_lens[b]
        words = torch.randint(4, tgt_vocab, (m - 1,), generator=gen)
        tgt_in[b, 0] = BOS_ID
        tgt_in[b, 1:m] = words
        tgt_out[b, : m - 1] = words
        tgt_out[b, m - 1] = EOS_ID
    return src, tgt_in, tgt_out


def make_fixture(name, overrides, seed):
    cfg = dict(d_model=16, n_heads=4, d_ff=24, pos_max_len=32,
               dropout_emb=0.0, dropout_residual=0.0, dropout_attn=0.0, dropout_ffn=0.0)
    cfg.update(overrides)
    torch.manual_seed(seed)
    model = build_model(cfg)
    # Non-trivial LayerNorm and bias values, so that a swapped weight/bias or
    # a dropped bias term cannot pass unnoticed.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    model.train()  # dropout is 0; train mode avoids the encoder's eval fast path
    gen = torch.Generator().manual_seed(100 + seed)
    src, tgt_in, tgt_out = fixture_batch(gen, model.cfg["src_vocab"], model.cfg["tgt_vocab"])
    logits = model(src, tgt_in)
    loss = loss_fn(logits, tgt_out, SMOOTHING)
    model.zero_grad()
    loss.backward()
    tensors = {}
    for pname, p in named_tensors(model):
        tensors[pname] = p
    tensors["batch.src"] = src.float()
    tensors["batch.tgt_in"] = tgt_in.float()
    tensors["batch.tgt_out"] = tgt_out.float()
    tensors["out.logits"] = logits
    tensors["out.loss"] = loss.reshape(1)
    for pname, p in named_tensors(model):
        tensors["grad." + pname] = p.grad
    meta = {"model_config": config_text(model.cfg), "label_smoothing": repr(SMOOTHING),
            "case": name, "torch_version": torch.__version__}
    return tensors, meta


def cmd_fixtures(outdir):
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    for name, overrides, seed in FIXTURE_CASES:
        tensors, meta = make_fixture(name, overrides, seed)
        path = os.path.join(outdir, name + ".safetensors")
        write_safetensors(path, tensors, meta)
        print(f"wrote {path} ({os.path.getsize(path)} bytes, loss {float(tensors['out.loss'][0]):.6f})")


# ---------------------------------------------------------------------------
# attn checkpoints (src/checkpoint.h): load one into the PyTorch model


def load_attn_checkpoint(path):
    """A Seq2Seq with the weights of an attn checkpoint, and its metadata.

    The metadata's `model_config` gives the architecture; `tied` lists the
    names stored once ("alias=name,..."), which are filled from their target.
    """
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "attn-checkpoint":
        raise ValueError(f"{path}: not an attn checkpoint (metadata format {meta.get('format')!r})")
    if meta.get("format_version") != "1":
        raise ValueError(f"{path}: checkpoint format version {meta.get('format_version')}, this reader knows 1")
    cfg = dict(line.split(" = ", 1) for line in meta["model_config"].splitlines() if line.strip())
    model = build_model(cfg)
    ties = dict(item.split("=", 1) for item in meta.get("tied", "").split(",") if item)
    state = {}
    for name in model.state_dict():
        source = name if name in tensors else ties.get(name)
        if source not in tensors:
            raise ValueError(f"{path}: tensor {name} is missing")
        state[name] = torch.from_numpy(tensors[source])
    extra = set(tensors) - set(state)
    if extra:
        raise ValueError(f"{path}: unexpected tensors {sorted(extra)}")
    model.load_state_dict(state)
    return model, meta


def cmd_logits(checkpoint, batch_path, out_path):
    """Logits of the batch that `attn info --dump-logits` wrote (src, tgt_in as
    float ids), from the checkpoint loaded into PyTorch; written as `logits`.
    Train mode with every dropout at 0, so the encoder takes no fast path
    (padded positions would differ; DESIGN.md section 1)."""
    torch.set_num_threads(1)
    model, _ = load_attn_checkpoint(checkpoint)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    for layer in list(model.transformer.encoder.layers) + list(model.transformer.decoder.layers):
        layer.self_attn.dropout = 0.0
        if hasattr(layer, "multihead_attn"):
            layer.multihead_attn.dropout = 0.0
    model.train()
    batch, _ = read_safetensors(batch_path)
    src = torch.from_numpy(batch["src"]).long()
    tgt_in = torch.from_numpy(batch["tgt_in"]).long()
    tgt_out = torch.from_numpy(batch["tgt_out"]).long()
    with torch.no_grad():
        logits = model(src, tgt_in)
        loss = loss_fn(logits, tgt_out, 0.0)
    write_safetensors(out_path, {"logits": logits, "loss": loss.reshape(1)})
    print(f"wrote {out_path}: logits {tuple(logits.shape)}, loss {loss.item():.6f}")


def main(argv):
    if len(argv) == 3 and argv[1] == "fixtures":
        cmd_fixtures(argv[2])
        return 0
    if len(argv) >= 5 and (len(argv) - 2) % 3 == 0 and argv[1] == "logits":
        for i in range(2, len(argv), 3):   # several triples share one torch start-up
            cmd_logits(argv[i], argv[i + 1], argv[i + 2])
        return 0
    sys.stderr.write("usage: reference.py fixtures OUTDIR\n"
                     "       reference.py logits CHECKPOINT BATCH OUT [CHECKPOINT BATCH OUT ...]\n"
                     "                        (BATCH from attn info --dump-logits)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
