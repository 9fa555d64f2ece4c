"""Each rank reads only its rows of the released safetensors: the positioned reads give the tensors' own rows."""

from __future__ import annotations

import torch

from models.dual_ar.checkpoint import WeightSlices, read_weights


def test_weight_slices_read_any_rows_of_every_tensor(tiny_model_dir):
    whole, slices = read_weights(tiny_model_dir), WeightSlices(tiny_model_dir)
    assert slices.shapes() == {k: tuple(v.shape) for k, v in whole.items()}
    for key, tensor in whole.items():
        n = tensor.shape[0]
        assert torch.equal(slices.rows(key, 0, n), tensor), key
        half = n // 2
        assert torch.equal(slices.rows(key, half, n), tensor[half:]), key  # the second of two ranks
        assert slices.rows(key, n, n).shape == (0, *tensor.shape[1:])  # a rank past the end holds nothing
