r"""dlcourse: the course "Neural Networks and Introduction to Deep Learning" as a JAX library.

Every concept of the course is a pure function, tested against ``jax.grad`` and the
published numbers; every claim is an experiment anyone can rerun.  The modules follow
the course.

The package's folders are the layers of the architecture, one way down: the course's
functional kernels (each explicit backward pass right below its forward pass) -> the
layer protocol and its layers -> the architectures -> training -> the command line and
the experiments.

=====================  =========  ============================================================
module                 course     contents
=====================  =========  ============================================================
``activations``        §2.1       φ and ψ with explicit derivatives and VJPs, softmax,
                                  LeCun's tanh; activations by name
``initializers``       §2.4.5     Glorot uniform (correct bound), N(0, 0.01), He, zeros
``losses``             §2.4.1     quadratic, binary and multiclass cross-entropy
``metrics``            §2.4.1     accuracy, fraction correct, within-tolerance
``penalties``          §2.4.2     Ω and ∇Ω (L1, L2, weights only), add_l1 / add_l2
``dense``              §2.2       the dense layer and its backward pass
``perceptron``         §2.2–2.4   the MLP: forward with stored a⁽ᵏ⁾, h⁽ᵏ⁾, the course's
                                  two-pass backpropagation, ``custom_vjp``, the ``mlp`` layer
``conv``, ``pool``     §3.1       convolution, max and mean pooling, explicit backward passes
``dropout``            §2.4.6     inverted dropout
``normalization``      §3.2       batch norm, local response normalization
``layers``             §2, §3     the layer protocol's layers, combinators, shapes, summary
``nets``               §3.2       LeNet-5, AlexNet, VGG, GoogLeNet, Inception-v4/-ResNet-v2,
                                  ResNet, the MNIST-1D CNN
``rnn``                §4         the scan driver, Elman, Jordan, GRU, LSTM, sequence models
``optim``              §2.4.6     SGD, momentum, Nesterov, RMSProp, Adam as optax
                                  transformations
``schedules``          §2.4.6     1/r, step decay, reduce on plateau
``train``              §2.4.6     Algorithm 1: one compiled ``lax.scan`` per epoch; early
                                  stopping, ensembles, checkpoints
``parallel``           §2.4.6     data parallelism: minibatches sharded over a device mesh,
                                  one or many hosts (``jax.sharding``, ``jax.distributed``)
``precision``          §2.4.6     mixed precision: bfloat16 compute, float32 master
                                  parameters (Micikevicius et al. 2018)
``checkpoint``                    atomic, checksummed training checkpoints
``host_memory``                   glibc's malloc told to keep freed memory for the next
                                  step (set on import; ``DLCOURSE_HOST_MEMORY=system``)
``augment``            §2.4.6     random shifts, crops and flips under ``vmap``
``adversarial``        §2.4.6     FGSM and adversarial training
``datasets``                      digits, MNIST-1D, MNIST (IDX), the adding problem,
                                  ``Dataset.from_arrays``
``plots``                         training curves, learned filters
``weights``                       torchvision / torch weights in, msgpack params out
``cli``                           the ``dlcourse`` command
=====================  =========  ============================================================

The names a script or a notebook needs are importable from the top level
(``dl.mlp``, ``dl.fit``, ``dl.adam``, ``dl.conv_apply``, ``dl.rnn_classifier``,
``dl.mnist1d``, ``dl.plot_history``); the modules stay reachable as ``dl.<module>``.
No top-level name shadows a module.

Conventions (one set, for every chapter)
----------------------------------------
* **Parameters** are nested dicts of arrays named after the course's symbols:
  ``{"fc1": {"W": ..., "b": ...}}``.  Matrices are capitals (``W``), vectors lower case
  (``b``, ``alpha``); the L1/L2 penalties use that to reach the weights only.
* **Shapes**: batch first.  A dense ``W`` is ``(units, fan_in)``, the course's
  $W^{(k)}$, so $a = b + W h$ is ``h @ W.T + b``; images NHWC, kernels HWIO;
  sequences ``(batch, time, features)``.
* **Plain functions** come in pairs: ``<name>_init(key, sizes, ...) -> params`` and
  ``<name>_apply(params, x, ...)``, with ``<name>_backward`` (the explicit backward
  pass, checked against ``jax.vjp`` in float64) right below the forward pass.
* **The layer protocol**: a model that the training loop runs is a :class:`Layer`, a
  NamedTuple of two pure functions::

      init(key, input_shape) -> (output_shape, params, state)
      apply(params, state, x, *, key=None, train=False) -> (y, new_state)

  ``input_shape`` is one example's shape (no batch axis), so ``jax.eval_shape`` gives
  output shapes and parameter counts without allocating weights.  ``state`` holds what
  is not trained by gradient (batch norm's running statistics, a recurrent layer's
  carried hidden state) and is ``{}`` otherwise; ``key`` and ``train`` drive dropout.
  One signature for every layer, so dropout, batch norm and recurrences need no
  second protocol.
* **Randomness** always comes from an explicit ``jax.random`` key.
"""

from dlcourse import (
    activations,
    adversarial,
    augment,
    checkpoint,
    conv,
    datasets,
    dense,
    dropout,
    host_memory,
    initializers,
    layers,
    losses,
    metrics,
    nets,
    normalization,
    optim,
    parallel,
    penalties,
    perceptron,
    plots,
    pool,
    precision,
    rnn,
    schedules,
    train,
    weights,
)
from dlcourse._padding import conv_output_size, pool_output_size
from dlcourse._types import Array, Layer, Params, PRNGKey, Shape, State
from dlcourse.adversarial import adversarial_accuracy, fgsm, make_adversarial_objective
from dlcourse.augment import make_augment
from dlcourse.checkpoint import load_checkpoint, save_checkpoint
from dlcourse.conv import conv_apply, conv_backward, conv_init
from dlcourse.datasets import (
    Dataset,
    adding_problem,
    digits,
    mnist,
    mnist1d,
    mnist1d_sequence,
)
from dlcourse.dense import dense_apply, dense_backward, dense_init
from dlcourse.history import FitResult
from dlcourse.layers.summary import format_summary, summary
from dlcourse.losses import binary_cross_entropy, quadratic, softmax_cross_entropy
from dlcourse.metrics import accuracy
from dlcourse.optim import adam, make_optimizer, momentum, nesterov, rmsprop, sgd
from dlcourse.parallel import data_mesh, initialize_distributed
from dlcourse.penalties import add_l1, add_l2, l1_penalty, l2_penalty, weight_mask
from dlcourse.perceptron import (
    mlp,
    mlp_apply,
    mlp_backprop,
    mlp_backward,
    mlp_forward,
    mlp_init,
    mlp_loss,
)
from dlcourse.plots import plot_filters, plot_history
from dlcourse.pool import global_mean_pool, max_pool, mean_pool
from dlcourse.precision import mixed_precision
from dlcourse.rnn import recurrent, rnn_classifier, rnn_regressor
from dlcourse.schedules import inverse, reduce_on_plateau, step_decay
from dlcourse.train import fit, make_evaluate

__version__ = "0.1.0"

host_memory._apply_on_import()  # CPU training steps: see dlcourse.host_memory

__all__ = [
    # types
    "Array", "Layer", "PRNGKey", "Params", "Shape", "State",
    # modules
    "activations", "adversarial", "augment", "checkpoint", "conv", "datasets", "dense",
    "dropout", "host_memory", "initializers", "layers", "losses", "metrics", "nets",
    "normalization", "optim", "parallel", "penalties", "perceptron", "plots", "pool",
    "precision", "rnn", "schedules", "train", "weights",
    # §2 neurons, the MLP and backpropagation
    "dense_apply", "dense_backward", "dense_init", "mlp", "mlp_apply", "mlp_backprop",
    "mlp_backward", "mlp_forward", "mlp_init", "mlp_loss",
    # §2.4 losses, penalties, optimization, training
    "accuracy", "add_l1", "add_l2", "adam", "binary_cross_entropy", "inverse",
    "l1_penalty", "l2_penalty", "make_optimizer", "momentum", "nesterov", "quadratic",
    "reduce_on_plateau", "rmsprop", "sgd", "softmax_cross_entropy", "step_decay",
    "weight_mask", "FitResult", "fit", "make_evaluate", "load_checkpoint",
    "save_checkpoint", "make_augment", "adversarial_accuracy", "fgsm",
    "make_adversarial_objective", "data_mesh", "initialize_distributed", "mixed_precision",
    # §3 convolutional networks
    "conv_apply", "conv_backward", "conv_init", "conv_output_size", "pool_output_size",
    "global_mean_pool", "max_pool",
    "mean_pool", "format_summary", "summary", "plot_filters",
    # §4 recurrent networks
    "recurrent", "rnn_classifier", "rnn_regressor",
    # data and plots
    "Dataset", "adding_problem", "digits", "mnist", "mnist1d", "mnist1d_sequence",
    "plot_history",
]
