"""HyperLogLog registers of user ids, built with numpy, estimated by datasketch.

Registers follow datasketch's HyperLogLogPlusPlus layout (index = low P bits of a
64-bit hash, rank = leading zeros of the rest + 1), so `estimate` can hand them to
its HLL++ estimator (bias correction and linear counting for small sets).
"""

import numpy as np
from datasketch import HyperLogLogPlusPlus

P = 14  # 16,384 one-byte registers: about 0.8 % standard error
M = 1 << P
MAX_RANK = 64 - P
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash64(user_ids: np.ndarray) -> np.ndarray:
    """SplitMix64 of each id: consecutive ids land on unrelated 64-bit values."""
    with np.errstate(over="ignore"):
        z = user_ids.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def _index_and_rank(user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hashed = hash64(user_ids)
    index = (hashed & np.uint64(M - 1)).astype(np.int64)
    rest = hashed >> np.uint64(P)
    # rest < 2**50 converts to float64 exactly, so frexp's exponent is its bit length.
    _, bit_length = np.frexp(rest.astype(np.float64))
    return index, (MAX_RANK - bit_length + 1).astype(np.int8)


def registers(user_ids: np.ndarray) -> np.ndarray:
    """The M registers of one set of user ids."""
    return grouped_registers(np.zeros(len(user_ids), dtype=np.int64), user_ids, 1)[0]


def grouped_registers(groups: np.ndarray, user_ids: np.ndarray, group_count: int) -> np.ndarray:
    """Registers per group (rows) for ids tagged with group numbers 0..group_count-1."""
    out = np.zeros(group_count * M, dtype=np.int8)
    if len(user_ids):
        index, rank = _index_and_rank(user_ids)
        np.maximum.at(out, groups.astype(np.int64) * M + index, rank)
    return out.reshape(group_count, M)


def union(sketches) -> np.ndarray:
    """The registers of the union of the sets; each sketch is registers or a stored blob."""
    registers_ = np.zeros(M, dtype=np.int8)
    for sketch in sketches:
        if isinstance(sketch, np.ndarray):
            np.maximum(registers_, sketch, out=registers_)
        elif len(sketch) == M:
            np.maximum(registers_, np.frombuffer(sketch, dtype=np.int8), out=registers_)
        else:
            # Sparse blob: fold it in place, without expanding it to M registers first.
            index, rank = _sparse(sketch)
            registers_[index] = np.maximum(registers_[index], rank)
    return registers_


def to_bytes(regs: np.ndarray) -> bytes:
    """Dense (M bytes), or sparse when most registers are 0: indexes (uint16) then ranks (int8)."""
    filled = np.flatnonzero(regs)
    # A quiet day fills a few hundred of 16,384 registers: sparse is 3 bytes each.
    if 3 * len(filled) < M:
        return filled.astype("<u2").tobytes() + regs[filled].astype(np.int8).tobytes()
    return regs.astype(np.int8).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    if len(blob) == M:
        return np.frombuffer(blob, dtype=np.int8)
    regs = np.zeros(M, dtype=np.int8)
    index, rank = _sparse(blob)
    regs[index] = rank
    return regs


def _sparse(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    count = len(blob) // 3  # 3 * count < M, so a sparse blob is never M bytes long
    return np.frombuffer(blob, dtype="<u2", count=count), np.frombuffer(blob, dtype=np.int8, offset=2 * count)


def estimate(regs: np.ndarray) -> int:
    """HLL++ estimate of the set size, rounded to a whole number of users."""
    if not regs.any():
        return 0
    return round(HyperLogLogPlusPlus(reg=regs.copy()).count())
