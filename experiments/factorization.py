"""Section 3: factorizing convolutions. The 35×35 modules' 5×5 vs two 3×3 (figures 4, 5); the
17×17 modules' 1×n → n×1 for n in {3, 5, 7} vs a full n×n (figure 6); ReLU vs linear between the
two convolutions of each factorization (figure 2). Baseline: the released network."""

from experiments import base

VARIANTS = {
    "released": {},
    "35x35_double_3x3": {"model.module_35": "double_3x3"},
    "17x17_1x3_3x1": {"model.module_17_n": 3},
    "17x17_1x5_5x1": {"model.module_17_n": 5},
    "17x17_full_3x3": {"model.module_17": "full", "model.module_17_n": 3},
    "17x17_full_5x5": {"model.module_17": "full", "model.module_17_n": 5},
    "17x17_full_7x7": {"model.module_17": "full", "model.module_17_n": 7},
    "linear_factorization": {"model.factorization_activation": "linear"},
}


def get_config(data=None):
    return base(data, baseline="released", axes=[VARIANTS])
