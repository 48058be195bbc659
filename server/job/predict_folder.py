"""The images a predict job takes from a folder of the dataset roots.

A dataset's own folder (or one holding its layout, such as a VOCdevkit) would otherwise give
its masks to predict too, as if they were images: its image folder is taken instead, and the
job's `images_folder` parameter names it. Any other folder is taken whole.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from server.dataset.service import resolve_dataset_path
from server.settings import Settings
from trainer.data.layout import image_folder


def predict_folder_parameters(settings: Settings, raw: str) -> dict[str, Any]:
    """`folder` as given, `inputs_path` (the real folder predicted) and, where `raw` is a
    dataset's folder, `images_folder`: `raw` joined with the image folder taken from it.

    Raises:
        PathNotAllowed: the folder is outside every dataset root.
        InvalidInput: the folder does not exist.
    """
    folder = resolve_dataset_path(settings, raw, field="folder")
    images = image_folder(folder)
    if images is None:
        return {"folder": raw, "inputs_path": str(folder)}
    taken = str(PurePosixPath(raw) / images.relative_to(folder).as_posix())
    # Checked like the folder itself: an image folder linked out of the roots is refused.
    inside = resolve_dataset_path(settings, str(images), field="folder")
    return {"folder": raw, "images_folder": taken, "inputs_path": str(inside)}
