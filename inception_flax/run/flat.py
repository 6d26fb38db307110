"""The parameters as one vector per leaf name ("kernel", "bias"), for the optimizer's update.

The train step's update (weight decay, clipping, RMSProp, momentum) is elementwise, except for
the global norm. Applied leaf by leaf, XLA:CPU compiles six kernels per distinct parameter
shape (it has no multi-output fusion): hundreds of kernels and seconds of compilation for
Inception-v3.
Applied to one vector per leaf name, it is a handful of kernels whatever the variant; only
adding the update back to each parameter (and the moving average) stays per leaf.

`Layout.pack` concatenates a tree's leaves into `{name: vector}`; the grouping by name keeps
`optim.kernel_mask` true of the vectors (all kernels are decayed, no bias is).
`Layout.add_to` adds slices of such vectors back to a tree. It slices at offsets passed in as
arguments of the compiled program (`Layout.offsets`) rather than as constants, so that XLA
compiles one kernel per distinct leaf shape, not one per leaf (`benchmarks/NOTES.md`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    treedef: jax.tree_util.PyTreeDef
    names: tuple[str, ...]  # per leaf (tree order): the group it is packed in
    shapes: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]  # per leaf: where it starts in its group's vector

    @classmethod
    def of(cls, tree) -> "Layout":
        """The layout of a parameter tree (a dict of dicts whose leaves are arrays)."""
        paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
        names, shapes, starts, sizes = [], [], [], {}
        for path, leaf in paths:
            name = getattr(path[-1], "key", str(path[-1]))
            names.append(name)
            shapes.append(tuple(leaf.shape))
            starts.append(sizes.get(name, 0))
            sizes[name] = starts[-1] + math.prod(leaf.shape)
        return cls(treedef, tuple(names), tuple(shapes), tuple(starts))

    def pack(self, tree) -> dict:
        """`{name: the leaves of that name, raveled and concatenated in tree order}`."""
        leaves = self._leaves(tree)
        groups = {}
        for name, leaf in zip(self.names, leaves):
            groups.setdefault(name, []).append(jnp.ravel(leaf))
        return {name: parts[0] if len(parts) == 1 else jnp.concatenate(parts)
                for name, parts in groups.items()}

    def offsets(self, sharding=None) -> tuple:
        """The leaves' starts as int32 scalars on `sharding` (replicated), to pass to
        `add_to` as program arguments."""
        def scalar(start):
            value = np.int32(start)
            if sharding is None:
                return jnp.asarray(value)
            return jax.make_array_from_callback((), sharding, lambda _: value)
        return tuple(scalar(start) for start in self.starts)

    def add_to(self, tree, vectors: dict, offsets: tuple):
        """`tree + unpack(vectors)`, leaf by leaf; `offsets` from `Layout.offsets`."""
        leaves = self._leaves(tree)
        out = [leaf + jax.lax.dynamic_slice(vectors[name], (offset,),
                                            (math.prod(shape),)).reshape(shape)
               for leaf, name, shape, offset in zip(leaves, self.names, self.shapes, offsets)]
        return jax.tree_util.tree_unflatten(self.treedef, out)

    def _leaves(self, tree):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        if treedef != self.treedef:
            raise ValueError(f"the tree does not have this layout's structure: {treedef} is "
                             f"not {self.treedef}; build the layout with Layout.of(tree).")
        return leaves
