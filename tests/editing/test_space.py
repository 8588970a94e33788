"""The edit space (editing/space.py): one place for spaces, theta shapes, part layers and offsets; batched theta
equals the unbatched one per image."""
import pytest
import torch
from helpers import tiny_generator

from memorygan.editing import space as S
from memorygan.errors import ConfigError
from memorygan.models.codes import role_layers


def test_parts_delta_puts_theta_on_the_parts_role_layers_only(arch):
    G = tiny_generator(arch).eval()
    parts, roles = [1, 3], ["shape", "texture"]
    theta = torch.randn(2, 2, G.config.latent_dim, generator=torch.Generator().manual_seed(0))
    delta = S.parts_delta(G, theta, parts, roles)
    for i, p in enumerate(parts):
        for j, r in enumerate(roles):
            for layer in role_layers(G.config, p, [r]):
                torch.testing.assert_close(delta[p, layer], theta[i, j])
    untouched = [k for k in range(G.num_classes) if k not in parts]
    assert torch.all(delta[untouched] == 0)
    batched = torch.stack([theta, 2 * theta])
    torch.testing.assert_close(S.parts_delta(G, batched, parts, roles), torch.stack([delta, 2 * delta]))


def test_query_offsets_and_shapes():
    G = tiny_generator("memorygan").eval()
    theta = torch.randn(2, G.config.latent_dim)
    off = S.query_offsets(G, theta, [0, 2])
    assert off.shape == (1, G.num_latents, G.config.latent_dim) and S.query_index([0, 2]) == [1, 3]
    torch.testing.assert_close(off[0, [1, 3]], theta)
    assert torch.all(off[0, [0, 2]] == 0)
    torch.testing.assert_close(S.query_offsets(G, torch.stack([theta, -theta]), [0, 2]), torch.cat([off, -off]))
    assert S.theta_shape(G, "parts", [0, 2], ["shape"], batch=4) == (4, 2, 1, G.config.latent_dim)
    assert S.theta_shape(G, "latent", [], []) == (G.num_latents, G.config.latent_dim)
    with pytest.raises(ConfigError, match="query codes exist only in MemoryGAN"):
        S.check_space(tiny_generator("ssg"), "query", ["skin"])
