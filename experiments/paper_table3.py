"""Table 3's cumulative ladder, each row adding to the one above: Inception-v2 basic (7×7 stem,
auxiliary head without batch norm in its fully connected layer, SGD with momentum, no label
smoothing) → + RMSProp → + label smoothing → + factorized 7×7 → + BN-auxiliary
(= Inception-v3). The paper's single-crop ILSVRC-2012 errors are shown beside ours.

The auxiliary head needs 107×107 inputs to train, so on Fashion-MNIST this runs at 107×107."""

from experiments import base

BASIC = {"model.stem": "7x7", "model.aux_head": "plain", "optimizer": "momentum",
         "label_smoothing": 0.0}
RMSPROP = dict(BASIC, optimizer="rmsprop")
SMOOTHING = dict(RMSPROP, label_smoothing=0.1)
FACTORIZED = dict(SMOOTHING, **{"model.stem": "released"})
BN_AUX = dict(FACTORIZED, **{"model.aux_head": "bn"})


def get_config(data=None):
    config = base(data, baseline="v2_basic", axes=[{
        "v2_basic": BASIC, "+rmsprop": RMSPROP, "+label_smoothing": SMOOTHING,
        "+factorized_7x7": FACTORIZED, "+bn_auxiliary": BN_AUX,
    }], paper={"v2_basic": {"top1": 23.4}, "+rmsprop": {"top1": 23.1, "top5": 6.3},
               "+label_smoothing": {"top1": 22.8, "top5": 6.1},
               "+factorized_7x7": {"top1": 21.6, "top5": 5.8},
               "+bn_auxiliary": {"top1": 21.2, "top5": 5.6}})
    if (data or "fashion_mnist") == "fashion_mnist":
        config.image_size = 107
    return config
