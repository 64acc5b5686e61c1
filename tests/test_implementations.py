"""The scan for implementations: no code in a student release computes what an exercise asks."""

import shutil
import textwrap

import pytest

from keras_tx_tools.course import release, stubs
from keras_tx_tools.course.implementations import implementations, library_classes

pytestmark = pytest.mark.course

ROOT = release.repository_root()

CODE = {
    "the attention formula": """
        def attend(q, k, v):
            return ops.softmax(ops.matmul(q, ops.transpose(k)) / ops.sqrt(q.shape[-1])) @ v
    """,
    "the attention formula, softmax by hand": """
        def attend(q, k, v):
            scores = q @ k.swapaxes(-1, -2) * k.shape[-1] ** -0.5
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            return scores / scores.sum(-1, keepdims=True) @ v
    """,
    "the sine/cosine table": """
        angles = np.arange(8)[:, None] / np.power(10000, np.arange(0, 4, 2) / 4)
        table = np.concatenate([np.sin(angles), np.cos(angles)], -1)
    """,
    "a LayerNorm written out": """
        def norm(x):
            mean, variance = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
            return (x - mean) / np.sqrt(variance + 1e-5)
    """,
    "GELU written out": """
        def gelu(x):
            return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    """,
    "a causal mask with tril": """
        def causal(n):
            return np.tril(np.ones((n, n), bool))
    """,
    "a causal mask of compared positions": """
        def positions(n):
            return ops.arange(n)[:, None], ops.arange(n)[None, :]

        def causal(n):
            queries, keys = positions(n)
            return ops.less_equal(keys, queries)
    """,
    "byte-pair merges, pairs zipped": """
        def most_frequent_pair(ids):
            return collections.Counter(zip(ids, ids[1:])).most_common(1)[0][0]
    """,
    "byte-pair merges, pairs indexed": """
        def merge(ids, pair, new_id):
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out, i = out + [new_id], i + 2
                else:
                    out, i = out + [ids[i]], i + 1
            return out
    """,
    "a warm-up and cosine schedule": """
        def learning_rate(step, peak, warmup, total):
            if step < warmup:
                return peak * step / warmup
            return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
    """,
    "top-p filtering": """
        def top_p(logits, p):
            order = np.argsort(-logits)
            keep = np.cumsum(softmax(logits[order])) - softmax(logits[order]) < p
            return np.where(np.isin(np.arange(len(logits)), order[keep]), logits, -np.inf)
    """,
    "a cache written in place": """
        def update(self, key):
            self.keys = ops.slice_update(self.keys, (0, 0, self.length, 0), key)
    """,
    "GPT-2's c_attn split": """
        def load(attention, weights, index):
            query, key, value = np.split(weights[f"h.{index}.attn.c_attn.weight"], 3, axis=-1)
            attention.query_dense.kernel.assign(query)
            attention.key_dense.kernel.assign(key)
            attention.value_dense.kernel.assign(value)
    """,
    "a library layer": """
        class TransformerBlock(keras.layers.Layer):
            def call(self, x):
                return self.ffn(self.norm(x)) + x
    """,
}


@pytest.mark.parametrize("name", CODE)
def test_the_scan_finds_each_kind_of_implementation(tmp_path, name):
    (tmp_path / "notes.py").write_text(textwrap.dedent(CODE[name]))
    assert len(implementations(tmp_path, {"TransformerBlock"})) == 1


def test_the_scan_finds_every_exercises_solution():
    """Each exercise's solution computes what it asks: the scan sees at least one of its pieces."""
    found = {line.split(".py:")[0] for line in implementations(ROOT / "solutions", library_classes(ROOT))}
    assert found == {path.stem for path in (ROOT / "solutions").glob("*.py")} - {"__init__"}, found


def test_the_scan_reads_code_only_and_skips_stubs_and_given_code(tmp_path):
    lesson = '"""softmax(Q @ K.T / sqrt(d)); np.tril(np.ones((n, n))); sin and cos of pos / 10000 ** (2i / d)."""\n'
    (tmp_path / "lesson.py").write_text(lesson + "# mean, var, sqrt: (x - mean) / sqrt(var + eps)\nimport keras\n")
    (tmp_path / "stub.py").write_text(stubs.strip_solutions((ROOT / "solutions" / "model.py").read_text()))
    (tmp_path / "given.py").write_text(stubs.given_code((ROOT / "solutions" / "masking.py").read_text()))
    assert implementations(tmp_path, library_classes(ROOT)) == []


def test_the_scan_finds_in_notebooks_and_markdown_code_blocks(tmp_path):
    (tmp_path / "a.md").write_text("Text sin cos 10000.\n\n```python\n" + textwrap.dedent(CODE["a causal mask with tril"]) + "```\n")
    (tmp_path / "b.ipynb").write_text('{"cells": [{"cell_type": "code", "source": ["def gelu(x):\\n", "    return math.erf(x)\\n"]}]}')
    assert [line.split(":")[0] for line in implementations(tmp_path)] == ["a.md", "b.ipynb"]


def test_a_release_with_the_library_is_caught_with_every_kind_of_implementation(tmp_path):
    """What ``keras-tx release`` shipped before: the library, and the grader's reference code."""
    bundle = release.build_release(tmp_path / "bundle", with_library=True)
    found = " ".join(implementations(bundle, library_classes(ROOT)))
    for what in ("attention formula", "sine/cosine table", "causal mask", "layer class GPT", "layer class TransformerBlock",
                 "top-p filtering", "cache written in place", "c_attn split", "warm-up and cosine schedule"):
        assert what in found, what


def test_the_release_holds_no_implementation(tmp_path):
    bundle = release.build_release(tmp_path / "bundle")
    assert implementations(bundle, library_classes(ROOT)) == []


def test_the_release_refuses_to_ship_an_implementation(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".*", "__pycache__", "runs", "nbgrader", "benchmarks"))
    (root / "grader" / "reference_algorithms.py").write_text(textwrap.dedent(CODE["a LayerNorm written out"]))
    with pytest.raises(ValueError, match="reference_algorithms.py:2: a LayerNorm written out"):
        release.build_release(tmp_path / "bundle", root=root)
    assert not (tmp_path / "bundle").exists()
