"""The GAN's games, one small function each: (d_real_logits, d_fake_logits) -> (d_loss, g_loss), picked by
name from LOSSES (the names jaxgen.configs.gan.LOSSES lists; tests/test_gan_losses.py keeps the two equal).

D returns one unbounded number per row. For the two losses of the 2014 paper it is a logit (D = sigmoid of
it, and every loss is written with log-sigmoid, never the log of a sigmoid); for hinge and wgan-gp it is a
critic score that no sigmoid reads (readings and figures then say "critic", not "D(x)"). Adding a loss:
one function here, its name in configs/gan.py LOSSES, its closed-form test (docs/usage.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class GANLoss(NamedTuple):
    """One game: its function, what D's output means, and the losses when D cannot tell (all logits 0)."""

    fn: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
    probability: bool  # True: D's output is a logit (sigmoid -> D(x)); False: a critic score
    at_zero: tuple[float, float]  # (d_loss, g_loss) at logits 0: the equilibrium lines of gan_curves.png


def _minimax_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-E log D(x) - E log(1 - D(G(z))): log 4 when D says ½ everywhere."""
    return -jnp.mean(jax.nn.log_sigmoid(real_logits)) - jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def saturating(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The 2014 minimax game as written: D maximises E log D(x) + E log(1 - D(G(z))), G minimises
    E log(1 - D(G(z))) (its gradient vanishes where D rejects the fakes: early in training)."""
    return _minimax_d(real_logits, fake_logits), jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def nonsaturating(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The same D; G minimises -E log D(G(z)) (same fixed point, strong gradients where D rejects G)."""
    return _minimax_d(real_logits, fake_logits), -jnp.mean(jax.nn.log_sigmoid(fake_logits))


def hinge(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Hinge (Lim & Ye 2017; SAGAN, BigGAN): D: E relu(1 - D(x)) + E relu(1 + D(G(z))), G: -E D(G(z))."""
    d = jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
    return d, -jnp.mean(fake_logits)


def wgan(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Wasserstein (Arjovsky et al. 2017): critic E D(G(z)) - E D(x), G: -E D(G(z)). The critic must be
    1-Lipschitz: loss=wgan-gp adds the gradient penalty (gradient_penalty) in D's step."""
    return jnp.mean(fake_logits) - jnp.mean(real_logits), -jnp.mean(fake_logits)


LOG2 = math.log(2.0)
LOSSES: dict[str, GANLoss] = {
    "nonsaturating": GANLoss(nonsaturating, True, (2 * LOG2, LOG2)),
    "saturating": GANLoss(saturating, True, (2 * LOG2, -LOG2)),
    "hinge": GANLoss(hinge, False, (2.0, 0.0)),
    "wgan-gp": GANLoss(wgan, False, (0.0, 0.0)),
}


def g_loss_rows(loss: GANLoss, fake_logits_B: jax.Array) -> jax.Array:
    """The generator loss of each fake row alone (top-k training averages the best of them): every g_loss
    above is a mean over rows, so the loss of a one-row batch is that row's term."""
    return jax.vmap(lambda f: loss.fn(f[None], f[None])[1])(fake_logits_B)


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array], real_BxD: jax.Array, fake_BxD: jax.Array, key: jax.Array
) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): E (||grad D(x^)||_2 - 1)^2 at x^ = e x + (1 - e) G(z), e ~ U(0, 1)
    per row, the rows of x and G(z) paired in order (a row may be an image [H, W, C] or packed images: the
    norm is over all of a row's numbers). The caller multiplies by the weight (gp)."""
    b = real_BxD.shape[0]
    eps = jax.random.uniform(key, (b,) + (1,) * (real_BxD.ndim - 1))
    x_hat_BxD = eps * real_BxD + (1.0 - eps) * fake_BxD
    grad_BxD = jax.grad(lambda x: critic(x).sum())(x_hat_BxD)
    norm_B = jnp.sqrt(
        jnp.sum(grad_BxD.reshape(b, -1) ** 2, axis=-1) + 1e-12
    )  # + tiny: sqrt's gradient at 0 is infinite
    return jnp.mean((norm_B - 1.0) ** 2)
