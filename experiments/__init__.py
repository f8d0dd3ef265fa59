"""Experiments: each module reproduces one claim of the course and writes its evidence.

Every experiment has a frozen ``Config`` with its defaults at the top, a pure
``run(config) -> dict``, and ``main(argv)`` that reads ``--field=value`` overrides and
``--quick``, prints a table and writes ``config.json``, ``results.json``, ``table.md``
and ``plot.png`` under ``results/<name>/``.  Run one with ``dlcourse run NAME``.
"""

EXPERIMENTS = ("ch2_glorot_init", "ch2_vanishing_gradients", "ch4_long_dependencies")
"""The experiments ``dlcourse run`` knows, by module name."""
