"""Decode and validate Kafka records into readings, as native Spark Column expressions (no Python UDF).

`decode` turns the Kafka source's columns into one row per reading candidate: a single
reading, or each element of a gateway batch (a JSON array). A row is valid when `reject_reason` is
null; `as_writer_columns` names its columns as the storage writer does, `valid_readings` keeps the valid rows.

Encodings (`ENCODINGS`, from stream/encodings.py, which detects them the same way in plain Python for
`sensorpipe doctor`), per record (the `encoding` column; records per encoding are the rows with
`element = 0`, one per Kafka record):

- `raw_json`: the value is a JSON object or array;
- `base64_json`: the value is base64 of one;
- `quoted_base64`: the value is a JSON string holding base64 of one (Kafka Connect's JsonConverter for bytes);
- `envelope_raw_json`, `envelope_base64_json`, `envelope_quoted_base64`: a Kafka Connect envelope
  (an object with both `schema` and `payload`) whose payload is an object or array, or a string
  holding JSON text, base64, or a JSON string holding base64;
- `unknown`: nothing could be detected (empty, too large, not UTF-8).

Reasons (`REASONS`), the first that applies: payload_too_large, empty, undecodable (not UTF-8, bad
base64), not_json, not_an_object, nested_envelope, wrong_type, missing_values, not_finite, out_of_range,
bad_timestamp.

Decisions:

- Parsing is strict and typed from the JSON itself: every value is parsed once into a VARIANT
  (`try_parse_json`), fields are read with explicit types (`try_variant_get`), and the JSON type of
  each field is checked first. `from_json` is not used for the values: on a type mismatch it nulls the
  field (partial results), turns the strings "NaN"/"Infinity" into doubles and the number 1e400 into
  the string "Infinity", so the JSON type cannot be told from its result.
- "Finite number" means a JSON number: the string "21.5" is `wrong_type`, like "hot". NaN and
  Infinity literals are not JSON (`not_json`); a number beyond double range (1e400) is `not_finite`.
- `sensor_id`/`device_id` is a non-empty string or an integer (an empty one counts as absent, as in
  the bridge); any other type is `wrong_type`. The Kafka key is not used: the bridge derives it by the
  same rule from the same topic and payload, so it adds nothing for its records, and for a gateway
  batch it names the gateway rather than the element's sensor.
- A timestamp number above 10^11 is epoch milliseconds, else epoch seconds; a string must be
  ISO-8601 with a date, a time and an offset (Z, +hh:mm or +hhmm): without an offset the zone would be
  a guess, so it is `bad_timestamp`. Times before 1970 or after 9999 are `bad_timestamp` too.
- `time` is an instant (TimestampType holds UTC microseconds): it comes from epoch numbers or
  strings with an offset, so it does not depend on `spark.sql.session.timeZone` (the job sets UTC,
  which is also how Spark displays it).
- `raw_data` is the reading's JSON re-serialised from the parsed value (`to_json` of the VARIANT):
  the same content as the payload (for a batch element: that element only; for an envelope: its
  payload), with keys sorted and no whitespace, as jsonb would store it. Never the raw text itself:
  Spark's JSON parsers stop after the first value, so text such as `{"a":1}}` would parse yet break the
  database batch; the re-serialised form is always valid JSON. A `\\u0000` escape, which jsonb refuses,
  is `not_json`. Numbers beyond double range become the string "Infinity" in it.
- `payload` of a reject is the Kafka value for a record-level reason, and the element's JSON for a bad
  element of a batch (its neighbours stay valid).
- Oversized records (`stream.max_payload_bytes`) are rejected before anything reads their text.
- Every function used is total under ANSI mode (`try_*` variants, guarded casts): a poison record
  becomes a reject, never an exception that stops the query.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sensorpipe.bridge.forwarder import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.config import Settings
from sensorpipe.simulator.readings import HUMIDITY_RANGE, TEMPERATURE_RANGE
from sensorpipe.storage.writer import READING_COLUMNS
from sensorpipe.stream.encodings import ENCODINGS

__all__ = [
    "ENCODINGS",
    "REASONS",
    "decode",
    "topic_id_regex",
    "valid_readings",
]

REASONS = (
    "payload_too_large",
    "empty",
    "undecodable",
    "not_json",
    "not_an_object",
    "nested_envelope",
    "wrong_type",
    "missing_values",
    "not_finite",
    "out_of_range",
    "bad_timestamp",
)

EPOCH_MS_ABOVE = 1e11
"""A timestamp number above this is epoch milliseconds (year 5138 in seconds, 1973 in milliseconds)."""
_MAX_EPOCH_S = 253_402_300_800.0  # 10000-01-01T00:00:00Z: beyond what Python and most clients can hold
_ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})$"
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_NUMBER_TYPES = (*_INTEGER_TYPES, "FLOAT", "DOUBLE")


def topic_id_regex(subscription: str) -> str | None:
    """A Java regex whose group 1 is the `+` level of an MQTT subscription (`sensors/+/data`); None without one.

    Every other level must match literally: non-alphanumeric characters are escaped one by one, which
    Java's regex syntax allows for any of them.
    """
    levels = subscription.split("/")
    if "+" not in levels or "#" in levels:
        return None
    literal = ["".join(c if c.isalnum() else "\\" + c for c in level) for level in levels]
    literal[levels.index("+")] = "([^/]+)"
    return "^" + "/".join(literal) + "$"


def _wrap_json(text: Column) -> Column:
    """`[text,0]` parsed: the first half of telling whether `text` is exactly one JSON value (see `_unwrap_json`)."""
    return F.try_parse_json(F.concat(F.lit("["), text, F.lit(",0]")))


def _unwrap_json(wrapped: Column) -> Column:
    """The VARIANT of the text `_wrap_json` was given when it is exactly one JSON value, else null.

    `try_parse_json` ignores whatever follows the first value (`{"a":1} x` parses); inside
    `[text,0]` any such rest breaks the array, so the sentinel 0 must come out as the second element.
    Two steps, each its own column, so that the text is parsed once.
    """
    whole = (
        F.try_variant_get(wrapped, "$[1]", "int").eqNullSafe(0) & F.try_variant_get(wrapped, "$[2]", "variant").isNull()
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
    """A sensor id: non-empty string or integer; null when absent or empty."""
    text = F.when(json_type.isin("STRING", *_INTEGER_TYPES), F.try_variant_get(value, "$", "string"))
    return F.when(text != "", text)


def _epoch_micros(seconds: Column) -> Column:
    """Micros of an epoch in seconds, null outside 1970..9999 (infinities too: Spark orders NaN above all)."""
    usable = (seconds >= 0) & (seconds < _MAX_EPOCH_S)
    return F.when(usable, F.round(seconds * 1_000_000).try_cast("bigint"))


def _epoch_time(number: Column) -> Column:
    """An epoch number as an instant: milliseconds above EPOCH_MS_ABOVE, else seconds; null out of range."""
    seconds = F.when(number > EPOCH_MS_ABOVE, number / 1000).otherwise(number)
    return F.timestamp_micros(_epoch_micros(seconds))


def _iso_time(text: Column) -> Column:
    """An ISO-8601 text with an offset as an instant; null for other texts."""
    return F.when(text.rlike(_ISO_WITH_OFFSET), F.try_to_timestamp(text))


def _received_time(headers: Column, kafka_timestamp: Column) -> Column:
    """When the bridge received the message (its header, epoch ms), else the Kafka record's timestamp."""
    millis = _header(headers, HEADER_RECEIVED_AT).try_cast("bigint")
    from_header = F.timestamp_micros(_epoch_micros(millis.cast("double") / 1000))
    return F.coalesce(from_header, kafka_timestamp)


def _value_checks(
    name: str, value: Column, json_type: Column, bounds: tuple[float, float]
) -> list[tuple[Column, str, Column]]:
    """(condition, reason, detail) of a temperature or humidity that breaks the contract."""
    low, high = bounds
    present = _present(json_type)
    return [
        (present & ~_is_number(json_type), "wrong_type", F.format_string(f"{name} is %s, not a number", json_type)),
        (
            present & (F.abs(value) == float("inf")),
            "not_finite",
            F.lit(f"{name} is not a finite number"),
        ),
        (
            present & ~value.between(low, high),
            "out_of_range",
            F.format_string(f"{name} %s outside [{low:g}, {high:g}]", value.cast("string")),
        ),
    ]


def _first(checks: list[tuple[Column, str, Column]]) -> Column:
    """`struct(reason, detail)` of the first check that holds (one CASE), null when none does."""
    verdict: Column | None = None
    for condition, reason, detail in checks:
        outcome = F.struct(F.lit(reason).alias("reason"), detail.cast("string").alias("detail"))
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
    stage0 = stage0.withColumn("w0", _wrap_json(F.col("t0"))).withColumn("v0", _unwrap_json(F.col("w0")))

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
    v1 = F.when(~F.col("envelope"), v0).when(inner_shape.isin("{", "["), inner).otherwise(_unwrap_json(F.col("w1")))
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
    stage2 = stage2.withColumn("v2", F.when(raw, F.col("v1")).otherwise(_unwrap_json(F.col("w2")))).withColumn(
        "shape2", F.when(F.col("v2").isNotNull(), _shape(F.col("t2")))
    )

    encoding = F.when(F.col("kind").isNull(), F.lit("unknown")).otherwise(
        F.concat(F.when(F.col("envelope"), F.lit("envelope_")).otherwise(F.lit("")), F.col("kind"))
    )
    v2, shape2 = F.col("v2"), F.col("shape2")
    checks = [
        (
            F.col("size") > max_bytes,
            "payload_too_large",
            F.format_string(f"%d bytes, more than {max_bytes}", F.col("size")),
        ),
        ((F.col("size") == 0) | _blank(F.col("t0")), "empty", F.lit("no payload")),
        (F.col("t0").isNull(), "undecodable", F.lit("the payload is not UTF-8 text")),
        (
            F.col("envelope") & F.col("t1").isNull(),
            "not_an_object",
            F.format_string("the envelope's payload is %s", _type(inner)),
        ),
        (F.col("t2").isNull(), "undecodable", F.lit("neither JSON nor base64 of UTF-8 text")),
        (
            v2.isNull(),
            "not_json",
            F.lit("the decoded payload is not one JSON value (or holds a lone surrogate escape such as \\ud800)"),
        ),
        (~shape2.isin("{", "["), "not_an_object", F.format_string("the payload is %s", _type(v2))),
        (
            _field(v2, "payload").isNotNull() & _field(v2, "schema").isNotNull(),
            "nested_envelope",
            F.lit("an envelope inside an envelope or inside base64"),
        ),
    ]
    stage3 = stage2.withColumn("record_reject", _first(checks))
    reject = F.col("record_reject")
    batch = shape2 == "["
    # Each element with its JSON text: a batch's from Spark's JSON reader (a string field takes an object's
    # text as it is), a single reading's is the payload's. Rendering the VARIANT back to text instead
    # (`to_json`) was a tenth of the job's CPU: Spark 4.2 makes a new JSON factory per string it escapes.
    # (A text the reader refuses leaves the texts empty: arrays_zip pads them with nulls, see element_json.)
    texts = F.when(batch, F.coalesce(F.from_json(F.col("t2"), "array<string>"), F.array().cast("array<string>")))
    texts = texts.otherwise(F.array(F.col("t2")))
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
    names = ("sensor_id", "device_id", "timestamp", "temperature", "humidity")
    typed = exploded.select("*", *(_field(e, name).alias(f"f_{name}") for name in names)).select(
        "*", *(_type(F.col(f"f_{name}")).alias(f"t_{name}") for name in names)
    )
    value = {name: F.col(f"f_{name}") for name in names}
    kind = {name: F.col(f"t_{name}") for name in names}

    temperature = F.when(_is_number(kind["temperature"]), F.try_variant_get(value["temperature"], "$", "double"))
    humidity = F.when(_is_number(kind["humidity"]), F.try_variant_get(value["humidity"], "$", "double"))
    has_time = _present(kind["timestamp"])
    regex = topic_id_regex(settings.mqtt.topic)
    from_topic = (
        F.when(F.col("mqtt_topic").rlike(regex), F.regexp_extract("mqtt_topic", regex, 1))
        if regex
        else F.lit(None).cast("string")
    )
    sensor_id = F.coalesce(
        _identity(value["sensor_id"], kind["sensor_id"]),
        _identity(value["device_id"], kind["device_id"]),
        from_topic,
        F.lit(settings.readings.default_sensor_id),
    )
    # Each value once, as a column: the checks below only compare them (small generated code, JIT-compiled).
    values = typed.select(
        "*",
        temperature.alias("temperature"),
        humidity.alias("humidity"),
        F.when(_is_number(kind["timestamp"]), F.try_variant_get(value["timestamp"], "$", "double")).alias("epoch"),
        F.when(kind["timestamp"] == "STRING", _iso_time(F.try_variant_get(value["timestamp"], "$", "string"))).alias(
            "iso"
        ),
        sensor_id.alias("sensor_id"),
        # The element's own text when it is an object's (a whitespace-led payload, a non-object: rendered).
        # The text passed parse_json, which refuses what jsonb would (lone surrogate escapes) but `\u0000`.
        F.when(F.substring("element_text", 1, 1) == "{", F.col("element_text"))
        .otherwise(F.to_json(e))
        .alias("element_json"),
    )
    latest = int(_MAX_EPOCH_S * 1_000_000) - 1
    iso_in_range = F.when(F.unix_micros("iso").between(0, latest), F.col("iso"))
    values = values.withColumn("payload_time", F.coalesce(_epoch_time(F.col("epoch")), iso_in_range))
    element_json = F.col("element_json")
    payload_time = F.col("payload_time")
    checks = [
        (e.isNull(), "empty", F.lit("a batch without readings")),
        (
            _shape(element_json) != "{",
            "not_an_object",
            F.format_string("element %d is %s", F.col("pos"), _type(e)),
        ),
        (element_json.contains("\\u0000"), "not_json", F.lit("\\u0000 cannot be stored in jsonb")),
        *(
            (
                _present(kind[name]) & ~kind[name].isin("STRING", *_INTEGER_TYPES),
                "wrong_type",
                F.format_string(f"{name} is %s, not a string or an integer", kind[name]),
            )
            for name in ("sensor_id", "device_id")
        ),
        (
            ~_present(kind["temperature"]) & ~_present(kind["humidity"]),
            "missing_values",
            F.lit("neither temperature nor humidity"),
        ),
        *_value_checks("temperature", F.col("temperature"), kind["temperature"], TEMPERATURE_RANGE),
        *_value_checks("humidity", F.col("humidity"), kind["humidity"], HUMIDITY_RANGE),
        (
            has_time & payload_time.isNull(),
            "bad_timestamp",
            F.format_string(
                "timestamp %s is not epoch seconds, epoch ms or ISO-8601 with an offset", F.to_json(value["timestamp"])
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
        "temperature",
        "humidity",
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
