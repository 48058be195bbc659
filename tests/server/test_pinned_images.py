"""Pinned validation images: pinned and unpinned by position or name, bounded per run, refused
with a 4xx naming what exists, changed only by the run's owner (or an admin), handed to tracked
runs in their heartbeat answers; previews say why they are there."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.models import Event
from tests.server.helpers import ApiClient, create_external, issue_token
from trainer.config import MAX_PINNED_IMAGES


def validation_body(count: int) -> dict[str, Any]:
    """An epoch of `count` images named img-00, img-01, ... (two classes, every pixel right)."""
    return {
        "class_names": ["background", "cat"],
        "confusion": [[90 * count, 0], [0, 10 * count]],
        "images": {
            "names": [f"img-{i:02d}" for i in range(count)],
            "true_positive": [[90, 10]] * count,
            "false_positive": [[0, 0]] * count,
            "false_negative": [[0, 0]] * count,
        },
    }


def tracked_run(client: ApiClient, images: int = 20) -> int:
    """A tracked run whose first epoch's validation of `images` images is stored."""
    run_id: int = create_external(client)["id"]
    info = client.request(
        "PUT", f"/api/v1/runs/{run_id}/info", json={"class_names": ["background", "cat"]}
    )
    assert info.status_code == 200, info.text
    stored = client.request(
        "PUT", f"/api/v1/runs/{run_id}/validation/1", json=validation_body(images)
    )
    assert stored.status_code == 201, stored.text
    return run_id


def pinned(client: ApiClient, run_id: int) -> list[tuple[int, str]]:
    body = client.get(f"/api/v1/runs/{run_id}/pinned-images").json()
    return [(item["index"], item["name"]) for item in body["images"]]


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


def test_pin_and_unpin_by_position_or_name(
    client: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    run_id = tracked_run(client)
    base = f"/api/v1/runs/{run_id}/pinned-images"
    assert client.get(base).json() == {"images": [], "max_pinned": MAX_PINNED_IMAGES}

    first = client.request("PUT", f"{base}/7")
    assert first.status_code == 201, first.text
    assert first.json()["images"][0]["index"] == 7
    assert first.json()["images"][0]["name"] == "img-07"
    assert first.json()["images"][0]["pinned_by"] == "admin"
    assert client.request("PUT", f"{base}/img-03").status_code == 201
    again = client.request("PUT", f"{base}/img-07")
    assert again.status_code == 200, "pinning a pinned image changes nothing"
    assert pinned(client, run_id) == [(7, "img-07"), (3, "img-03")]

    removed = client.request("DELETE", f"{base}/7")
    assert removed.status_code == 200
    assert [item["index"] for item in removed.json()["images"]] == [3]
    assert "not pinned" in error_of(client.request("DELETE", f"{base}/img-07"), 404)
    assert client.request("DELETE", f"{base}/3").status_code == 200
    assert pinned(client, run_id) == []

    with session_factory() as session:
        actions = [
            event.payload
            for event in session.scalars(
                select(Event).where(Event.run_id == run_id, Event.kind == "run")
            )
            if event.payload.get("action") == "pins"
        ]
    assert [payload["pinned"] for payload in actions] == [[7], [7, 3], [3], []]


def test_unknown_images_and_bad_references_are_4xx_naming_what_exists(client: ApiClient) -> None:
    run_id = tracked_run(client, images=20)
    base = f"/api/v1/runs/{run_id}/pinned-images"
    assert "numbered 0 to 19" in error_of(client.request("PUT", f"{base}/20"), 404)
    assert "numbered 0 to 19" in error_of(client.request("PUT", f"{base}/{2**40}"), 404)
    named = error_of(client.request("PUT", f"{base}/no-such-image"), 404)
    assert "img-00" in named and "0 to 19" in named
    assert error_of(
        client.request("PUT", f"{base}/-1"), 404
    )  # not digits: a name, and no image has it
    assert error_of(client.request("PUT", f"{base}/%C2%B2"), 404)  # '²' is no position either
    assert "NUL" in error_of(client.request("PUT", f"{base}/a%00b"), 422)
    assert error_of(client.request("PUT", f"{base}/{'x' * 501}"), 422)
    assert error_of(client.request("PUT", "/api/v1/runs/999999/pinned-images/1"), 404)
    assert error_of(client.get("/api/v1/runs/999999/pinned-images"), 404)

    fresh: int = create_external(client)["id"]
    message = error_of(client.request("PUT", f"/api/v1/runs/{fresh}/pinned-images/0"), 409)
    assert "not reported its validation images" in message


def test_a_run_holds_a_bounded_number_of_pins(client: ApiClient) -> None:
    run_id = tracked_run(client, images=MAX_PINNED_IMAGES + 4)
    base = f"/api/v1/runs/{run_id}/pinned-images"
    for index in range(MAX_PINNED_IMAGES):
        assert client.request("PUT", f"{base}/{index}").status_code == 201
    refused = client.request("PUT", f"{base}/{MAX_PINNED_IMAGES}")
    assert "unpin one" in error_of(refused, 409)
    assert refused.json()["error"]["details"] == {"max_pinned": MAX_PINNED_IMAGES}
    assert client.request("PUT", f"{base}/0").status_code == 200, (
        "an image pinned already still answers"
    )
    assert client.request("DELETE", f"{base}/0").status_code == 200
    assert client.request("PUT", f"{base}/{MAX_PINNED_IMAGES}").status_code == 201


def test_only_the_owner_or_an_admin_changes_pins_and_viewers_read_them(
    app: FastAPI, client: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    tokens = {
        role: issue_token(session_factory, name, role_name)
        for role, name, role_name in (
            ("owner", "owner", "member"),
            ("other", "other", "member"),
            ("viewer", "watcher", "viewer"),
        )
    }
    with (
        ApiClient(app, tokens["owner"]) as owner,
        ApiClient(app, tokens["other"]) as other,
        ApiClient(app, tokens["viewer"]) as viewer,
    ):
        run_id = tracked_run(owner)
        base = f"/api/v1/runs/{run_id}/pinned-images"
        assert "submitted by owner" in error_of(other.request("PUT", f"{base}/1"), 403)
        assert error_of(viewer.request("PUT", f"{base}/1"), 403)
        assert owner.request("PUT", f"{base}/1").json()["images"][0]["pinned_by"] == "owner"
        assert error_of(other.request("DELETE", f"{base}/1"), 403)
        assert client.request("PUT", f"{base}/2").status_code == 201, "admins change any run"
        assert [index for index, _ in pinned(viewer, run_id)] == [1, 2]
        # The run page offers the pin controls (and the jobs') to those same users only.
        for caller, offered in ((owner, True), (client, True), (other, False), (viewer, False)):
            page = caller.get(f"/runs/{run_id}", headers={"Accept": "text/html"})
            assert page.status_code == 200, page.text
            assert f'data-can-change="{str(offered).lower()}"' in page.text


def _png(pixels: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tracked_runs_hear_of_pins_and_their_previews_keep_their_reasons(
    client: ApiClient,
) -> None:
    run_id = tracked_run(client)
    assert client.post(f"/api/v1/runs/{run_id}/heartbeat").json()["pinned_images"] == []
    client.request("PUT", f"/api/v1/runs/{run_id}/pinned-images/12")
    client.request("PUT", f"/api/v1/runs/{run_id}/pinned-images/4")
    beat = client.post(f"/api/v1/runs/{run_id}/heartbeat").json()
    assert beat["pinned_images"] == [12, 4]

    mask = _png(np.zeros((8, 8), np.uint8))
    files = {
        "image": ("image.png", _png(np.zeros((8, 8, 3), np.uint8)), "image/png"),
        "truth": ("truth.png", mask, "image/png"),
        "prediction": ("prediction.png", mask, "image/png"),
    }
    url = f"/api/v1/runs/{run_id}/previews"
    for index, reasons in ((0, None), (12, "pinned,worst"), (1500, "worst")):
        form = {"epoch": "1", "sample_index": str(index), "name": f"img-{index}"}
        if reasons is not None:
            form["reasons"] = reasons
        response = client.post(url, data=form, files=files)
        assert response.status_code == 201, response.text
    shown = client.get(f"{url}?epoch=1").json()["samples"]
    assert [(item["sample_index"], item["reasons"]) for item in shown] == [
        (0, ["fixed"]),
        (12, ["pinned", "worst"]),
        (1500, ["worst"]),
    ]
