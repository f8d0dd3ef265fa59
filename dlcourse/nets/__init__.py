r"""The CNN architectures of §3.2, each a function returning a :class:`~dlcourse.Layer`.

=============================  =========  ===========  ====================================
constructor                    input      parameters   reference for the count
=============================  =========  ===========  ====================================
``lenet5()``                   32×32×1    61,706       today's LeNet-5 (Keras/PyTorch tutorials)
``lenet5_original()``          32×32×1    60,000       LeCun et al. 1998, §II-B
``mnist1d_cnn()``              40×1       5,210        Greydanus 2020's ``ConvBase``
``alexnet()``                  227×227×3  62,378,344   the course's table (§3.2)
``alexnet(grouped=True)``      227×227×3  60,965,224   Krizhevsky et al. 2012 (two GPUs)
``vgg16()``                    224×224×3  138,357,544  Simonyan & Zisserman 2015; torchvision
``resnet18/34/50()``           224×224×3  11,689,512 / 21,797,672 / 25,557,032 (torchvision)
``googlenet()``                224×224×3  6,998,552    our count of Szegedy et al. 2014, Table 1
``googlenet(torchvision_       224×224×3  6,624,904    torchvision ``googlenet``
compat=True)``
``inception_v4()``             299×299×3  42,679,816   timm ``inception_v4``
``inception_resnet_v2()``      299×299×3  55,843,464   timm; 55,813,192 with ``bn_scale=False``
                                                       (Keras' trainable count)
=============================  =========  ===========  ====================================

Count them without allocating a weight with :func:`dlcourse.layers.abstract_init` and
:func:`dlcourse.layers.param_count`, and print their layer table with
:func:`dlcourse.layers.summary.summary`::

    from dlcourse.layers import abstract_init, param_count
    from dlcourse.nets import alexnet
    from dlcourse.layers.summary import format_summary, summary
    param_count(abstract_init(alexnet(), (227, 227, 3))[1])   # 62_378_344
    print(format_summary(summary(alexnet(), (227, 227, 3))))
"""

from functools import partial

from dlcourse.nets.alexnet import alexnet
from dlcourse.nets.cnn1d import mnist1d_cnn
from dlcourse.nets.googlenet import googlenet, inception_module
from dlcourse.nets.inception import inception_resnet_v2, inception_v4
from dlcourse.nets.lenet import lenet5, lenet5_original
from dlcourse.nets.resnet import basic_block, bottleneck_block, resnet, resnet18, resnet34, resnet50
from dlcourse.nets.vgg import vgg, vgg16, vgg19

__all__ = [
    "ARCHITECTURES",
    "alexnet",
    "basic_block",
    "bottleneck_block",
    "googlenet",
    "inception_module",
    "inception_resnet_v2",
    "inception_v4",
    "lenet5",
    "lenet5_original",
    "mnist1d_cnn",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg",
    "vgg16",
    "vgg19",
]

ARCHITECTURES = {
    "cnn": (mnist1d_cnn, (40, 1)),
    "lenet5": (lenet5, (32, 32, 1)),
    "lenet5_original": (lenet5_original, (32, 32, 1)),
    "alexnet": (alexnet, (227, 227, 3)),
    "alexnet_grouped": (partial(alexnet, grouped=True), (227, 227, 3)),
    "vgg16": (vgg16, (224, 224, 3)),
    "vgg19": (vgg19, (224, 224, 3)),
    "resnet18": (resnet18, (224, 224, 3)),
    "resnet34": (resnet34, (224, 224, 3)),
    "resnet50": (resnet50, (224, 224, 3)),
    "googlenet": (googlenet, (224, 224, 3)),
    "googlenet_torchvision": (partial(googlenet, torchvision_compat=True), (224, 224, 3)),
    "inception_v4": (inception_v4, (299, 299, 3)),
    "inception_resnet_v2": (inception_resnet_v2, (299, 299, 3)),
}
"""Name → (constructor, the paper's input shape): for the command line and the tests."""
