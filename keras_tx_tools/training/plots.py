"""Pictures of a training run: loss curves and attention patterns (PNG files).

Drawn with matplotlib's `Agg` backend, which needs no display.

- `plot_loss` draws every metric of a Keras history, one panel each: the
  training curve (a point every few steps when given) and the validation
  value at the end of each epoch.
- `plot_attention` draws one heat map per layer and head: row `i` shows how
  much query token `i` attends to each key token. Under a causal mask the
  upper triangle is empty; on the reversal task the second half of the
  sequence shows the anti-diagonal that copies the first half backwards.
  A colour bar gives the scale, shared by every head (0 to 1).

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


def plot_loss(history, path, title="Training", steps=None):
    """Saves one panel per metric: its training curve and its validation points.

    Args:
        history: per-epoch values, as `model.fit` returns them
            (`{"loss": [...], "val_loss": [...]}`); with a `"step"` list (the
            steps trained at the end of each epoch) the x axis counts steps.
        path: the PNG file to write.
        title: the figure title.
        steps: optional training values every few steps (`{"step": [...],
            "loss": [...]}`, as `MetricsLog` records them): the training curve
            is drawn from these, the validation values stay one per epoch.
    """
    metrics = [name for name in history if not name.startswith("val_") and name not in ("learning_rate", "step")]
    metrics.sort(key=lambda name: name != "loss")  # the loss first
    epoch_x = history.get("step") or range(1, len(history[metrics[0]]) + 1)
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False, layout="constrained")
    for axis, name in zip(axes[0], metrics):
        if steps and steps.get(name):
            axis.plot(steps["step"], steps[name], label="train")
        else:
            axis.plot(epoch_x, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epoch_x, history[f"val_{name}"], marker="o", label="validation (end of epoch)")
        axis.set(xlabel="step" if "step" in history else "epoch", ylabel=name, title=name)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_attention(attention_maps, tokens, path, title="Attention weights"):
    """Saves a grid of heat maps, one row per layer and one column per head, with a colour bar.

    Args:
        attention_maps: list (one per layer) of `(batch, heads, T, T)` arrays,
            as returned by `GPT.attention_maps`; the first batch entry is drawn.
        tokens: `T` labels for the axes (the input tokens as text).
        path: the PNG file to write.
        title: the figure title.
    """
    num_layers, num_heads = len(attention_maps), attention_maps[0].shape[1]
    size = max(2.6, 0.17 * len(tokens))  # inches per heat map
    figure, axes = plt.subplots(
        num_layers, num_heads, figsize=(size * num_heads + 1.2, size * num_layers + 1.0),
        squeeze=False, sharex=True, sharey=True, layout="constrained",
    )
    labels = [token.replace(" ", "\u2423").replace("\n", "\\n") for token in tokens]
    for layer, layer_maps in enumerate(attention_maps):
        for head in range(num_heads):
            axis = axes[layer][head]
            image = axis.imshow(layer_maps[0, head], cmap="viridis", vmin=0.0, vmax=1.0)
            axis.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=10)
            axis.set_xticks(range(len(labels)), labels, fontsize=8, rotation=90)
            axis.set_yticks(range(len(labels)), labels, fontsize=8)
            axis.tick_params(labelbottom=layer == num_layers - 1, labelleft=head == 0)
    for axis in axes[-1]:
        axis.set_xlabel("key (attended to)", fontsize=10)
    for axis in axes[:, 0]:
        axis.set_ylabel("query (attending)", fontsize=10)
    figure.colorbar(image, ax=axes, shrink=min(1.0, 0.9 / num_layers ** 0.5), label="attention weight")
    figure.suptitle(title, fontsize=13)
    figure.savefig(path, dpi=100)
    plt.close(figure)
