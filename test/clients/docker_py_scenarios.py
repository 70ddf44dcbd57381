"""docker-py scenarios against the daemon at DOCKER_HOST: `python3 docker_py_scenarios.py NAME`.

Each scenario asserts what Docker Engine gives and prints "ok"; any failure raises (exit 1).
Driven by test/clients-docker-py.test.ts with every docker-py version installed on the machine.
"""
import io
import os
import sys
import tarfile
import time

import docker
from docker.errors import ContainerError

client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=60)
LABEL = {"clients-test": "docker-py"}


def run_foreground():
    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo world"], network_mode="none", remove=True)
    assert out == b"hello\nworld\n", out


def run_error():
    try:
        client.containers.run("busybox", ["sh", "-c", "echo fine; echo broken >&2; exit 3"], network_mode="none", remove=True)
    except ContainerError as e:
        assert e.exit_status == 3, e.exit_status
        assert e.stderr == b"broken\n", e.stderr
    else:
        raise AssertionError("no ContainerError")


def run_detached_logs_wait():
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; done; exit 5"], network_mode="none", detach=True, labels=LABEL)
    try:
        text = b"".join(c.logs(stream=True, follow=True))
        assert text == b"line1\nline2\nline3\n", text
        assert c.wait()["StatusCode"] == 5
        c.reload()
        assert c.status == "exited", c.status
    finally:
        c.remove(force=True)


def exec_run():
    c = client.containers.run("busybox", ["sleep", "300"], network_mode="none", detach=True, labels=LABEL)
    try:
        r = c.exec_run(["sh", "-c", "echo $GREETING; pwd; echo err >&2; exit 2"], environment={"GREETING": "hi"}, workdir="/tmp", demux=True)
        assert r.exit_code == 2, r.exit_code
        assert r.output == (b"hi\n/tmp\n", b"err\n"), r.output
        plain = c.exec_run("echo plain")
        assert (plain.exit_code, plain.output) == (0, b"plain\n"), plain
    finally:
        c.remove(force=True)


def archive():
    c = client.containers.create("busybox", ["sleep", "300"], network_mode="none", labels=LABEL)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"archived\n"
            info = tarfile.TarInfo("dir/file.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue())
        stream, stat = c.get_archive("/tmp/dir/file.txt")
        assert stat["name"] == "file.txt" and stat["size"] == 9, stat
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            assert t.extractfile("file.txt").read() == b"archived\n"
    finally:
        c.remove(force=True)


def images():
    tags = [t for i in client.images.list() for t in i.tags]
    assert "busybox:latest" in tags, tags
    bb = client.images.get("busybox")
    assert bb.tag("clients/bb", "v1")
    img = client.images.get("clients/bb:v1")
    assert img.id == bb.id
    data = b"".join(img.save(named="clients/bb:v1"))
    client.images.remove("clients/bb:v1")
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [bb.id], loaded
    assert "clients/bb:v1" in client.images.get(bb.id).tags
    client.images.remove("clients/bb:v1")


def networks():
    net = client.networks.create("clients-py-net", driver="bridge", labels=LABEL)
    db = web = None
    try:
        db = client.containers.run("busybox", ["sleep", "300"], detach=True, labels=LABEL, network="clients-py-net")
        net.disconnect(db)
        net.connect(db, aliases=["database"])
        db.reload()
        aliases = db.attrs["NetworkSettings"]["Networks"]["clients-py-net"]["Aliases"] or []
        assert "database" in aliases, aliases
        ip = db.attrs["NetworkSettings"]["Networks"]["clients-py-net"]["IPAddress"]
        web = client.containers.run("busybox", ["sleep", "300"], detach=True, labels=LABEL, network="clients-py-net")
        r = web.exec_run(["nslookup", "database"])
        assert r.exit_code == 0 and ip.encode() in r.output, r
        net.reload()
        assert sorted(c.id for c in net.containers) == sorted([db.id, web.id]), net.containers
        assert client.networks.list(names=["clients-py-net"])[0].id == net.id
    finally:
        for c in (db, web):
            if c:
                c.remove(force=True)
        net.remove()


def volumes():
    v = client.volumes.create("clients-py-vol", labels={"purpose": "test"})
    try:
        found = client.volumes.list(filters={"label": "purpose=test"})
        assert [x.name for x in found] == ["clients-py-vol"], found
        assert v.attrs["Labels"] == {"purpose": "test"}
        out = client.containers.run("busybox", ["sh", "-c", "echo kept > /v/f; cat /v/f"], volumes={"clients-py-vol": {"bind": "/v", "mode": "rw"}}, network_mode="none", remove=True)
        assert out == b"kept\n", out
    finally:
        v.remove()


def events():
    since = int(time.time()) - 1
    c = client.containers.run("busybox", ["true"], network_mode="none", detach=True, labels={"clients-test": "py-events"})
    c.wait()
    c.remove()
    until = int(time.time()) + 1
    actions = [e["Action"] for e in client.events(since=since, until=until, decode=True, filters={"label": "clients-test=py-events"})]
    assert actions[:3] == ["create", "start", "die"] and actions[-1] == "destroy", actions


def df():
    d = client.df()
    for k in ("LayersSize", "Images", "Containers", "Volumes"):
        assert k in d, d.keys()
    assert any("busybox:latest" in (i.get("RepoTags") or []) for i in d["Images"])


if __name__ == "__main__":
    globals()[sys.argv[1]]()
    print("ok")
