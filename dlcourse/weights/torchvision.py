r"""torchvision's weights in dlcourse's architectures (§3.2): ResNet, VGG, AlexNet, GoogLeNet.

A file the user has (``resnet18-f37072fd.pth``), a ``state_dict()`` or the torch model
itself goes in; dlcourse's ``(params, state)`` come out, checked tensor by tensor.
Nothing is downloaded.  The conversion rules are those of
:mod:`dlcourse.weights.state_dict`; this module only knows each family's names:

===============  =============================================  ==============================
model            dlcourse network (:func:`torchvision_layer`)   torch names
===============  =============================================  ==============================
``resnet18``     :func:`~dlcourse.nets.resnet18` (34, 50)       ``layer2.block1.main.conv1`` →
``resnet34``                                                    ``layer2.0.conv1``;
``resnet50``                                                    ``shortcut.conv/bn`` →
                                                                ``downsample.0/1``
``vgg16``        :func:`~dlcourse.nets.vgg16` (``vgg19``)       ``conv1`` … → ``features.0``,
``vgg19``                                                       ``features.2`` …; ``fc1..3`` →
                                                                ``classifier.0/3/6``
``alexnet``      ``alexnet(torchvision_compat=True)``           ``conv1..5`` → ``features.0/3/
                                                                6/8/10``; ``fc1..3`` →
                                                                ``classifier.1/4/6``
``googlenet``    ``googlenet(torchvision_compat=True)``         ``branch2.reduce`` →
                                                                ``branch2.0``, ``branch2.conv``
                                                                → ``branch2.1``,
                                                                ``branch4.proj`` → ``branch4.1``
===============  =============================================  ==============================

Two differences of torchvision's networks that the loader absorbs exactly:

* **VGG's adaptive pool.**  torchvision mean-pools the last map to 7×7
  (``AdaptiveAvgPool2d``) before ``classifier.0``; dlcourse's :func:`~dlcourse.nets.vgg`
  flattens the map as it is.  At $224 \times 224$ the map is 7×7 and the pool is the
  identity; at any other size (32×32 gives 1×1) the pool is folded into ``fc1``'s
  weights (``pool_to``, :mod:`dlcourse.weights.state_dict`), so ``fc1`` is as narrow as
  dlcourse's ``vgg16`` at that size and the logits are torchvision's.
* **AlexNet** is torchvision's single-tower variant (64/192/384/256/256 filters, 11×11/4
  with padding 2, an adaptive pool to 6×6): :func:`~dlcourse.nets.alexnet` with
  ``torchvision_compat=True`` builds it.

The number of classes is read off the state dict (``fc.weight`` or
``classifier.6.weight``).  GoogLeNet's auxiliary heads (``aux1.*``, ``aux2.*``, in
torchvision's released file) are left out unless ``aux_logits=True``, as torchvision's
own ``googlenet(weights=..., aux_logits=False)`` leaves them out.  torchvision builds its
pretrained GoogLeNet with ``transform_input=True``, which re-normalizes the input inside
``forward``: $x_c \leftarrow x_c \sigma_c / 0.5 + (\mu_c - 0.5) / 0.5$ with ImageNet's
$\mu, \sigma$; dlcourse's network is torchvision's with ``transform_input=False``, so apply
that transform to the images first.

References:
  TorchVision maintainers, "TorchVision: PyTorch's Computer Vision library", 2016,
  https://github.com/pytorch/vision (``torchvision/models/{resnet,vgg,alexnet,googlenet}.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax.numpy as jnp

from dlcourse._checks import check_choice
from dlcourse._types import Layer, Params, Shape, State
from dlcourse.nets import alexnet, googlenet, resnet18, resnet34, resnet50, vgg16, vgg19
from dlcourse.nets.vgg import VGG_CONFIGS
from dlcourse.weights.state_dict import map_tensors, read_state_dict

__all__ = [
    "TORCHVISION_MODELS",
    "TorchvisionModel",
    "alexnet_torch_name",
    "googlenet_torch_name",
    "load_torchvision",
    "resnet_torch_name",
    "torchvision_layer",
    "vgg_torch_name",
]


# --- names --------------------------------------------------------------------------------


def resnet_torch_name(path: str) -> str:
    """``layer2.block1.main.conv1`` → ``layer2.0.conv1``; ``shortcut.conv``/``.bn`` →
    ``downsample.0``/``.1``; ``conv1``, ``bn1``, ``fc`` as they are."""
    path = re.sub(r"block(\d+)", lambda m: str(int(m[1]) - 1), path)
    path = path.replace(".main.", ".")
    return path.replace(".shortcut.conv", ".downsample.0").replace(".shortcut.bn",
                                                                   ".downsample.1")


def googlenet_torch_name(path: str) -> str:
    """``branch2.reduce`` → ``branch2.0``, ``branch2.conv.{conv,bn}`` → ``branch2.1.{conv,bn}``
    (``branch3`` alike), ``branch4.proj`` → ``branch4.1``; ``conv1.conv``,
    ``inception3a.branch1.bn``, ``aux1.fc1`` … as they are."""
    path = re.sub(r"(branch[23])\.reduce\b", r"\1.0", path)
    path = re.sub(r"(branch[23])\.conv\.", r"\1.1.", path)
    return re.sub(r"branch4\.proj\b", "branch4.1", path)


def _vgg_names(config: str) -> dict[str, str]:
    names, index, k = {}, 0, 0
    for c in VGG_CONFIGS[config]:
        if c == "M":
            index += 1  # MaxPool2d
        else:
            k += 1
            names[f"conv{k}"] = f"features.{index}"
            index += 2  # Conv2d, ReLU
    return {**names, "fc1": "classifier.0", "fc2": "classifier.3", "fc3": "classifier.6"}


def vgg_torch_name(path: str, config: str = "D") -> str:
    """``conv1``, ``conv2`` … → ``features.0``, ``features.2`` … (a ``Conv2d, ReLU`` pair per
    convolution, one ``MaxPool2d`` per ``"M"`` of :data:`~dlcourse.nets.vgg.VGG_CONFIGS`);
    ``fc1``, ``fc2``, ``fc3`` → ``classifier.0``, ``.3``, ``.6``."""
    return _vgg_names(config).get(path, path)


_ALEXNET_NAMES = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
                  "conv4": "features.8", "conv5": "features.10", "fc1": "classifier.1",
                  "fc2": "classifier.4", "fc3": "classifier.6"}


def alexnet_torch_name(path: str) -> str:
    """``conv1..5`` → ``features.0/3/6/8/10``, ``fc1..3`` → ``classifier.1/4/6``."""
    return _ALEXNET_NAMES.get(path, path)


# --- the registry -------------------------------------------------------------------------


class TorchvisionModel(NamedTuple):
    """How one torchvision model maps onto dlcourse.

    Attributes:
      build: ``(num_classes, aux_logits) -> Layer``, the dlcourse network.
      rename: dlcourse module path → torch module name.
      head: torch name of the classifier's weight (its rows are the classes).
      input_shape: the default per-example input shape.
      pool_to: torch's adaptive pool before the first dense layer, when dlcourse's
        network has none (folded into the weights, :mod:`dlcourse.weights.state_dict`).
      aux: prefixes of the auxiliary heads' tensors.
    """

    build: Callable[[int, bool], Layer]
    rename: Callable[[str], str]
    head: str
    input_shape: Shape = (224, 224, 3)
    pool_to: Shape | None = None
    aux: tuple[str, ...] = ()


def _plain(constructor):
    def build(num_classes: int, aux_logits: bool) -> Layer:
        del aux_logits
        return constructor(num_classes)
    return build


TORCHVISION_MODELS: dict[str, TorchvisionModel] = {
    "resnet18": TorchvisionModel(_plain(resnet18), resnet_torch_name, "fc.weight"),
    "resnet34": TorchvisionModel(_plain(resnet34), resnet_torch_name, "fc.weight"),
    "resnet50": TorchvisionModel(_plain(resnet50), resnet_torch_name, "fc.weight"),
    "vgg16": TorchvisionModel(_plain(vgg16), partial(vgg_torch_name, config="D"),
                              "classifier.6.weight", pool_to=(7, 7)),
    "vgg19": TorchvisionModel(_plain(vgg19), partial(vgg_torch_name, config="E"),
                              "classifier.6.weight", pool_to=(7, 7)),
    "alexnet": TorchvisionModel(
        lambda n, aux: alexnet(n, torchvision_compat=True), alexnet_torch_name,
        "classifier.6.weight"),
    "googlenet": TorchvisionModel(
        lambda n, aux: googlenet(n, torchvision_compat=True, aux_logits=aux),
        googlenet_torch_name, "fc.weight", aux=("aux1.", "aux2.")),
}
"""torchvision model name → :class:`TorchvisionModel`."""

_CONSTRUCTORS = {resnet18: "resnet18", resnet34: "resnet34", resnet50: "resnet50",
                 vgg16: "vgg16", vgg19: "vgg19", alexnet: "alexnet", googlenet: "googlenet"}


def _model_name(fn: str, model: Any) -> str:
    if callable(model) and not isinstance(model, str):
        try:
            return _CONSTRUCTORS[model]
        except (KeyError, TypeError):
            raise ValueError(
                f"{fn}: model={model!r} is not one of dlcourse's constructors for "
                f"torchvision's models ({', '.join(sorted(TORCHVISION_MODELS))}); pass one "
                f"of these names, or use load_torch_state_dict with a rename function."
            ) from None
    return check_choice(fn, "model", model, TORCHVISION_MODELS)


def torchvision_layer(model: str | Callable, num_classes: int = 1000, *,
                      aux_logits: bool = False) -> Layer:
    """The dlcourse network that :func:`load_torchvision` fills for ``model``.

    Args:
      model: a name of :data:`TORCHVISION_MODELS` or its dlcourse constructor
        (``dlcourse.nets.resnet18`` …).
      num_classes: outputs of the last layer.
      aux_logits: GoogLeNet's auxiliary heads.

    Raises:
      ValueError: an unknown model, or ``aux_logits`` for a model without heads.
    """
    name = _model_name("torchvision_layer", model)
    spec = TORCHVISION_MODELS[name]
    if aux_logits and not spec.aux:
        raise ValueError(f"torchvision_layer: {name} has no auxiliary heads; leave "
                         f"aux_logits=False.")
    return spec.build(num_classes, aux_logits)


def load_torchvision(
    model: str | Callable,
    state_dict: Any,
    input_shape: Shape | None = None,
    *,
    aux_logits: bool = False,
    dtype: Any = jnp.float32,
) -> tuple[Params, State]:
    r"""torchvision weights as dlcourse's ``(params, state)`` for :func:`torchvision_layer`.

    ::

        layer = dl.weights.torchvision_layer("resnet18")
        params, state = dl.weights.load_torchvision("resnet18", "resnet18-f37072fd.pth")
        logits, _ = layer.apply(params, state, images_nhwc)   # torchvision's, eval mode

    Args:
      model: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"vgg16"``, ``"vgg19"``,
        ``"alexnet"`` or ``"googlenet"``, or that dlcourse constructor.
      state_dict: a file (``.pth``/``.pt`` from ``torch.save``, read on the CPU with
        ``weights_only=True``, or ``.npz``), a ``state_dict()`` of torch tensors or
        numpy arrays, or the torch model.  Nothing is downloaded.
      input_shape: one example's ``(H, W, C)``; 224×224×3 by default.  Only VGG's
        ``fc1`` depends on it (see the module docstring).
      aux_logits: keep GoogLeNet's auxiliary heads (the state dict must have them);
        without it their tensors are left out.
      dtype: of every leaf; float32 by default (float64 needs ``jax_enable_x64``).

    Returns:
      ``(params, state)`` for ``torchvision_layer(model, num_classes, aux_logits=...)``,
      ``num_classes`` read off the state dict: batch norm's running statistics in
      ``state``, everything else in ``params``.

    Raises:
      ValueError: an unknown model; a tensor the network lacks, a leaf without its
        tensor, or a shape that does not fit: one line naming the torch tensor and the
        dlcourse leaf.
      TypeError: ``state_dict`` is not a state dict, a module or a path.
    """
    fn = "load_torchvision"
    name = _model_name(fn, model)
    spec = TORCHVISION_MODELS[name]
    tensors = read_state_dict(fn, state_dict)
    head = tensors.get(spec.head)
    num_classes = int(head.shape[0]) if head is not None and head.ndim == 2 else 1000
    layer = torchvision_layer(name, num_classes, aux_logits=aux_logits)
    shape = spec.input_shape if input_shape is None else tuple(input_shape)
    return map_tensors(fn, layer, tensors, shape, rename=spec.rename, pool_to=spec.pool_to,
                       ignore=() if aux_logits else spec.aux, dtype=dtype)
