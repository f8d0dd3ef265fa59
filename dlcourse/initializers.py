r"""Weight initialization, §2.4.5.

The course: the biases can be initialized to 0; the weights cannot (the derivative of
tanh at 0 is 0, a saddle point) nor all to the same value (every unit of a layer would
then behave alike), so they are drawn i.i.d. at random, uniform on $[-c, c]$ (Glorot and
Bengio, 2010) or normal $\mathcal{N}(0, 0.01)$.  He et al. (2015) is the usual choice in
front of ReLU units.

Every initializer has the signature of :mod:`jax.nn.initializers`,
``init(key, shape, dtype=jnp.float32) -> Array``, so the two families are
interchangeable.  Fans follow dlcourse's shape convention (see :mod:`dlcourse._types`
and :func:`fans`), which is *not* jax's default for dense matrices: a dense ``W`` is
``(fan_out, fan_in)``, the course's $W^{(k)}$.  Arguments are checked eagerly, before
any random number is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from dlcourse._checks import check_finite
from dlcourse._types import Array, PRNGKey

__all__ = [
    "INITIALIZERS",
    "constant",
    "fans",
    "get_initializer",
    "glorot_uniform",
    "he_normal",
    "normal",
    "zeros",
]


def _check_shape(fn: str, shape: Sequence[int], *, min_ndim: int = 0) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints; raise if a dim is not positive or rank is low."""
    if isinstance(shape, int):
        raise TypeError(
            f"{fn}: shape must be a sequence of ints, got the int shape={shape!r}; "
            f"pass shape=({shape},)."
        )
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError as err:
        raise TypeError(f"{fn}: shape must be a sequence of ints, got shape={shape!r}.") from err
    if any(d <= 0 for d in dims):
        raise ValueError(f"{fn}: every dimension of shape must be positive, got shape={dims}.")
    if len(dims) < min_ndim:
        raise ValueError(
            f"{fn}: needs a weight of at least {min_ndim} dimensions to define fan_in and "
            f"fan_out, got shape={dims}; a dense W is (fan_out, fan_in), a kernel HWIO "
            f"(..., C_in, C_out). Initialize biases with `zeros`."
        )
    return dims


def _check_dtype(fn: str, dtype: DTypeLike) -> None:
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{fn}: dtype must be a floating dtype, got dtype={dtype!r}.")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    r"""Fan-in and fan-out of a weight under dlcourse's shape convention.

    * Dense, 2-D: ``W`` has shape ``(fan_out, fan_in)``, the course's $W^{(k)}$ of size
      $N_k \times N_{k-1}$ whose rows are the units of layer $k$ (§2.2), so
      ``fan_in = shape[1]`` $= N_{k-1}$ and ``fan_out = shape[0]`` $= N_k$.
    * Kernel, 3-D or more: HWIO, ``(*spatial, C_in, C_out)`` (§3.1).  With
      $r = \prod$ ``shape[:-2]`` the receptive field, ``fan_in`` $= r\,C_{in}$ and
      ``fan_out`` $= r\,C_{out}$ (as ``jax.nn.initializers`` with its default axes).

    Args:
      shape: the weight's shape, at least 2-D, every dimension positive.

    Returns:
      ``(fan_in, fan_out)``.

    Raises:
      ValueError: if ``shape`` has fewer than 2 dimensions (a bias or a scalar has no
        fans) or a non-positive dimension.
      TypeError: if ``shape`` is not a sequence of ints.

    References:
      Course §2.4.5 ($N_k$, $N_{k-1}$), §3.1 (kernels $(k, k, C_i, C_o)$).
    """
    return _fans("fans", shape)


def _fans(fn: str, shape: Sequence[int]) -> tuple[int, int]:
    dims = _check_shape(fn, shape, min_ndim=2)
    if len(dims) == 2:
        fan_out, fan_in = dims
        return fan_in, fan_out
    receptive = math.prod(dims[:-2])
    return receptive * dims[-2], receptive * dims[-1]


def glorot_uniform(key: PRNGKey, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> Array:
    r"""Glorot (Xavier) uniform, §2.4.5: $W_{ij} \sim \mathcal{U}[-c, c]$ i.i.d. with

    $$c = \sqrt{\frac{6}{\mathrm{fan\_in} + \mathrm{fan\_out}}}
        = \sqrt{\frac{6}{N_{k-1} + N_k}}.$$

    The course prints $c = \frac{\sqrt{6}}{N_k + N_{k-1}}$: a typo, the square root
    covers the denominator too (Glorot and Bengio 2010, eq. 16).  With the correct bound
    $\operatorname{Var}(W_{ij}) = c^2/3 = 2/(\mathrm{fan\_in} + \mathrm{fan\_out})$, the
    compromise between keeping the forward variance ($1/\mathrm{fan\_in}$) and the
    backward variance ($1/\mathrm{fan\_out}$) constant across layers; the printed bound
    would give a variance smaller by a factor $(N_k + N_{k-1})$, which shrinks the
    signal layer after layer.

    Draws exactly the array of ``jax.nn.initializers.glorot_uniform(in_axis=-1,
    out_axis=-2)`` for a dense ``W`` and of ``glorot_uniform()`` for an HWIO kernel.

    Args:
      key: a ``jax.random`` key.
      shape: ``(fan_out, fan_in)`` for a dense ``W`` or HWIO for a kernel (see
        :func:`fans`).
      dtype: a floating dtype.

    Returns:
      An array of ``shape`` and ``dtype`` with values in $[-c, c]$.

    Raises:
      ValueError: if ``shape`` is not at least 2-D or has a non-positive dimension.
      TypeError: if ``dtype`` is not floating.

    References:
      Course §2.4.5.
      Glorot, X. and Bengio, Y., "Understanding the difficulty of training deep
      feedforward neural networks", AISTATS 2010, eq. 16.
      https://proceedings.mlr.press/v9/glorot10a.html
    """
    fan_in, fan_out = _fans("glorot_uniform", shape)
    _check_dtype("glorot_uniform", dtype)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    # U[-1, 1) scaled, rather than uniform(minval=-c, maxval=c): the same draw as jax's
    # variance_scaling, so the two can be swapped bit for bit.
    u = jax.random.uniform(key, tuple(shape), dtype, -1.0, 1.0)
    return u * jnp.asarray(bound, dtype)


def normal(
    key: PRNGKey,
    shape: Sequence[int],
    dtype: DTypeLike = jnp.float32,
    *,
    variance: float = 0.01,
) -> Array:
    r"""The course's normal initialization, §2.4.5: $W_{ij} \sim \mathcal{N}(0, 0.01)$.

    We read the second argument as the variance, as the notation $\mathcal{N}(\mu,
    \sigma^2)$ does: $\sigma^2 = 0.01$, so the standard deviation is $\sigma = 0.1$.
    Some code reads "N(0, 0.01)" as a standard deviation of 0.01; ``variance=1e-4``
    gives that reading.  The draw does not depend on fans, so biases and 1-D shapes
    are accepted.

    Args:
      key: a ``jax.random`` key.
      shape: any shape with positive dimensions.
      dtype: a floating dtype.
      variance: $\sigma^2 > 0$, a Python float (checked eagerly).

    Returns:
      An array of ``shape`` and ``dtype``, i.i.d. $\mathcal{N}(0, \mathrm{variance})$.

    Raises:
      ValueError: if ``variance <= 0`` or a dimension is non-positive.
      TypeError: if ``dtype`` is not floating.

    References:
      Course §2.4.5 (citing Glorot and Bengio, 2010).
    """
    dims = _check_shape("normal", shape)
    _check_dtype("normal", dtype)
    if not variance > 0:  # also rejects NaN
        raise ValueError(
            f"normal: variance must be > 0, got variance={variance!r}; the course's "
            f"N(0, 0.01) is variance=0.01, a std of 0.01 is variance=1e-4."
        )
    return jax.random.normal(key, dims, dtype) * jnp.asarray(math.sqrt(variance), dtype)


def he_normal(key: PRNGKey, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> Array:
    r"""He (Kaiming) normal: $W_{ij} \sim \mathcal{N}(0, 2/\mathrm{fan\_in})$.

    For ReLU units half of the pre-activations are zeroed, so keeping
    $\operatorname{Var}(a^{(k)})$ constant across layers needs
    $\tfrac12\,\mathrm{fan\_in}\,\operatorname{Var}(W) = 1$ (He et al. 2015, eq. 10).

    The plain normal of the paper, not truncated: ``jax.nn.initializers.he_normal`` is
    a *truncated* normal rescaled to the same variance.  Draws exactly the array of
    ``jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal", in_axis=-1,
    out_axis=-2)`` for a dense ``W``.

    Args:
      key: a ``jax.random`` key.
      shape: ``(fan_out, fan_in)`` for a dense ``W`` or HWIO for a kernel (see
        :func:`fans`).
      dtype: a floating dtype.

    Returns:
      An array of ``shape`` and ``dtype``, i.i.d. $\mathcal{N}(0, 2/\mathrm{fan\_in})$.

    Raises:
      ValueError: if ``shape`` is not at least 2-D or has a non-positive dimension.
      TypeError: if ``dtype`` is not floating.

    References:
      Course §2.4.5 (initialization), §2.1 (ReLU).
      He, K., Zhang, X., Ren, S. and Sun, J., "Delving Deep into Rectifiers: Surpassing
      Human-Level Performance on ImageNet Classification", ICCV 2015.
      https://arxiv.org/abs/1502.01852
    """
    fan_in, _ = _fans("he_normal", shape)
    _check_dtype("he_normal", dtype)
    std = math.sqrt(2.0 / fan_in)
    return jax.random.normal(key, tuple(shape), dtype) * jnp.asarray(std, dtype)


def zeros(key: PRNGKey, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> Array:
    r"""Zeros, for the biases, §2.4.5: "The biases can be initialized to 0".

    Never for the weights: with $W = 0$ every unit of a layer computes the same thing
    and, for tanh, $W = 0$ is a saddle point of the loss.

    Args:
      key: unused; kept so that every initializer has the same signature.
      shape: any shape with positive dimensions (a bias ``b`` is ``(units,)``).
      dtype: a floating dtype.

    Returns:
      ``jnp.zeros(shape, dtype)``.

    Raises:
      ValueError: if a dimension is non-positive.
      TypeError: if ``dtype`` is not floating.

    References:
      Course §2.4.5.
    """
    del key
    dims = _check_shape("zeros", shape)
    _check_dtype("zeros", dtype)
    return jnp.zeros(dims, dtype)


def constant(
    key: PRNGKey,
    shape: Sequence[int],
    dtype: DTypeLike = jnp.float32,
    *,
    value: float = 0.01,
) -> Array:
    r"""Every weight equal to ``value``: the "same values" of §2.4.5, which the course forbids.

    The course: the weights "cannot be initialized with the same values, otherwise, all
    the neurons of a hidden layer would have the same behaviour".  With
    $W^{(k)}_{ij} = c$ and equal biases, every unit of a hidden layer computes the same
    $a^{(k)}_i$, receives the same $\nabla_{a^{(k)}_i}\ell$ and so the same update: the
    rows of $W^{(k)}$ stay equal for ever (up to float rounding) and the layer behaves
    as a single unit.  Here to show that (``dlcourse run ch2_initialization``), never
    for training.  ``value=0`` is :func:`zeros`.

    Args:
      key: unused; kept so that every initializer has the same signature.
      shape: any shape with positive dimensions.
      dtype: a floating dtype.
      value: $c$, a finite Python float (checked eagerly).

    Returns:
      ``jnp.full(shape, value, dtype)``.

    Raises:
      ValueError: if ``value`` is not finite or a dimension is non-positive.
      TypeError: if ``dtype`` is not floating.

    References:
      Course §2.4.5.
    """
    del key
    value = check_finite("constant", "value", value)
    dims = _check_shape("constant", shape)
    _check_dtype("constant", dtype)
    return jnp.full(dims, value, dtype)


INITIALIZERS: dict[str, Callable[..., Array]] = {
    "glorot_uniform": glorot_uniform,
    "normal": normal,
    "he_normal": he_normal,
    "zeros": zeros,
    "constant": constant,
}
"""The initializers by name, for configs and the command line."""


def get_initializer(name: str) -> Callable[..., Array]:
    r"""The initializer called ``name`` in :data:`INITIALIZERS`.

    Args:
      name: one of ``"glorot_uniform"``, ``"normal"``, ``"he_normal"``, ``"zeros"``,
        ``"constant"``.

    Returns:
      The function ``init(key, shape, dtype=jnp.float32) -> Array``.

    Raises:
      ValueError: if ``name`` is not a known initializer; the message lists them.

    References:
      Course §2.4.5.
    """
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in INITIALIZERS)
        raise ValueError(
            f"get_initializer: unknown initializer name={name!r}; valid names are {valid}."
        ) from None
