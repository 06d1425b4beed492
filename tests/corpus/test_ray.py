"""The same corpus on a real Ray cluster: a head and two worker nodes on this machine (three raylets,
started by Ray's own ``ray.cluster_utils.Cluster``), byte-identical to the local executor's.

The nodes take Ray's default node address (this machine's), not 127.0.0.1: Ray rewrites a loopback
bootstrap address to the node's own address when a driver joins, so a cluster bound to 127.0.0.1
cannot be joined by address here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.corpus.test_build import eval_file, planted_pack
from tests.support import require_service
from vtforge.config import Config
from vtforge.corpus.build import BuildOptions, build_corpus

pytestmark = pytest.mark.slow


def test_ray_cluster_builds_the_same_shards_as_the_local_executor(corpus_cfg: Config, tmp_path: Path) -> None:
    require_service(importlib.util.find_spec("ray") is not None, "the ray package")
    from ray.cluster_utils import Cluster

    pack, evals = planted_pack(tmp_path / "shop"), eval_file(tmp_path)
    options = {"sources": [f"commit-pack:{pack}"], "eval_files": [evals], "emit_events": False}
    local = build_corpus(corpus_cfg, BuildOptions(out=tmp_path / "local", **options))
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        assert len(cluster.list_all_nodes()) == 3
        on_ray = build_corpus(
            corpus_cfg, BuildOptions(out=tmp_path / "ray", executor="ray", address=cluster.address, **options)
        )
    finally:
        cluster.shutdown()
    assert on_ray["executor"] == "ray"
    assert on_ray["content_sha256"] == local["content_sha256"]
    assert on_ray["removed_by_reason"] == local["removed_by_reason"]
    names = sorted(p.name for p in (tmp_path / "local" / "shards").glob("*.parquet"))
    assert names and names == sorted(p.name for p in (tmp_path / "ray" / "shards").glob("*.parquet"))
    for name in names:
        assert (tmp_path / "ray" / "shards" / name).read_bytes() == (
            tmp_path / "local" / "shards" / name
        ).read_bytes()
