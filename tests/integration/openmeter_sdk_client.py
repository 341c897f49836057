"""Run by the interpreter of the virtualenv that holds the official `openmeter` SDK (not by pytest, not
with the project importable): ``python openmeter_sdk_client.py URL TOKEN REQUEST_JSON`` drives the API
with the SDK, unchanged, and prints what it answered as JSON."""

import json
import sys
from datetime import datetime

from openmeter import Client
from openmeter.models import Event


def _event(document: dict) -> Event:
    return Event(**{**document, "time": datetime.fromisoformat(document["time"].replace("Z", "+00:00"))})


def main(url: str, token: str, request: dict) -> dict:
    client = Client(endpoint=url, token=token)
    client.events.ingest_event(_event(request["event"]))
    client.events.ingest_events([_event(document) for document in request["batch"]])
    query = request["query"]
    result = client.meters.query_json(
        query["meter"], from_parameter=datetime.fromisoformat(query["from"]), to=datetime.fromisoformat(query["to"]),
        window_size=query["windowSize"], group_by=query["groupBy"], subject=query["subject"])
    return {
        "meters": [meter.as_dict() for meter in client.meters.list()],
        "meter": client.meters.get(query["meter"]).as_dict(),
        "query": result.as_dict(),
        "subjects": [subject.key for subject in client.subjects.list()],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])), default=str))
