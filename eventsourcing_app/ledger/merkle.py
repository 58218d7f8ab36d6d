"""RFC 9162 section 2.1 Merkle trees: hashes, the growing right edge, proof plans and verifiers.

Pure Python with hashlib only: no Django, no database, so that the offline verifier runs on an
auditor's machine with nothing but the files. A tree is stored as its *aligned perfect
subtrees*: node (level L, index i) is the hash of leaves [i * 2**L, (i + 1) * 2**L). Every hash a
proof needs is a right fold of such nodes, so a proof costs O(log n) stored hashes, never a
rehash of a range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]  # (level, index); level 0 is a leaf


def leaf_hash(entry: bytes) -> bytes:
    """Return SHA-256(0x00 || entry)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """Return k, the largest power of two smaller than `size` (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_parts(start: int, size: int) -> list[NodeKey]:
    """Return the aligned perfect subtrees whose right fold is MTH(D[start:start + size]).

    `start` must be a multiple of the smallest power of two not below `size`, which holds for
    every range the RFC's recursions visit.
    """
    parts = []
    while size:
        level = size.bit_length() - 1  # the largest power of two not above size
        width = 1 << level
        parts.append((level, start >> level))
        start, size = start + width, size - width
    return parts


def fold(hashes: Sequence[bytes]) -> bytes:
    """Return the root of perfect subtrees given largest first: H(a, H(b, ... H(y, z)))."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the (start, size) ranges whose MTHs are PATH(index, D[size]), in RFC order."""
    ranges: list[tuple[int, int]] = []
    start = 0
    while size > 1:
        k = split_point(size)
        if index < k:
            ranges.append((start + k, size - k))
            size = k
        else:
            ranges.append((start, k))
            start, index, size = start + k, index - k, size - k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Return the (start, size) ranges whose MTHs are PROOF(first, D[second]), in RFC order."""
    ranges: list[tuple[int, int]] = []
    start, m, n, complete = 0, first, second, True
    while m != n:
        k = split_point(n)
        if m <= k:
            ranges.append((start + k, n - k))
            n = k
        else:
            ranges.append((start, k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        ranges.append((start, m))
    ranges.reverse()
    return ranges


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    """Return every stored node the given ranges' MTHs are folded from."""
    return {key for start, size in ranges for key in perfect_parts(start, size)}


def hashes_of(ranges: Iterable[tuple[int, int]], nodes: dict[NodeKey, bytes]) -> list[bytes]:
    """Return the MTH of each range, folded from `nodes`."""
    return [fold([nodes[key] for key in perfect_parts(start, size)]) for start, size in ranges]


class Frontier:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first.

    Appending a leaf completes zero or more nodes; `append` returns them so that the caller can
    store them. Memory stays O(log n) however long the log.
    """

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        if len(edge) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} edge hashes")
        self.size = size
        self._edge = [(key, h) for key, h in zip(perfect_parts(0, size), edge, strict=True)]

    @staticmethod
    def edge_keys(size: int) -> list[NodeKey]:
        """Return the nodes a frontier of `size` leaves is loaded from."""
        return perfect_parts(0, size)

    def append(self, leaf: bytes) -> list[tuple[NodeKey, bytes]]:
        """Add a leaf hash; return the nodes of level >= 1 it completed."""
        edge = self._edge
        level, index, current = 0, self.size, leaf
        completed = []
        while edge and edge[-1][0][0] == level:
            (_, left_index), left = edge.pop()
            current = node_hash(left, current)
            level, index = level + 1, left_index >> 1
            completed.append(((level, index), current))
        edge.append(((level, index), current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        """Return MTH of the tree so far."""
        return fold([h for _, h in self._edge])


def root_of(leaves: Iterable[bytes]) -> bytes:
    """Return MTH of a sequence of leaf hashes, in O(log n) memory."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """Return whether `path` proves leaf `index` of a tree of `size` has hash `leaf` (2.1.3.2)."""
    if index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, path: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """Return whether `path` proves the tree of `second` extends that of `first` (2.1.4.2)."""
    if first < 0 or first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root
