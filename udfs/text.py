"""Text UDFs: normalisation for matching and grouping, URL slugs, word-set similarity.

DuckDB already ships character-level similarity (levenshtein, damerau_levenshtein, jaro_similarity,
jaro_winkler_similarity, jaccard, hamming) and lower/upper/trim/strip_accents; these UDFs add what it
lacks: a full Unicode normalisation pipeline and word-level comparison.

Every function is vectorized (pyarrow.compute over whole Arrow batches; only non-ASCII values are
case-folded in Python, once per distinct value) and NULL-safe: NULL in gives NULL out.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakesql import udf

# Combining diacritics (the marks NFKD splits off Latin, Greek and Cyrillic letters). Marks of
# other scripts (Devanagari vowel signs, Arabic harakat, ...) carry meaning and are kept.
_DIACRITICS = (
    r"[\x{0300}-\x{036F}\x{1AB0}-\x{1AFF}\x{1DC0}-\x{1DFF}\x{20D0}-\x{20FF}\x{FE20}-\x{FE2F}]"
)
# Everything Python's str.isspace() accepts (RE2's \s is ASCII-only).
_WHITESPACE = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}]+"
# Apostrophes vanish inside words ("don't" -> "dont") instead of splitting them.
_APOSTROPHES = r"['\x{2019}\x{02BC}]"
_NOT_WORD = r"[^\p{L}\p{N}\p{M}]+"
# Latin letters with a stroke have no decomposition, so NFKD cannot strip them.
_STROKES = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b"})


def _strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return pc.cast(col, pa.string())


def _fold(text: str) -> str:
    return text.casefold().translate(_STROKES)


def _normalize(values: pa.Array) -> pa.Array:
    """NFKC, casefold, strip diacritics, collapse whitespace, trim; NULLs stay NULL."""
    x = pc.utf8_normalize(values, "NFKC")
    folded = pc.utf8_lower(x)  # identical to str.casefold() on ASCII
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(x), True))
    if pc.any(non_ascii).as_py():
        encoded = x.filter(non_ascii).dictionary_encode()
        dictionary = pa.array([_fold(s) for s in encoded.dictionary.to_pylist()], type=pa.string())
        folded = pc.replace_with_mask(folded, non_ascii, pc.take(dictionary, encoded.indices))
    x = pc.utf8_normalize(folded, "NFKD")
    x = pc.replace_substring_regex(x, _DIACRITICS, "")
    x = pc.utf8_normalize(x, "NFKC")
    x = pc.replace_substring_regex(x, _WHITESPACE, " ")
    return pc.utf8_trim(x, characters=" ")


@udf(returns="VARCHAR", params=["VARCHAR"])
def normalize_text(s: pa.Array) -> pa.Array:
    """Unicode NFKC + casefold + strip accents + collapse whitespace + trim ('  Crème  BRÛLÉE' -> 'creme brulee')."""
    return _normalize(_strings(s))


@udf(returns="VARCHAR", params=["VARCHAR"])
def slugify(s: pa.Array) -> pa.Array:
    """URL slug: normalized words joined by '-' ('Héllo, Wörld!' -> 'hello-world')."""
    x = _normalize(_strings(s))
    x = pc.replace_substring_regex(x, _APOSTROPHES, "")
    x = pc.replace_substring_regex(x, _NOT_WORD, "-")
    return pc.utf8_trim(x, characters="-")


def _word_sets(values: pa.Array) -> tuple[pa.Table, np.ndarray]:
    """Distinct (row, word) pairs of the normalized text, and the word count of each row."""
    x = pc.replace_substring_regex(_normalize(values), _APOSTROPHES, "")
    words = pc.split_pattern_regex(x, _NOT_WORD)
    pairs = pa.table({"row": pc.list_parent_indices(words), "word": pc.list_flatten(words)})
    pairs = pairs.filter(pc.not_equal(pairs["word"], "")).group_by(["row", "word"]).aggregate([])
    counts = np.zeros(len(values), dtype=np.int64)
    per_row = pairs.group_by("row").aggregate([("word", "count")])
    counts[per_row["row"].to_numpy()] = per_row["word_count"].to_numpy()
    return pairs, counts


@udf(returns="DOUBLE", params=["VARCHAR", "VARCHAR"])
def token_jaccard(a: pa.Array, b: pa.Array) -> pa.Array:
    """Jaccard similarity in [0, 1] of the two texts' sets of normalized words (word order ignored)."""
    a, b = _strings(a), _strings(b)
    pairs_a, count_a = _word_sets(a)
    pairs_b, count_b = _word_sets(b)
    common = np.zeros(len(a), dtype=np.int64)
    shared = pairs_a.join(pairs_b, keys=["row", "word"], join_type="inner")
    if shared.num_rows:
        per_row = shared.group_by("row").aggregate([("word", "count")])
        common[per_row["row"].to_numpy()] = per_row["word_count"].to_numpy()
    union = count_a + count_b - common
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(union == 0, 1.0, common / union)  # two texts without words are alike
    valid = pc.and_(pc.is_valid(a), pc.is_valid(b)).to_numpy(zero_copy_only=False)
    return pa.array(ratio, type=pa.float64(), mask=~valid)
