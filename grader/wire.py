"""Messages between the grader and the process that runs a student's code: plain data only.

What the student's process sends back is untrusted, so nothing it sends is ever unpickled
or executed: a message is JSON (numbers, strings, lists, tagged dicts) followed by the raw
bytes of its arrays, each checked against its declared numeric dtype and shape. A message is
bounded in total, `MAX_BYTES` over its header and arrays and `MAX_ARRAYS` arrays, and every size
is checked against what is left of that bound before anything is read into memory: a reply
announcing more costs its reader nothing.

Example:

>>> import io, numpy as np
>>> stream = io.BytesIO()
>>> write_message(stream, {"op": "result", "value": np.arange(3, dtype="int32")})
>>> _ = stream.seek(0)
>>> read_message(stream)["value"]
array([0, 1, 2], dtype=int32)
"""

import json
import struct

import numpy as np

ARRAY_KINDS = "biufc"
"""The NumPy dtype kinds an array on the wire may have: booleans and numbers."""

PLAIN_TYPES = (type(None), bool, int, float, str)
"""The values that cross the wire as they are, in JSON (exactly these types, not their subclasses)."""

MAX_BYTES = 2**28
"""The largest message (JSON header plus arrays) either side accepts, in bytes: 256 MiB."""

MAX_ARRAYS = 4096
"""The most arrays one message may carry."""


class WireError(Exception):
    """A message that breaks the protocol: the other side is gone or misbehaving."""


class TooLarge(WireError):
    """A message over the bound (`MAX_BYTES`, `MAX_ARRAYS`): refused before it is read."""


class Tag:
    """A value with a meaning the two sides agree on (a tensor, a remote object, ...).

    ``Tag("tensor", array)`` travels as its kind and its (plain) payload.
    """

    def __init__(self, kind, payload):
        self.kind = kind
        self.payload = payload

    def __repr__(self):
        return f"Tag({self.kind!r}, {self.payload!r})"


def as_tensor(array):
    """`array` (an array from the wire, a NumPy array or a number) as a tensor of Keras' backend, of
    the dtype Keras gives it.

    A NumPy array's dtype is named rather than left to Keras, which gives the same tensor (but for
    64-bit numbers, whose width the backend decides: JAX narrows them); asked to infer a dtype, JAX
    makes and compiles a program for every new shape it converts. Anything else goes to Keras as
    it is.

    >>> import keras
    >>> keras.backend.standardize_dtype(as_tensor(np.ones((2, 3), "float16")).dtype)
    'float16'
    """
    import keras

    if isinstance(array, (np.ndarray, np.generic)) and array.dtype.itemsize < 8:
        return keras.ops.convert_to_tensor(array, dtype=array.dtype.name)
    return keras.ops.convert_to_tensor(array)


def public_keras_class(name):
    """The public Keras class called `name` that a stand-in for an object may pass for in ``isinstance``:
    a layer or a learning-rate schedule (None for any other name)."""
    import keras

    for home in (keras.layers, keras.optimizers.schedules):
        found = getattr(home, name, None)
        if isinstance(found, type):
            return found
    return None


def write_message(stream, message):
    """Write `message` (JSON data, with NumPy arrays anywhere inside) to the binary `stream`."""
    arrays = []
    header = json.dumps(_pack(message, arrays)).encode()
    stream.write(struct.pack("<QQ", len(header), len(arrays)) + header)
    for array in arrays:
        data = np.ascontiguousarray(array).tobytes()
        stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def read_message(stream):
    """Read one message written by `write_message`; raises `WireError` on anything else.

    >>> import io
    >>> read_message(io.BytesIO(struct.pack("<QQ", 2, 3) + b"{}" + struct.pack("<Q", 2**30)))
    Traceback (most recent call last):
    ...
    grader.wire.TooLarge: a message larger than allowed (over 268435456 bytes)
    """
    header_size, count = struct.unpack("<QQ", _read(stream, 16))
    if count > MAX_ARRAYS:
        raise TooLarge(f"a message with more than {MAX_ARRAYS} arrays")
    left = _take(MAX_BYTES, header_size)
    try:
        header = json.loads(_read(stream, header_size))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError(f"an unreadable message ({error})") from None
    blobs = []
    for _ in range(count):
        (size,) = struct.unpack("<Q", _read(stream, 8))
        left = _take(left, size)
        blobs.append(_read(stream, size))
    try:
        return _unpack(header, blobs)
    except (TypeError, ValueError, KeyError, RecursionError) as error:
        raise WireError(f"a malformed message ({type(error).__name__})") from None


def _take(left, size):
    """What is left of a message's bound after `size` more bytes; `WireError` when that overdraws it."""
    if size > left:
        raise TooLarge(f"a message larger than allowed (over {MAX_BYTES} bytes)")
    return left - size


def _read(stream, size):
    data = stream.read(size)
    if data is None or len(data) != size:
        raise WireError("the other side closed the connection")
    return data


def _pack(value, arrays):
    """JSON-ready `value`: arrays become ``{"array": index, ...}`` entries of `arrays`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        arrays.append(array)
        return {"array": len(arrays) - 1, "dtype": array.dtype.str, "shape": list(array.shape),
                "scalar": isinstance(value, np.generic)}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_pack(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[str(key), _pack(item, arrays)] for key, item in value.items()]}
    if isinstance(value, Tag):
        return {"tag": str(value.kind), "payload": _pack(value.payload, arrays)}
    raise TypeError(f"cannot send a {type(value).__name__} to the other process")


def _unpack(value, blobs):
    if not isinstance(value, dict):
        return value
    if "array" in value:
        return _array(value, blobs)
    if "list" in value:
        return [_unpack(item, blobs) for item in value["list"]]
    if "tuple" in value:
        return tuple(_unpack(item, blobs) for item in value["tuple"])
    if "dict" in value:
        return {str(key): _unpack(item, blobs) for key, item in value["dict"]}
    if "tag" in value:
        return Tag(str(value["tag"]), _unpack(value.get("payload"), blobs))
    raise WireError(f"an unknown entry {sorted(value)[:3]}")


def _array(entry, blobs):
    """The array an entry describes, checked: a numeric dtype and exactly the bytes its shape needs."""
    try:
        dtype, shape, data = np.dtype(entry["dtype"]), tuple(int(n) for n in entry["shape"]), blobs[entry["array"]]
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise WireError(f"a malformed array ({error})") from None
    if dtype.kind not in ARRAY_KINDS or dtype.hasobject or any(n < 0 for n in shape):
        raise WireError(f"an array of dtype {dtype} or shape {shape}")
    if len(data) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise WireError(f"an array of shape {shape} with {len(data)} bytes")
    array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return array[()] if entry.get("scalar") else array
