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


def test_the_training_adam_is_multi_tensor_and_equals_the_per_parameter_adam():
    """The optimizers run fused (one kernel for all parameters) where torch has a fused Adam for the device, else
    foreach; the update is the textbook one: three steps match torch's per-parameter loop."""
    from memorygan.training.optim import adam_implementation

    torch.manual_seed(0)
    G = tiny_generator("memorygan")
    opt = make_generator_optimizer(G)
    impl = adam_implementation(G.parameters())
    assert impl in ({"fused": True}, {"foreach": True})
    assert all(opt.defaults.get(k) == v for k, v in impl.items())
    main = opt.param_groups[0]["params"][:3]
    ref_params = [p.detach().clone().requires_grad_(True) for p in main]
    ref = torch.optim.Adam(ref_params, lr=opt.param_groups[0]["lr"], betas=opt.param_groups[0]["betas"],
                           foreach=False)
    for step in range(3):
        for p in G.parameters():
            p.grad = torch.randn_like(p)
        for p, r in zip(main, ref_params):
            r.grad = p.grad.clone()
        opt.step()
        ref.step()
    for p, r in zip(main, ref_params):
        assert torch.allclose(p, r, atol=1e-6), "the multi-tensor Adam differs from the per-parameter one"
    ints = [nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)]
    assert adam_implementation(ints) == {"foreach": True}          # no fused kernel for a non-float tensor


def test_total_norm_is_the_norm_of_everything():
    from memorygan.training.optim import total_norm

    a, b = torch.tensor([3.0, 0.0]), torch.tensor([[4.0], [12.0]])
    assert total_norm([a, b]).item() == pytest.approx(13.0)
