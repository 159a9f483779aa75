"""The FCN-score's segmentation network (CycleGAN paper Sec. 5.1.1): labels -> photo is scored by
segmenting the generated photos with a network trained on real photos and comparing its classes
with the input label maps. The official FCN-8s Cityscapes download is gone, so the toolkit trains
its own scorer on a paired dataset (photos and colour label maps of the same file names).

    scorer = train_scorer("datasets/facades", "scorer.pt", palette="facades")  # also scores testA vs testB
    scorer.real_scores.mean_iou_all                                              # the "ground truth" row
    fcn_score("out/fake_photos", "datasets/facades/testB", "scorer.pt").pixel_accuracy

model: the network, the scorer file and its loading; fcn_score: pairs, prediction and scores;
training: the training loop.
"""

from .fcn_score import fcn_score, load_pairs, score_pairs
from .model import FORMAT, Scorer, ScorerConfig, SegmentationUnet, load_scorer, save_scorer
from .training import train_scorer

__all__ = [
    "FORMAT",
    "Scorer",
    "ScorerConfig",
    "SegmentationUnet",
    "fcn_score",
    "load_pairs",
    "load_scorer",
    "save_scorer",
    "score_pairs",
    "train_scorer",
]
