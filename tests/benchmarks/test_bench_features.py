"""The 1M-person world of the feature benchmark: whole copies with new IDs."""

import duckdb

from leadscore.benchmarks.features import replicate_middle_layer


def test_replicated_middle_layer_keeps_each_copy_a_world_of_its_own(tmp_path):
    source = tmp_path / "middle.duckdb"
    with duckdb.connect(str(source)) as con:
        con.execute("CREATE TABLE person AS SELECT * FROM (VALUES ('P1', 'C1'), ('P2', 'C1'), "
                    "('P3', NULL)) t(pid, cid)")
        con.execute("CREATE TABLE company AS SELECT * FROM (VALUES ('C1', 'E1')) t(cid, eid)")
        con.execute("CREATE TABLE interaction AS SELECT * FROM (VALUES ('P1', 'C1', 'web_visit'), "
                    "('P3', NULL, 'email_open')) t(pid, cid, event_type)")
        con.execute("CREATE TABLE person_demand_tag AS SELECT * FROM (VALUES ('P1', 'e-commerce')) "
                    "t(pid, first_tag)")
    target = tmp_path / "big.duckdb"
    assert replicate_middle_layer(source, target, persons=7) == 3  # ceil(7 / 3)
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT pid) FROM person").fetchone() == (9, 9)
        # each copy's people work at that copy's company, in that copy's group
        assert con.execute("SELECT count(*) FROM person p JOIN company c USING (cid) "
                           "WHERE split_part(p.pid, '-', 2) <> split_part(c.eid, '-', 2)").fetchone()[0] == 0
        assert con.execute("SELECT count(DISTINCT cid) FROM company").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM interaction i JOIN person p USING (pid)").fetchone()[0] == 6
        # the demand tags the feature build's tags read follow their people
        tagged = con.execute("SELECT count(*) FROM person_demand_tag t JOIN person p USING (pid)").fetchone()
        assert tagged[0] == 3
