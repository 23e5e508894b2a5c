"""Image verbs against the semantics in the Docker 20.10 transcripts (rmi, images, history)."""
import pytest

from engine import Engine
from engine.digest import chain_ids
from engine.errors import Conflict, ImageNotFound
from engine.images import ContainerUse, delete_image, image_rows, load_config
from engine.spec import ContainerConfig
from engine.testing import child_image, scratch_image, validate_image


@pytest.fixture
def eng(tmp_path):
    e = Engine(tmp_path)
    yield e
    e.close()


def build_static_web(eng, base, index: bytes):
    """The transcript's build: LABEL, ENV, RUN (layer), COPY (layer), CMD; returns step image IDs."""
    s = eng.store
    label = child_image(s, base, "/bin/sh -c #(nop)  LABEL maintainer=whoami", created=10)
    env = child_image(s, label, "/bin/sh -c #(nop)  ENV REFRESHED_AT=2014-07-01", created=11)
    run = child_image(s, env, "/bin/sh -c echo hello > /greeting && mkdir -p /var/www/html",
                      files={"greeting": b"hello\n"}, created=12)
    copy = child_image(s, run, "/bin/sh -c #(nop) COPY file:abc in /var/www/html/ ",
                       files={"var/www/html/index.html": index}, created=13)
    cmd = child_image(s, copy, '/bin/sh -c #(nop)  CMD ["cat" "/var/www/html/index.html"]', created=14,
                      config=ContainerConfig(cmd=("cat", "/var/www/html/index.html")))
    return [label, env, run, copy, cmd]


@pytest.fixture
def scene(eng):
    base = scratch_image(eng.store, {"bin/busybox": b"\x7fELF..."}, created=1, cmd=("sh",))
    eng.tag(base, "busybox:latest")
    first = build_static_web(eng, base, b"<h1>v1</h1>\n")
    eng.tag(first[-1], "static_web:latest")
    # the second build reuses LABEL/ENV/RUN from cache; only COPY and CMD are new
    second = [*first[:3], None, None]
    second[3] = child_image(eng.store, first[2], "/bin/sh -c #(nop) COPY file:def in /var/www/html/ ",
                            files={"var/www/html/index.html": b"<h1>v2</h1>\n"}, created=20)
    second[4] = child_image(eng.store, second[3], '/bin/sh -c #(nop)  CMD ["cat" "/var/www/html/index.html"]',
                            created=21, config=ContainerConfig(cmd=("cat", "/var/www/html/index.html")))
    eng.tag(second[-1], "static_web:latest")
    return base, first, second


def test_images_hides_intermediates_but_shows_dangling(eng, scene):
    base, first, second = scene
    shown = [s.id for s in eng.images()]
    assert shown == [second[-1], first[-1], base]  # newest first; first build's top is dangling
    all_ids = {s.id for s in eng.images(all=True)}
    assert all_ids == {base, *first, *second}
    rows = image_rows(eng.images())
    assert [(r.repository, r.tag) for r in rows] == [("static_web", "latest"), ("<none>", "<none>"),
                                                    ("busybox", "latest")]


def test_images_reference_filter(eng, scene):
    base, _, second = scene
    eng.tag(base, "busybox:1.36")
    assert {t for s in eng.images(reference="busybox") for t in s.repo_tags} == {"busybox:latest", "busybox:1.36"}
    assert [s.repo_tags for s in eng.images(reference="busybox:1.36")] == [("busybox:1.36",)]
    assert [s.id for s in eng.images(reference="static_*")] == [second[-1]]
    assert eng.images(reference="nothing") == []


def test_rmi_of_a_dangling_image_deletes_it_and_its_untagged_parents(eng, scene):
    base, first, second = scene
    copy_chain = chain_ids(eng.store.image_diff_ids(first[3]))[-1]
    records = eng.remove_image(first[-1][7:19])
    assert [(r.action, r.value) for r in records] == [
        ("Deleted", first[-1]), ("Deleted", first[3]), ("Deleted", copy_chain)]
    validate_image(eng.store, second[-1])
    assert eng.check().ok


def test_rmi_of_the_last_tag_prunes_the_whole_build(eng, scene):
    base, first, second = scene
    eng.remove_image(first[-1])
    eng.tag("static_web", "127.0.0.1:5000/whoami/static_web:latest")
    assert [(r.action, r.value) for r in eng.remove_image("static_web")] == [("Untagged", "static_web:latest")]
    records = eng.remove_image("127.0.0.1:5000/whoami/static_web:latest")
    chains = chain_ids(eng.store.image_diff_ids(base))
    assert records[0].value == "127.0.0.1:5000/whoami/static_web:latest"
    deleted = [r.value for r in records if r.action == "Deleted"]
    # images top-down, each followed by the layer chains it released; busybox's layer stays
    assert deleted[0] == second[-1] and deleted[1] == second[3]
    assert set(deleted) >= {second[2], second[1], second[0]}
    assert chains[0] not in deleted
    assert [s.repo_tags for s in eng.images()] == [("busybox:latest",)]
    assert eng.check().ok


def test_rmi_conflicts(eng, scene):
    base, first, second = scene
    uses = [ContainerUse("9410576a70580e52ef8d76919beba18b09e38caba711e851248efbb261b35200", base, False)]
    with pytest.raises(Conflict) as e:
        delete_image(eng.store, "busybox", uses=uses)
    assert str(e.value) == ('conflict: unable to remove repository reference "busybox" (must force) - '
                            f"container 9410576a7058 is using its referenced image {base[7:19]}")
    with pytest.raises(Conflict) as e:
        eng.remove_image(second[2][7:19])
    assert str(e.value).endswith("(cannot be forced) - image has dependent child images")
    eng.tag("static_web", "other:tag")
    with pytest.raises(Conflict) as e:
        eng.remove_image(second[-1][7:19])
    assert "(must be forced) - image is referenced in one or more repositories" in str(e.value)
    records = eng.remove_image(second[-1][7:19], force=True)
    assert {r.value for r in records if r.action == "Untagged"} == {"static_web:latest", "other:tag"}
    with pytest.raises(ImageNotFound) as e:
        eng.remove_image("nosuchimage")
    assert str(e.value) == "No such image: nosuchimage"


def test_rmi_of_one_of_two_tags_only_untags(eng, scene):
    base, _, _ = scene
    eng.tag("busybox", "mine:v1")
    assert [(r.action, r.value) for r in eng.remove_image("mine:v1")] == [("Untagged", "mine:v1")]
    assert eng.image_id("busybox") == base


def test_history_walks_parents_and_marks_missing(eng, scene):
    base, first, second = scene
    rows = eng.history("static_web")
    assert [r.id for r in rows] == [second[4], second[3], second[2], second[1], second[0], base]
    assert rows[0].created_by.startswith('/bin/sh -c #(nop)  CMD') and rows[0].size == 0
    assert rows[2].size == len(b"hello\n")
    assert rows[-1].comment == "Imported from -"
    # an image without its parents locally (as after a pull) shows <missing> below itself
    eng.store.delete_image_row(second[3])
    rows = eng.history("static_web")
    assert [r.id for r in rows][:2] == [second[4], "<missing>"]
    assert all(r.id == "<missing>" for r in rows[1:])


def test_inspect_is_shaped_like_docker(eng, scene):
    _, _, second = scene
    info = eng.inspect_image("static_web")
    assert info["Id"] == second[-1] and info["RepoTags"] == ["static_web:latest"]
    assert info["Parent"] == second[3]
    assert list(info["Config"])[:5] == ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout"]
    assert info["Config"]["Cmd"] == ["cat", "/var/www/html/index.html"]
    assert info["RootFS"]["Layers"] == list(load_config(eng.store, second[-1]).diff_ids)
    assert info["Size"] == sum(eng.store.layer(d).size for d in info["RootFS"]["Layers"])


def test_short_id_and_ambiguity(eng, scene):
    base, _, _ = scene
    assert eng.image_id(base[7:11]) == base
    assert eng.image_id(base) == base and eng.image_id(base[7:]) == base
    with pytest.raises(ImageNotFound):
        eng.image_id("0" * 64)


def test_image_prune_removes_dangling_only(eng, scene):
    base, first, second = scene
    result = eng.prune_images()
    deleted = {r.value for r in result.records}
    assert first[-1] in deleted and first[3] in deleted
    assert result.reclaimed == len(b"<h1>v1</h1>\n")
    assert {s.id for s in eng.images()} == {base, second[-1]}
    assert eng.check().ok
    result = eng.prune_images(all=True)
    assert eng.images() == [] and eng.check().ok


def test_events_are_emitted(eng, scene):
    seen = []
    unsubscribe = eng.subscribe(seen.append)
    eng.tag("busybox", "x:y")
    eng.remove_image("x:y")
    unsubscribe()
    eng.tag("busybox", "x:z")
    assert [(e.type, e.action, e.ref) for e in seen] == [("image", "tag", "x:y"), ("image", "untag", None)]
