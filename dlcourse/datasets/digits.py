r"""scikit-learn's bundled 8×8 handwritten digits, the dataset that needs nothing at all.

1,797 images shipped inside scikit-learn (Alpaydin & Kaynak 1998, UCI), as flat ``(N, 64)``
vectors for an MLP (§2) or NHWC images for a CNN (§3), resized for LeNet-5's 32×32 input.
"""

from __future__ import annotations

import numpy as np

from dlcourse._checks import check_positive_int
from dlcourse.datasets._base import Dataset, _check_split_args, _from_arrays

__all__ = ["digits"]


def digits(
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    image: bool = False,
    size: int = 8,
) -> Dataset:
    r"""scikit-learn's bundled 8×8 handwritten digits, split three ways and standardized.

    1,797 grey-level images of the digits 0–9 (values 0–16, by 13 writers: the test part of
    UCI's "Optical Recognition of Handwritten Digits"), shipped inside scikit-learn, so
    no network is needed. The test split is carved first, then the validation split
    from the rest, both stratified and seeded; both sizes are fractions of all 1,797
    images rounded half up (defaults: 359 test, 180 validation, 1,258 training). Inputs
    are standardized with the training split's scalar mean and standard deviation
    (:func:`~dlcourse.datasets.standardize`). The splits are those of
    :meth:`Dataset.from_arrays` on the 1,797 images without a ``test`` set.

    Args:
        val_fraction: fraction of all images held out for validation, in (0, 1).
        test_fraction: fraction of all images held out for testing, in (0, 1);
            ``val_fraction + test_fraction`` must be below 1.
        seed: seeds both stratified splits (``random_state`` of scikit-learn's
            ``train_test_split``); the data themselves are fixed.
        image: return NHWC images ``(N, size, size, 1)`` instead of flat vectors.
        size: side of the returned images; other than 8, the 8×8 images are resized
            bilinearly (``jax.image.resize``, antialiased) before standardization, e.g.
            ``digits(image=True, size=32)`` for the 32×32 input of LeNet-5 (§3.2).

    Returns:
        A :class:`Dataset` named ``"digits"`` with 10 classes, float32 inputs and int32
        labels.

    Raises:
        ValueError: a fraction outside (0, 1), fractions summing to 1 or more, a seed
            that is not an integer in [0, 2**32), or a size that is not a positive int.

    References:
        E. Alpaydin and C. Kaynak, "Cascading classifiers", Kybernetika 34(4), 1998;
        the UCI data set https://archive.ics.uci.edu/dataset/80 ;
        https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html
    """
    fn = "digits"
    val_fraction, test_fraction, seed = _check_split_args(
        fn, val_fraction, test_fraction, seed, carve_test=True
    )
    size = check_positive_int(fn, "size", size)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int32)
    if size != 8:
        import jax

        images = jax.image.resize(x.reshape(-1, 8, 8), (len(x), size, size), "bilinear")
        x = np.asarray(images, np.float32).reshape(len(x), -1)
    if image:
        x = x.reshape(-1, size, size, 1)
    return _from_arrays(
        fn, x, y, test=None, val_fraction=val_fraction, test_fraction=test_fraction,
        standardize=True, seed=seed, num_classes=10, name="digits",
    )
