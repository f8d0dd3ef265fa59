r"""Weights in and out: torchvision and torch layers into dlcourse, params files (§3.2, §4).

==========================  ==================================================================
module                      contents
==========================  ==================================================================
``weights.state_dict``      the mapping rules, once: :func:`load_torch_state_dict` fills any
                            dlcourse network from a torch ``state_dict`` (OIHW → HWIO,
                            batch norm → ``gamma``/``beta`` and ``state``, the flatten order)
``weights.torchvision``     :func:`load_torchvision` and :func:`torchvision_layer`: ResNet-18/
                            34/50, VGG16/19, AlexNet, GoogLeNet, by their torchvision names
``weights.torch_layers``    :func:`dense_from_torch`, :func:`conv_from_torch`,
                            :func:`elman_from_torch`, :func:`lstm_from_torch`,
                            :func:`gru_from_torch`: one torch layer's tensors as dlcourse's
``weights.saving``          :func:`save_params` / :func:`load_params`: flax msgpack, atomic
==========================  ==================================================================

Nothing here downloads: the weights are a file the user has, a ``state_dict()`` or the
torch model.  torch is needed only to read a ``.pth`` file; a dict of numpy arrays or an
``.npz`` file needs nothing but numpy.  Every loader checks that each dlcourse leaf finds
its tensor, of a shape that fits, and that every tensor is used; a mismatch is a
``ValueError`` of one line naming the torch tensor and the dlcourse leaf.
"""

from dlcourse.weights.saving import load_params, save_params
from dlcourse.weights.state_dict import TORCH_LEAF, load_torch_state_dict, read_state_dict
from dlcourse.weights.torch_layers import (
    conv_from_torch,
    dense_from_torch,
    elman_from_torch,
    gru_from_torch,
    lstm_from_torch,
)
from dlcourse.weights.torchvision import TORCHVISION_MODELS, load_torchvision, torchvision_layer

__all__ = [
    "TORCHVISION_MODELS",
    "TORCH_LEAF",
    "conv_from_torch",
    "dense_from_torch",
    "elman_from_torch",
    "gru_from_torch",
    "load_params",
    "load_torch_state_dict",
    "load_torchvision",
    "lstm_from_torch",
    "read_state_dict",
    "save_params",
    "torchvision_layer",
]
