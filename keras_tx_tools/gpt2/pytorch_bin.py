"""Read PyTorch's ``pytorch_model.bin`` into NumPy arrays, without PyTorch.

Since PyTorch 1.6, ``torch.save`` writes a zip archive: ``<name>/data.pkl``, a pickle of the
state dict, and one raw little-endian file ``<name>/data/<key>`` per storage, the flat memory
that tensors view. In the pickle a tensor is a call of ``torch._utils._rebuild_tensor_v2`` on
its storage (a *persistent id* naming the storage's file and element type), an offset into it,
a shape and strides, counted in elements. Reading one is therefore three steps: load the
storage's bytes as a flat NumPy array of its type, view it with the shape and strides, and copy.

The unpickler here knows only those names, as ``torch.load(..., weights_only=True)`` does: any
other class or function in the pickle is refused, so a file cannot run code on load. The
archives of ``torch.save`` before PyTorch 1.6 (not zip files) are refused with a clear error.
bfloat16, which NumPy lacks, is widened to float32 exactly (a bfloat16 is the upper half of a
float32).

>>> import tempfile, torch
>>> path = tempfile.mkdtemp() + "/pytorch_model.bin"
>>> torch.save({"wte.weight": torch.arange(6.0).reshape(2, 3).T}, path)
>>> read_pytorch_bin(path)["wte.weight"]
array([[0., 3.],
       [1., 4.],
       [2., 5.]], dtype=float32)
"""

import collections
import pickle
import zipfile

import numpy as np

STORAGE_TYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16, "BFloat16Storage": np.uint16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
"""PyTorch's storage types, and the NumPy type of their elements (bfloat16 read as its 16 bits)."""


def read_pytorch_bin(path):
    """``{name: array}``: the tensors of the state dict that ``torch.save`` wrote to `path`.

    Raises:
        ValueError: `path` is not a zip archive of ``torch.save``, or its pickle holds something
            other than tensors in (ordered) dicts.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip archive of torch.save (PyTorch 1.6 or later); "
                         "re-save it with a recent PyTorch, or as safetensors")
    with zipfile.ZipFile(path) as archive:
        [pickled] = [name for name in archive.namelist() if name.endswith("/data.pkl")] or [None]
        if pickled is None:
            raise ValueError(f"{path} is a zip archive without data.pkl: not a file of torch.save")
        with archive.open(pickled) as file:
            try:
                state = _StateDictUnpickler(file, archive, pickled.removesuffix("data.pkl")).load()
            except pickle.UnpicklingError as error:
                raise ValueError(f"{path}: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(value, np.ndarray) for value in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return dict(state)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict, tensors as NumPy arrays; refuses every other class and function."""

    def __init__(self, file, archive, folder):
        super().__init__(file)
        self.archive, self.folder = archive, folder

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, requires_grad, backward_hooks: data
        if module == "torch" and name in STORAGE_TYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state dict of tensors: refused")

    def persistent_load(self, saved_id):
        kind, storage_type, key, _location, _size = saved_id
        if kind != "storage" or storage_type not in STORAGE_TYPES:
            raise pickle.UnpicklingError(f"unknown storage {saved_id!r}")
        little_endian = np.dtype(STORAGE_TYPES[storage_type]).newbyteorder("<")
        data = np.frombuffer(self.archive.read(f"{self.folder}data/{key}"), little_endian)
        if storage_type == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data


def _rebuild_tensor(storage, offset, shape, strides, requires_grad=False, backward_hooks=None, metadata=None):
    """The tensor `storage[offset:]` viewed with `shape` and `strides` (in elements), as its own array."""
    itemsize = storage.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(shape), strides=tuple(stride * itemsize for stride in strides)).copy()
