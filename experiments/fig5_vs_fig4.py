"""The paper's claim of section 3.1 decided: figure 5 (figure 4's 5×5 as two 3×3) loses nothing
against figure 4 (GoogLeNet's Inception module, on the 35×35 grid). Seeds are added until the
comparison is decided (`sweep.until_decided`, inception_flax/sweeps/stages.py).

Fixed here before the first look: the baseline figure 4; the margin ±1.0 point of top-1 error
on the default data (`experiments.MARGIN`: a seed's spread there is 0.4-0.9 points; the paper
counts 0.3-1.2 points as gains on ImageNet, which this proxy does not resolve); α = 0.05 for the
one comparison over all looks; looks at 4, 8, 12, ..., 28 seeds of each (4 more a stage).

The runs are `factorization`'s 35×35 part (the released module's widths for both figures, a
reconstruction; a quarter-width network at 75×75, half an epoch with the short-run settings),
where the 35×35 modules act on 7×7 grids. Sized for about 90 minutes on the project's 2-core
CPU with `--workers 2` (a run 2–3.3 minutes on one core: each stage of 8 runs ~12 minutes,
seven stages at most); the committed run took 1 h 17 min and used all seven (Intel Xeon,
2026-12-02, `experiments/results/fig5_vs_fig4/`):

    python run_experiment.py --config experiments/fig5_vs_fig4.py --workdir runs/fig5_vs_fig4 \\
        --workers 2
"""

from experiments import factorization

VARIANTS = ("35x35_fig4", "35x35_fig5")


def get_config(data=None):
    config = factorization.get_config(data)
    config.sweep.axes = [{name: factorization.VARIANTS[name] for name in VARIANTS}]
    config.sweep.notes = {name: factorization.NOTES[name] for name in VARIANTS}
    config.sweep.update(baseline="35x35_fig4", until_decided=True, min_seeds=4, max_seeds=28,
                        seeds_per_stage=4, seeds=tuple(range(28)))
    return config
