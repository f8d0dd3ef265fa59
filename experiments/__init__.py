"""Experiments: each module reproduces one claim of the course and writes its evidence.

Every experiment has a frozen ``Config`` with its defaults at the top, a pure
``run(config) -> dict``, and ``main(argv)`` that reads ``--field=value`` overrides and
``--quick``, prints a table and writes ``config.json``, ``results.json``, ``table.md``
and ``plot.png`` under ``results/<name>/``.  Run one with ``dlcourse run NAME``.
"""

EXPERIMENTS = ("ch2_activations", "ch2_adversarial", "ch2_batch_size", "ch2_glorot_init",
               "ch2_initialization", "ch2_learning_rate", "ch2_losses", "ch2_optimizers",
               "ch2_regularization", "ch2_relu_sparsity", "ch2_universal_approximation",
               "ch2_vanishing_gradients", "ch3_cnn_architectures", "ch3_lenet5",
               "ch3_mnist1d_table", "ch4_long_dependencies")
"""The experiments ``dlcourse run`` knows, by module name."""
