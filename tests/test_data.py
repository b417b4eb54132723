"""Tests for lth.data: IDX parsing, checksums, missing files, data root, the fixed MNIST split."""

from __future__ import annotations

import gzip
import hashlib
import pathlib

import pytest
import torch

from lth import data

N_TRAIN, N_TEST, N_VAL = 20, 6, 4


def idx_bytes(array: torch.Tensor) -> bytes:
    """Encode a uint8 tensor as an IDX file."""
    header = bytes([0, 0, 0x08, array.dim()])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.numpy().tobytes()


def write_idx(path: pathlib.Path, array: torch.Tensor) -> bytes:
    """Write ``array`` as IDX (gzipped if ``path`` ends in .gz); return the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return payload


def synthetic_arrays(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "train_images": torch.randint(0, 256, (N_TRAIN, 28, 28), generator=g, dtype=torch.uint8),
        "train_labels": torch.randint(0, 10, (N_TRAIN,), generator=g, dtype=torch.uint8),
        "test_images": torch.randint(0, 256, (N_TEST, 28, 28), generator=g, dtype=torch.uint8),
        "test_labels": torch.randint(0, 10, (N_TEST,), generator=g, dtype=torch.uint8),
    }


@pytest.fixture(autouse=True)
def fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def synthetic_mnist(tmp_path, monkeypatch):
    """Tiny MNIST-shaped IDX files under tmp_path; the module's file table patched to match."""

    def make(gz: bool = True) -> tuple[pathlib.Path, dict[str, torch.Tensor]]:
        arrays = synthetic_arrays()
        table = {}
        for key, spec in data.MNIST_FILES.items():
            name = spec.name + (".gz" if gz else "")
            payload = write_idx(tmp_path / "MNIST" / "raw" / name, arrays[key])
            md5 = hashlib.md5(payload).hexdigest() if gz else spec.md5_gz
            table[key] = data.IdxFile(spec.name, md5, tuple(arrays[key].shape))
        monkeypatch.setattr(data, "MNIST_FILES", table)
        monkeypatch.setattr(data, "MNIST_NUM_VAL", N_VAL)
        return tmp_path, arrays

    return make


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_read_idx_roundtrip(tmp_path, suffix):
    array = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    write_idx(path, array)
    out = data.read_idx(path)
    assert out.dtype == torch.uint8
    assert torch.equal(out, array)


def test_read_idx_rejects_bad_magic_and_size(tmp_path):
    good = idx_bytes(torch.zeros(3, 2, dtype=torch.uint8))
    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(b"\x00\x00\x0d" + good[3:])  # 0x0D = float, not accepted
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad_magic)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good[:-1])
    with pytest.raises(ValueError, match="implies"):
        data.read_idx(truncated)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_synthetic(synthetic_mnist, gz):
    root, arrays = synthetic_mnist(gz=gz)
    ds = data.load_mnist(root, download=False)
    assert ds.name == "mnist" and ds.num_classes == 10
    assert (len(ds.train), len(ds.val), len(ds.test)) == (N_TRAIN - N_VAL, N_VAL, N_TEST)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 28, 28)
    train_idx, val_idx = data.split_indices(N_TRAIN, N_VAL)
    assert torch.equal(ds.train.x[:, 0], arrays["train_images"][train_idx])
    assert torch.equal(ds.val.y, arrays["train_labels"][val_idx].long())
    assert torch.equal(ds.test.x[:, 0], arrays["test_images"])
    assert torch.equal(ds.test.y, arrays["test_labels"].long())


def test_load_is_cached_and_registry(synthetic_mnist):
    root, _ = synthetic_mnist()
    first = data.load_mnist(root, download=False)
    assert data.load_dataset("mnist", root, download=False) is first
    with pytest.raises(ValueError, match="mnist"):
        data.load_dataset("imagenet", root)


def test_checksum_mismatch(tmp_path):
    # Official names, official md5 table, but synthetic content: every .gz mismatches.
    arrays = synthetic_arrays()
    for key, spec in data.MNIST_FILES.items():
        write_idx(tmp_path / "MNIST" / "raw" / f"{spec.name}.gz", arrays[key])
    with pytest.raises(data.ChecksumError) as info:
        data.load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert "-idx" in message and ".gz" in message
    assert any(spec.md5_gz in message for spec in data.MNIST_FILES.values())


def test_missing_files_message(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path) in message and data.DATA_ENV in message
    for spec in data.MNIST_FILES.values():
        assert spec.name in message and spec.md5_gz in message
    assert isinstance(info.value, FileNotFoundError)


def test_failed_download_is_reported(tmp_path, monkeypatch):
    urls = []

    def offline(url: str, dst: pathlib.Path) -> None:
        urls.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_download_url", offline)
    with pytest.raises(data.DatasetNotFoundError, match="network unreachable"):
        data.load_mnist(tmp_path, download=True)
    assert urls[0].startswith(data.MNIST_MIRRORS[0])
    assert len(urls) == len(data.MNIST_MIRRORS)  # gives up after the first file fails


def test_download_from_second_mirror(synthetic_mnist, tmp_path, monkeypatch):
    source, _ = synthetic_mnist()
    root = tmp_path / "empty_root"

    def fake(url: str, dst: pathlib.Path) -> None:
        if url.startswith(data.MNIST_MIRRORS[0]):
            dst.write_bytes(b"corrupt")  # wrong md5: must be discarded, next mirror tried
            return
        dst.write_bytes((source / "MNIST" / "raw" / dst.name).read_bytes())

    monkeypatch.setattr(data, "_download_url", fake)
    ds = data.load_mnist(root, download=True)
    assert len(ds.test) == N_TEST


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.data_root("elsewhere") == pathlib.Path("elsewhere")
    monkeypatch.delenv(data.DATA_ENV)
    assert data.data_root() == pathlib.Path("data")


def test_env_var_used_for_loading(synthetic_mnist, monkeypatch):
    root, _ = synthetic_mnist()
    monkeypatch.setenv(data.DATA_ENV, str(root))
    assert len(data.load_dataset("mnist", download=False).test) == N_TEST


def test_to_float_and_split_indices():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(data.to_float(x), torch.tensor([0.0, 0.2, 1.0]))
    assert data.to_float(x).dtype == torch.float32
    with pytest.raises(TypeError):
        data.to_float(x.float())
    train_idx, val_idx = data.split_indices(100, 10)
    assert torch.equal(torch.cat([train_idx, val_idx]).sort().values, torch.arange(100))
    assert torch.equal(train_idx, train_idx.sort().values)


def _real_mnist_available() -> bool:
    raw = data.data_root() / "MNIST" / "raw"
    return all(
        (raw / f"{spec.name}.gz").is_file() or (raw / spec.name).is_file()
        for spec in data.MNIST_FILES.values()
    )


@pytest.mark.skipif(not _real_mnist_available(), reason="official MNIST not under $LTH_DATA")
def test_real_mnist_split():
    ds = data.load_mnist(download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (55_000, 5_000, 10_000)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.shape[1:] == (1, 28, 28) and split.x.dtype == torch.uint8
        assert int(split.x.min()) == 0 and int(split.x.max()) == 255
        assert set(split.y.unique().tolist()) == set(range(10))
    train_idx, val_idx = data.split_indices(60_000, 5_000)
    assert len(set(train_idx.tolist()) & set(val_idx.tolist())) == 0
    data.clear_cache()
    again = data.load_mnist(download=False)
    assert again is not ds
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.train.y, ds.train.y)
