"""Encoders into a generator's codes (issue 28): one forward pass from an image to the codes the edits use.

    model.py   the network (pSp backbone, feature pyramid, one head per code group; ReStyle passes), building one
               for a generator, files (encoder.safetensors + encoder.json), `encode`
    train.py   training on the generator's samples (known codes) and real images + masks, resumable
    cli.py     `memorygan encoder train`

`memorygan invert --encoder E` starts from the encoder's codes (`--steps 0`: the encoder alone), and
`memorygan demo --encoder E` shows an upload at once, then refines it.
"""
from memorygan.encoder.model import Encoded, Encoder, EncoderConfig, build_encoder, encode, load_encoder, save_encoder
from memorygan.encoder.train import EncoderTrainOptions, known_answer_metrics, train_encoder

__all__ = ["Encoder", "EncoderConfig", "Encoded", "build_encoder", "encode", "load_encoder", "save_encoder",
           "EncoderTrainOptions", "train_encoder", "known_answer_metrics"]
