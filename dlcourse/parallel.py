r"""Data parallelism: Algorithm 1 (§2.4.6) with each minibatch split over devices.

The minibatch gradient $\tilde\nabla_\theta = \frac1m \sum_{i \in B_l} \nabla_\theta \ell_i$
is a sum over examples, so $N$ devices can each sum over $m/N$ of them and add their
partial sums (an all-reduce): the same step as one device, up to float rounding.  This
module builds that layout with ``jax.sharding`` (the "SPMD" model of the jax docs,
"Distributed arrays and automatic parallelization"):

* a :class:`jax.sharding.Mesh` of $N$ devices with one axis ``"data"``
  (:func:`data_mesh`);
* the minibatch sharded along its first axis, ``NamedSharding(mesh, P("data"))``
  (:func:`shard_batch`, applied inside the compiled epoch of
  :func:`dlcourse.train.make_train_epoch`);
* everything else replicated, ``NamedSharding(mesh, P())``: the parameters, the
  optimizer state, the PRNG key and the training set itself, from which each step
  gathers its minibatch (:func:`replicate`).

XLA's SPMD partitioner then inserts the all-reduce of the gradients; nothing in the
model or the optimizer knows about devices.  The same code runs on several hosts: one
process per host calls :func:`initialize_distributed` (``jax.distributed.initialize``)
before anything else, every process holds the whole dataset (same seed), and the mesh
spans ``jax.devices()``, the devices of all processes.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dlcourse._checks import check_devices, check_divisible, check_int

__all__ = [
    "AXIS",
    "batch_sharding",
    "data_mesh",
    "data_parallel_mesh",
    "initialize_distributed",
    "place",
    "replicate",
    "replicated",
    "shard_batch",
]

AXIS = "data"
"""The name of the mesh axis the minibatch is split along."""


def data_mesh(devices: int) -> Mesh:
    """A one-axis mesh ``("data",)`` over the first ``devices`` devices of ``jax.devices()``.

    ``jax.devices()`` lists the devices of every process once ``jax.distributed`` is
    initialized, ordered by process, so ``data_mesh(jax.device_count())`` spans all hosts.

    Raises:
      ValueError: ``devices`` is not an int in ``[1, jax.device_count()]``.
    """
    n = check_devices("data_mesh", devices)
    return Mesh(np.asarray(jax.devices()[:n]), (AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The minibatch's sharding: its first (example) axis split over ``"data"``."""
    return NamedSharding(mesh, P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A whole copy on every device of ``mesh``: parameters, optimizer state, keys, data."""
    return NamedSharding(mesh, P())


def shard_batch(batch: Any, mesh: Mesh | None) -> Any:
    """Constrain the arrays of a traced minibatch to :func:`batch_sharding` (inside
    ``jit``); unchanged without a mesh.

    ``jax.lax.with_sharding_constraint`` tells XLA's partitioner where they live; the
    gather ``x[batch]`` of a replicated training set then runs where its shard goes.
    """
    if mesh is None:
        return batch
    return jax.lax.with_sharding_constraint(batch, batch_sharding(mesh))


def _replicate_leaf(leaf: Any, sharding: NamedSharding) -> Any:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(leaf)
        data = _replicate_leaf(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=impl)
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
        return leaf
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array of ``tree`` as a global ``jax.Array`` replicated over ``mesh``.

    Built with ``jax.make_array_from_callback`` from this process's copy, so it works
    across hosts too, where each process holds the same values (same seed, same data);
    typed PRNG keys keep their type.
    """
    sharding = replicated(mesh)
    return jax.tree.map(lambda leaf: _replicate_leaf(leaf, sharding), tree)


def place(tree: Any, mesh: Mesh | None) -> Any:
    """``tree`` replicated over ``mesh`` (:func:`replicate`); on the default device
    (``jax.device_put``) without a mesh."""
    return jax.device_put(tree) if mesh is None else replicate(tree, mesh)


def data_parallel_mesh(fn: str, devices: int | None, batch_size: int) -> Mesh | None:
    """The mesh of ``devices`` that split minibatches of ``batch_size``; None for None.

    Checked before any compute: ``devices`` in ``[1, jax.device_count()]``, and each
    device takes ``batch_size // devices`` examples of every minibatch, so the two must
    divide.
    """
    if devices is None:
        return None
    n = check_devices(fn, devices)
    check_divisible(fn, "batch_size", batch_size, n,
                    f"each of the devices={n} devices takes an equal share of a minibatch")
    return data_mesh(n)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Start multi-host data parallelism: ``jax.distributed.initialize``, one call per process.

    Call it first, before any array is made.  With no arguments jax detects the cluster
    (SLURM, Open MPI, Kubernetes/TPU pods, or the ``JAX_COORDINATOR_ADDRESS`` variable);
    for a manual launch give all three: the address ``host:port`` of process 0, the
    number of processes and this process's index in ``[0, num_processes)``.  On CPU
    the cross-process collectives are gloo's (``jax_cpu_collectives_implementation``).
    Afterwards ``jax.devices()`` lists every process's devices and
    :func:`data_mesh` spans them all.

    Raises:
      ValueError: only some of the three arguments were given, or ``process_id`` is
        outside ``[0, num_processes)``.

    References:
      jax docs, "Multi-process environments" (``jax.distributed.initialize``).
    """
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            f"initialize_distributed: give coordinator_address, num_processes and "
            f"process_id together (a manual launch) or none (auto-detection), got "
            f"coordinator_address={coordinator_address!r}, num_processes={num_processes!r}, "
            f"process_id={process_id!r}.")
    if all(given):
        n = check_int("initialize_distributed", "num_processes", num_processes, minimum=1)
        check_int("initialize_distributed", "process_id", process_id, minimum=0)
        if process_id >= n:
            raise ValueError(
                f"initialize_distributed: process_id must be in [0, {n}) for "
                f"num_processes={n}, got process_id={process_id!r}.")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
