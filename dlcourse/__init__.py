r"""dlcourse: the course "Neural Networks and Introduction to Deep Learning" as a JAX library.

Every concept of the course is a pure function, tested against ``jax.grad`` and the
published numbers; every claim is an experiment anyone can rerun.  The modules follow
the course:

==================  =========  ==============================================================
module              course     contents
==================  =========  ==============================================================
``activations``     §2.1       identity, sigmoid, tanh, hard threshold, (leaky/parametric) ReLU,
                               softmax, each with its explicit derivative
``init``            §2.4.5     Glorot uniform (correct bound), N(0, 0.01), He, zeros
``losses``          §2.4.1–2   quadratic, binary/multiclass cross-entropy, L1/L2 penalties
``mlp``             §2.2–2.4   dense layer and MLP, forward with stored a⁽ᵏ⁾, h⁽ᵏ⁾, explicit
                               two-pass backpropagation, ``custom_vjp``
``optim``           §2.4.6     SGD, momentum, Nesterov, RMSProp, Adam, schedules, penalties,
                               as optax transformations
``dropout``         §2.4.6     inverted dropout
``train``           §2.4.6     Algorithm 1: minibatch SGD, one compiled ``lax.scan`` per epoch;
                               early stopping, ensembles, checkpoints
``augment``         §2.4.6     random shifts and crops under ``vmap``
``adversarial``     §2.4.6     FGSM and adversarial training
``conv``            §3.1       convolution and pooling with explicit backward passes
``layers``          §2, §3     the layer protocol's layers, batch norm, combinators
``nets``            §3.2       LeNet-5, AlexNet, VGG, GoogLeNet, Inception-v4/-ResNet-v2, ResNet
``summary``         §3.2       per-layer tables from shapes only
``rnn``, ``lstm``   §4         Elman, Jordan, GRU, LSTM; scan, masking, BPTT
``data``                       scikit-learn digits, MNIST-1D, the MNIST IDX reader
``sequence_data``   §4         the adding problem, MNIST-1D as sequences
``checkpoint``                 atomic, checksummed training checkpoints
``cli``                        the ``dlcourse`` command
==================  =========  ==============================================================

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

# During the redesign the package imports its modules lazily, so that one module being
# rewritten never breaks the import of the others.  The public API is rebuilt at the end.
import importlib as _importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    try:
        return _importlib.import_module(f"dlcourse.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module 'dlcourse' has no attribute {name!r}") from None
