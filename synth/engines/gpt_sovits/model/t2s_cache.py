"""The T2S decoder's key/value cache: per-layer buffers written in place and grown in steps.

Its own module because three decoding paths share it — PyTorch's modules and flat step
(t2s_model.py, t2s_cpu.py), the ONNX Runtime step that reads its buffers by pointer (t2s_ort.py),
and the static cache of CUDA graphs built on it (t2s_static.py) — and none of them needs the model
to hold one.
"""
from __future__ import annotations

import torch

GROW_COLUMNS = 128  # KV cache growth step: ~5 s of speech, so a sentence grows it once or twice


class KVCache:
    """Per-layer key/value buffers (B, H, capacity, Dh), written in place and grown in steps.

    Writing in place avoids the quadratic re-copying of concatenating the cache every step. It
    grows by `GROW_COLUMNS`, not by doubling: a batch of 32 sentences holds ~100 KB per row and
    column, and doubling reserved up to twice what the rows use (peak RSS 3.1 vs 2.0 GB for 32 ×
    100 tokens); a few more copies of a sentence's cache cost far less than one of its steps.
    All layers of one forward pass write at the same offset; `advance` moves it afterwards.
    """

    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.length = 0

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # k, v: (B, H, T, Dh) -> views (B, H, length + T, Dh)
        end = self.length + k.shape[2]
        buf_k, buf_v = self._room(layer, k, end, k.shape[0])
        buf_k[:, :, self.length : end] = k
        buf_v[:, :, self.length : end] = v
        return buf_k[:, :, :end], buf_v[:, :, :end]

    def advance(self, steps: int) -> None:
        self.length += steps

    def _room(self, layer: int, like: torch.Tensor, need: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `layer`'s buffers with at least `need` columns for `rows` rows, shaped and typed
        as `like` (B, H, T, Dh) says; grown by `GROW_COLUMNS`, the cached columns kept."""
        buf_k, buf_v = self.keys[layer], self.values[layer]
        if buf_k is None or buf_v is None or buf_k.shape[2] < need:
            shape = (rows, like.shape[1], need + GROW_COLUMNS, like.shape[3])
            new_k, new_v = like.new_zeros(shape), like.new_zeros(shape)
            if buf_k is not None and buf_v is not None and self.length:
                new_k[:, :, : self.length] = buf_k[:, :, : self.length]
                new_v[:, :, : self.length] = buf_v[:, :, : self.length]
            self.keys[layer], self.values[layer] = buf_k, buf_v = new_k, new_v
        return buf_k, buf_v

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop finished batch rows; `rows` are the indices to keep (1-D long tensor)."""
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            if k is not None and v is not None:
                self.keys[i] = k.index_select(0, rows.to(k.device))
                self.values[i] = v.index_select(0, rows.to(v.device))


class RaggedCache(KVCache):
    """A cache whose rows hold different numbers of columns: row r's keys are at columns 0..n_r-1
    of its own row of the buffers and its next key goes to column n_r, not to a shared end.

    Continuous batching puts sentences side by side that joined at different times. Written at a
    shared end (`KVCache`), a row joining late leaves a gap between its prompt and its new keys,
    so the cache needed a visibility mask per row and column and compacting now and then to stay
    near the longest row. Here each row's columns stay packed at the front: the cache is never
    wider than its longest row, its mask follows from the lengths (`bias`), and a finished row's
    slot costs nothing until refilled (`release`). Every row still reads up to the longest row's
    width a step — on 48 Moby-Dick sentences ~290–330 columns for the ~240 a row has; attending in
    runs of rows, each only as wide as it needs, measured no faster on a 2-core CPU (three more
    operators a layer per run cost what the skipped columns save). `length` is the longest row's.
    """

    def __init__(self, num_layers: int, rows: int) -> None:
        super().__init__(num_layers)
        self.lengths = [0] * rows
        self._at: tuple[int, torch.Tensor] | None = None  # (capacity, flat rows) of the next write

    def place(self, row: int, own: KVCache) -> None:
        """Put a prefilled sentence (its own one-row cache) into `row`, replacing what was there."""
        length = own.length
        for layer, (k_new, v_new) in enumerate(zip(own.keys, own.values, strict=True)):
            assert k_new is not None and v_new is not None
            buf_k, buf_v = self._room(layer, k_new, length + 1, len(self.lengths))
            buf_k[row, :, :length] = k_new[0, :, :length]
            buf_v[row, :, :length] = v_new[0, :, :length]
        self._set(row, length)

    def release(self, row: int) -> None:
        """A row whose sentence has finished: it steps idly at column 0 until refilled or dropped."""
        self._set(row, 0)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # k, v: (B, H, 1, Dh), one new position per row, each at its own row's next column
        if k.shape[2] != 1:
            raise ValueError("a ragged cache takes one position per row; prefill into a KVCache and place it")
        buf_k, buf_v = self._room(layer, k, self.length + 1, len(self.lengths))
        bsz, heads, capacity, head_dim = buf_k.shape
        if self._at is None or self._at[0] != capacity:  # once per step (and growth), not per layer
            lengths = torch.tensor(self.lengths, dtype=torch.long, device=k.device)
            heads_of = torch.arange(bsz * heads, device=k.device).view(bsz, heads)  # row r, head h: r·H + h
            self._at = (capacity, (heads_of * capacity + lengths[:, None]).view(-1))
        # One (B·H) row copy into the flat (B·H·capacity, Dh) view: row r head h's column n_r
        # (advanced-index assignment into the 4-D buffer costs ~1000× more on a CPU).
        new = self._at[1]
        buf_k.view(-1, head_dim).index_copy_(0, new, k.reshape(bsz * heads, head_dim))
        buf_v.view(-1, head_dim).index_copy_(0, new, v.reshape(bsz * heads, head_dim))
        return buf_k[:, :, :self.length + 1], buf_v[:, :, :self.length + 1]

    def advance(self, steps: int) -> None:
        self.lengths = [n + steps for n in self.lengths]
        self._changed()

    def keep_rows(self, rows: torch.Tensor) -> None:
        super().keep_rows(rows)
        self.lengths = [self.lengths[int(i)] for i in rows.tolist()]
        self._changed()

    def bias(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The coming step's (B, 1, 1, length + 1) additive mask: row r sees columns 0..n_r."""
        device = self.keys[0].device if self.keys[0] is not None else None
        columns = torch.arange(self.length + 1, device=device)
        seen = torch.tensor(self.lengths, device=device)
        return torch.zeros(len(self.lengths), 1, 1, self.length + 1, dtype=dtype, device=device).masked_fill_(
            (columns[None, :] > seen[:, None])[:, None, None], float("-inf"))

    def _set(self, row: int, length: int) -> None:
        self.lengths[row] = length
        self._changed()

    def _changed(self) -> None:
        self.length = max(self.lengths, default=0)
        self._at = None

