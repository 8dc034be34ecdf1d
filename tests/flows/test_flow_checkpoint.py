"""Loading original-format (ProHMR checkpoint) flow state dicts."""

from __future__ import annotations

import pytest
import torch

from prohmr.flows import (
    ORIGINAL_FLOW_PREFIX,
    ConditionalGlow,
    FlowLoadReport,
    convert_original_state_dict,
    load_original_state_dict,
)


def original_format(flow: ConditionalGlow, prefix: str = ORIGINAL_FLOW_PREFIX) -> dict:
    """What ProHMR's Lightning checkpoint holds for this flow, plus other modules' keys."""
    state = {prefix + key: value.clone() for key, value in flow.state_dict().items()}
    # The fork registers a persistent scalar in every nflows Transform: the composite
    # transform and each of its children.
    state[prefix + "_transform.dummy_buffer"] = torch.tensor(0.0)
    for index in range(3 * flow.num_layers):
        state[f"{prefix}_transform._transforms.{index}.dummy_buffer"] = torch.tensor(0.0)
    if prefix:
        state["backbone.conv1.weight"] = torch.zeros(64, 3, 7, 7)
        state["flow.fc_head.layers.0.weight"] = torch.zeros(1024, 2048)
    return state


@pytest.mark.parametrize("with_dummy", [True, False], ids=["with-dummy", "without-dummy"])
def test_original_state_dict_reproduces_outputs_exactly(
    make_flow, flow_inputs, config, with_dummy
):
    source = make_flow(torch.float32, seed=4)
    state = original_format(source)
    if not with_dummy:
        state = {key: value for key, value in state.items() if "dummy_buffer" not in key}
    target = ConditionalGlow(**config).eval()
    report = load_original_state_dict(target, state, prefix=ORIGINAL_FLOW_PREFIX)
    assert isinstance(report, FlowLoadReport) and report.ok
    assert len(report.ignored_keys) == (3 * source.num_layers + 1 if with_dummy else 0)
    assert set(report.loaded_keys) == set(source.state_dict())

    x, context = flow_inputs(source, batch=3, num=2)
    assert torch.equal(target.log_prob(x, context)[0], source.log_prob(x, context)[0])
    latents = torch.randn(3, 2, source.features)
    assert torch.equal(
        target.sample(context=context, z=latents).samples,
        source.sample(context=context, z=latents).samples,
    )
    # Nested as ProHMR nests it, the same keys load with PyTorch's own strict check.
    holder = torch.nn.Module()
    holder.flow = torch.nn.Module()
    holder.flow.flow = ConditionalGlow(**config)
    converted, _ = convert_original_state_dict(state, prefix=ORIGINAL_FLOW_PREFIX)
    holder.flow.flow.load_state_dict(converted, strict=True)


def test_loader_names_every_bad_key(make_flow, config):
    source = make_flow(torch.float32)
    state = original_format(source, prefix="")
    missing = "_transform._transforms.1.bias"
    del state[missing]
    state["_transform._transforms.0.surplus"] = torch.zeros(1)
    mismatched = "_transform._transforms.2.transform_net.final_layer.bias"
    state[mismatched] = torch.zeros(1000)

    target = ConditionalGlow(**config).eval()
    before = {key: value.clone() for key, value in target.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_original_state_dict(target, state)
    for name in (missing, "_transform._transforms.0.surplus", mismatched):
        assert name in str(error.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())

    report = load_original_state_dict(target, state, strict=False)
    assert report.missing_keys == (missing,)
    assert report.unexpected_keys == ("_transform._transforms.0.surplus",)
    assert len(report.mismatched_keys) == 1 and report.mismatched_keys[0].startswith(mismatched)
    assert torch.equal(
        target.state_dict()["_transform._transforms.0.log_scale"],
        source.state_dict()["_transform._transforms.0.log_scale"],
    )
    with pytest.raises(ValueError, match="state_dict"):
        load_original_state_dict(target, [1, 2])
