"""Building blocks of the training loop (DESIGN 3): losses and regularisers, part-wise style mixing, generator EMA,
optimizers with lazy-regularisation correction."""
from memorygan.training.ema import ema_beta, ema_copy, update_ema
from memorygan.training.losses import (d_logistic_loss, d_r1_penalty, g_nonsaturating_loss, g_path_length,
                                       mask_loss, path_length_loss, r1_loss)
from memorygan.training.mixing import MIX_CHOICES, mixing_coin, partwise_mix, random_partwise_mix
from memorygan.training.optim import (LSTM_PREFIX, is_lstm_param, lazy_reg_adam_params,
                                      make_discriminator_optimizer, make_generator_optimizer)

__all__ = ["d_logistic_loss", "g_nonsaturating_loss", "d_r1_penalty", "r1_loss", "g_path_length", "path_length_loss",
           "mask_loss", "partwise_mix", "mixing_coin", "random_partwise_mix", "MIX_CHOICES", "ema_beta",
           "ema_copy", "update_ema", "lazy_reg_adam_params", "make_generator_optimizer",
           "make_discriminator_optimizer", "is_lstm_param", "LSTM_PREFIX"]
from memorygan.training.options import TrainOptions  # noqa: E402


def train(opts=None, **kwargs):
    """Train a new run (see `memorygan.training.loop.train`); imported lazily to keep this package light."""
    from memorygan.training.loop import train as _train
    return _train(opts, **kwargs)


def resume(run_dir, **overrides):
    """Continue a run from its newest checkpoint (see `memorygan.training.loop.resume`)."""
    from memorygan.training.loop import resume as _resume
    return _resume(run_dir, **overrides)


__all__ += ["TrainOptions", "train", "resume"]
