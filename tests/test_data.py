"""MovieLens loader: integrity of the encoding, erratum E4's join, verification and download paths."""

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fmedu.errors import DataError
from fmedu.movielens import data


def _data_folder() -> Path:
    folder = os.environ.get("FMEDU_DATA")
    if folder and (Path(folder) / "u.data").is_file():
        return Path(folder)
    if os.environ.get("CI"):
        pytest.fail("FMEDU_DATA must point at ml-100k in CI (.ci/run exports ../shared/data/ml-100k)")
    pytest.skip("MovieLens 100k not available: set FMEDU_DATA")


@pytest.fixture(scope="module")
def folder():
    return _data_folder()


@pytest.fixture(scope="module")
def correct(folder):
    return data.load_movielens(folder)


@pytest.fixture(scope="module")
def published(folder):
    return data.load_movielens(folder, join="published")


def test_counts(correct):
    assert len(correct) == 100_000
    assert correct.n_features == 2728
    assert len(np.unique(correct.user)) == 943 and len(np.unique(correct.item)) == 1682
    assert correct.nnz.min() == 6 and correct.nnz.max() == 11
    assert int((correct.y > 0).sum()) == 21_201  # 21.2% positive
    assert set(np.unique(correct.y)) == {-1.0, 1.0}


def test_encoding_layout(correct):
    idx, nnz = correct.idx, correct.nnz
    present = idx >= 0
    assert (present.sum(1) == nnz).all()
    assert (present[:, :-1] | ~present[:, 1:]).all()  # padding only on the right
    inside = np.where(present, idx, np.iinfo(np.int64).max)
    assert (np.diff(inside, axis=1)[present[:, 1:]] > 0).all()  # strictly increasing: distinct, sorted
    assert idx.max() < correct.n_features
    names = correct.feature_names
    fields = [name.split("=")[0] for name in names]
    assert [fields.count(f) for f in ("user", "movie", "age", "gender", "occupation", "genre")] == [
        943,
        1682,
        61,
        2,
        21,
        19,
    ]
    assert (idx[:, 0] == correct.user).all() and (idx[:, 1] == 943 + correct.item).all()


def test_first_rating_features(correct, folder):
    first = (folder / "u.data").read_text().split("\n")[0].split("\t")
    user_line = (folder / "u.user").read_text().split("\n")[int(first[0]) - 1].split("|")
    names = [correct.feature_names[i] for i in correct.idx[0, : correct.nnz[0]]]
    assert names[:5] == [
        f"user={first[0]}",
        f"movie={first[1]}",
        f"age={user_line[1]}",
        f"gender={user_line[2]}",
        f"occupation={user_line[3]}",
    ]
    assert correct.y[0] == (1.0 if int(first[2]) >= 5 else -1.0)


def test_published_join_is_shifted(correct, published):
    """Erratum E4: 169 ratings dropped; each kept rating gets the next user's and next movie's features."""
    assert len(published) == 99_831
    dropped = (correct.user == 942) | (correct.item == 1681)
    assert int(dropped.sum()) == 169
    kept = correct.subset(np.nonzero(~dropped)[0])
    assert (published.y == kept.y).all()
    assert (published.idx[:, 0] == kept.idx[:, 0] + 1).all()  # the next user's id feature
    assert (published.idx[:, 1] == kept.idx[:, 1] + 1).all()  # the next movie's id feature
    # demographics of the rating's user differ from what the published join attaches
    assert (published.idx[:, 2:5] != kept.idx[:, 2:5]).any(1).mean() > 0.5


def test_validation_split_is_fixed_and_disjoint():
    a_train, a_val = data.validation_split(1000, 0.2, seed=3)
    b_train, b_val = data.validation_split(1000, 0.2, seed=3)
    assert (a_train == b_train).all() and (a_val == b_val).all()
    assert len(a_val) == 200 and len(np.intersect1d(a_train, a_val)) == 0
    assert len(np.union1d(a_train, a_val)) == 1000
    assert not (data.validation_split(1000, 0.2, seed=4)[1] == a_val).all()
    with pytest.raises(ValueError, match="fraction"):
        data.validation_split(10, 1.5)


def test_missing_folder_names_variable_and_download(tmp_path, monkeypatch):
    monkeypatch.setenv("FMEDU_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="FMEDU_DATA") as info:
        data.load_movielens()
    assert "download=True" in str(info.value) and data.MOVIELENS_URL in str(info.value)


def test_checksum_mismatch_is_reported(folder, tmp_path):
    copy = tmp_path / "ml-100k"
    copy.mkdir()
    for name in data.SHA256:
        shutil.copy(folder / name, copy / name)
    with open(copy / "u.data", "a") as fh:
        fh.write("1\t1\t5\t0\n")
    with pytest.raises(DataError, match="u.data is corrupted"):
        data.load_movielens(copy)
    (copy / "u.item").unlink()
    with pytest.raises(DataError, match="lacks u.item"):
        data.verify_files(copy)


def _zip_of(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in data.SHA256:
            zf.write(folder / name, f"ml-100k/{name}")
    return path


def test_download_unpacks_and_verifies(folder, tmp_path):
    archive = _zip_of(folder, tmp_path / "ml-100k.zip")
    dest = data.download_movielens(tmp_path / "cache" / "ml-100k", url=archive.as_uri(), progress=False)
    data.verify_files(dest)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ml-100k"]  # no temporary leftovers
    assert len(data.load_movielens(dest)) == 100_000


def test_failed_download_leaves_nothing(folder, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:  # right names, wrong contents
        for name in data.SHA256:
            zf.writestr(f"ml-100k/{name}", "not the data\n")
    with pytest.raises(DataError, match="corrupted"):
        data.download_movielens(tmp_path / "cache" / "ml-100k", url=bad.as_uri(), progress=False)
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(DataError, match="could not download"):
        data.download_movielens(tmp_path / "cache" / "ml-100k", url=(tmp_path / "absent.zip").as_uri(), progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_bad_join_name():
    with pytest.raises(ValueError, match="join must be"):
        data.load_movielens(join="shifted")


def test_split_rows_is_fixed_disjoint_and_extends_the_validation_split():
    train, val, test = data.split_rows(1000, (0.8, 0.1, 0.1), seed=3)
    again = data.split_rows(1000, (0.8, 0.1, 0.1), seed=3)
    assert all((a == b).all() for a, b in zip((train, val, test), again))
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert len(np.union1d(np.union1d(train, val), test)) == 1000  # a partition
    # the validation rows are those of validation_split with the same seed and fraction
    assert (val == data.validation_split(1000, 0.1, seed=3)[1]).all()
    with pytest.raises(ValueError, match="fractions"):
        data.split_rows(10, (0.8, 0.3, 0.1))
