"""MovieLens 100k: locate, download, verify, parse, encode, split.

Used by notebook 06 and by ``fmedu.movielens.experiments``. The data set's licence forbids
redistribution, so nothing here ever writes the data (or a transformed copy) into the
repository: it is read from a folder the user points at, or downloaded into a per-user cache.

Where the data comes from, in order: the ``root`` argument, the ``FMEDU_DATA`` environment
variable, then the per-user cache folder ``fmedu/ml-100k`` (:func:`fmedu.cache.user_cache_dir`,
``~/.cache/fmedu/ml-100k`` on Linux). When neither ``root`` nor ``FMEDU_DATA`` is given and
the cache is empty, :func:`load_movielens` downloads the official ``ml-100k.zip`` once
(``$FMEDU_MOVIELENS_URL`` names a mirror) with :mod:`pooch` (progress bar, atomic write),
checks every file it reads against its sha256 and only then moves the folder into place.
Nothing the package did not create is ever replaced or deleted.

Features (as in the proximal-point blog post): one-hot user id (943), movie id (1,682), age with every distinct age a
category (61), gender (2), occupation (21), and multi-hot genres (19): 2,728 features and 6 to
11 non-zeros per rating. Label ``y = +1`` when the rating is 5, else ``-1``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cache import user_cache_dir
from ..errors import DataError, FMInputError

__all__ = [
    "MOVIELENS_URL",
    "SHA256",
    "DataError",
    "MovieLens",
    "cache_folder",
    "data_root",
    "movielens_url",
    "download_movielens",
    "verify_files",
    "load_movielens",
    "require_movielens",
    "validation_split",
    "split_rows",
]

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ENV_VAR = "FMEDU_DATA"
URL_VAR = "FMEDU_MOVIELENS_URL"

# sha256 of the files this module reads (values from the verified copy's SHA256SUMS)
SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
}
MAX_FILE_BYTES = 10 * 2**20  # the largest file read (u.data) has about 2 MB: refuse archives claiming more

MAX_NNZ = 11  # 5 one-hot fields + at most 6 genres per movie
N_RATINGS, N_USERS, N_MOVIES = 100_000, 943, 1_682


@dataclass
class MovieLens:
    """Encoded ratings. Row r is one rating; ``idx[r, :nnz[r]]`` are its feature indices (sorted),
    padded with -1 to ``MAX_NNZ`` columns (the padded-index layout of ``fmedu.model``)."""

    idx: np.ndarray  # int64 (N, 11)
    nnz: np.ndarray  # int64 (N,)
    y: np.ndarray  # float64 (N,), ±1
    rating: np.ndarray  # int64 (N,), 1..5
    user: np.ndarray  # int64 (N,), 0-based id of the rating's user
    item: np.ndarray  # int64 (N,), 0-based id of the rating's movie
    timestamp: np.ndarray  # int64 (N,)
    feature_names: list[str] = field(repr=False)
    join: str = "correct"
    root: Path | None = None

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, rows) -> MovieLens:
        """The ratings at ``rows`` (an index array or slice), same features."""
        pick = lambda a: a[rows]
        return MovieLens(
            pick(self.idx),
            pick(self.nnz),
            pick(self.y),
            pick(self.rating),
            pick(self.user),
            pick(self.item),
            pick(self.timestamp),
            self.feature_names,
            self.join,
            self.root,
        )


def cache_folder() -> Path:
    """The per-user folder that :func:`load_movielens` downloads into: ``user_cache_dir()/ml-100k``."""
    return user_cache_dir() / "ml-100k"


def movielens_url() -> str:
    """Where the archive is downloaded from: ``$FMEDU_MOVIELENS_URL`` if set, else the official URL."""
    return os.environ.get(URL_VAR) or MOVIELENS_URL


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder to read: ``root``, else ``$FMEDU_DATA``, else the per-user cache folder."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return cache_folder()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_provide(url: str) -> str:
    return (
        f"Provide it in one of two ways: (1) set {ENV_VAR} to a folder holding the unpacked ml-100k "
        f"files ({', '.join(SHA256)}), e.g. export {ENV_VAR}=/path/to/ml-100k; or (2) with network "
        f"access, leave {ENV_VAR} unset and load again: {url} (about 5 MB) is downloaded once into "
        f"{cache_folder()} (set {URL_VAR} to the URL of a mirror of ml-100k.zip if that address is "
        "unreachable)."
    )


def verify_files(folder: Path) -> None:
    """Raise :class:`DataError` unless every file this module reads is present with the right sha256."""
    folder = Path(folder)
    missing = [name for name in SHA256 if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"MovieLens 100k folder {folder} lacks {', '.join(missing)}. " + _how_to_provide(movielens_url())
        )
    for name, expected in SHA256.items():
        actual = _sha256(folder / name)
        if actual != expected:
            raise DataError(
                f"{folder / name} is corrupted or a different version: sha256 {actual}, expected "
                f"{expected}. Replace the folder with a fresh copy of ml-100k (unpack {MOVIELENS_URL}), "
                f"or move it away and load again with {ENV_VAR} unset to download a copy into the cache."
            )


def _fetch(url: str, archive: Path, progress: bool) -> None:
    """Download ``url`` to ``archive`` with pooch (http, https, ftp) or copy a local file (file://, a path)."""
    parsed = urllib.parse.urlparse(url)
    scheme = parsed.scheme.lower()
    try:
        if scheme in ("http", "https", "ftp"):
            import pooch

            downloader = (
                pooch.FTPDownloader(progressbar=progress, timeout=60)
                if scheme == "ftp"
                else pooch.HTTPDownloader(progressbar=progress, timeout=60)
            )
            logger = pooch.get_logger()
            level = logger.level
            logger.setLevel(logging.WARNING)  # no "SHA256 of downloaded file" chatter: each file is checked below
            try:
                # known_hash=None: a mirror may repack the archive; the files inside are what is verified
                pooch.retrieve(url, known_hash=None, fname=archive.name, path=archive.parent, downloader=downloader)
            finally:
                logger.setLevel(level)
        elif scheme == "file" or (len(scheme) <= 1 and url):  # file:// URL, a plain path (or a drive letter)
            source = Path(urllib.request.url2pathname(parsed.path)) if scheme == "file" else Path(url)
            shutil.copyfile(source, archive)
        else:
            raise DataError(f"cannot download {url}: only http, https, ftp and file URLs are supported")
    except OSError as error:  # requests' errors and URLError are OSErrors
        raise DataError(f"could not download {url} ({error}). " + _how_to_provide(url)) from error


def _unpack_verified(archive: Path, target: Path, url: str) -> None:
    """Extract the files this module reads from ``archive`` into ``target`` and verify their sha256."""
    if not zipfile.is_zipfile(archive):
        with open(archive, "rb") as fh:
            head = fh.read(60)
        raise DataError(
            f"{url} did not return a zip archive ({archive.stat().st_size} bytes starting {head!r}): "
            "an error page or a wrong address? " + _how_to_provide(url)
        )
    target.mkdir()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {Path(info.filename).name: info for info in zf.infolist() if not info.is_dir()}
            for name in SHA256:
                info = members.get(name)
                if info is None:
                    continue  # reported by verify_files with the full list of what is missing
                if info.file_size > MAX_FILE_BYTES:
                    raise DataError(f"{url}: {info.filename} claims {info.file_size} bytes; not ml-100k")
                with zf.open(info) as src, open(target / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        raise DataError(f"{url}: the archive is damaged ({error}). " + _how_to_provide(url)) from error
    # named after the source, not the temporary folder (removed before the message is read)
    missing = [name for name in SHA256 if not (target / name).is_file()]
    if missing:
        raise DataError(f"{url}: the archive lacks {', '.join(missing)}; not ml-100k. " + _how_to_provide(url))
    for name, expected in SHA256.items():
        actual = _sha256(target / name)
        if actual != expected:
            raise DataError(
                f"{url} served a {name} that is not the MovieLens 100k file (sha256 {actual}, expected "
                f"{expected}): the mirror holds another version or a damaged copy. " + _how_to_provide(url)
            )


def download_movielens(dest: Path | None = None, url: str | None = None, progress: bool | None = None) -> Path:
    """Download ``ml-100k.zip`` and unpack the files this module reads into ``dest``; return ``dest``.

    ``dest`` defaults to :func:`cache_folder`, ``url`` to :func:`movielens_url`. It must not exist
    yet or be an empty folder: a download never replaces or deletes anything it did not create.
    The archive goes into a temporary folder next to ``dest`` (pooch: streamed with a progress
    bar, moved into place when complete); the five files are extracted and checked against
    their sha256; only then is the folder renamed to ``dest``. A failed or interrupted download
    leaves nothing behind: neither temporary files nor folders it created on the way.
    """
    url = url or movielens_url()
    dest = Path(dest) if dest is not None else cache_folder()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise DataError(
            f"will not download into {dest}: it already exists and is not an empty folder (a download "
            "never replaces what it did not create). If it is meant to hold ml-100k, put the unpacked "
            "files there yourself; otherwise move it away (or delete it, if it is fmedu's own cache "
            "folder) or choose a new or empty folder."
        )
    if progress is None:
        progress = not os.environ.get("CI")
    created = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".ml-100k-", dir=dest.parent))
    except OSError as error:
        raise DataError(
            f"cannot download into {dest}: {error.strerror or error} ({error.filename or dest.parent}). "
            + _how_to_provide(url)
        ) from None
    done = False
    try:
        archive = work / "ml-100k.zip"
        _fetch(url, archive, progress)
        unpacked = work / "ml-100k"
        _unpack_verified(archive, unpacked, url)
        try:
            os.replace(unpacked, dest)  # atomic; replaces dest only when it is an empty folder
        except OSError:
            if not dest.is_dir():
                raise
            verify_files(dest)  # another process finished the same download first
        done = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not done:
            for folder in created:  # innermost first: remove only the folders made here, if still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return dest


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="latin-1").splitlines()


def _parse(folder: Path):
    ratings = np.loadtxt(folder / "u.data", dtype=np.int64)  # user, item, rating, timestamp (1-based ids)
    users = [line.split("|") for line in _read_lines(folder / "u.user") if line]
    movies = [line.split("|") for line in _read_lines(folder / "u.item") if line]
    genres = [line.split("|")[0] for line in _read_lines(folder / "u.genre") if line]
    occupations = [line.strip() for line in _read_lines(folder / "u.occupation") if line.strip()]
    return ratings, users, movies, genres, occupations


def _locate(root, download: bool | None) -> Path:
    """The verified folder to read, downloading it first when allowed (see :func:`load_movielens`)."""
    folder = data_root(root)
    if all((folder / name).is_file() for name in SHA256):
        return folder
    configured = root is not None or bool(os.environ.get(ENV_VAR))
    if download is None:
        download = not configured  # by default only the package's own cache folder is filled
    if download:
        if configured and folder.exists() and any(folder.iterdir()):
            raise DataError(
                f"MovieLens 100k folder {folder} lacks "
                f"{', '.join(n for n in SHA256 if not (folder / n).is_file())} and holds other files: "
                "nothing is downloaded into it (a download never replaces what it did not create). "
                + _how_to_provide(movielens_url())
            )
        return download_movielens(folder)
    where = (
        f"the folder {folder} (the root argument)"
        if root is not None
        else (f"{ENV_VAR}={os.environ[ENV_VAR]}" if configured else f"the cache folder {folder}")
    )
    missing = ", ".join(n for n in SHA256 if not (folder / n).is_file())
    raise DataError(f"MovieLens 100k not found: {where} lacks {missing}. " + _how_to_provide(movielens_url()))


def load_movielens(root=None, join: str = "correct", *, download: bool | None = None, verify: bool = True) -> MovieLens:
    """Encode MovieLens 100k as padded feature indices, labels and feature names.

    ``root`` (else ``$FMEDU_DATA``, else the cache folder) names the unpacked ml-100k folder.
    ``download=None`` (default) downloads into the per-user cache folder when neither ``root``
    nor ``$FMEDU_DATA`` is given and the cache is empty; ``True`` also fills a missing or empty
    ``root`` / ``$FMEDU_DATA`` folder; ``False`` never downloads. A folder holding other files is
    never written into. Any failure raises one :class:`DataError` saying what is missing and
    the two ways to provide it.

    ``join="correct"`` attaches to each rating its own user's and movie's features (100,000
    ratings). ``join="published"`` reproduces erratum E4 of the blog's loader exactly: the
    one-hot user-id and movie-id features are the rating's own, but the side features are
    looked up with the 1-based id used as a 0-based row position, so each rating gets the age,
    gender and occupation of the *next* user and the genres of the *next* movie; the ratings of
    user 943 and of movie 1682 (169 of them) find no row and are dropped, leaving 99,831. The
    feature list is the same 2,728 names in both joins (``user=943`` and ``movie=1682`` are then
    never switched on).
    """
    if join not in ("correct", "published"):
        raise FMInputError(f"join must be 'correct' or 'published', got {join!r}")
    try:
        folder = _locate(root, download)
        if verify:
            verify_files(folder)
    except DataError as error:
        raise DataError(str(error)) from None  # one message, no chained traceback
    try:
        ratings, users, movies, genres, occupations = _parse(folder)
    except (OSError, ValueError, IndexError) as error:
        raise DataError(f"{folder}: cannot parse the ml-100k files ({error}); load with verify=True") from None
    if len(users) != N_USERS or len(movies) != N_MOVIES or len(ratings) != N_RATINGS:
        raise DataError(f"{folder}: expected {N_RATINGS} ratings, {N_USERS} users, {N_MOVIES} movies")

    ages = sorted({int(u[1]) for u in users})
    genders = sorted({u[2] for u in users})
    # feature blocks, in this order: user id, movie id, age, gender, occupation, genres
    sizes = [N_USERS, N_MOVIES, len(ages), len(genders), len(occupations), len(genres)]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    names = (
        [f"user={u}" for u in range(1, N_USERS + 1)]
        + [f"movie={m}" for m in range(1, N_MOVIES + 1)]
        + [f"age={a}" for a in ages]
        + [f"gender={g}" for g in genders]
        + [f"occupation={o}" for o in occupations]
        + [f"genre={g}" for g in genres]
    )

    age_of = {a: i for i, a in enumerate(ages)}
    gender_of = {g: i for i, g in enumerate(genders)}
    occupation_of = {o: i for i, o in enumerate(occupations)}
    # per user row: [user id, age, gender, occupation] feature indices; per movie row: id and genre flags
    user_feats = np.array(
        [
            [
                int(u[0]) - 1 + offsets[0],
                age_of[int(u[1])] + offsets[2],
                gender_of[u[2]] + offsets[3],
                occupation_of[u[3]] + offsets[4],
            ]
            for u in users
        ]
    )
    movie_ids = np.array([int(m[0]) - 1 for m in movies]) + offsets[1]
    genre_flags = np.array([[int(flag) for flag in m[5:]] for m in movies], dtype=bool)  # (1682, 19)

    user_id, movie_id = ratings[:, 0], ratings[:, 1]
    if join == "correct":
        user_row, movie_row = user_id - 1, movie_id - 1
        keep = np.ones(len(ratings), dtype=bool)
    else:  # erratum E4: for the side features, the 1-based id is used as a 0-based row position
        user_row, movie_row = user_id, movie_id
        keep = (user_row < N_USERS) & (movie_row < N_MOVIES)
    user_row, movie_row, ratings = user_row[keep], movie_row[keep], ratings[keep]

    count = len(ratings)
    idx = np.full((count, MAX_NNZ), -1, dtype=np.int64)
    idx[:, 0] = user_feats[user_id[keep] - 1, 0]  # the rating's own user id (both joins)
    idx[:, 1] = movie_ids[movie_id[keep] - 1]  # the rating's own movie id (both joins)
    idx[:, 2:5] = user_feats[user_row, 1:4]  # age, gender, occupation: shifted in the published join
    flags = genre_flags[movie_row]  # (count, 19); genres: shifted in the published join
    nnz = 5 + flags.sum(1)
    # genres go after the five one-hot fields, in increasing index order
    genre_rank = np.cumsum(flags, axis=1) - 1
    rows, cols = np.nonzero(flags)
    idx[rows, 5 + genre_rank[rows, cols]] = offsets[5] + cols
    return MovieLens(
        idx=idx,
        nnz=nnz.astype(np.int64),
        y=np.where(ratings[:, 2] >= 5, 1.0, -1.0),
        rating=ratings[:, 2].copy(),
        user=user_id[keep] - 1,
        item=movie_id[keep] - 1,
        timestamp=ratings[:, 3].copy(),
        feature_names=names,
        join=join,
        root=folder,
    )


def require_movielens(join: str = "correct") -> MovieLens:
    """The data set for a chapter: :func:`load_movielens` with its defaults (downloading into the
    cache when nothing else is configured). Without a copy and without network it raises one
    :class:`DataError` that names what is missing and the two ways to provide it."""
    return load_movielens(join=join)


def validation_split(n_samples: int, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed, seeded split of ``range(n_samples)`` into (train_rows, val_rows), each sorted."""
    if not 0 < fraction < 1:
        raise FMInputError(f"fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n_samples)
    n_val = int(round(fraction * n_samples))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def split_rows(
    n_samples: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed, seeded split of ``range(n_samples)`` into (train_rows, val_rows, test_rows), each sorted.

    ``fractions`` = (train, validation, test), summing to 1. One permutation of
    ``default_rng(seed)``: its first round(f_val·N) rows are the validation split (the rows of
    :func:`validation_split` with the same seed and fraction), the next round(f_test·N) the test
    split, the rest the training rows. The MovieLens experiments use the default: 80,000
    training, 10,000 validation and 10,000 test ratings, used to choose the epoch and step size
    (validation) and to report the loss of that choice (test).
    """
    f_train, f_val, f_test = (float(f) for f in fractions)
    if min(f_train, f_val, f_test) <= 0 or abs(f_train + f_val + f_test - 1.0) > 1e-9:
        raise FMInputError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n_samples)
    n_val, n_test = int(round(f_val * n_samples)), int(round(f_test * n_samples))
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    return np.sort(train), np.sort(val), np.sort(test)
