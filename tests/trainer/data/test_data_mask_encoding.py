"""Inferring the raw value -> class mapping, decoding, encoding and serialising it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.config import IGNORE_INDEX
from trainer.data.mask_encoding import (
    MaskEncoding,
    MaskValueError,
    combine_class_masks,
    infer_encoding,
)


def _grey(found: set[int], **kwargs: object) -> MaskEncoding:
    settings: dict[str, object] = {"num_classes": None, "ignore_value": None, "identity": False}
    settings.update(kwargs)
    return infer_encoding(found, mode="grey", **settings)  # type: ignore[arg-type]


def test_0_255_masks_are_binary_not_ignore() -> None:
    encoding = _grey({0, 255})

    assert encoding.values == (0, 255)
    assert encoding.ignore_values == ()
    decoded = encoding.decode(np.array([[0, 255], [255, 0]], np.uint8))
    np.testing.assert_array_equal(decoded, [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    ("found", "values"),
    [({0, 1}, (0, 1)), ({1}, (0, 1)), ({0}, (0, 1)), ({255}, (0, 255)), ({0, 255}, (0, 255))],
)
def test_binary_conventions(found: set[int], values: tuple[int, ...]) -> None:
    assert _grey(found).values == values
    assert _grey(found, num_classes=2).values == values


def test_255_is_ignored_only_when_asked() -> None:
    encoding = _grey({0, 1, 255}, ignore_value=255)

    assert encoding.values == (0, 1)
    assert encoding.ignore_values == (255,)
    decoded = encoding.decode(np.array([[0, 1, 255]], np.uint8))
    np.testing.assert_array_equal(decoded, [[0, 1, IGNORE_INDEX]])


def test_arbitrary_grey_values_map_to_sorted_indices() -> None:
    encoding = _grey({255, 0, 128})

    assert encoding.values == (0, 128, 255)
    decoded = encoding.decode(np.array([[128, 255, 0]], np.uint8))
    np.testing.assert_array_equal(decoded, [[1, 2, 0]])


def test_num_classes_keeps_index_masks_as_they_are() -> None:
    encoding = _grey({0, 1, 3}, num_classes=5)
    assert encoding.values == (0, 1, 2, 3, 4)
    assert _grey({0, 1}, num_classes=3).values == (0, 1, 2)


def test_values_that_cannot_fit_num_classes_raise() -> None:
    with pytest.raises(MaskValueError, match=r"0, 128, 255.*num_classes 2"):
        _grey({0, 128, 255}, num_classes=2)
    with pytest.raises(MaskValueError, match="num_classes 3"):
        _grey({0, 255}, num_classes=3)


def test_identity_index_masks() -> None:
    assert _grey({0, 2, 5}, identity=True).values == (0, 1, 2, 3, 4, 5)
    assert _grey({0, 2}, identity=True, num_classes=4).values == (0, 1, 2, 3)
    voc = _grey({0, 15, 255}, identity=True, num_classes=21, ignore_value=255)
    assert voc.num_classes == 21
    assert voc.ignore_values == (255,)
    with pytest.raises(MaskValueError, match=r"outside the 3 classes: 7"):
        _grey({0, 1, 7}, identity=True, num_classes=3)


def test_classes_file_values_fix_the_order() -> None:
    encoding = _grey({0, 50, 100}, identity=True, class_values=[100, 0, 50])
    assert encoding.values == (100, 0, 50)
    np.testing.assert_array_equal(encoding.decode(np.array([[0, 50, 100]], np.uint8)), [[1, 2, 0]])
    with pytest.raises(MaskValueError, match="200"):
        _grey({0, 200}, identity=True, class_values=[0, 50])


def test_rgb_colours_black_first_and_classes_file_order() -> None:
    red, green, black = (255, 0, 0), (0, 255, 0), (0, 0, 0)
    sorted_colours = infer_encoding(
        {red, green, black}, mode="rgb", num_classes=None, ignore_value=None, identity=False
    )
    ordered = infer_encoding(
        {red, black},
        mode="rgb",
        num_classes=None,
        ignore_value=None,
        identity=False,
        class_values=[black, red, green],
    )

    assert sorted_colours.values == (black, green, red)
    assert ordered.values == (black, red, green)
    raw = np.zeros((2, 2, 3), np.uint8)
    raw[0, 0] = red
    raw[1, 1] = green
    np.testing.assert_array_equal(ordered.decode(raw), [[1, 0], [0, 2]])
    np.testing.assert_array_equal(ordered.encode(ordered.decode(raw)), raw)


def test_rgb_encoding_reads_grey_masks_as_grey_colours() -> None:
    encoding = MaskEncoding(mode="rgb", values=((0, 0, 0), (255, 255, 255), (255, 0, 0)))
    grey = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(encoding.decode(grey), [[0, 1]])


def test_16_bit_values() -> None:
    encoding = _grey({0, 1000, 65535})
    assert encoding.dtype == "uint16"
    raw = np.array([[0, 1000], [65535, 0]], np.uint16)
    index = encoding.decode(raw)
    np.testing.assert_array_equal(index, [[0, 1], [2, 0]])
    back = encoding.encode(index)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, raw)


def test_unknown_values_raise_listing_them_and_the_mapping() -> None:
    encoding = _grey({0, 255})
    with pytest.raises(MaskValueError) as caught:
        encoding.decode(np.array([[0, 7, 255, 9]], np.uint8))
    message = str(caught.value)
    assert "7, 9" in message
    assert "0 -> 0, 255 -> 1" in message

    colours = MaskEncoding(mode="rgb", values=((0, 0, 0), (255, 0, 0)))
    raw = np.zeros((1, 2, 3), np.uint8)
    raw[0, 1] = (1, 2, 3)
    with pytest.raises(MaskValueError, match=r"\(1, 2, 3\)"):
        colours.decode(raw)


def test_encode_inverts_decode_and_writes_ignore_back() -> None:
    encoding = _grey({0, 128, 255, 254}, ignore_value=254)
    raw = np.array([[0, 128], [255, 254]], np.uint8)
    index = encoding.decode(raw)
    np.testing.assert_array_equal(index, [[0, 1], [2, IGNORE_INDEX]])
    np.testing.assert_array_equal(encoding.encode(index), raw)
    with pytest.raises(MaskValueError, match=r"outside 0\.\.2"):
        encoding.encode(np.array([[3]], np.uint8))


def test_palette_index_and_class_folder_encodings() -> None:
    palette = tuple(range(256)) * 3
    index_encoding = infer_encoding(
        {0, 1, 2}, mode="index", num_classes=None, ignore_value=255, identity=True, palette=palette
    )
    folders = infer_encoding(
        {0, 2}, mode="class-folders", num_classes=3, ignore_value=None, identity=False
    )

    assert index_encoding.palette == palette
    assert folders.values == (0, 1, 2)
    index = np.array([[0, 2]], np.uint8)
    np.testing.assert_array_equal(folders.encode(index), index)


def test_to_dict_round_trips_through_json() -> None:
    encodings = [
        _grey({0, 255}),
        _grey({0, 1000}, ignore_value=65535),
        MaskEncoding(mode="rgb", values=((0, 0, 0), (1, 2, 3)), ignore_values=((9, 9, 9),)),
        MaskEncoding(mode="index", values=(0, 1), ignore_values=(255,), palette=(0,) * 768),
        MaskEncoding(mode="class-folders", values=(0, 1, 2)),
    ]
    for encoding in encodings:
        data = json.loads(json.dumps(encoding.to_dict()))
        assert MaskEncoding.from_dict(data) == encoding


def test_invalid_encodings_are_refused() -> None:
    with pytest.raises(MaskValueError, match="distinct"):
        MaskEncoding(mode="grey", values=(0, 1), ignore_values=(1,))
    with pytest.raises(MaskValueError, match="colours"):
        MaskEncoding(mode="rgb", values=(0, 1))
    with pytest.raises(MaskValueError, match="mode"):
        MaskEncoding.from_dict({"values": [0, 1]})


def test_too_many_values_look_like_images() -> None:
    with pytest.raises(MaskValueError, match="rather than label masks"):
        _grey(set(range(300)))


def test_combine_class_masks_later_class_wins() -> None:
    first = np.array([[255, 255, 0]], np.uint8)
    second = np.array([[0, 1, 1]], np.uint8)
    combined = combine_class_masks([first, None, second], (1, 3))
    np.testing.assert_array_equal(combined, [[1, 3, 3]])
    np.testing.assert_array_equal(combine_class_masks([None, None], (1, 2)), [[0, 0]])
