"""Segmentation scores against hand-computed confusion matrices (void predictions count as wrong, both
averagings), and the palettes: built-in, nearest colour with a distance limit, palette files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cyclegan import names
from cyclegan.metrics.palette import (
    CITYSCAPES, FACADES, PALETTES, Palette, colours_to_labels, palette_by_name,
)
from cyclegan.metrics.segmentation import (
    PRESENT, SegmentationScores, confusion_matrix, scores_from_confusion, segmentation_scores,
)

ROAD, CAR, VOID = CITYSCAPES.colours[0], CITYSCAPES.colours[13], CITYSCAPES.colours[-1]
THREE = Palette(("sky", "wall", "unlabeled"), np.array([(0, 0, 255), (255, 0, 0), (0, 0, 0)], np.uint8),
                void=("unlabeled",), name="three", max_distance=40)


def test_a_prediction_painted_void_is_wrong():
    """Regression: 15 of 16 pixels predicted void (black) used to vanish from every denominator (score 1.0)."""
    truth = np.empty((4, 4, 3), np.uint8)
    truth[:] = ROAD
    pred = np.empty_like(truth)
    pred[:] = VOID
    pred[0, 0] = ROAD
    s = segmentation_scores([pred], [truth])
    assert s.pixel_accuracy == pytest.approx(1 / 16)
    assert s.per_class_accuracy["road"] == pytest.approx(1 / 16)
    assert s.per_class_iou["road"] == pytest.approx(1 / 16)  # 1 / (16 truth + 1 predicted - 1)
    assert s.class_accuracy == pytest.approx(1 / 16) and s.mean_iou == pytest.approx(1 / 16)
    assert s.class_accuracy_all == pytest.approx(1 / 16 / 19) and s.mean_iou_all == pytest.approx(1 / 16 / 19)


def test_void_ground_truth_is_ignored_and_unmapped_predictions_are_wrong():
    # 3-class palette with a limit: labels 0 sky, 1 wall, 2 unlabeled (void), 3 unmapped
    truth = np.array([[0, 0, 0, 1], [1, 1, 2, 3]])
    pred = np.array([[0, 3, 1, 1], [1, 2, 0, 0]])
    hist = confusion_matrix(truth, pred, THREE.unmapped + 1)
    assert hist.shape == (4, 4) and hist.sum() == 8
    s = scores_from_confusion(hist, THREE, images=1)
    # scored pixels: the 6 with truth sky/wall. sky: 3 truth, 1 right (1 unmapped, 1 wall);
    # wall: 3 truth, 2 right (1 void). Predicted sky 1 (on scored truth), predicted wall 1 + 2 = 3.
    assert s.pixel_accuracy == pytest.approx(3 / 6)
    assert s.per_class_accuracy == pytest.approx({"sky": 1 / 3, "wall": 2 / 3})
    assert s.per_class_iou == pytest.approx({"sky": 1 / (3 + 1 - 1), "wall": 2 / (3 + 3 - 2)})
    assert s.class_accuracy == s.class_accuracy_all == pytest.approx(0.5)
    assert s.classes == 2 and "unlabeled" not in s.per_class_iou


def test_the_two_averagings_by_hand():
    """Cityscapes, 19 scored classes: road and car present, 17 absent (0 in the mean over all classes)."""
    truth = np.zeros((4, 4, 3), np.uint8)
    truth[:, :2], truth[:, 2:], truth[3] = ROAD, CAR, VOID  # 6 road, 6 car, 4 void (ignored)
    pred = np.empty_like(truth)
    pred[:] = np.clip(ROAD.astype(int) + 6, 0, 255)  # off-palette colours snap to road (no limit)
    pred[0, 2:] = CAR  # 2 of the 6 car pixels right
    pred[3] = CAR  # predictions on void ground truth do not count
    s = segmentation_scores([pred], [truth])
    assert s.pixel_accuracy == pytest.approx(8 / 12)
    assert s.class_accuracy == pytest.approx((6 / 6 + 2 / 6) / 2)
    assert s.class_accuracy_all == pytest.approx((6 / 6 + 2 / 6) / 19)
    assert s.mean_iou == pytest.approx((6 / 10 + 2 / 6) / 2)
    assert s.mean_iou_all == pytest.approx((6 / 10 + 2 / 6) / 19)
    assert math.isnan(s.per_class_iou["sky"]) and math.isnan(s.per_class_accuracy["sky"])
    # a class only predicted is present (IoU 0): present-mean of IoU over 3 classes
    pred[1, 0] = CITYSCAPES.colours[10]  # one road pixel predicted sky
    s = segmentation_scores([pred], [truth])
    assert s.per_class_iou["sky"] == 0 and s.mean_iou == pytest.approx((5 / 10 + 2 / 6 + 0) / 3)
    assert s.class_accuracy == pytest.approx((5 / 6 + 2 / 6) / 2)


def test_scores_name_their_averaging_and_round_trip():
    s = segmentation_scores([np.zeros((2, 2, 3), np.uint8) + ROAD], [np.zeros((2, 2, 3), np.uint8) + ROAD])
    labels = [label for label, _ in s.rows()]
    assert "per-class accuracy (mean over present classes)" in labels
    assert "class IoU (mean over all 19 classes)" in labels
    d = s.as_dict()
    assert d["averaging"] == {"class_accuracy": PRESENT, "mean_iou": PRESENT,
                              "class_accuracy_all": "mean over all 19 classes", "mean_iou_all": "mean over all 19 classes"}
    back = SegmentationScores.from_dict(json.loads(json.dumps(d)))
    assert back.as_dict() == d


def test_builtin_palettes():
    assert tuple(PALETTES) == names.PALETTES
    assert palette_by_name("cityscapes") is CITYSCAPES and len(CITYSCAPES.scored) == 19
    assert FACADES.names[:3] == ("background", "facade", "window") and FACADES.names[-1] == "shop"
    assert FACADES.scored == list(range(12)) and FACADES.max_distance == 40
    assert FACADES.colours[3].tolist() == [0, 207, 255]  # door, SOURCE.md's source nominal RGB


def test_nearest_colour_with_a_distance_limit():
    """JPEG-noisy facade labels: colours near a class map to it; blends at boundaries stay unmapped."""
    pixels = np.array([[
        (1, 48, 254),  # facade as seen at 128 px
        (247, 3, 5),  # pillar as seen at 128 px (8.8 from (255, 0, 0))
        (172, 1, 4),  # shop as seen at 128 px
        (0, 30, 255),  # 18 from facade, 39 from background: facade
        (175, 15, 77),  # a thin pillar on blue wall (SOURCE.md): 77 from shop -> unmapped, not "shop"
        (0, 88, 255),  # half-way facade/window (40 from both): mapped only at the limit
        (0, 89, 255),  # 41 from facade, 39 from window: window
        (0, 0, 0),  # black: 174 from shop, 222 from background
    ]], np.uint8)
    labels = colours_to_labels(pixels, FACADES)
    assert labels.tolist() == [[1, 10, 11, 1, FACADES.unmapped, 1, 2, FACADES.unmapped]]
    # without a limit every pixel has a class (the thin pillar and black become shop)
    unlimited = Palette(FACADES.names, FACADES.colours)
    assert colours_to_labels(pixels, unlimited).tolist() == [[1, 10, 11, 1, 11, 1, 2, 11]]


def test_facades_labels_map_mostly_to_classes(tmp_path):
    """The real facades_128 labels: most pixels within 40 of a class colour, every class seen."""
    from conftest import shared_path

    from cyclegan.data.image_io import find_images, load_image

    files = find_images(shared_path("data", "facades_128", "testB"))[:20]
    labels = np.stack([colours_to_labels(np.asarray(load_image(f)), FACADES) for f in files])
    share = np.bincount(labels.reshape(-1), minlength=13) / labels.size
    assert 0.55 < 1 - share[FACADES.unmapped] < 0.9 and (share[:12] > 0).all()
    assert share[1] == share[:12].max()  # facade: the largest class


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_palette_files_json_and_yaml(tmp_path, suffix):
    data = {"name": "roads", "max_distance": 30,
            "classes": [{"name": "road", "rgb": [128, 64, 128]}, {"name": "unlabeled", "rgb": [0, 0, 0], "void": True}]}
    f = tmp_path / f"roads{suffix}"
    f.write_text(json.dumps(data))  # JSON is YAML too
    p = palette_by_name(f)
    assert p.names == ("road", "unlabeled") and p.void == ("unlabeled",) and p.max_distance == 30 and p.name == "roads"
    assert Palette.from_dict(p.to_dict()).to_dict() == p.to_dict() == data | {"name": "roads"}


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ('{"classes": [{"name": "a", "rgb": [1, 2]}]}', r"classes\[0\] must be"),
    ('{"classes": [{"name": "a", "rgb": [1, 2, 300]}]}', r"classes\[0\] must be"),
    ('{"classes": [{"name": "a", "rgb": [1, 2, 3]}, {"name": "a", "rgb": [4, 5, 6]}]}', "names a class twice: a"),
    ('{"classes": [{"name": "a", "rgb": [1, 2, 3], "void": true}]}', "no scored class"),
    ('{"classes": [{"name": "a", "rgb": [1, 2, 3]}], "max_distance": -1}', "max_distance must be"),
    ('[1, 2]', "expected a mapping"),
])
def test_bad_palette_files_say_what_is_wrong(tmp_path, text, message):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        palette_by_name(f)


def test_unknown_palette_name():
    with pytest.raises(ValueError, match="neither built in .cityscapes, facades. nor an existing palette file"):
        palette_by_name("mapillary")
