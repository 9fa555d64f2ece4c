from curation.io.keys import KEY_RE, segment_key, shard_name, source_key


def test_keys_are_deterministic_and_webdataset_safe():
    k = segment_key("/data/a b/ç.wav", 12)
    assert k == segment_key("/data/a b/ç.wav", 12)
    assert KEY_RE.match(k) and "." not in k and not k.startswith("_")
    assert k.startswith(source_key("/data/a b/ç.wav")) and k.endswith("_00012")
    assert source_key("/data/x.wav") != source_key("/data/y.wav")


def test_shard_names_sort_by_unit_then_part():
    names = [shard_name(u, p) for u in (0, 1, 10) for p in (0, 2)]
    assert names == sorted(names)
    assert shard_name(3, 1) == "shard-000003-001.tar"
