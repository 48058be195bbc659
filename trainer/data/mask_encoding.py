"""How raw mask values map to class indices, and back.

Torch-free. The mapping is inferred once per dataset (`infer_encoding`), stored in checkpoints
(`to_dict`) and used both ways: `decode` turns a raw mask into class indices for training, `encode`
turns predicted indices back into the dataset's own values or colours.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from trainer.config import IGNORE_INDEX, MAX_CLASSES

EncodingMode = Literal["index", "grey", "rgb", "class-folders"]
ENCODING_MODES: tuple[str, ...] = ("index", "grey", "rgb", "class-folders")
MaskDtype = Literal["uint8", "uint16"]
Colour = tuple[int, int, int]
RawValue = int | Colour

_GREY_LEVELS = 65536
"""Lookup tables for grey masks cover every uint16 value."""
_SHOWN_VALUES = 12


class MaskValueError(ValueError):
    """Mask values that do not fit the class mapping; the message lists them and the mapping."""


def pack_colours(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """(..., 3) uint8 colours -> (...) uint32 keys r << 16 | g << 8 | b."""
    channels = rgb.astype(np.uint32)
    return cast(
        npt.NDArray[np.uint32],
        (channels[..., 0] << 16) | (channels[..., 1] << 8) | channels[..., 2],
    )


def unpack_colour(key: int) -> Colour:
    """Inverse of `pack_colours` for one key."""
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


def pack_colour(colour: Colour) -> int:
    """One (r, g, b) colour -> its `pack_colours` key."""
    return (colour[0] << 16) | (colour[1] << 8) | colour[2]


def format_values(values: Sequence[RawValue], limit: int = _SHOWN_VALUES) -> str:
    """`0, 128, 255` or `(0, 0, 0), (255, 0, 0)`, cut after `limit` with the count left out."""
    shown = ", ".join(str(value) for value in values[:limit])
    if len(values) > limit:
        shown += f" ... and {len(values) - limit} more"
    return shown


def raw_value_from_json(value: Any) -> RawValue:
    """JSON value (int or [r, g, b]) -> raw value (int or (r, g, b))."""
    if isinstance(value, bool):
        raise MaskValueError(f"mask value {value!r} must be an int or an [r, g, b] list")
    if isinstance(value, int):
        return value
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int) for v in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise MaskValueError(f"mask value {value!r} must be an int or an [r, g, b] list")


def raw_value_to_json(value: RawValue) -> int | list[int]:
    """Raw value -> JSON value (int or [r, g, b]); inverse of `raw_value_from_json`."""
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class MaskEncoding:
    """The mapping between raw mask values and class indices 0..num_classes-1.

    Attributes:
        mode: "grey" (grey values), "index" (palette PNG indices), "rgb" (colours) or
            "class-folders" (one binary mask per class, combined into indices by the dataset).
        values: Raw value of class i, for i in 0..num_classes-1 (ints, or (r, g, b) for "rgb").
        ignore_values: Raw values decoded to IGNORE_INDEX (255): counted in no loss or metric.
        palette: 768 ints to write predictions back as a palette PNG ("index" mode).
        dtype: Dtype of raw grey masks, kept when predictions are written back.
    """

    mode: EncodingMode
    values: tuple[RawValue, ...]
    ignore_values: tuple[RawValue, ...] = ()
    palette: tuple[int, ...] | None = None
    dtype: MaskDtype = "uint8"

    def __post_init__(self) -> None:
        if self.mode not in ENCODING_MODES:
            raise MaskValueError(f"unknown mask mode {self.mode!r}; allowed: {ENCODING_MODES}")
        if not 1 <= len(self.values) <= MAX_CLASSES:
            raise MaskValueError(
                f"an encoding needs 1 to {MAX_CLASSES} classes, got {len(self.values)}"
            )
        raw = (*self.values, *self.ignore_values)
        if len(set(raw)) != len(raw):
            raise MaskValueError(
                f"mask values must be distinct: classes {format_values(self.values)}, "
                f"ignored {format_values(self.ignore_values)}"
            )
        colour = self.mode == "rgb"
        limit = 255 if colour or self.dtype == "uint8" else 65535
        for value in raw:
            parts = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) != colour or not all(0 <= part <= limit for part in parts):
                kind = "(r, g, b) colours in 0..255" if colour else f"ints in 0..{limit}"
                raise MaskValueError(f"{self.mode} mask values must be {kind}, got {value!r}")

    @property
    def num_classes(self) -> int:
        return len(self.values)

    @cached_property
    def _grey_table(self) -> npt.NDArray[np.int16]:
        """Raw grey value -> class index, IGNORE_INDEX, or -1 for unknown values."""
        table = np.full(_GREY_LEVELS, -1, dtype=np.int16)
        table[list(cast(tuple[int, ...], self.values))] = np.arange(self.num_classes)
        for value in self.ignore_values:
            table[cast(int, value)] = IGNORE_INDEX
        return table

    @cached_property
    def _colour_table(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint8]]:
        """Sorted packed colours and the class index (or IGNORE_INDEX) of each."""
        pairs = [(pack_colour(cast(Colour, v)), index) for index, v in enumerate(self.values)]
        pairs += [(pack_colour(cast(Colour, v)), IGNORE_INDEX) for v in self.ignore_values]
        pairs.sort()
        keys = np.array([key for key, _ in pairs], dtype=np.uint32)
        classes = np.array([index for _, index in pairs], dtype=np.uint8)
        return keys, classes

    def describe(self) -> str:
        """`0 -> 0, 255 -> 1 (ignored: 254)`: the mapping in one line, for messages."""
        pairs = ", ".join(f"{value} -> {index}" for index, value in enumerate(self.values))
        if self.ignore_values:
            pairs += f" (ignored: {format_values(self.ignore_values)})"
        return pairs

    def describe_classes(self, class_names: Sequence[str], limit: int = 24) -> str:
        """`0 -> 0 background, 255 -> 1 car; ignored: 254`: the mapping with class names.

        In "class-folders" mode the classes are named by their folders instead of values. At
        most `limit` classes are listed, then how many more there are.
        """
        names = [
            class_names[index] if index < len(class_names) else f"class_{index}"
            for index in range(self.num_classes)
        ]
        if self.mode == "class-folders":
            pairs = [f"{name}/ -> {index} {name}" for index, name in enumerate(names) if index]
            text = f"no folder -> 0 {names[0]}, " + ", ".join(pairs[: limit - 1])
            hidden = max(len(pairs) - (limit - 1), 0)
        else:
            pairs = [
                f"{value} -> {index} {names[index]}" for index, value in enumerate(self.values)
            ]
            text = ", ".join(pairs[:limit])
            hidden = max(len(pairs) - limit, 0)
        if hidden:
            text += f" ... and {hidden} more"
        if self.ignore_values:
            text += f"; ignored: {format_values(self.ignore_values)}"
        return text

    def _unknown(self, found: Sequence[RawValue]) -> MaskValueError:
        return MaskValueError(
            f"mask holds values that are not in the class mapping: {format_values(found)}; "
            f"known mapping (raw value -> class): {self.describe()}"
        )

    def decode(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        """Raw mask -> class indices.

        Args:
            raw: (H, W) grey/index values, or (H, W, 3) uint8 colours in "rgb" mode ((H, W) grey
                is accepted there too and read as (g, g, g)).

        Returns:
            (H, W) uint8 class indices, IGNORE_INDEX (255) where the raw value is ignored.

        Raises:
            MaskValueError: raw values outside `values` and `ignore_values`.
        """
        if self.mode == "rgb":
            return self._decode_colours(raw)
        if raw.ndim != 2:
            raise MaskValueError(
                f"a {self.mode} mask must be (H, W), got shape {raw.shape}; "
                "RGB masks need an 'rgb' encoding"
            )
        if raw.dtype not in (np.uint8, np.uint16):
            raise MaskValueError(f"mask dtype must be uint8 or uint16, got {raw.dtype}")
        decoded: npt.NDArray[np.int16] = self._grey_table[raw]
        unknown = decoded < 0
        if unknown.any():
            found = [int(value) for value in np.unique(raw[unknown])]
            raise self._unknown(found)
        return decoded.astype(np.uint8)

    def _decode_colours(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        if raw.ndim == 2:
            raw = np.repeat(raw[:, :, None], 3, axis=2)
        if raw.ndim != 3 or raw.shape[2] != 3 or raw.dtype != np.uint8:
            raise MaskValueError(
                f"an rgb mask must be (H, W, 3) uint8, got {raw.shape} {raw.dtype}"
            )
        keys, classes = self._colour_table
        packed = pack_colours(raw)
        position = np.searchsorted(keys, packed)
        position = np.minimum(position, len(keys) - 1)
        unknown = keys[position] != packed
        if unknown.any():
            found = [unpack_colour(int(key)) for key in np.unique(packed[unknown])]
            raise self._unknown(cast(list[RawValue], found))
        return classes[position]

    def encode(self, index: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Class indices -> raw values, to write predictions in the dataset's own encoding.

        Args:
            index: (H, W) integer class indices; IGNORE_INDEX becomes the first ignore value
                (or class 0's value when nothing is ignored).

        Returns:
            (H, W) grey values in `dtype`, (H, W, 3) uint8 colours in "rgb" mode, or the (H, W)
            uint8 indices themselves in "class-folders" mode (predictions are one file).
        """
        if index.ndim != 2:
            raise MaskValueError(f"class indices must be (H, W), got shape {index.shape}")
        bad = (index >= self.num_classes) & (index != IGNORE_INDEX) | (index < 0)
        if bad.any():
            found = [int(value) for value in np.unique(index[bad])]
            raise MaskValueError(
                f"class indices {format_values(found)} are outside 0..{self.num_classes - 1}"
            )
        fallback = self.ignore_values[0] if self.ignore_values else self.values[0]
        if self.mode == "class-folders":
            return index.astype(np.uint8)
        if self.mode == "rgb":
            colours = np.zeros((256, 3), dtype=np.uint8)
            colours[: self.num_classes] = np.array(self.values, dtype=np.uint8)
            colours[IGNORE_INDEX] = fallback
            encoded: npt.NDArray[Any] = colours[index]
            return encoded
        table = np.zeros(256, dtype=np.dtype(self.dtype))
        table[: self.num_classes] = self.values
        table[IGNORE_INDEX] = cast(int, fallback)
        grey: npt.NDArray[Any] = table[index]
        return grey

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `from_dict` restores an equal encoding."""
        return {
            "mode": self.mode,
            "values": [raw_value_to_json(value) for value in self.values],
            "ignore_values": [raw_value_to_json(value) for value in self.ignore_values],
            "palette": list(self.palette) if self.palette is not None else None,
            "dtype": self.dtype,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskEncoding:
        """Inverse of `to_dict`; raises MaskValueError on a malformed mapping."""
        try:
            mode = data["mode"]
            values = tuple(raw_value_from_json(value) for value in data["values"])
            ignore_values = tuple(
                raw_value_from_json(value) for value in data.get("ignore_values", ())
            )
            palette = data.get("palette")
            dtype = data.get("dtype", "uint8")
        except (KeyError, TypeError) as error:
            raise MaskValueError(
                f"a mask encoding needs 'mode' and 'values' (got {sorted(data)})"
            ) from error
        if dtype not in ("uint8", "uint16"):
            raise MaskValueError(f"mask dtype {dtype!r} is not one of 'uint8', 'uint16'")
        return cls(
            mode=mode,
            values=values,
            ignore_values=ignore_values,
            palette=tuple(int(v) for v in palette) if palette is not None else None,
            dtype=dtype,
        )


def _binary_values(found: set[int]) -> tuple[int, int] | None:
    """The 0/1 or 0/255 binary convention, when `found` follows it."""
    if found and found <= {0, 1}:
        return 0, 1
    if found and found <= {0, 255}:
        return 0, 255
    return None


def _grey_values(
    found: set[int], *, num_classes: int | None, identity: bool, class_values: Sequence[int] | None
) -> tuple[int, ...]:
    if class_values is not None:
        return tuple(class_values)
    if identity:
        count = num_classes if num_classes is not None else max(found, default=0) + 1
        return tuple(range(count))
    if num_classes in (None, 2) and (binary := _binary_values(found)) is not None:
        return binary
    if num_classes is not None and max(found, default=0) < num_classes:
        return tuple(range(num_classes))
    if num_classes is not None and len(found) != num_classes:
        raise MaskValueError(
            f"masks hold {len(found)} distinct values ({format_values(sorted(found))}) that are "
            f"not class indices 0..{num_classes - 1}, so they cannot be mapped onto num_classes "
            f"{num_classes}; fix num_classes or add a classes.json giving each class's value"
        )
    return tuple(sorted(found))


def _colour_values(
    found: set[Colour], *, num_classes: int | None, class_values: Sequence[Colour] | None
) -> tuple[Colour, ...]:
    if class_values is not None:
        return tuple(class_values)
    # Sorting tuples puts black (0, 0, 0), the usual background, first.
    colours = tuple(sorted(found))
    if num_classes is not None and len(colours) != num_classes:
        raise MaskValueError(
            f"masks hold {len(colours)} distinct colours ({format_values(colours)}) but "
            f"num_classes is {num_classes}; fix num_classes or add a classes.json giving each "
            "class's colour"
        )
    return colours


def infer_encoding(
    found: Collection[int] | Collection[Colour],
    *,
    mode: EncodingMode,
    num_classes: int | None,
    ignore_value: int | None,
    identity: bool,
    class_values: Sequence[RawValue] | None = None,
    palette: Sequence[int] | None = None,
    dtype: MaskDtype | None = None,
) -> MaskEncoding:
    """Infer the class mapping from the raw values found in a dataset's masks.

    Grey values, identity=False: exactly {0, 255}, {0, 1}, {0} or {255} -> binary 0/1 (255 is
    foreground, not ignore, unless `ignore_value` says so); else, with `num_classes` given and every
    value below it, value i is class i; else the sorted distinct values become classes 0..K-1.
    identity=True (values ARE class indices): class i <-> value i, num_classes = max + 1 unless
    given. RGB colours: sorted distinct colours, black first. `class_values` (from a classes file)
    fixes the order in every mode.

    Args:
        found: Distinct raw values (ints) or colours ((r, g, b) tuples) in the masks.
        mode: Encoding mode of the result.
        num_classes: Expected class count, or None to take it from the values.
        ignore_value: Raw grey value to ignore (in "rgb" mode the colour (v, v, v)).
        identity: Whether raw values are class indices.
        class_values: Raw value of each class in index order, from a classes file.
        palette: Palette of "index" masks, kept to write predictions back.
        dtype: Raw mask dtype; inferred from the values when omitted.

    Raises:
        MaskValueError: values that do not fit `num_classes` or `class_values`, or too many.
    """
    ignore: tuple[RawValue, ...] = ()
    values: tuple[RawValue, ...]
    if mode == "rgb":
        colours = {(int(v[0]), int(v[1]), int(v[2])) for v in cast(Collection[Colour], found)}
        if ignore_value is not None:
            ignore_colour = (ignore_value, ignore_value, ignore_value)
            ignore = (ignore_colour,)
            colours.discard(ignore_colour)
        colour_values = _colour_values(
            colours,
            num_classes=num_classes,
            class_values=cast(Sequence[Colour] | None, class_values),
        )
        values = colour_values
        unexpected: list[RawValue] = sorted(colours - set(colour_values))
    else:
        greys = {int(v) for v in cast(Collection[int], found)}
        if ignore_value is not None:
            ignore = (ignore_value,)
            greys.discard(ignore_value)
        grey_values = _grey_values(
            greys,
            num_classes=num_classes,
            identity=identity or mode == "class-folders",
            class_values=cast(Sequence[int] | None, class_values),
        )
        values = grey_values
        unexpected = sorted(greys - set(grey_values))
    if unexpected:
        raise MaskValueError(
            f"masks hold values outside the {len(values)} classes: {format_values(unexpected)}; "
            f"classes (raw value -> class): "
            + ", ".join(f"{value} -> {index}" for index, value in enumerate(values))
        )
    if len(values) > MAX_CLASSES:
        raise MaskValueError(
            f"masks hold {len(values)} distinct values ({format_values(list(values))}), more than "
            f"the {MAX_CLASSES} classes supported; are these images (or JPEG-compressed masks) "
            "rather than label masks?"
        )
    if num_classes is not None and len(values) != num_classes:
        raise MaskValueError(
            f"the classes file gives {len(values)} classes but num_classes is {num_classes}"
        )
    if dtype is None:
        largest = max((v for v in (*values, *ignore) if isinstance(v, int)), default=0)
        dtype = "uint16" if largest > 255 else "uint8"
    return MaskEncoding(
        mode=mode,
        values=values,
        ignore_values=ignore,
        palette=tuple(palette) if palette is not None and mode == "index" else None,
        dtype=dtype,
    )


def combine_class_masks(
    masks: Sequence[npt.NDArray[Any] | None], shape: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    """One binary mask per foreground class -> (H, W) uint8 class indices.

    Args:
        masks: Raw mask of class i + 1 (any non-zero value is foreground), or None when that class
            has no file for this image. Where masks overlap, the later class wins.
        shape: (H, W) of the image, used when every entry is None.
    """
    index = np.zeros(shape, dtype=np.uint8)
    for position, raw in enumerate(masks):
        if raw is None:
            continue
        foreground = raw != 0 if raw.ndim == 2 else np.any(raw != 0, axis=2)
        index[foreground] = position + 1
    return index
