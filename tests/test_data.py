"""Tests for lth.data: IDX parsing, checksums, missing files, data root, the fixed MNIST split;
CIFAR-10 in both official formats, its download and the partial test set opt-in."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from lth import data
from lth.data import cifar10, files, mnist

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
    """Tiny MNIST-shaped IDX files under tmp_path; lth.data.mnist's file table patched to match."""

    def make(gz: bool = True) -> tuple[pathlib.Path, dict[str, torch.Tensor]]:
        arrays = synthetic_arrays()
        table = {}
        for key, spec in mnist.MNIST_FILES.items():
            name = spec.name + (".gz" if gz else "")
            payload = write_idx(tmp_path / "MNIST" / "raw" / name, arrays[key])
            md5 = hashlib.md5(payload).hexdigest()
            shape = tuple(arrays[key].shape)
            table[key] = (
                mnist.IdxFile(spec.name, md5, shape, spec.md5_raw)
                if gz
                else mnist.IdxFile(spec.name, spec.md5_gz, shape, md5)
            )
        monkeypatch.setattr(mnist, "MNIST_FILES", table)
        monkeypatch.setattr(mnist, "MNIST_NUM_VAL", N_VAL)
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


def test_corrupted_uncompressed_mnist_file_is_rejected_with_its_name_and_md5(synthetic_mnist):
    """An uncompressed file is checked against the md5 of the official file's contents: a test
    set whose labels were all set to 0 must not train (it once gave 10.3% under the real key)."""
    root, arrays = synthetic_mnist(gz=False)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, torch.zeros_like(arrays["test_labels"]))
    with pytest.raises(data.ChecksumError) as info:
        data.load_mnist(root, download=False)
    message = str(info.value)
    assert str(labels) in message and data.md5sum(labels) in message
    assert mnist.MNIST_FILES["test_labels"].md5_raw in message


def test_official_uncompressed_md5s_are_those_of_the_gunzipped_official_files():
    raw = pathlib.Path(os.environ.get(data.DATA_ENV, "data")) / "MNIST" / "raw"
    if not all((raw / f"{spec.name}.gz").is_file() for spec in data.MNIST_FILES.values()):
        pytest.skip("the official MNIST files are not under $LTH_DATA")
    for spec in data.MNIST_FILES.values():
        content = gzip.decompress((raw / f"{spec.name}.gz").read_bytes())
        assert hashlib.md5(content).hexdigest() == spec.md5_raw, spec.name


def test_dataset_identity_names_every_file_read_and_its_md5(synthetic_mnist):
    root, _ = synthetic_mnist(gz=True)
    identity = data.load_mnist(root, download=False).identity()
    assert identity["dataset"] == "mnist" and identity["n_test"] == N_TEST
    assert identity["files"] == {
        f"{spec.name}.gz": spec.md5_gz for spec in mnist.MNIST_FILES.values()
    }
    assert identity["test_complete"]


def test_broken_symlink_is_reported_and_never_deleted(tmp_path, offline_downloads):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    link = raw / f"{data.MNIST_FILES['train_images'].name}.gz"
    link.symlink_to(tmp_path / "elsewhere" / "train-images.gz")
    with pytest.raises(data.DatasetNotFoundError, match="broken symbolic link"):
        data.load_mnist(tmp_path, download=True)
    assert link.is_symlink()  # the user's link is still there


def test_missing_files_message(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path) in message and data.DATA_ENV in message
    for spec in data.MNIST_FILES.values():
        assert spec.name in message and spec.md5_gz in message
    assert isinstance(info.value, FileNotFoundError)


@pytest.fixture
def offline_downloads(monkeypatch) -> list[str]:
    """Make every download fail as on a machine without network; returns the URLs tried."""
    urls: list[str] = []

    def offline(url: str, dst: pathlib.Path) -> None:
        urls.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(files, "_download_url", offline)
    return urls


def test_failed_download_is_reported(tmp_path, offline_downloads):
    urls = offline_downloads
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
        dst.write_bytes((source / "MNIST" / "raw" / url.rsplit("/", 1)[-1]).read_bytes())

    monkeypatch.setattr(files, "_download_url", fake)
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


def test_load_dataset_passes_partial_test_to_mnist(synthetic_mnist):
    root, _ = synthetic_mnist()
    ds = data.load_dataset("mnist", root, download=False, partial_test=True)
    assert ds.test_complete and len(ds.test) == N_TEST


# ----------------------------------------------------------------------------------------------
# CIFAR-10: tiny batches of C_RECORDS records (lth.data.cifar10's record count and md5 tables
# patched, in the module that looks them up).

C_RECORDS, C_VAL, C_PARTIAL = 8, 6, 3
C_TOTAL = 5 * C_RECORDS


class Py2Pickler(pickle._Pickler):
    """Pickles like Python 2's cPickle did for the official python batches: every str and bytes
    as a Python 2 string (BINSTRING), numpy under its old module name ``numpy.core``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    def save_global(self, obj, name=None) -> None:
        name = name or obj.__name__
        module = pickle.whichmodule(obj, name).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string
    dispatch[type] = save_global


def py2_pickle(obj: object) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def cifar_arrays(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)


def cifar_bin_bytes(images: torch.Tensor, labels: torch.Tensor) -> bytes:
    records = torch.cat([labels[:, None], images.reshape(len(labels), -1)], dim=1)
    return records.numpy().tobytes()


def cifar_py_bytes(images: torch.Tensor, labels: torch.Tensor) -> bytes:
    entry = {
        "batch_label": "synthetic batch",
        "labels": [int(v) for v in labels],
        "data": images.reshape(len(labels), -1).numpy().copy(),
        "filenames": [f"img_{i}.png" for i in range(len(labels))],
    }
    return py2_pickle(entry)


BATCHES = (*data.CIFAR10_TRAIN_BATCHES, data.CIFAR10_TEST_BATCH)


def cifar_md5_table(fmt: str) -> str:
    return "CIFAR10_BIN_MD5" if fmt == "bin" else "CIFAR10_PY_MD5"


@pytest.fixture
def synthetic_cifar(tmp_path, monkeypatch):
    """Write a tiny CIFAR-10 in one official format; patch lth.data.cifar10's record count and
    md5 table.

    ``make(fmt, root, seed, short={batch: n})`` writes batch ``batch`` with only ``n`` records
    (its md5 is patched in only if ``patch_short``). Returns (root, train images, train labels,
    test images, test labels) as written, training batches concatenated.
    """
    monkeypatch.setattr(cifar10, "CIFAR10_RECORDS_PER_BATCH", C_RECORDS)
    monkeypatch.setattr(cifar10, "CIFAR10_NUM_VAL", C_VAL)

    def make(fmt="bin", root=None, seed=0, short=None, patch_short=False):
        root = tmp_path if root is None else root
        folder = root / (data.CIFAR10_BIN_DIR if fmt == "bin" else data.CIFAR10_PY_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        encode = cifar_bin_bytes if fmt == "bin" else cifar_py_bytes
        table = dict(getattr(cifar10, cifar_md5_table(fmt)))
        written = {}
        for i, batch in enumerate(BATCHES):
            images, labels = cifar_arrays(C_RECORDS, seed=100 * seed + i)
            name = batch + (".bin" if fmt == "bin" else "")
            table[name] = hashlib.md5(encode(images, labels)).hexdigest()
            n = (short or {}).get(batch, C_RECORDS)
            payload = encode(images[:n], labels[:n])
            (folder / name).write_bytes(payload)
            if n != C_RECORDS and patch_short:
                table[name] = hashlib.md5(payload).hexdigest()
            written[batch] = (images[:n], labels[:n])
        monkeypatch.setattr(cifar10, cifar_md5_table(fmt), table)
        train_x = torch.cat([written[b][0] for b in data.CIFAR10_TRAIN_BATCHES])
        train_y = torch.cat([written[b][1] for b in data.CIFAR10_TRAIN_BATCHES])
        return root, train_x, train_y, *written[data.CIFAR10_TEST_BATCH]

    return make


@pytest.fixture
def no_partial_env(monkeypatch):
    monkeypatch.delenv(data.PARTIAL_TEST_ENV, raising=False)


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_load_cifar10_synthetic(synthetic_cifar, fmt, no_partial_env):
    root, train_x, train_y, test_x, test_y = synthetic_cifar(fmt)
    ds = data.load_cifar10(root, download=False)
    assert ds.name == "cifar10" and ds.num_classes == 10 and ds.test_complete
    assert (len(ds.train), len(ds.val), len(ds.test)) == (C_TOTAL - C_VAL, C_VAL, C_RECORDS)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (3, 32, 32) and split.x.is_contiguous()
    train_idx, val_idx = data.split_indices(C_TOTAL, C_VAL, data.SPLIT_SEED)
    assert torch.equal(ds.train.x, train_x[train_idx])
    assert torch.equal(ds.train.y, train_y[train_idx].long())
    assert torch.equal(ds.val.x, train_x[val_idx])
    assert torch.equal(ds.val.y, train_y[val_idx].long())
    assert torch.equal(ds.test.x, test_x) and torch.equal(ds.test.y, test_y.long())
    # Cached per root and options, shared with the registry; clear_cache forgets it.
    assert data.load_dataset("cifar10", root, download=False) is ds
    data.clear_cache()
    assert data.load_cifar10(root, download=False) is not ds


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_cifar10_record_layout(synthetic_cifar, fmt):
    """Label byte, then the red, green and blue planes, each row-major: built by hand here."""
    red = bytes(i % 251 for i in range(1024))
    record_pixels = red + bytes([100]) * 1024 + bytes([200]) * 1024
    root, *_ = synthetic_cifar(fmt)
    folder = root / (data.CIFAR10_BIN_DIR if fmt == "bin" else data.CIFAR10_PY_DIR)
    name = "test_batch" + (".bin" if fmt == "bin" else "")
    if fmt == "bin":
        payload = (bytes([7]) + record_pixels) * C_RECORDS
    else:
        pixels = np.frombuffer(record_pixels * C_RECORDS, dtype=np.uint8).reshape(C_RECORDS, -1)
        payload = py2_pickle({"data": pixels, "labels": [7] * C_RECORDS})
    (folder / name).write_bytes(payload)
    table = getattr(cifar10, cifar_md5_table(fmt))
    table[name] = hashlib.md5(payload).hexdigest()
    ds = data.load_cifar10(root, download=False, partial_test=False)
    x = ds.test.x[0]
    assert ds.test.y.tolist() == [7] * C_RECORDS
    assert x[0, 0, :4].tolist() == [0, 1, 2, 3]  # red, row 0
    assert int(x[0, 1, 0]) == 32 and int(x[0, 7, 27]) == (7 * 32 + 27) % 251  # rows of 32
    assert set(x[1].unique().tolist()) == {100} and set(x[2].unique().tolist()) == {200}


def test_cifar10_binary_preferred(synthetic_cifar, tmp_path):
    _, bin_x, *_ = synthetic_cifar("bin", seed=1)
    _, py_x, *_ = synthetic_cifar("py", seed=2)
    assert not torch.equal(bin_x, py_x)
    ds = data.load_cifar10(tmp_path, download=False)
    assert torch.equal(torch.cat([ds.train.x, ds.val.x]).sort(dim=0).values, bin_x.sort(0).values)
    # An incomplete binary folder is passed over for a complete python one.
    (tmp_path / data.CIFAR10_BIN_DIR / "data_batch_4.bin").unlink()
    data.clear_cache()
    ds = data.load_cifar10(tmp_path, download=False)
    assert torch.equal(torch.cat([ds.train.x, ds.val.x]).sort(dim=0).values, py_x.sort(0).values)


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_cifar10_checksum_mismatch(synthetic_cifar, fmt):
    root, *_ = synthetic_cifar(fmt)
    folder = root / (data.CIFAR10_BIN_DIR if fmt == "bin" else data.CIFAR10_PY_DIR)
    name = "data_batch_3" + (".bin" if fmt == "bin" else "")
    path = folder / name
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1  # one flipped pixel bit: same size and structure, different md5
    path.write_bytes(bytes(raw))
    official = getattr(cifar10, cifar_md5_table(fmt))[name]
    with pytest.raises(data.ChecksumError) as info:
        data.load_cifar10(root, download=False, partial_test=True)
    message = str(info.value)
    assert name in message and official in message
    assert hashlib.md5(raw).hexdigest() in message


def test_cifar10_full_size_test_batch_must_match_md5(synthetic_cifar):
    root, *_ = synthetic_cifar("bin")
    cifar10.CIFAR10_BIN_MD5["test_batch.bin"] = "0" * 32
    with pytest.raises(data.ChecksumError, match="full-size test batch"):
        data.load_cifar10(root, download=False, partial_test=True)


def test_cifar10_missing_files_message(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_cifar10(tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / data.CIFAR10_BIN_DIR) in message
    assert str(tmp_path / data.CIFAR10_PY_DIR) in message
    for table in (data.CIFAR10_BIN_MD5, data.CIFAR10_PY_MD5):
        for name, md5 in table.items():
            assert f"{name}  (md5 {md5})" in message
    assert data.DATA_ENV in message and "download=False" in message


def test_cifar10_failed_download_is_reported(tmp_path, offline_downloads):
    urls = offline_downloads
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_cifar10(tmp_path, download=True)
    message = str(info.value)
    assert urls == [data.CIFAR10_URL]
    assert "network unreachable" in message and data.CIFAR10_URL in message
    assert data.DATA_ENV in message and "data_batch_1.bin" in message
    assert not list(tmp_path.glob("*.tar.gz"))


def test_cifar10_download(synthetic_cifar, tmp_path, monkeypatch):
    source, train_x, _, test_x, _ = synthetic_cifar("bin", root=tmp_path / "source")
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as tar:
        tar.add(source / data.CIFAR10_BIN_DIR, arcname=data.CIFAR10_BIN_DIR)
        evil = tarfile.TarInfo(f"{data.CIFAR10_BIN_DIR}/../../evil.txt")  # must not escape
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo(f"{data.CIFAR10_BIN_DIR}/link")  # links are never extracted
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    tarball = tar_buf.getvalue()
    monkeypatch.setattr(cifar10, "CIFAR10_TAR_MD5", hashlib.md5(tarball).hexdigest())
    root = tmp_path / "root"
    urls = []

    def corrupt(url: str, dst: pathlib.Path) -> None:
        dst.write_bytes(b"not the tarball")

    monkeypatch.setattr(files, "_download_url", corrupt)
    with pytest.raises(data.DatasetNotFoundError, match="ChecksumError"):
        data.load_cifar10(root, download=True)

    def fake(url: str, dst: pathlib.Path) -> None:
        urls.append(url)
        dst.write_bytes(tarball)

    monkeypatch.setattr(files, "_download_url", fake)
    ds = data.load_cifar10(root, download=True, partial_test=False)
    assert urls == [data.CIFAR10_URL]
    assert torch.equal(ds.test.x, test_x) and len(ds.train) + len(ds.val) == C_TOTAL
    assert sorted(p.name for p in (root / data.CIFAR10_BIN_DIR).iterdir()) == sorted(
        cifar10.CIFAR10_BIN_MD5
    )
    assert not (tmp_path / "evil.txt").exists() and not list(root.glob("*.tar.gz"))


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_cifar10_partial_test_opt_in(synthetic_cifar, fmt, monkeypatch, no_partial_env):
    root, _, _, test_x, test_y = synthetic_cifar(fmt, short={"test_batch": C_PARTIAL})
    with pytest.raises(data.PartialTestSetError) as info:
        data.load_cifar10(root, download=False)
    message = str(info.value)
    assert f"holds {C_PARTIAL} of {C_RECORDS} records" in message
    assert "partial_test=True" in message and f"{data.PARTIAL_TEST_ENV}=1" in message
    assert isinstance(info.value, ValueError)

    ds = data.load_cifar10(root, download=False, partial_test=True)
    assert not ds.test_complete and len(ds.test) == C_PARTIAL
    assert torch.equal(ds.test.x, test_x) and torch.equal(ds.test.y, test_y.long())
    assert len(ds.train) + len(ds.val) == C_TOTAL

    monkeypatch.setenv(data.PARTIAL_TEST_ENV, "1")
    by_env = data.load_dataset("cifar10", root, download=False)
    assert not by_env.test_complete and len(by_env.test) == C_PARTIAL
    with pytest.raises(data.PartialTestSetError):  # the keyword wins over the variable
        data.load_cifar10(root, download=False, partial_test=False)
    monkeypatch.setenv(data.PARTIAL_TEST_ENV, "maybe")
    with pytest.raises(ValueError, match=data.PARTIAL_TEST_ENV):
        data.load_cifar10(root, download=False)


def test_cifar10_partial_test_structure_checked(synthetic_cifar):
    root, *_ = synthetic_cifar("bin", short={"test_batch": C_PARTIAL})
    path = root / data.CIFAR10_BIN_DIR / "test_batch.bin"
    good = path.read_bytes()
    path.write_bytes(good[:-1])  # not a whole number of records
    with pytest.raises(data.ChecksumError, match="3,073-byte records"):
        data.load_cifar10(root, download=False, partial_test=True)
    path.write_bytes(bytes([10]) + good[1:])  # label 10 does not exist
    with pytest.raises(data.ChecksumError, match="labels span"):
        data.load_cifar10(root, download=False, partial_test=True)


@pytest.mark.parametrize("patch_short", [False, True])
def test_cifar10_short_training_batch_always_fails(synthetic_cifar, patch_short):
    root, *_ = synthetic_cifar("bin", short={"data_batch_2": C_PARTIAL}, patch_short=patch_short)
    error = ValueError if patch_short else data.ChecksumError
    with pytest.raises(error, match="data_batch_2.bin") as info:
        data.load_cifar10(root, download=False, partial_test=True)
    assert not isinstance(info.value, data.PartialTestSetError)
    assert f"{C_RECORDS}" in str(info.value)


def test_cifar10_python_batch_cannot_run_code(synthetic_cifar):
    root, *_ = synthetic_cifar("py")
    path = root / data.CIFAR10_PY_DIR / "data_batch_1"
    payload = pickle.dumps({b"data": os.getcwd, b"labels": []}, protocol=2)
    path.write_bytes(payload)
    cifar10.CIFAR10_PY_MD5["data_batch_1"] = hashlib.md5(payload).hexdigest()
    with pytest.raises(ValueError, match="not allowed"):
        data.load_cifar10(root, download=False)


def _real_cifar_root() -> pathlib.Path | None:
    """``$LTH_DATA`` (or ./data), else the shared data folder next to the repository."""
    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    for root in (data.data_root(), shared):
        folder = root / data.CIFAR10_BIN_DIR
        if all((folder / name).is_file() for name in data.CIFAR10_BIN_MD5):
            return root
    return None


@pytest.mark.skipif(_real_cifar_root() is None, reason="CIFAR-10 binary version not found")
def test_real_cifar10_split():
    root = _real_cifar_root()
    n_test = (root / data.CIFAR10_BIN_DIR / "test_batch.bin").stat().st_size // 3073
    if n_test < 10_000:
        with pytest.raises(data.PartialTestSetError, match=f"holds {n_test:,} of 10,000 records"):
            data.load_cifar10(root, download=False, partial_test=False)
    ds = data.load_cifar10(root, download=False, partial_test=True)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (45_000, 5_000, n_test)
    assert ds.test_complete == (n_test == 10_000)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.shape[1:] == (3, 32, 32) and split.x.dtype == torch.uint8
        assert set(split.y.unique().tolist()) == set(range(10))
    # The official training set has 5,000 images of each class.
    counts = torch.bincount(torch.cat([ds.train.y, ds.val.y]), minlength=10)
    assert counts.tolist() == [5_000] * 10
