"""The protos of a full load and of live writes equal those Feast's own converter builds."""

from __future__ import annotations

import math

import pytest
from feast.type_map import python_values_to_proto_values as feast_protos
from feast.value_type import ValueType

from leadscore.features.online_store import proto_values
from leadscore.features.store import _entity_keys

COLUMNS = {
    ValueType.INT64: [0, None, 3, 3, 12_345_678_901, -1, 0],
    ValueType.DOUBLE: [0.5, None, math.nan, 0.5, 2.0, 1e-12, 0.0, -0.0],
    ValueType.STRING: ["software", None, "", "software", "1000-4999", "é", "0"],
}


@pytest.mark.parametrize("value_type", list(COLUMNS))
def test_each_value_is_the_proto_feast_builds(value_type):
    values = COLUMNS[value_type]
    ours = proto_values(values, value_type)
    assert [proto.SerializeToString() for proto in ours] == [
        proto.SerializeToString() for proto in feast_protos(values, value_type)]
    assert ours[values.index(None)].WhichOneof("val") is None  # an empty Value, read back as None


def test_missing_values_are_empty_whatever_the_type():
    assert all(proto.WhichOneof("val") is None
               for proto in proto_values([None, math.nan], ValueType.DOUBLE))


def test_entity_keys_are_the_ones_feast_builds():
    ids = ["P0001", "P-NOT-A-PERSON", ""]
    assert [key.entity_values[0] for key in _entity_keys("pid", ids)] == feast_protos(ids, ValueType.STRING)
    assert {tuple(key.join_keys) for key in _entity_keys("pid", ids)} == {("pid",)}
