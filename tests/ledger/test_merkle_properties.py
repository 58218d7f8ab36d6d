"""The ledger's Merkle trees agree with RFC 9162 section 2.1 transcribed here independently."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsourcing_app.ledger import merkle

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES") or 0)

# ---------------------------------------------------------------------------------------------
# The reference: RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1 (MTH, PATH, SUBPROOF) and the verifiers of
# 2.1.3.2 and 2.1.4.2, written from the text and sharing nothing with the app's module. It
# rehashes whole ranges, which is what makes it obviously right and too slow for the server.
# ---------------------------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1."""
    if not entries:
        return sha256(b"")
    if len(entries) == 1:
        return sha256(b"\x00" + entries[0])
    k = largest_power_of_two_below(len(entries))
    return sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    if len(entries) == 1:
        return []
    k = largest_power_of_two_below(len(entries))
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, entries[:k], b), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def proof(m: int, entries: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1."""
    return subproof(m, entries, True)


def lsb(x: int) -> bool:
    return x & 1 == 1


def ref_verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, inclusion_path: list[bytes], root: bytes
) -> bool:
    """The inclusion proof verification of RFC 9162 2.1.3.2, step by step."""
    if leaf_index >= tree_size:  # step 1
        return False
    fn, sn = leaf_index, tree_size - 1  # step 2
    r = leaf  # step 3
    for p in inclusion_path:  # step 4
        if sn == 0:  # 4a
            return False
        if lsb(fn) or fn == sn:  # 4b
            r = sha256(b"\x01" + p + r)
            if not lsb(fn):
                while not (lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and r == root  # step 5


def ref_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    """The consistency proof verification of RFC 9162 2.1.4.2, step by step (0 < first < second)."""
    if not consistency_path:  # step 1
        return False
    if first & (first - 1) == 0:  # step 2: first is an exact power of 2
        consistency_path = [first_hash, *consistency_path]
    fn, sn = first - 1, second - 1  # step 3
    if lsb(fn):  # step 4
        while lsb(fn):
            fn >>= 1
            sn >>= 1
    fr = sr = consistency_path[0]  # step 5
    for c in consistency_path[1:]:  # step 6
        if sn == 0:  # 6a
            return False
        if lsb(fn) or fn == sn:  # 6b
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            if not lsb(fn):
                while not (lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn >>= 1  # 6c
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # step 7


# ---------------------------------------------------------------------------------------------
# The app, used as the server uses it: leaves appended to a Frontier, the completed nodes stored,
# proofs folded from the stored nodes.
# ---------------------------------------------------------------------------------------------


def stored_tree(entries: list[bytes]) -> tuple[dict[merkle.NodeKey, bytes], merkle.Frontier]:
    nodes: dict[merkle.NodeKey, bytes] = {}
    frontier = merkle.Frontier()
    for index, entry in enumerate(entries):
        leaf = merkle.leaf_hash(entry)
        nodes[(0, index)] = leaf
        nodes.update(frontier.append(leaf))
    return nodes, frontier


def app_inclusion(index: int, size: int, nodes: dict[merkle.NodeKey, bytes]) -> list[bytes]:
    return merkle.hashes_of(merkle.inclusion_ranges(index, size), nodes)


def app_consistency(first: int, second: int, nodes: dict[merkle.NodeKey, bytes]) -> list[bytes]:
    return merkle.hashes_of(merkle.consistency_ranges(first, second), nodes)


def flip(h: bytes, bit: int) -> bytes:
    bit %= len(h) * 8
    return h[: bit // 8] + bytes([h[bit // 8] ^ (1 << bit % 8)]) + h[bit // 8 + 1 :]


def budget(default: int) -> settings:
    """The same examples on every run; more, and fresh ones, under HYPOTHESIS_EXAMPLES."""
    return settings(
        max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES, database=None
    )


@st.composite
def trees(draw: st.DrawFn) -> list[bytes]:
    """Entries as the ledger hashes them (events' hexdigests, distinct), of a drawn count."""
    size = draw(st.integers(1, 600) | st.sampled_from([1023, 1024, 1025, 2048, 4097]))
    salt = draw(st.binary(max_size=8))
    return [
        hashlib.sha256(salt + index.to_bytes(4, "big")).hexdigest().encode()
        for index in range(size)
    ]


# ---------------------------------------------------------------------------------------------
# Known vectors.
# ---------------------------------------------------------------------------------------------

# The RFC 6962 test vectors also published by transparency-dev/merkle (testonly/constants.go).
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
CT_CONSISTENCY = {
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip


def test_the_empty_tree_is_the_hash_of_nothing():
    assert merkle.EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest() == CT_ROOTS[0]
    assert merkle.Frontier().root() == merkle.root_of([]) == merkle.EMPTY_ROOT


def test_small_trees_hash_as_computed_by_hand():
    a, b, c, d, e = (sha256(b"\x00" + entry) for entry in [b"a", b"b", b"c", b"d", b"e"])
    ab, cd = sha256(b"\x01" + a + b), sha256(b"\x01" + c + d)
    abcd = sha256(b"\x01" + ab + cd)
    assert merkle.leaf_hash(b"a") == a
    assert merkle.root_of([a]) == a
    assert merkle.root_of([a, b]) == ab
    assert merkle.root_of([a, b, c]) == sha256(b"\x01" + ab + c)  # 3 splits 2 + 1, not 1 + 2
    assert merkle.root_of([a, b, c, d]) == abcd
    assert merkle.root_of([a, b, c, d, e]) == sha256(b"\x01" + abcd + e)
    nodes, _ = stored_tree([b"a", b"b", b"c", b"d", b"e"])
    assert app_inclusion(2, 5, nodes) == [d, ab, e]
    assert app_inclusion(4, 5, nodes) == [abcd]
    assert app_consistency(3, 5, nodes) == [c, d, ab, e]
    assert app_consistency(4, 5, nodes) == [e]  # 4 is a power of two: its root is implied


def test_the_certificate_transparency_vectors():
    nodes, frontier = stored_tree(CT_ENTRIES)
    for size in range(len(CT_ENTRIES) + 1):
        assert merkle.root_of(nodes[(0, i)] for i in range(size)).hex() == CT_ROOTS[size]
    assert frontier.root().hex() == CT_ROOTS[8]
    for (index, size), expected in CT_INCLUSION.items():
        assert [h.hex() for h in app_inclusion(index, size, nodes)] == expected
        assert merkle.verify_inclusion(
            index, size, nodes[(0, index)], [bytes.fromhex(h) for h in expected],
            bytes.fromhex(CT_ROOTS[size]),
        )  # fmt: skip
    for (first, second), expected in CT_CONSISTENCY.items():
        assert [h.hex() for h in app_consistency(first, second, nodes)] == expected
        assert merkle.verify_consistency(
            first, second, [bytes.fromhex(h) for h in expected],
            bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second]),
        )  # fmt: skip


def test_the_reference_agrees_with_the_vectors():
    # Otherwise the property test below would compare the app with a wrong reference.
    for size in range(1, len(CT_ENTRIES) + 1):
        assert mth(CT_ENTRIES[:size]).hex() == CT_ROOTS[size]
    for (index, size), expected in CT_INCLUSION.items():
        assert [h.hex() for h in path(index, CT_ENTRIES[:size])] == expected
    for (first, second), expected in CT_CONSISTENCY.items():
        assert [h.hex() for h in proof(first, CT_ENTRIES[:second])] == expected


def test_degenerate_consistency():
    nodes, frontier = stored_tree(CT_ENTRIES[:4])
    root = frontier.root()
    assert merkle.verify_consistency(4, 4, [], root, root)
    assert not merkle.verify_consistency(4, 4, [root], root, root)
    assert not merkle.verify_consistency(4, 4, [], root, merkle.EMPTY_ROOT)
    assert merkle.verify_consistency(0, 4, [], merkle.EMPTY_ROOT, root)
    assert not merkle.verify_consistency(0, 4, [], root, root)
    assert not merkle.verify_consistency(3, 2, [root], root, root)
    assert not merkle.verify_inclusion(4, 4, nodes[(0, 3)], [], root)
    assert not merkle.verify_inclusion(-1, 4, nodes[(0, 0)], [], root)


def test_a_frontier_refuses_an_edge_of_the_wrong_length():
    with pytest.raises(ValueError, match="3 edge hashes"):
        merkle.Frontier(7, [merkle.EMPTY_ROOT])


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------


@budget(200)
@given(entries=trees(), data=st.data())
def test_inclusion_proofs_match_the_rfc(entries, data):
    size = len(entries)
    nodes, frontier = stored_tree(entries)
    root = mth(entries)
    assert frontier.root() == root
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf = nodes[(0, index)]
    got = app_inclusion(index, size, nodes)

    assert got == path(index, entries)
    assert merkle.verify_inclusion(index, size, leaf, got, root)
    assert ref_verify_inclusion(index, size, leaf, got, root)

    bit = data.draw(st.integers(0, 255), label="bit")
    for n in range(len(got)):
        tampered = [*got[:n], flip(got[n], bit), *got[n + 1 :]]
        assert not merkle.verify_inclusion(index, size, leaf, tampered, root)
    assert not merkle.verify_inclusion(index, size, flip(leaf, bit), got, root)
    assert not merkle.verify_inclusion(index, size, leaf, got, flip(root, bit))
    if got:
        assert not merkle.verify_inclusion(index, size, leaf, got[:-1], root)
    assert not merkle.verify_inclusion(index, size, leaf, [*got, got[-1] if got else leaf], root)
    assert not merkle.verify_inclusion(size, size, leaf, got, root)
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
        assert not merkle.verify_inclusion(other, size, leaf, got, root)
        # Another size, checked against that size's root: what a mismatched digest would give.
        wrong = data.draw(
            st.integers(index + 1, size + 1).filter(lambda n: n != size), label="wrong size"
        )
        more = [*entries, b"one more"]
        assert not merkle.verify_inclusion(index, wrong, leaf, got, mth(more[:wrong]))
        # A size whose path has another length fails on the shape alone, even with the root.
        if len(path(index, more[:wrong])) != len(got):
            assert not merkle.verify_inclusion(index, wrong, leaf, got, root)


@budget(200)
@given(entries=trees(), data=st.data())
def test_consistency_proofs_match_the_rfc(entries, data):
    second = len(entries)
    nodes, _ = stored_tree(entries)
    first = data.draw(st.integers(1, second), label="first")
    first_root, second_root = mth(entries[:first]), mth(entries)
    got = app_consistency(first, second, nodes)

    assert got == proof(first, entries)
    assert merkle.verify_consistency(first, second, got, first_root, second_root)
    if first < second:  # the RFC's verifier is for 0 < first < second only
        assert ref_verify_consistency(first, second, first_root, second_root, got)

    bit = data.draw(st.integers(0, 255), label="bit")
    for n in range(len(got)):
        tampered = [*got[:n], flip(got[n], bit), *got[n + 1 :]]
        assert not merkle.verify_consistency(first, second, tampered, first_root, second_root)
    assert not merkle.verify_consistency(first, second, got, flip(first_root, bit), second_root)
    assert not merkle.verify_consistency(first, second, got, first_root, flip(second_root, bit))
    if got:
        assert not merkle.verify_consistency(first, second, got[:-1], first_root, second_root)
    extended = [*got, got[-1] if got else first_root]
    assert not merkle.verify_consistency(first, second, extended, first_root, second_root)
    more = [*entries, b"one more"]
    assert not merkle.verify_consistency(first, second + 1, got, first_root, mth(more))
    if second > 1:
        other = data.draw(st.integers(1, second).filter(lambda m: m != first), label="other")
        assert not merkle.verify_consistency(other, second, got, mth(entries[:other]), second_root)


@budget(100)
@given(entries=trees(), data=st.data())
def test_a_frontier_reloaded_from_its_edge_continues_the_same_tree(entries, data):
    size = len(entries)
    nodes, frontier = stored_tree(entries)
    cut = data.draw(st.integers(0, size), label="cut")
    edge = [nodes[key] for key in merkle.Frontier.edge_keys(cut)]
    reloaded = merkle.Frontier(cut, edge)
    assert reloaded.root() == mth(entries[:cut])
    completed = {}
    for index in range(cut, size):
        completed.update(reloaded.append(merkle.leaf_hash(entries[index])))
    assert reloaded.size == size
    assert reloaded.root() == frontier.root() == mth(entries)
    # It completes the very nodes the uninterrupted run stored, so proofs stay foldable.
    assert all(nodes[key] == h for key, h in completed.items())
    assert all(key in completed for key in nodes if key[0] > 0 and (key[1] + 1) << key[0] > cut)
