"""The building blocks against stock ``nflows`` parts and dense linear algebra."""

from __future__ import annotations

import pytest
import torch
from nflows.nn.nets.resnet import ResidualBlock as StockResidualBlock
from nflows.transforms import AdditiveCouplingTransform
from torch import nn

from prohmr.flows import (
    ActNorm,
    AdditiveCoupling,
    LULinear,
    ResidualNet,
    coupling_mask,
    transforms,
)


class StockOriginalNet(nn.Module):
    """The original coupling net from stock parts (context concatenated, eps 1e-5)."""

    def __init__(self, in_features: int, out_features: int, hidden: int, context: int) -> None:
        super().__init__()
        self.initial_layer = nn.Linear(in_features + context, hidden)
        self.blocks = nn.ModuleList(
            [StockResidualBlock(hidden, None, dropout_probability=0.5, use_batch_norm=True)
             for _ in range(2)]
        )
        for block in self.blocks:
            for batch_norm in block.batch_norm_layers:
                batch_norm.eps = 1e-5
        self.final_layer = nn.Linear(hidden, out_features)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        temps = self.initial_layer(torch.cat((inputs, context), dim=1))
        for block in self.blocks:
            temps = block(temps)
        return self.final_layer(temps)


@pytest.mark.parametrize("rows", [3, 40], ids=["solve", "matrix"])
def test_lu_linear_matches_dense_algebra(rows):
    torch.manual_seed(0)
    lu = LULinear(9).double()
    with torch.no_grad():
        for parameter in lu.parameters():
            parameter.copy_(0.2 * torch.randn_like(parameter))
    lower = torch.eye(9, dtype=torch.float64)
    lower[tuple(torch.tril_indices(9, 9, -1))] = lu.lower_entries.detach()
    upper = torch.diag(torch.nn.functional.softplus(lu.unconstrained_upper_diag.detach()) + 1e-3)
    upper[tuple(torch.triu_indices(9, 9, 1))] = lu.upper_entries.detach()
    weight = lower @ upper
    x = torch.randn(rows, 9, dtype=torch.float64)
    y, logabsdet = lu(x)
    torch.testing.assert_close(y, x @ weight.T + lu.bias.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(logabsdet, torch.linalg.slogdet(weight)[1].expand(rows))
    back, inverse_logabsdet = lu.inverse(y)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)
    torch.testing.assert_close(lu.weight_inverse(), torch.linalg.inv(weight))
    assert not lu.using_cache
    assert set(lu.state_dict()) == {"bias", "lower_entries", "upper_entries",
                                    "unconstrained_upper_diag"}


def test_actnorm_constant_feature_is_clamped():
    actnorm = ActNorm(3).train()
    x = torch.randn(10, 3)
    x[:, 2] = 4.0
    y, logabsdet = actnorm(x)
    assert torch.isfinite(y).all() and torch.isfinite(logabsdet).all()
    torch.testing.assert_close(y[:, :2].mean(0), torch.zeros(2), rtol=0, atol=1e-5)
    torch.testing.assert_close(y[:, :2].std(0), torch.ones(2))
    with pytest.raises(ValueError, match="at least 2 rows"):
        ActNorm(3).train()(torch.randn(1, 3))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_coupling_matches_stock_parts(mode):
    torch.manual_seed(0)
    features, hidden, context_features = 10, 16, 4
    mask = coupling_mask(features, 0)
    ours = AdditiveCoupling(
        mask, lambda i, o: ResidualNet(i, o, hidden, context_features, 2, 0.5, True)
    )
    stock = AdditiveCouplingTransform(
        mask, lambda i, o: StockOriginalNet(i, o, hidden, context_features)
    )
    stock.load_state_dict(ours.state_dict())
    with torch.no_grad():
        for name, buffer in ours.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(1e-4, 1e-2)  # makes the eps matter
        stock.load_state_dict(ours.state_dict())
    ours.train(mode == "train")
    stock.train(mode == "train")
    x, context = torch.randn(12, features), torch.randn(12, context_features)
    torch.manual_seed(1)
    expected, expected_logabsdet = stock(x, context)
    torch.manual_seed(1)
    y, logabsdet = ours(x, context)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(logabsdet, expected_logabsdet)
    assert torch.equal(y[:, ::2], x[:, ::2])  # layer 0 passes the even indices through
    torch.manual_seed(2)
    expected_back, _ = stock.inverse(y, context)
    torch.manual_seed(2)
    back, _ = ours.inverse(y, context)
    torch.testing.assert_close(back, expected_back, rtol=1e-5, atol=1e-5)


def test_coupling_net_initialisation():
    torch.manual_seed(0)
    net = ResidualNet(72, 72, 1024, 2048, num_blocks=2, use_batch_norm=True)
    bound = 0.01 / 1024**0.5
    for tensor in (net.final_layer.weight, net.final_layer.bias):
        assert tensor.abs().max() <= bound and tensor.abs().max() > 0.9 * bound
    for block in net.blocks:
        last = block.linear_layers[1]
        assert last.weight.abs().max() <= 1e-3 and last.bias.abs().max() <= 1e-3
        assert all(bn.eps == 1e-5 for bn in block.batch_norm_layers)
        assert not hasattr(block, "context_layer")
    default_bound = 1 / (72 + 2048) ** 0.5  # nn.Linear's default, as the original
    assert net.initial_layer.weight.abs().max() <= default_bound
    assert net.initial_layer.weight.abs().max() > 0.9 * default_bound


@pytest.mark.parametrize("context_grad", [True, False], ids=["context-grad", "frozen-context"])
def test_joined_initial_layer_gradients(context_grad):
    torch.manual_seed(0)
    net = ResidualNet(3, 2, 5, 4, num_blocks=1, use_batch_norm=False).double()
    inputs = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    context = torch.randn(6, 4, dtype=torch.float64, requires_grad=context_grad)
    weight, bias = net.initial_layer.weight, net.initial_layer.bias

    def joined(x, c, w, b):
        return transforms._JoinedLinear.apply(x, c, w, b)

    arguments = (inputs, context, weight, bias)
    assert torch.autograd.gradcheck(joined, arguments)
    assert torch.autograd.gradgradcheck(joined, arguments)
    expected = torch.nn.functional.linear(torch.cat((inputs, context), 1), weight, bias)
    torch.testing.assert_close(joined(*arguments), expected)
    net(inputs, context).sum().backward()
    assert (context.grad is not None) == context_grad
