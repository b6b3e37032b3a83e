"""Inference rewrites keep the network's answer."""

import pytest
import torch
from torch import nn

from rechroma.models import build_generator
from rechroma.models.fuse import fold_batch_norms, prepare_for_inference


def _trained_looking_unet() -> nn.Module:
    torch.manual_seed(0)
    model = build_generator("unet", width=8, depth=3, max_channels=32)
    # Non-trivial running statistics and affine terms, as after training.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_folding_keeps_outputs_and_removes_every_batch_norm() -> None:
    model = _trained_looking_unet()
    x = torch.rand(2, 1, 40, 24) * 2 - 1
    with torch.no_grad():
        expected = model(x)
        prepared = prepare_for_inference(model)
        got = prepared(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_folding_refuses_a_model_in_training_mode() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(_trained_looking_unet().train())
