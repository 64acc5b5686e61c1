"""`read_pytorch_bin` reads what `torch.save` writes, as `torch.load` does, without PyTorch."""

import numpy as np
import pytest
import torch

from keras_tx_tools.gpt2.pytorch_bin import read_pytorch_bin
from test_grader import ROOT

pytestmark = pytest.mark.course


def test_every_dtype_layout_and_shared_storage_reads_as_torch_load(tmp_path):
    base = torch.randn(4, 6)
    state = {
        "float32": torch.randn(3, 5), "float16": torch.randn(2, 3).half(), "bfloat16": torch.randn(7).bfloat16(),
        "float64": torch.randn(2, 2).double(), "int64": torch.arange(-3, 9), "int32": torch.arange(5, dtype=torch.int32),
        "uint8": torch.arange(250, 256, dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
        "transposed": base.T, "a view with an offset": base[1:, 2:5], "the base": base, "scalar": torch.tensor(2.5),
        "a parameter": torch.nn.Parameter(torch.randn(2, 2)), "empty": torch.zeros(0, 3),
    }
    torch.save(state, tmp_path / "pytorch_model.bin")
    arrays = read_pytorch_bin(tmp_path / "pytorch_model.bin")
    assert list(arrays) == list(state)
    for name, tensor in state.items():
        expected = tensor.detach().float().numpy() if tensor.dtype == torch.bfloat16 else tensor.detach().numpy()
        assert arrays[name].dtype == expected.dtype and arrays[name].shape == expected.shape, name
        np.testing.assert_array_equal(arrays[name], expected, err_msg=name)


def test_the_graders_hub_checkpoint_reads_as_torch_load():
    path = ROOT / "grader" / "checkpoints" / "hub_pytorch" / "pytorch_model.bin"
    expected = torch.load(path, map_location="cpu", weights_only=True)
    arrays = read_pytorch_bin(path)
    assert sorted(arrays) == sorted(expected)
    for name, tensor in expected.items():
        np.testing.assert_array_equal(arrays[name], tensor.numpy(), err_msg=name)


class RunsCode:
    def __reduce__(self):
        return (print, ("this ran on load",))


@pytest.mark.parametrize("content, message", [
    (lambda path: path.write_bytes(b"not a zip"), "not a zip archive of torch.save"),
    (lambda path: torch.save({"code": RunsCode()}, path), "print is not part of a state dict of tensors: refused"),
    (lambda path: torch.save([torch.ones(2)], path), "holds a list, not a state dict of tensors"),
])
def test_anything_but_a_state_dict_of_tensors_is_refused(tmp_path, capsys, content, message):
    path = tmp_path / "pytorch_model.bin"
    content(path)
    with pytest.raises(ValueError, match=message):
        read_pytorch_bin(path)
    assert "this ran on load" not in capsys.readouterr().out
