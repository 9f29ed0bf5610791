"""Decode and validate Kafka records into readings, as native Spark Column expressions (no Python UDF).

`decode` turns the Kafka source's columns into one row per reading candidate: a single
reading, or each element of a gateway batch (a JSON array). A row is valid when `reject_reason` is
null; `as_writer_columns` names its columns as the storage writer does, `valid_readings` keeps the valid rows.

The rules are the data contract's (sensorpipe.contract: encodings, JSON, identity, timestamps,
measurements, reasons, headers, columns), written here as Column expressions for speed; the contract's
reference decoder (contract/reference.py) applies the same rules in plain Python, and the two must agree
on every record (tests/integration/stream/test_decode.py, test_decode_fuzz.py). The `encoding` column
holds one of `contract.encodings.ENCODINGS` (records per encoding are the rows with `element = 0`, one
per Kafka record); `reject_reason` one of `contract.reasons.REASONS`, the first that applies.

How the rules are written in Spark:

- Parsing is strict and typed from the JSON itself: every value is parsed once into a VARIANT
  (`try_parse_json`), fields are read with explicit types (`try_variant_get`), and the JSON type of
  each field is checked first. `from_json` is not used for the values: on a type mismatch it nulls the
  field (partial results), turns the strings "NaN"/"Infinity" into doubles and the number 1e400 into
  the string "Infinity", so the JSON type cannot be told from its result.
- `try_parse_json` stops after the first value; a text is one JSON value only when, parsed inside
  `[text,h]` with h the text's hash, h comes out as the second element (`_unwrap_json`).
- A number's type is the VARIANT's (an integer that fits 64 bits, a decimal of up to 38 digits, else a
  double): a sensor id must be one of the integer types, a measurement any number.
- The Kafka key is not read: the bridge derives it by the same identity rule, and for a gateway batch
  it names the gateway rather than the element's sensor.
- `time` is an instant (TimestampType holds UTC microseconds): it comes from epoch numbers or
  strings with an offset, so it does not depend on `spark.sql.session.timeZone` (the job sets UTC,
  which is also how Spark displays it).
- `raw_data` is the reading's JSON: a single reading's payload text as it is (without the white space
  around it), so numbers keep their spelling; a batch element's text comes from Spark's JSON reader, an
  envelope's object from `to_json`, both written again compactly (contract/json_text.py `render`: a
  number beyond double range becomes the string "Infinity"). Never text that is not one JSON value: it
  would break the database batch. A `\\u0000` escape, which jsonb refuses, is `not_json`.
- `payload` of a reject is the Kafka value for a record-level reason, and the element's JSON for a bad
  element of a batch (its neighbours stay valid).
- Oversized records (`stream.max_payload_bytes`) are rejected before anything reads their text.
- Every function used is total under ANSI mode (`try_*` variants, guarded casts): a poison record
  becomes a reject, never an exception that stops the query.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.identity import ID_FIELDS, TopicIds, id_subscriptions
from sensorpipe.contract.measurements import MEASUREMENTS, Measurement
from sensorpipe.contract.reasons import Reason
from sensorpipe.contract.timestamps import EPOCH_MS_ABOVE, ISO_8601, LATEST_MICROS, MAX_EPOCH_S, RECEIVED_AT

__all__ = ["as_writer_columns", "decode", "valid_readings"]

_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_NUMBER_TYPES = (*_INTEGER_TYPES, "FLOAT", "DOUBLE")
_JSON_SPACE = " \t\n\r"
_NUL_ESCAPE = r"(?<!\\)(?:\\\\)*\\u0000"  # a \u0000 escape: after an even number of backslashes


def _whole(pattern: str) -> str:
    """A Java regex matching all of a text: `$` would also match before a final line break."""
    return f"^(?:{pattern})\\z"


def _wrap_json(text: Column) -> Column:
    """`[text,h]` parsed, h the text's hash: half of telling whether `text` is one JSON value (`_unwrap_json`)."""
    return F.try_parse_json(F.concat(F.lit("["), text, F.lit(","), F.xxhash64(text).cast("string"), F.lit("]")))


def _unwrap_json(wrapped: Column, text: Column) -> Column:
    """The VARIANT of `text` (wrapped by `_wrap_json`) when it is exactly one JSON value, else null.

    `try_parse_json` ignores whatever follows the first value (`{"a":1} x` parses); inside `[text,h]`
    any such rest breaks the array, so the sentinel h must come out as the second element. A constant
    sentinel could be forged: with 0, the text `{"a":1},0] x` closes the array itself and parses as one
    value. The text's own hash cannot be: the text would have to hold the hash of itself. Two steps,
    each its own column, so that the text is parsed once.
    """
    whole = F.try_variant_get(wrapped, "$[1]", "bigint").eqNullSafe(F.xxhash64(text)) & (
        F.try_variant_get(wrapped, "$[2]", "variant").isNull()
    )
    return F.when(whole, F.try_variant_get(wrapped, "$[0]", "variant"))


def _type(value: Column) -> Column:
    """The JSON type of a VARIANT as Spark names it (STRING, BIGINT, DECIMAL(3,1), VOID for null, OBJECT<…>…)."""
    return F.schema_of_variant(value)


def _shape(json_text: Column) -> Column:
    """First character of JSON text: `{`, `[`, `"` or that of a number, true, false, null.

    Cheaper than `schema_of_variant`, which renders the whole structure of a batch as text.
    """
    return F.regexp_extract(json_text, r"^\s*(.)", 1)


def _is_number(json_type: Column) -> Column:
    return json_type.isin(*_NUMBER_TYPES) | json_type.startswith("DECIMAL")


def _utf8(data: Column) -> Column:
    """Text of bytes that are valid UTF-8, else null (jsonb and JSON parsers need real text)."""
    return F.try_validate_utf8(data.cast("string"))


def _blank(text: Column) -> Column:
    """Only white space (`trim` removes spaces only, not line breaks)."""
    return text.rlike(r"^\s*$")


def _header(headers: Column, name: str) -> Column:
    """Text of the first Kafka header called `name`, else null."""
    found = F.try_element_at(F.filter(headers, lambda h: h["key"] == F.lit(name)), F.lit(1))
    return _utf8(found["value"])


def _field(element: Column, path: str) -> Column:
    """The VARIANT at `$.path` (`$[0]` for `[0]`), null when there is none."""
    return F.try_variant_get(element, f"${path}" if path.startswith("[") else f"$.{path}", "variant")


def _present(json_type: Column) -> Column:
    """A field that is there and not JSON null."""
    return json_type.isNotNull() & (json_type != "VOID")


def _identity(value: Column, json_type: Column) -> Column:
    """A sensor id (contract/identity.py): a non-empty string or a 64-bit integer; null when absent or empty."""
    text = F.when(json_type.isin("STRING", *_INTEGER_TYPES), F.try_variant_get(value, "$", "string"))
    return F.when(text != "", text)


def _topic_id(mqtt_topic: Column, settings: Settings) -> Column:
    """The sensor id of the MQTT topic under the bridge's subscriptions (contract/identity.py), else null."""
    found: list[Column] = []
    for pattern in TopicIds(id_subscriptions(settings.mqtt)).patterns:
        regex = _whole(pattern)
        found.append(F.when(mqtt_topic.rlike(regex), F.regexp_extract(mqtt_topic, regex, 1)))
    return F.coalesce(*found) if found else F.lit(None).cast("string")


def _epoch_micros(seconds: Column) -> Column:
    """Micros of an epoch in seconds, null outside 1970..9999 (infinities too: Spark orders NaN above all)."""
    usable = (seconds >= 0) & (seconds < MAX_EPOCH_S)
    return F.when(usable, F.round(seconds * 1_000_000).try_cast("bigint"))


def _epoch_time(number: Column) -> Column:
    """An epoch number as an instant: milliseconds above EPOCH_MS_ABOVE, else seconds; null out of range."""
    seconds = F.when(number > EPOCH_MS_ABOVE, number / 1000).otherwise(number)
    return F.timestamp_micros(_epoch_micros(seconds))


def _iso_time(text: Column) -> Column:
    """An ISO-8601 text with an offset (contract/timestamps.py) as an instant; null for other texts.

    Spark's parser wants an upper-case T and Z, and seconds: `13:35` is given as `13:35:00`.
    """
    upper = F.upper(text)
    no_seconds = F.substring(upper, 17, 1).isin("Z", "+", "-")
    full = F.when(no_seconds, F.concat(F.substring(upper, 1, 16), F.lit(":00"), F.substring(upper, 17, 64)))
    return F.when(text.rlike(_whole(ISO_8601)), F.try_to_timestamp(full.otherwise(upper)))


def _received_time(headers: Column, kafka_timestamp: Column) -> Column:
    """When the bridge received the message (its header, epoch ms), else the Kafka record's timestamp."""
    text = _header(headers, HEADER_RECEIVED_AT)
    millis = F.when(text.rlike(_whole(RECEIVED_AT)), text.try_cast("bigint"))
    from_header = F.timestamp_micros(_epoch_micros(millis.cast("double") / 1000))
    return F.coalesce(from_header, kafka_timestamp)


def _value_checks(measurement: Measurement, value: Column, json_type: Column) -> list[tuple[Column, Reason, Column]]:
    """(condition, reason, detail) of a measurement that breaks the contract."""
    name = measurement.name
    present = _present(json_type)
    return [
        (
            present & ~_is_number(json_type),
            Reason.WRONG_TYPE,
            F.format_string(f"{name} is %s, not a number", json_type),
        ),
        (
            present & (F.abs(value) == float("inf")),
            Reason.NOT_FINITE,
            F.lit(f"{name} is not a finite number"),
        ),
        (
            present & ~value.between(measurement.low, measurement.high),
            Reason.OUT_OF_RANGE,
            F.format_string(f"{name} %s outside {measurement.range_text}", value.cast("string")),
        ),
    ]


def _first(checks: list[tuple[Column, Reason, Column]]) -> Column:
    """`struct(reason, detail)` of the first check that holds (one CASE), null when none does."""
    verdict: Column | None = None
    for condition, reason, detail in checks:
        outcome = F.struct(F.lit(reason.value).alias("reason"), detail.cast("string").alias("detail"))
        verdict = F.when(condition, outcome) if verdict is None else verdict.when(condition, outcome)
    assert verdict is not None
    return verdict


def _records(kafka: DataFrame, settings: Settings) -> DataFrame:
    """Per Kafka record: the encoding, the decoded JSON value, the record-level reason, the elements."""
    value = F.col("value")
    size = F.coalesce(F.octet_length(value), F.lit(0))
    max_bytes = settings.stream.max_payload_bytes
    headers = (
        F.col("headers") if "headers" in kafka.columns else F.lit(None).cast("array<struct<key:string,value:binary>>")
    )
    stage0 = kafka.select(
        "topic",
        "partition",
        "offset",
        F.coalesce(value, F.lit(b"").cast("binary")).alias("payload"),
        size.alias("size"),
        _header(headers, HEADER_TOPIC).alias("mqtt_topic"),
        _received_time(headers, F.col("timestamp")).alias("received"),
        F.when(size <= max_bytes, _utf8(value)).alias("t0"),
    )
    stage0 = stage0.withColumn("w0", _wrap_json(F.col("t0"))).withColumn("v0", _unwrap_json(F.col("w0"), F.col("t0")))

    # Layer 1: a Connect envelope's payload, as text (a string payload is the text it holds).
    v0 = F.col("v0")
    inner = _field(v0, "payload")
    envelope = F.coalesce(inner.isNotNull() & _field(v0, "schema").isNotNull(), F.lit(False))
    stage1 = stage0.withColumn("envelope", envelope).withColumn("inner_json", F.when(envelope, F.to_json(inner)))
    inner_shape = _shape(F.col("inner_json"))
    t1 = (
        F.when(~F.col("envelope"), F.col("t0"))
        .when(inner_shape == '"', F.try_variant_get(inner, "$", "string"))
        .when(inner_shape.isin("{", "["), F.col("inner_json"))
    )
    stage1 = stage1.withColumn("t1", t1).withColumn(
        "w1", F.when(F.col("envelope") & (inner_shape == '"'), _wrap_json(F.col("t1")))
    )
    v1 = (
        F.when(~F.col("envelope"), v0)
        .when(inner_shape.isin("{", "["), inner)
        .otherwise(_unwrap_json(F.col("w1"), F.col("t1")))
    )
    stage1 = stage1.withColumn("v1", v1)
    stage1 = stage1.withColumn("shape1", F.when(F.col("v1").isNotNull(), _shape(F.col("t1"))))

    # Layer 2: JSON as it is, a JSON string holding base64, or base64 text.
    shape1 = F.col("shape1")
    kind = (
        F.when(shape1.isin("{", "["), F.lit("raw_json"))
        .when(shape1 == '"', F.lit("quoted_base64"))
        .when(shape1.isNotNull() | F.col("t1").rlike(r"^\s*[\[{]"), F.lit("raw_json"))
        .when(~_blank(F.col("t1")), F.lit("base64_json"))
    )
    base64_text = F.when(shape1 == '"', F.try_variant_get(F.col("v1"), "$", "string")).otherwise(F.col("t1"))
    stage2 = stage1.withColumn("kind", kind).withColumn(
        "t2",
        F.when(F.col("kind") == "raw_json", F.col("t1")).otherwise(
            _utf8(F.try_to_binary(base64_text, F.lit("base64")))
        ),
    )
    raw = F.col("kind") == "raw_json"
    stage2 = stage2.withColumn("w2", F.when(~raw, _wrap_json(F.col("t2"))))
    stage2 = stage2.withColumn(
        "v2", F.when(raw, F.col("v1")).otherwise(_unwrap_json(F.col("w2"), F.col("t2")))
    ).withColumn("shape2", F.when(F.col("v2").isNotNull(), _shape(F.col("t2"))))

    encoding = F.when(F.col("kind").isNull(), F.lit("unknown")).otherwise(
        F.concat(F.when(F.col("envelope"), F.lit("envelope_")).otherwise(F.lit("")), F.col("kind"))
    )
    v2, shape2 = F.col("v2"), F.col("shape2")
    checks = [
        (
            F.col("size") > max_bytes,
            Reason.PAYLOAD_TOO_LARGE,
            F.format_string(f"%d bytes, more than {max_bytes}", F.col("size")),
        ),
        ((F.col("size") == 0) | _blank(F.col("t0")), Reason.EMPTY, F.lit("no payload")),
        (F.col("t0").isNull(), Reason.UNDECODABLE, F.lit("the payload is not UTF-8 text")),
        (
            F.col("envelope") & F.col("t1").isNull(),
            Reason.NOT_AN_OBJECT,
            F.format_string("the envelope's payload is %s", _type(inner)),
        ),
        (F.col("t2").isNull(), Reason.UNDECODABLE, F.lit("neither JSON nor base64 of UTF-8 text")),
        (
            v2.isNull(),
            Reason.NOT_JSON,
            F.lit("the decoded payload is not one JSON value (or holds a lone surrogate escape such as \\ud800)"),
        ),
        (~shape2.isin("{", "["), Reason.NOT_AN_OBJECT, F.format_string("the payload is %s", _type(v2))),
        (
            _field(v2, "payload").isNotNull() & _field(v2, "schema").isNotNull(),
            Reason.NESTED_ENVELOPE,
            F.lit("an envelope inside an envelope or inside base64"),
        ),
    ]
    stage3 = stage2.withColumn("record_reject", _first(checks))
    reject = F.col("record_reject")
    batch = shape2 == "["
    # Each element with its JSON text: a batch's from Spark's JSON reader (a string field takes an object's
    # text, written again compactly), a single reading's is the payload's without the white space around it.
    # Rendering the VARIANT back to text instead (`to_json`) was a tenth of the job's CPU: Spark 4.2 makes a
    # new JSON factory per string it escapes.
    # (A text the reader refuses leaves the texts empty: arrays_zip pads them with nulls, see element_json.)
    texts = F.when(batch, F.coalesce(F.from_json(F.col("t2"), "array<string>"), F.array().cast("array<string>")))
    texts = texts.otherwise(F.array(F.btrim(F.col("t2"), F.lit(_JSON_SPACE))))
    values = F.when(batch, F.try_variant_get(v2, "$", "array<variant>")).otherwise(F.array(v2))
    elements = F.arrays_zip(values.alias("value"), texts.alias("text"))
    return stage3.select(
        "topic",
        "partition",
        "offset",
        # A valid batch's elements carry their own JSON: the whole message is not copied to each of them.
        F.when(reject.isNotNull() | ~batch | _field(v2, "[0]").isNull(), F.col("payload")).alias("payload"),
        "mqtt_topic",
        "received",
        encoding.alias("encoding"),
        batch.alias("batch"),
        "record_reject",
        F.when(reject.isNotNull(), F.to_json(v2)).alias("record_json"),
        F.when(reject.isNull(), elements).alias("elements"),
    )


def decode(kafka: DataFrame, settings: Settings) -> DataFrame:
    """One row per reading candidate of the Kafka source's rows (`value`, `topic`, `partition`, `offset`,
    `timestamp`, and `headers` when the source is read with `includeHeaders`; `key` is not read).

    Columns: encoding, element, time, time_source, sensor_id, temperature, humidity, raw_data, topic,
    partition, offset, payload, reject_reason, reject_detail. Every record has exactly one row with
    element 0 (count those per encoding for the metrics). Without `headers` there is no topic id and no
    receive time: the default id and the Kafka timestamp stand in. Lazy: no action runs here.
    """
    records = _records(kafka, settings)
    exploded = (
        records.select("*", F.posexplode_outer("elements").alias("pos", "element"))
        .select("*", F.col("element.value").alias("element_value"), F.col("element.text").alias("element_text"))
        .drop("elements", "element")
    )

    e = F.col("element_value")
    measurements = {m.name: m for m in MEASUREMENTS}
    names = (*ID_FIELDS, "timestamp", *measurements)
    typed = exploded.select(
        "*",
        *(_field(e, name).alias(f"f_{name}") for name in names),
        # An object: a string element of a batch also gets a text from the JSON reader, its content.
        F.try_variant_get(e, "$", "struct<>").isNotNull().alias("is_object"),
    ).select("*", *(_type(F.col(f"f_{name}")).alias(f"t_{name}") for name in names))
    value = {name: F.col(f"f_{name}") for name in names}
    kind = {name: F.col(f"t_{name}") for name in names}

    has_time = _present(kind["timestamp"])
    sensor_id = F.coalesce(
        *(_identity(value[name], kind[name]) for name in ID_FIELDS),
        _topic_id(F.col("mqtt_topic"), settings),
        F.lit(settings.readings.default_sensor_id),
    )
    # Each value once, as a column: the checks below only compare them (small generated code, JIT-compiled).
    values = typed.select(
        "*",
        *(
            F.when(_is_number(kind[name]), F.try_variant_get(value[name], "$", "double")).alias(name)
            for name in measurements
        ),
        F.when(_is_number(kind["timestamp"]), F.try_variant_get(value["timestamp"], "$", "double")).alias("epoch"),
        F.when(kind["timestamp"] == "STRING", _iso_time(F.try_variant_get(value["timestamp"], "$", "string"))).alias(
            "iso"
        ),
        sensor_id.alias("sensor_id"),
        # An object's own text (a non-object's, or one the JSON reader did not give: rendered).
        # The text passed parse_json, which refuses what jsonb would (lone surrogate escapes) but `\u0000`.
        F.when(F.col("is_object") & (F.substring("element_text", 1, 1) == "{"), F.col("element_text"))
        .otherwise(F.to_json(e))
        .alias("element_json"),
    )
    iso_in_range = F.when(F.unix_micros("iso").between(0, LATEST_MICROS), F.col("iso"))
    values = values.withColumn("payload_time", F.coalesce(_epoch_time(F.col("epoch")), iso_in_range))
    element_json = F.col("element_json")
    payload_time = F.col("payload_time")
    checks = [
        (e.isNull(), Reason.EMPTY, F.lit("a batch without readings")),
        (
            ~F.col("is_object"),
            Reason.NOT_AN_OBJECT,
            F.format_string("element %d is %s", F.col("pos"), _type(e)),
        ),
        (
            element_json.contains("\\u0000") & element_json.rlike(_NUL_ESCAPE),
            Reason.NOT_JSON,
            F.lit("\\u0000 cannot be stored in jsonb"),
        ),
        *(
            (
                _present(kind[name]) & ~kind[name].isin("STRING", *_INTEGER_TYPES),
                Reason.WRONG_TYPE,
                F.format_string(f"{name} is %s, not a string or a 64-bit integer", kind[name]),
            )
            for name in ID_FIELDS
        ),
        (
            ~functools.reduce(operator.or_, (_present(kind[name]) for name in measurements)),
            Reason.MISSING_VALUES,
            F.lit(f"none of {', '.join(measurements)}"),
        ),
        *(check for m in MEASUREMENTS for check in _value_checks(m, F.col(m.name), kind[m.name])),
        (
            has_time & payload_time.isNull(),
            Reason.BAD_TIMESTAMP,
            F.format_string(
                "timestamp %s is not epoch seconds, epoch ms or ISO-8601 with an offset, in 1970..9999",
                F.to_json(value["timestamp"]),
            ),
        ),
    ]
    checked = values.select("*", F.coalesce(F.col("record_reject"), _first(checks)).alias("reject"))
    return checked.select(
        "encoding",
        F.coalesce(F.col("pos"), F.lit(0)).alias("element"),
        F.when(has_time, payload_time).otherwise(F.col("received")).alias("time"),
        F.when(has_time, F.lit("payload")).otherwise(F.lit("received")).alias("time_source"),
        "sensor_id",
        *measurements,
        F.coalesce(element_json, F.col("record_json")).alias("raw_data"),
        "topic",
        "partition",
        "offset",
        F.when(F.col("batch") & e.isNotNull(), F.encode(element_json, "UTF-8"))
        .otherwise(F.col("payload"))
        .alias("payload"),
        F.col("reject.reason").alias("reject_reason"),
        F.col("reject.detail").alias("reject_detail"),
    )


WRITER_NAMES = {
    "kafka_topic": "topic",
    "kafka_partition": "partition",
    "kafka_offset": "offset",
    "reason": "reject_reason",
    "detail": "reject_detail",
}
"""The column of `decode` behind each column that the storage writer names differently."""


def as_writer_columns(decoded: DataFrame, names: Sequence[str]) -> DataFrame:
    """The columns `names` of the storage writer (READING_COLUMNS, REJECT_COLUMNS, ...) out of `decode`'s."""
    return decoded.select(*(F.col(WRITER_NAMES.get(name, name)).alias(name) for name in names))


def valid_readings(decoded: DataFrame) -> DataFrame:
    """The valid rows of `decode`, as the writer's READING_COLUMNS."""
    return as_writer_columns(decoded.where(F.col("reject_reason").isNull()), READING_COLUMNS)
