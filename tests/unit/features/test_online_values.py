"""An online value converts as Feast's own `feast_value_type_to_python_type` converts it."""

from __future__ import annotations

from feast.protos.feast.types.Value_pb2 import DoubleList, Int64List, StringList, Value
from feast.type_map import feast_value_type_to_python_type

from leadscore.features.store import _python_value

VALUES = [
    Value(), Value(double_val=1.5), Value(double_val=0.0), Value(float_val=-2.25), Value(int64_val=3),
    Value(int64_val=0), Value(int32_val=-7), Value(string_val="engineering"), Value(string_val=""),
    Value(bool_val=True), Value(bool_val=False), Value(bytes_val=b"\x00a"),
    Value(unix_timestamp_val=1_780_000_000), Value(double_list_val=DoubleList(val=[1.0, 2.5])),
    Value(int64_list_val=Int64List(val=[1, 2])), Value(string_list_val=StringList(val=["a", "b"])),
]


def test_every_kind_of_value_converts_as_feast_converts_it():
    for value in VALUES:
        ours, feasts = _python_value({"x": value}, "x"), feast_value_type_to_python_type(value)
        assert ours == feasts and type(ours) is type(feasts), value


def test_a_missing_row_or_value_is_none():
    assert _python_value(None, "x") is None and _python_value({}, "x") is None
