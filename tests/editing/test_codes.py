"""Codes files (editing/codes.py): round trip, generator fingerprint, shape checks, clear errors."""
import pytest
import torch
from helpers import tiny_generator
from safetensors.torch import save_file

from memorygan.checkpoint import generator_fingerprint
from memorygan.editing.codes import Codes, codes_from_output, load_codes, save_codes
from memorygan.errors import CheckpointError


def test_round_trip_renders_the_same_images(arch, tmp_path):
    G = tiny_generator(arch).eval()
    out = G.sample(3, seed=0)
    codes = codes_from_output(out, G, names=["s0", "s1", "s2"], note="test")
    codes.noise = G.make_noise(1, torch.Generator().manual_seed(0))
    path = save_codes(tmp_path / "c.safetensors", codes)
    back = load_codes(path, G)
    assert back.names == ["s0", "s1", "s2"] and back.level == "z" and back.extra == {"note": "test"}
    assert back.generator == generator_fingerprint(G) and back.arch == arch
    with torch.no_grad():                  # the path G.sample takes (CPU inference convolves by Winograd)
        assert torch.equal(G(expanded=back.expanded).image, out.image)
    assert len(back.noise) == len(G.noise_shapes()) and torch.equal(back.noise[0], codes.noise[0])
    one = back.select([2])
    assert one.names == ["s2"] and torch.equal(one.expanded, back.expanded[2:3])


def test_fingerprint_changes_with_weights_and_codes_of_another_generator_are_refused(tmp_path):
    G = tiny_generator("memorygan").eval()
    path = save_codes(tmp_path / "c.safetensors", codes_from_output(G.sample(1, seed=0), G))
    other = tiny_generator("memorygan", seed=5).eval()
    assert generator_fingerprint(other) != generator_fingerprint(G)
    assert generator_fingerprint(tiny_generator("memorygan").eval()) == generator_fingerprint(G)
    with pytest.raises(CheckpointError, match="belong to another generator"):
        load_codes(path, other)
    assert load_codes(path, other, allow_other_generator=True).expanded.shape == (1, 4, 5, 16)
    with pytest.raises(CheckpointError, match="codes of a memorygan generator, this one is ssg"):
        load_codes(path, tiny_generator("ssg"), allow_other_generator=True)
    with pytest.raises(CheckpointError, match=r"needs \(N, K=5"):
        load_codes(path, tiny_generator("memorygan", num_classes=5, transparent_classes=[]),
                   allow_other_generator=True)


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_codes(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_codes(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a memorygan codes file"):
        load_codes(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="level"):
        save_codes(tmp_path / "c.safetensors", Codes(torch.zeros(1, 2, 3, 4), level="w"))
