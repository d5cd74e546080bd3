"""Identifier builders: sequential ids per source system, random cookie ids.

Every source system numbers its own rows, so ids are only unique within a table;
that is the point of the identity stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def sequential_ids(prefix: str, n: int, width: int) -> np.ndarray:
    """`prefix` + a zero-padded counter from 1, widened when `n` needs more digits."""
    width = max(width, len(str(n)))
    if n == 0:
        return np.empty(0, dtype=object)
    numbers = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, numbers).astype(object)


def random_hex(rng: np.random.Generator, n: int, length: int,
               taken: np.ndarray | None = None) -> np.ndarray:
    """`n` distinct lowercase hex strings of `length` characters, none of them in `taken`."""
    taken = np.empty(0, dtype=object) if taken is None else taken
    out = np.empty(0, dtype=object)
    while out.size < n:
        digits = rng.integers(0, 16, size=(n - out.size, length), dtype=np.uint8)
        fresh = _HEX[digits].view(f"S{length}").ravel().astype(str).astype(object)
        fresh = fresh[~pd.Series(fresh).isin(taken).to_numpy()]  # hashing: np.isin sorts objects
        out = pd.unique(np.concatenate([out, fresh]))
    return out[:n].astype(object)
