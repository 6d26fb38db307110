"""Section 5: reducing the grid size. Figure 10's parallel stride-2 convolution and pooling
(released) against figure 9's pool-first (a representational bottleneck) and module-first
(about 3× the module's cost). Baseline: figure 10. Figure 9's designs take figure 10's
branches and widths at stride 1 (the paper draws them without widths).

Grids on the default data (75×75): Mixed_6a reduces 7×7 → 3×3 and Mixed_7a 3×3 → 1×1, far
from the paper's 35 → 17 → 8; the comparison is of the same designs on those small grids, no
test of section 5's claim (`:imagenet` is). On the default data each run is
`configs/fashion_mnist.py` (4 epochs): about TIME_RUN here on the project's 2-core CPU,
TIME_ALL for all 9 runs."""

from experiments import SHORT_RUN, base

RECONSTRUCTION = "figure 9 built from figure 10's branches and widths at stride 1"


def get_config(data=None):
    return base(data, dict(SHORT_RUN, num_epochs=1.0), baseline="fig10", axes=[{
        "fig10": {},
        "fig9_pool_first": {"model.grid_reduction": "fig9_pool_first"},
        "fig9_module_first": {"model.grid_reduction": "fig9_module_first"},
    }], notes={"fig9_pool_first": RECONSTRUCTION, "fig9_module_first": RECONSTRUCTION})
