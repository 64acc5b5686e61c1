"""Keras callbacks used by `keras-tx train`, each a small hook into `model.fit`.

- `TextSample` prints generated text after every epoch, so you can watch a
  language model go from noise to words.
- `StopOnInterrupt` turns Ctrl-C into "finish this step, then stop": `fit`
  ends at once with `TrainingInterrupted`, before any validation or sample,
  and the run saves what it has.
- `ProgressBar` is Keras' progress bar, which can also end its line at the
  step where training stopped.
- `MetricsLog` keeps `metrics.json` up to date after every epoch, with a
  point of the training curves every few steps.

>>> import keras, numpy as np, os, tempfile
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile(loss="mse")
>>> log = MetricsLog(os.path.join(tempfile.mkdtemp(), "metrics.json"), log_every=2, task="demo")
>>> _ = model.fit(np.ones((8, 2)), np.ones(8), batch_size=2, epochs=2, verbose=0, callbacks=[log])
>>> log.record["task"], log.record["epochs"], len(log.record["history"]["loss"])
('demo', 2, 2)
>>> log.record["history"]["step"], log.record["step_history"]["step"]
([4.0, 8.0], [2, 4, 6, 8])
"""

import json
import signal
import threading
import time

import keras

from keras_tx_tools.training.text_generation import continue_text


class TextSample(keras.callbacks.Callback):
    """Prints `num_tokens` tokens that the model writes after `prompt`, each epoch.

    Args:
        tokenizer: the model's tokenizer.
        prompt: text to continue.
        num_tokens: length of the sample, in tokens.
        temperature, top_k, seed: sampling settings (see `GPT.generate`).
        print_fn: where the sample goes (default `print`).
    """

    def __init__(self, tokenizer, prompt, num_tokens=200, temperature=0.8, top_k=None, seed=0, print_fn=print):
        super().__init__()
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.num_tokens = num_tokens
        self.sampling = dict(temperature=temperature, top_k=top_k, seed=seed)
        self.print_fn = print_fn

    def on_epoch_end(self, epoch, logs=None):
        text = continue_text(self.model, self.tokenizer, self.prompt, self.num_tokens, **self.sampling)
        # Starts on a new line: the progress bar has not finished its line yet.
        self.print_fn(f"\n--- sample after epoch {epoch + 1} ---\n{self.prompt}{text}\n---")


class TrainingInterrupted(Exception):
    """Raised out of `fit` by `StopOnInterrupt` after Ctrl-C, at the end of a step."""


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) stops training within seconds, at the end of the current step, instead of killing it.

    The signal handler only takes note. At the end of the training step (or
    of the validation batch, or at the start of an epoch) the callback
    raises `TrainingInterrupted`: `fit` ends there, without the validation,
    checkpoint and samples of the epoch's end, and the code around `fit`
    catches it and saves the model as it is. `interrupted` tells that code
    what happened. A second Ctrl-C raises `KeyboardInterrupt` as usual.
    Signals only reach the main thread, so in other threads this callback
    does nothing.
    """

    def __init__(self, print_fn=print):
        super().__init__()
        self.print_fn = print_fn
        self.interrupted = False
        self._previous_handler = None

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.print_fn("\nInterrupted: stopping after this step and saving (Ctrl-C again to quit without saving).")

    def on_train_batch_end(self, batch, logs=None):
        self._stop_if_interrupted()

    def on_test_batch_end(self, batch, logs=None):
        self._stop_if_interrupted()

    def on_epoch_begin(self, epoch, logs=None):
        self._stop_if_interrupted()

    def _stop_if_interrupted(self):
        if self.interrupted:
            self.on_train_end()
            raise TrainingInterrupted

    def on_train_end(self, logs=None):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar (`verbose` of `fit` sets its style), which can end its line where training stopped.

    Keras' own bar ends every epoch at the epoch's last step, even one that
    stopped earlier; `end_line` shows the step training really reached.
    """

    def __init__(self):
        super().__init__()
        self._logs = {}

    def on_train_batch_end(self, batch, logs=None):
        self._logs = logs or {}
        super().on_train_batch_end(batch, logs)

    def end_line(self):
        """Ends the bar's line at the last step trained, with its metrics."""
        if self.progbar is not None:
            self.progbar.update(self.seen, list(self._logs.items()), finalize=True)


class MetricsLog(keras.callbacks.Callback):
    """Writes `record` as JSON to `path` after every epoch and at the end.

    `record` starts as `{**info, "history": {}, "step_history": {}}`. Every
    epoch appends its logs, and the steps trained so far (`step`), to
    `history`, and updates `epochs`, `steps`, `wall_time_s` (seconds since
    training began) and, with `tokens_per_step`, `tokens_per_second` (tokens
    trained on per second of wall time, evaluation included). With
    `log_every=N`, every N steps `step_history` gets the step and the mean of
    each training metric over the steps since the previous point (or since
    the epoch began): a loss curve with more points than epochs. Add results
    to `record` and call `write()` to save them too. A run stopped in the
    middle of an epoch calls `stop_early()`.

    Args:
        path: the JSON file to (over)write.
        tokens_per_step: tokens in one training batch (batch x sequence length).
        log_every: steps between the points of `step_history` (None: none).
        **info: anything else to record (task, configuration, ...).
    """

    def __init__(self, path, tokens_per_step=None, log_every=None, **info):
        super().__init__()
        self.path = path
        self.tokens_per_step = tokens_per_step
        self.log_every = log_every
        self.record = {**info, "history": {}, "step_history": {}}
        self._steps = 0
        self._start = None
        self._epoch, self._epoch_steps, self._point = 0, 0, (0, {})
        self._logs = {}

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_steps, self._point = epoch, 0, (0, {})

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._epoch_steps += 1
        self._logs = logs or {}
        if self.log_every and self._steps % self.log_every == 0:
            self._add_point(self._means())

    def _means(self):
        return {name: float(value) for name, value in self._logs.items()}

    def _add_point(self, means):
        """Keras reports means since the epoch began; the difference of two is the mean between them."""
        steps, earlier = self._point
        history = self.record["step_history"]
        history.setdefault("step", []).append(self._steps)
        for name, mean in means.items():
            total = mean * self._epoch_steps - earlier.get(name, 0.0) * steps
            history.setdefault(name, []).append(total / (self._epoch_steps - steps))
        self._point = (self._epoch_steps, means)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in {**(logs or {}), "step": self._steps}.items():
            self.record["history"].setdefault(name, []).append(float(value))
        self._record_progress(epochs=epoch + 1)
        self.write()

    def stop_early(self):
        """Records a run stopped inside an epoch: `interrupted: true`, the steps it trained, and the
        last stretch of the training curves (the epoch's history gets no entry: it was not validated)."""
        if self._epoch_steps > self._point[0] and self._logs:
            self._add_point(self._means())
        self._record_progress(epochs=self._epoch + 1)
        self.record["interrupted"] = True
        self.write()

    def _record_progress(self, epochs):
        wall_time = time.perf_counter() - self._start
        self.record.update(epochs=epochs, steps=self._steps, wall_time_s=round(wall_time, 2))
        if self.tokens_per_step:
            self.record["tokens_per_second"] = round(self._steps * self.tokens_per_step / wall_time, 1)

    def write(self):
        with open(self.path, "w", encoding="utf-8") as file:
            json.dump(self.record, file, indent=2)
