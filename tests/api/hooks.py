"""Serializers Schemathesis lacks, for the media types of comms' bodies
that are not JSON: user-service's import takes its rows (a list of
`{"email", "name"}` objects in the OpenAPI document) as CSV or NDJSON.
Loaded by tests/api/schemathesis.sh through SCHEMATHESIS_HOOKS.
A generated value that is not a list of objects (the negative cases) is
written as its JSON text, which the service must refuse or report."""

import csv
import io
import json

import schemathesis


def _rows(value):
    return value if isinstance(value, list) and all(isinstance(row, dict) for row in value) else None


@schemathesis.serializer("text/csv")
def csv_rows(ctx, value):
    rows = _rows(value)
    if rows is None:
        return {"data": json.dumps(value).encode("utf8")}
    out = io.StringIO()
    columns = ["email", "name"] + sorted({key for row in rows for key in row} - {"email", "name"})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else str(row.get(column)) for column in columns])
    return {"data": out.getvalue().encode("utf8")}


@schemathesis.serializer("application/x-ndjson")
def ndjson_rows(ctx, value):
    rows = _rows(value)
    if rows is None:
        return {"data": json.dumps(value).encode("utf8")}
    return {"data": "".join(json.dumps(row) + "\n" for row in rows).encode("utf8")}
