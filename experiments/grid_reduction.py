"""Section 5: reducing the grid size. Figure 10's parallel stride-2 convolution and pooling
(released) vs figure 9's pool-first (a representational bottleneck) and module-first (about 3×
the module's cost). Baseline: figure 10."""

from experiments import base


def get_config(data=None):
    return base(data, baseline="fig10", axes=[{
        "fig10": {},
        "fig9_pool_first": {"model.grid_reduction": "fig9_pool_first"},
        "fig9_module_first": {"model.grid_reduction": "fig9_module_first"},
    }])
