"""Pictures of a training run: loss curves and attention patterns (PNG files).

Drawn with matplotlib's `Agg` backend, which needs no display.

- `plot_loss` draws every metric of a Keras history against the epoch, the
  training and validation curves of one metric side by side.
- `plot_attention` draws one heat map per layer and head: row `i` shows how
  much query token `i` attends to each key token. Under a causal mask the
  upper triangle is empty; on the reversal task the second half of the
  sequence shows the anti-diagonal that copies the first half backwards.

>>> import numpy as np, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> plot_loss({"loss": [2.0, 1.0], "val_loss": [2.1, 1.2]}, os.path.join(folder, "loss.png"))
>>> weights = [np.full((1, 2, 3, 3), 1 / 3)]  # 1 layer, 2 heads, 3 tokens
>>> plot_attention(weights, ["a", "b", "c"], os.path.join(folder, "attention.png"))
>>> sorted(os.listdir(folder))
['attention.png', 'loss.png']
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib import ticker  # noqa: E402


def plot_loss(history, path, title="Training"):
    """Saves one panel per metric of `history` (`{"loss": [...], "val_loss": [...]}`)."""
    metrics = [name for name in history if not name.startswith("val_") and name != "learning_rate"]
    metrics.sort(key=lambda name: name != "loss")  # the loss first
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for axis, name in zip(axes[0], metrics):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axis.set(xlabel="epoch", ylabel=name, title=name)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_attention(attention_maps, tokens, path, title="Attention weights", layer_numbers=None):
    """Saves a grid of heat maps, one row per layer and one column per head, and a colour bar.

    Args:
        attention_maps: list (one per layer) of `(batch, heads, T, T)` arrays,
            as returned by `GPT.attention_maps`; the first batch entry is drawn.
        tokens: `T` labels for the axes (the input tokens as text).
        path: the PNG file to write.
        title: the figure title.
        layer_numbers: the layers' numbers in the panel titles (default 1, 2, ...),
            when `attention_maps` holds only some of the model's layers.
    """
    num_layers, num_heads = len(attention_maps), attention_maps[0].shape[1]
    layer_numbers = layer_numbers or range(1, num_layers + 1)
    size = max(3.0, 0.18 * len(tokens))  # inches per heat map
    figure, axes = plt.subplots(
        num_layers, num_heads, figsize=(size * num_heads + 1, size * num_layers), squeeze=False, layout="constrained"
    )
    labels = [token.replace(" ", "\u2423").replace("\n", "\\n") for token in tokens]
    for row, (layer, layer_maps) in enumerate(zip(layer_numbers, attention_maps)):
        for head in range(num_heads):
            axis = axes[row][head]
            image = axis.imshow(layer_maps[0, head], cmap="viridis", vmin=0.0, vmax=1.0)
            axis.set_title(f"layer {layer}, head {head + 1}", fontsize=9)
            axis.set_xticks(range(len(labels)), labels, fontsize=7, rotation=90)
            axis.set_yticks(range(len(labels)), labels, fontsize=7)
            axis.set(xlabel="key (attended to)", ylabel="query (attending)")
    figure.colorbar(image, ax=axes, shrink=min(1.0, 4 / num_layers), label="attention weight")
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
