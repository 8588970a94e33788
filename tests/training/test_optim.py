"""Adam with the lazy-regularisation correction and the MemoryGAN LSTM learning rate (DESIGN 3)."""
import pytest
import torch
import torch.nn as nn

from memorygan.models import build_discriminator
from memorygan.training import (is_lstm_param, lazy_reg_adam_params, make_discriminator_optimizer,
                                make_generator_optimizer)

from helpers import tiny_dconfig_obj, tiny_generator


def test_lazy_reg_correction_by_hand():
    lr, (b1, b2) = lazy_reg_adam_params(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17, rel=1e-12)
    assert b1 == 0.0 and b2 == pytest.approx(0.99 ** (16 / 17), rel=1e-12)
    lr, (b1, b2) = lazy_reg_adam_params(0.002, (0.5, 0.99), 4)
    assert lr == pytest.approx(0.0016, rel=1e-12)
    assert b1 == pytest.approx(0.5 ** 0.8) and b2 == pytest.approx(0.99 ** 0.8)
    assert lazy_reg_adam_params(0.002, (0.0, 0.99), None) == (0.002, (0.0, 0.99))


def test_lazy_reg_errors_name_the_argument():
    with pytest.raises(ValueError, match="interval"):
        lazy_reg_adam_params(0.002, (0.0, 0.99), 0)
    with pytest.raises(ValueError, match="betas"):
        lazy_reg_adam_params(0.002, (0.0, 1.0), 4)
    with pytest.raises(ValueError, match="lr"):
        lazy_reg_adam_params(0.0, (0.0, 0.99), 4)


def test_memorygan_generator_gets_an_lstm_group():
    G = tiny_generator("memorygan")
    opt = make_generator_optimizer(G)
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"main", "lstm"}
    c = 4 / 5
    assert groups["main"]["lr"] == pytest.approx(0.002 * c) and groups["lstm"]["lr"] == pytest.approx(1e-4 * c)
    for g in groups.values():
        assert g["betas"][0] == 0.0 and g["betas"][1] == pytest.approx(0.99 ** c)
    lstm_ids = {id(p) for p in G.controller.lstm.parameters()}
    assert {id(p) for p in groups["lstm"]["params"]} == lstm_ids and len(lstm_ids) == 4
    # every parameter is in exactly one group
    all_ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in G.parameters())
    assert not lstm_ids & {id(p) for p in groups["main"]["params"]}


def test_ssg_generator_gets_a_single_group():
    G = tiny_generator("ssg")
    opt = make_generator_optimizer(G, reg_interval=None)
    assert [g["name"] for g in opt.param_groups] == ["main"]
    assert opt.param_groups[0]["lr"] == 0.002 and len(opt.param_groups[0]["params"]) == len(list(G.parameters()))


def test_lstm_names_under_a_wrapper():
    assert is_lstm_param("controller.lstm.weight_ih")
    assert is_lstm_param("module.controller.lstm.bias_hh")
    assert not is_lstm_param("controller.lstm_head.weight") and not is_lstm_param("mycontroller.lstm.weight")
    assert not is_lstm_param("controller.head.net.0.weight")


def test_discriminator_optimizer_and_a_step():
    D = build_discriminator(tiny_dconfig_obj())
    opt = make_discriminator_optimizer(D)
    (group,) = opt.param_groups
    assert group["lr"] == pytest.approx(0.002 * 16 / 17) and group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    before = [p.detach().clone() for p in D.parameters()]
    D(torch.randn(2, 3, 32, 32), torch.randn(2, 4, 32, 32)).mean().backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_optimizer_errors():
    with pytest.raises(ValueError, match="D has no parameters"):
        make_discriminator_optimizer(nn.Module())
