"""MovieLens loader: integrity of the encoding, erratum E4's join, verification and download paths."""

import hashlib
import http.server
import io
import os
import shutil
import socket
import threading
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fmedu.errors import DataError
from fmedu.movielens import data


def _data_folder() -> Path:
    """The data folder: $FMEDU_DATA, or the user cache (downloaded on first use when nothing is
    configured). Missing under CI is a failure; elsewhere (offline, no copy) a skip with the reason."""
    try:
        return data.load_movielens().root
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"MovieLens 100k must be available in CI (.ci/run sets FMEDU_DATA): {exc}")
        pytest.skip(f"MovieLens 100k not available: {exc}")


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
    """Erratum E4 exactly as the blog's loader does it: ids the rating's own, side features of the
    next user and the next movie, the 169 ratings of user 943 or movie 1682 dropped."""
    assert len(published) == 99_831
    dropped = (correct.user == 942) | (correct.item == 1681)
    assert int(dropped.sum()) == 169
    assert published.feature_names == correct.feature_names and published.n_features == 2728
    kept = correct.subset(np.nonzero(~dropped)[0])
    assert (published.y == kept.y).all() and (published.rating == kept.rating).all()
    assert (published.user == kept.user).all() and (published.item == kept.item).all()
    # the one-hot ids are the rating's own ...
    assert (published.idx[:, 0] == kept.user).all()
    assert (published.idx[:, 1] == 943 + kept.item).all()
    # ... the demographics are those of the next user: the correct join's features of a rating by user u + 1
    first_by_user = {int(u): r for r, u in reversed(list(enumerate(correct.user)))}
    next_user_rows = np.array([first_by_user[int(u) + 1] for u in published.user])
    assert (published.idx[:, 2:5] == correct.idx[next_user_rows, 2:5]).all()
    # ... and the genres those of the next movie
    first_by_item = {int(m): r for r, m in reversed(list(enumerate(correct.item)))}
    next_item_rows = np.array([first_by_item[int(m) + 1] for m in published.item])
    genres = lambda ds, rows: [tuple(ds.idx[r, 5 : ds.nnz[r]]) for r in rows]
    assert genres(published, range(len(published))) == genres(correct, next_item_rows)
    assert (published.nnz == correct.nnz[next_item_rows]).all()
    # the shift changes the side features of most ratings
    assert (published.idx[:, 2:5] != kept.idx[:, 2:5]).any(1).mean() > 0.5
    assert published.join == "published"


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
    message = str(info.value)
    assert "MovieLens 100k not found: FMEDU_DATA=" in message and "lacks u.data, u.item" in message
    assert "(1) set FMEDU_DATA" in message and "(2) with network access" in message
    assert data.movielens_url() in message and "FMEDU_MOVIELENS_URL" in message  # the mirror, when one is set
    assert not (tmp_path / "nowhere").exists()  # a configured folder is never created without download=True


def test_missing_folder_names_the_mirror_when_one_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("FMEDU_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("FMEDU_MOVIELENS_URL", "https://mirror.example.org/ml-100k.zip")
    with pytest.raises(DataError) as info:
        data.load_movielens()
    assert "https://mirror.example.org/ml-100k.zip" in str(info.value)


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
    with pytest.raises(DataError, match="served a u.data that is not the MovieLens 100k file") as info:
        data.download_movielens(tmp_path / "cache" / "ml-100k", url=bad.as_uri(), progress=False)
    assert str(info.value).startswith(bad.as_uri())  # the mirror is named, not a temporary folder
    assert ".ml-100k-" not in str(info.value) and "(1) set FMEDU_DATA" in str(info.value)
    assert not (tmp_path / "cache").exists()  # the folder made for the download is gone again
    with pytest.raises(DataError, match="could not download"):
        data.download_movielens(tmp_path / "cache" / "ml-100k", url=(tmp_path / "absent.zip").as_uri(), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]


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


# --------------------------------------------------------------------------- downloads (no network: 127.0.0.1)

# a miniature ml-100k: 3 users, 4 movies, 2 genres, 6 ratings (the loader's counts are patched to match)
MINI = {
    "u.data": "1\t1\t5\t100\n1\t3\t2\t101\n2\t2\t4\t102\n2\t4\t5\t103\n3\t1\t1\t104\n3\t4\t3\t105\n",
    "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n",
    "u.item": "1|A (1995)|01-Jan-1995||u|0|1\n2|B (1995)|01-Jan-1995||u|1|1\n"
    "3|C (1996)|01-Jan-1996||u|1|0\n4|D (1997)|01-Jan-1997||u|0|0\n",
    "u.genre": "unknown|0\nAction|1\n\n",
    "u.occupation": "other\ntechnician\nwriter\n",
}


@pytest.fixture
def mini(monkeypatch):
    """The miniature data set's checksums and counts in place of the real ones."""
    monkeypatch.setattr(data, "SHA256", {n: hashlib.sha256(t.encode()).hexdigest() for n, t in MINI.items()})
    monkeypatch.setattr(data, "N_RATINGS", 6)
    monkeypatch.setattr(data, "N_USERS", 3)
    monkeypatch.setattr(data, "N_MOVIES", 4)
    return MINI


def _zip_bytes(files: dict, prefix: str = "ml-100k/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            # a fixed timestamp: with today's, the header bytes (and the repr in an error message) vary by the minute
            zf.writestr(zipfile.ZipInfo(prefix + name, date_time=(1998, 4, 1, 0, 0, 0)), text)
    return buf.getvalue()


@pytest.fixture
def server(monkeypatch):
    """An HTTP server on 127.0.0.1: ``routes[path] = (status, body)``; ``hits`` lists the requests."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    routes: dict = {}
    hits: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body = routes.get(self.path, (404, b"<html>404 Not Found</html>"))
            self.send_response(status)
            self.send_header("Content-Type", "application/zip" if body[:2] == b"PK" else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_port}", routes=routes, hits=hits)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def newcomer(tmp_path, monkeypatch):
    """A machine without a data copy: no FMEDU_DATA, an empty user cache under tmp_path."""
    monkeypatch.delenv("FMEDU_DATA", raising=False)
    monkeypatch.delenv("FMEDU_MOVIELENS_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CI", "1")  # no progress bar
    return tmp_path / "xdg" / "fmedu" / "ml-100k"


def test_newcomer_data_is_fetched_once_into_the_user_cache(mini, server, newcomer, monkeypatch):
    """A fresh machine with network and no copy: the first load downloads (FMEDU_MOVIELENS_URL names
    the mirror), checks every file and moves the folder into the cache; later loads read it."""
    server.routes["/mirror/ml-100k.zip"] = (200, _zip_bytes(mini))
    monkeypatch.setenv("FMEDU_MOVIELENS_URL", server.url + "/mirror/ml-100k.zip")
    assert data.cache_folder() == newcomer
    ds = data.require_movielens()
    assert len(ds) == 6 and ds.root == newcomer
    assert ds.n_features == 3 + 4 + 3 + 2 + 3 + 2
    assert sorted(p.name for p in newcomer.iterdir()) == sorted(mini)
    assert sorted(p.name for p in newcomer.parent.iterdir()) == ["ml-100k"]  # no temporary leftovers
    assert len(data.load_movielens(join="published")) == 6 - 3  # user 3's and movie 4's ratings dropped (E4)
    assert server.hits == ["/mirror/ml-100k.zip"]  # fetched once


def test_download_never_deletes_a_folder_it_did_not_create(mini, server, tmp_path, monkeypatch):
    """Defect 1: load_movielens(root=X, download=True), or FMEDU_DATA=X with download, deleted an
    existing folder X that lacked u.data, with everything in it."""
    server.routes["/ml-100k.zip"] = (200, _zip_bytes(mini))
    monkeypatch.setenv("FMEDU_MOVIELENS_URL", server.url + "/ml-100k.zip")
    mine = tmp_path / "my-data"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("two years of work")
    (mine / "sub" / "u.item").write_text("a file of mine")
    before = {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    with pytest.raises(DataError, match="holds other files: nothing is downloaded into it"):
        data.load_movielens(mine, download=True)
    monkeypatch.setenv("FMEDU_DATA", str(mine))
    with pytest.raises(DataError, match="holds other files: nothing is downloaded into it"):
        data.load_movielens(download=True)
    with pytest.raises(DataError, match="will not download into .*: it already exists and is not an empty folder"):
        data.download_movielens(mine)
    assert {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    assert server.hits == []
    # a new or an empty folder is filled, and only with the files the loader reads
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(data.load_movielens(empty, download=True)) == 6
    assert len(data.load_movielens(tmp_path / "new" / "ml-100k", download=True)) == 6
    assert sorted(p.name for p in (tmp_path / "new" / "ml-100k").iterdir()) == sorted(mini)


def test_download_that_is_not_a_zip_is_a_data_error(mini, server, newcomer, monkeypatch):
    """Defect 9: an HTML error page served with status 200 raised zipfile.BadZipFile."""
    server.routes["/page"] = (200, b"<!DOCTYPE html><html><body>Please log in</body></html>")
    server.routes["/cut.zip"] = (200, _zip_bytes(mini)[:300])  # a transfer cut short
    for path in ("/page", "/cut.zip"):
        monkeypatch.setenv("FMEDU_MOVIELENS_URL", server.url + path)
        with pytest.raises(DataError, match=r"did not return a zip archive \(\d+ bytes starting b'") as info:
            data.load_movielens()
        assert "(1) set FMEDU_DATA" in str(info.value)
        assert not newcomer.parent.parent.exists()  # nothing left in the cache, not even folders


def test_failed_download_leaves_no_empty_cache_folder(server, newcomer, monkeypatch):
    """Defect 13: a failed download left an empty cache folder (and a 404 must say so clearly)."""
    monkeypatch.setenv("FMEDU_MOVIELENS_URL", server.url + "/gone.zip")
    with pytest.raises(DataError, match=r"could not download http://127\.0\.0\.1:\d+/gone\.zip \(404"):
        data.load_movielens()
    assert not (newcomer.parent.parent).exists()  # $XDG_CACHE_HOME itself was not there before
    assert server.hits == ["/gone.zip"]


def test_offline_without_a_copy_is_one_clear_message(newcomer, monkeypatch):
    """Offline, no copy: one DataError (no chained traceback) naming what is missing and the two
    ways to provide it; no path that exists only on the project's own machines."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FMEDU_MOVIELENS_URL", f"http://127.0.0.1:{port}/ml-100k.zip")
    with pytest.raises(DataError) as info:
        data.require_movielens()
    message = str(info.value)
    assert message.startswith(f"could not download http://127.0.0.1:{port}/ml-100k.zip (")
    assert "(1) set FMEDU_DATA to a folder holding the unpacked ml-100k files (u.data, u.item" in message
    assert "(2) with network access, leave FMEDU_DATA unset and load again" in message
    assert str(newcomer) in message and "FMEDU_MOVIELENS_URL" in message
    assert "shared" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not newcomer.parent.parent.exists()


def test_download_takes_only_the_files_it_reads(mini, server, tmp_path, monkeypatch):
    """Extra members and path tricks in the archive never reach the disk outside the new folder."""
    files = {**mini, "README": "hello", "../../escaped.txt": "x", "/abs.txt": "y"}
    server.routes["/z.zip"] = (200, _zip_bytes(files, prefix="deep/ml-100k/"))
    dest = data.download_movielens(tmp_path / "d" / "ml-100k", url=server.url + "/z.zip", progress=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(mini)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        f"d/ml-100k/{n}" for n in mini
    )


def test_download_progress_bar(mini, server, tmp_path, capsys):
    server.routes["/z.zip"] = (200, _zip_bytes(mini))
    data.download_movielens(tmp_path / "ml-100k", url=server.url + "/z.zip", progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and f"{len(_zip_bytes(mini))}/{len(_zip_bytes(mini))}" in err


def test_download_into_an_unusable_cache_names_both_ways(folder, tmp_path):
    """A cache folder that cannot be created (here: a file stands in its place; a read-only disk
    behaves alike) gives a DataError with the path and the two ways to provide the data."""
    archive = _zip_of(folder, tmp_path / "ml-100k.zip")
    (tmp_path / "blocked").write_text("a file")
    with pytest.raises(DataError) as info:
        data.download_movielens(tmp_path / "blocked" / "ml-100k", url=archive.as_uri(), progress=False)
    message = str(info.value)
    assert message.startswith(f"cannot download into {tmp_path / 'blocked' / 'ml-100k'}: ")
    assert "(1) set FMEDU_DATA" in message and "(2) with network access" in message
