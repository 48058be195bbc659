"""segtrack.client reads and writes a run's validation detail against a live server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from segtrack.client import SegtrackClient, SegtrackError
from tests.server.helpers import LiveServer
from tests.server.validation_data import CLASSES, body


def test_the_client_writes_and_reads_validation_detail(
    start_live: Callable[..., LiveServer],
) -> None:
    server = start_live()
    with SegtrackClient(server.url, token=server.token) as client:
        run = client.create_external_run("validated")
        run_id = run.id
        info = {"class_names": CLASSES}
        with server.http() as http:
            assert http.put(f"/api/v1/runs/{run_id}/info", json=info).status_code == 200
        assert client.put_validation(run_id, 1, body())["replaced"] is False
        assert client.put_validation(run_id, 1, body())["replaced"] is True
        assert client.confusion(run_id)["matrix"] == [[350, 5], [15, 25]]
        assert (
            client.confusion_csv(run_id, 1).splitlines()[0] == "truth \\ prediction,background,cat"
        )
        worst = client.images(run_id, class_name="cat", limit=1)
        assert worst["total"] == 3 and worst["items"][0]["name"] == "bad"
        assert [point["epoch"] for point in client.image_trend(run_id, 1)["points"]] == [1]
        with pytest.raises(SegtrackError) as refused:
            client.images(run_id, sort="loss")
        assert refused.value.status_code == 422
        run.close()
