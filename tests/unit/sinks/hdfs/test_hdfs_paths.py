"""Which file system and namenode address ``hdfs.path`` names, as Hadoop resolves it: ``hdfs://host`` without a
port is the RPC port 8020, an HA nameservice of $HADOOP_CONF_DIR stays a nameservice, and a path without a scheme is
on ``fs.defaultFS``. Nothing connects: the client is lazy."""

from __future__ import annotations

import pytest

from sinks.hdfs.fs import LocalFileSystem, NativeHdfsFileSystem, WebHdfsFileSystem, file_system_for

pytest.importorskip("hdfs_native")

_CORE = "<configuration><property><name>fs.defaultFS</name><value>{}</value></property></configuration>"
_HDFS_HA = """<configuration>
<property><name>dfs.nameservices</name><value>mycluster</value></property>
<property><name>dfs.ha.namenodes.mycluster</name><value>nn1,nn2</value></property>
<property><name>dfs.namenode.rpc-address.mycluster.nn1</name><value>127.0.0.1:8020</value></property>
<property><name>dfs.namenode.rpc-address.mycluster.nn2</name><value>127.0.0.2:8020</value></property>
</configuration>"""


@pytest.fixture
def hadoop_conf_dir(tmp_path, monkeypatch):
    def make(default_fs: str | None = None, ha: bool = False) -> None:
        if default_fs:
            (tmp_path / "core-site.xml").write_text(_CORE.format(default_fs))
        if ha:
            (tmp_path / "hdfs-site.xml").write_text(_HDFS_HA)
        monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    return make


def resolve(path: str, transport: str = "rpc"):  # noqa: ANN201
    return file_system_for(path, webhdfs=[], user="flume", timeout=10, transport=transport)


@pytest.mark.parametrize("path, url, within", [
    ("hdfs://namenode/flume/webdata", "hdfs://namenode:8020", "/flume/webdata"),  # the user guide's example
    ("hdfs://namenode:9000/flume", "hdfs://namenode:9000", "/flume"),
    ("hdfs://10.0.0.1/flume/%Y-%m-%d", "hdfs://10.0.0.1:8020", "/flume/%Y-%m-%d"),
    ("hdfs://[::1]/flume", "hdfs://[::1]:8020", "/flume"),
])
def test_hdfs_authority_without_port_is_the_rpc_port(hadoop_conf_dir, path, url, within):
    fs, inside = resolve(path)
    assert isinstance(fs, NativeHdfsFileSystem) and fs.url == url and inside == within


def test_an_ha_nameservice_stays_a_nameservice(hadoop_conf_dir):
    hadoop_conf_dir(ha=True)
    fs, inside = resolve("hdfs://mycluster/flume/events")
    assert fs.url == "hdfs://mycluster" and inside == "/flume/events"


@pytest.mark.parametrize("default_fs, path, url, within", [
    ("hdfs://nn1:8020", "/flume/events", "hdfs://nn1:8020", "/flume/events"),
    ("hdfs://nn1", "/flume/%{host}", "hdfs://nn1:8020", "/flume/%{host}"),
    ("hdfs://mycluster", "/flume", "hdfs://mycluster", "/flume"),
    ("hdfs://nn1:8020/", "events", "hdfs://nn1:8020", "/user/flume/events"),  # relative: the user's home
    ("hdfs://nn1", "hdfs:///flume", "hdfs://nn1:8020", "/flume"),
])
def test_a_path_without_scheme_is_on_fs_default_fs(hadoop_conf_dir, default_fs, path, url, within):
    hadoop_conf_dir(default_fs, ha=True)
    fs, inside = resolve(path)
    assert isinstance(fs, NativeHdfsFileSystem) and fs.url == url and inside == within


def test_hdfs_without_authority_needs_fs_default_fs(hadoop_conf_dir):
    with pytest.raises(ValueError, match="hdfs:/// names no namenode"):
        resolve("hdfs:///flume")


def test_a_path_without_scheme_and_without_hadoop_conf_is_local(hadoop_conf_dir, tmp_path):
    fs, inside = resolve(str(tmp_path / "out"))
    assert isinstance(fs, LocalFileSystem) and inside == str(tmp_path / "out")
    hadoop_conf_dir("file:///")
    assert isinstance(resolve("/var/flume")[0], LocalFileSystem)


def test_default_fs_over_webhdfs(hadoop_conf_dir):
    hadoop_conf_dir("hdfs://nn1:8020")
    fs, inside = resolve("/flume", transport="webhdfs")
    assert isinstance(fs, WebHdfsFileSystem) and fs.urls == ["http://nn1:9870"] and inside == "/flume"
