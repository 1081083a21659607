"""Batches of data matrices: the paper's tasks, out-of-distribution sets and real data.

Every function returns a float64 array ``(n_matrices, n_points, n_features)`` whose rows
(points) have unit Euclidean norm, and takes ``random_state`` for reproducibility. Nothing is
downloaded: the real-data loaders use data shipped with scikit-learn.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "make_sphere_matrices",
    "make_spectrum_matrices",
    "default_multiplicities",
    "make_spiked_matrices",
    "load_digit_matrices",
    "load_image_patch_matrices",
    "load_wine_matrices",
    "make_induction_head_task",
    "make_repeated_tokens",
    "InductionTaskSampler",
]


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def _check_sizes(n_matrices, n_points, n_features):
    return (
        _check_positive_int(n_matrices, "n_matrices"),
        _check_positive_int(n_points, "n_points"),
        _check_positive_int(n_features, "n_features"),
    )


def _unit_rows(points: np.ndarray) -> np.ndarray:
    return points / np.linalg.norm(points, axis=-1, keepdims=True)


def make_sphere_matrices(n_matrices=1000, n_points=16, n_features=8, *, random_state=None):
    """Matrices of points drawn uniformly on the unit sphere (the paper's Task 1).

    Each point is a standard Gaussian vector scaled to unit norm, so the distribution is
    rotation-invariant (Assumption 3.2 of the power-method paper).

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix (the paper's ``n``).
    n_features : int, default=8
        Dimension of every point (the paper's ``d``).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.

    Examples
    --------
    >>> from skloop.datasets import make_sphere_matrices
    >>> X = make_sphere_matrices(3, n_points=5, n_features=2, random_state=0)
    >>> X.shape
    (3, 5, 2)
    """
    n_matrices, n_points, n_features = _check_sizes(n_matrices, n_points, n_features)
    rng = check_random_state(random_state)
    return _unit_rows(rng.standard_normal((n_matrices, n_points, n_features)))


def default_multiplicities(n_points: int, n_features: int) -> np.ndarray:
    """Default eigenvalue multiplicities ``m_i`` for :func:`make_spectrum_matrices`.

    ``n_points`` is split as evenly as possible over ``n_features`` directions, the remainder
    going to the first ones; if that leaves all equal (no eigengap), one unit moves from the
    last direction to the first. For ``n_points = 2 n_features`` this gives
    ``(3, 2, ..., 2, 1)``: a simple top eigenvalue and ``λ_2 / λ_1 = 2/3``.

    Parameters
    ----------
    n_points : int
        Number of points ``n``; must be at least ``n_features + 1``.
    n_features : int
        Dimension ``d``.

    Returns
    -------
    multiplicities : ndarray of shape (n_features,)
        Decreasing positive integers summing to ``n_points``.
    """
    n_points = _check_positive_int(n_points, "n_points")
    n_features = _check_positive_int(n_features, "n_features")
    if n_points < n_features + 1:
        raise ValueError(
            "The default multiplicities need n_points >= n_features + 1 so that every "
            f"direction has a point and the top eigenvalue is separated; got n_points="
            f"{n_points}, n_features={n_features}. Pass multiplicities explicitly."
        )
    base, extra = divmod(n_points, n_features)
    m = np.full(n_features, base, dtype=np.int64)
    m[:extra] += 1
    if np.all(m == m[0]):
        m[0] += 1
        m[-1] -= 1
    return np.sort(m)[::-1].copy()


def _haar_orthogonal(rng, n_matrices: int, d: int) -> np.ndarray:
    """Haar-distributed orthogonal matrices: QR of a Gaussian with the sign fix of R."""
    q, r = np.linalg.qr(rng.standard_normal((n_matrices, d, d)))
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    return q * signs[:, None, :]


def make_spectrum_matrices(
    n_matrices=1000, n_points=16, n_features=8, *, multiplicities=None, random_state=None
):
    """Matrices with a prescribed spectrum and random eigenvectors (the paper's Task 2).

    Following Example 3.3 of the power-method paper, each matrix is ``X = Q B`` (paper
    orientation, columns are points) with ``Q`` Haar-random orthogonal and ``B`` made of the
    basis vector ``e_i`` repeated ``m_i`` times. The eigenvalues of ``XXᵀ / n`` are exactly
    ``m_i / n`` and the eigenvectors are the columns of ``Q``. The points are returned in
    random order, in scikit-learn orientation.

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix; must equal ``sum(multiplicities)``.
    n_features : int, default=8
        Dimension of every point.
    multiplicities : array-like of int of shape (n_features,), default=None
        The ``m_i`` (positive, summing to ``n_points``). Several equal maxima give a top
        eigenvalue of multiplicity ``r > 1``. ``None`` uses :func:`default_multiplicities`.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.

    Examples
    --------
    >>> import numpy as np
    >>> from skloop.datasets import make_spectrum_matrices
    >>> X = make_spectrum_matrices(1, n_points=6, n_features=3,
    ...                            multiplicities=[3, 2, 1], random_state=0)
    >>> np.linalg.eigvalsh(X[0].T @ X[0] / 6)[::-1].round(6)
    array([0.5     , 0.333333, 0.166667])
    """
    n_matrices, n_points, n_features = _check_sizes(n_matrices, n_points, n_features)
    if multiplicities is None:
        m = default_multiplicities(n_points, n_features)
    else:
        m = np.asarray(multiplicities)
        if m.shape != (n_features,) or m.dtype.kind not in "iu":
            raise ValueError(
                f"multiplicities must be {n_features} integers (one per feature); got {m!r}."
            )
        if np.any(m < 0) or m.sum() != n_points or np.all(m == 0):
            raise ValueError(
                f"multiplicities must be non-negative and sum to n_points={n_points}; "
                f"got {m.tolist()} (sum {int(m.sum())})."
            )
    rng = check_random_state(random_state)
    q = _haar_orthogonal(rng, n_matrices, n_features)
    directions = np.repeat(np.arange(n_features), m)  # point j is the column e_{directions[j]}
    order = np.argsort(rng.random((n_matrices, n_points)), axis=1)
    shuffled = directions[order]  # (n_matrices, n_points)
    # Row j of the sklearn-oriented matrix is Q e_{i_j}, the i_j-th column of Q.
    return np.take_along_axis(np.swapaxes(q, 1, 2), shuffled[:, :, None], axis=1)


def make_spiked_matrices(
    n_matrices=1000,
    n_points=16,
    n_features=8,
    *,
    spike=3.0,
    decay=0.5,
    return_spikes=False,
    random_state=None,
):
    """Anisotropic Gaussian points with a planted spike (an out-of-distribution test set).

    Points are ``x = sqrt(spike) g_0 s + D^{1/2} g`` with ``g_0 ~ N(0, 1)``, ``g ~ N(0, I)``,
    a random unit spike direction ``s`` per matrix and a fixed axis-aligned diagonal
    ``D = diag(1, ..., decay)`` (geometric), then scaled to unit norm. The population
    covariance ``spike · ssᵀ + D`` has ``λ_2 / λ_1 ≈ 1 / (1 + spike)`` before the unit-norm
    scaling (somewhat larger after it, and noisier for few points): ``spike`` controls the
    eigengap. Because ``D`` is axis-aligned, the distribution is not rotation-invariant, unlike
    the training tasks of the paper.

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix.
    n_features : int, default=8
        Dimension of every point.
    spike : float, default=3.0
        Variance added along the spike direction (>= 0); larger means a larger eigengap.
    decay : float, default=0.5
        Smallest diagonal entry of ``D`` relative to its largest, in ``(0, 1]``.
    return_spikes : bool, default=False
        Also return the planted directions.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    spikes : ndarray of shape (n_matrices, n_features)
        The planted unit directions, only if ``return_spikes=True``.
    """
    n_matrices, n_points, n_features = _check_sizes(n_matrices, n_points, n_features)
    if not np.isfinite(spike) or spike < 0:
        raise ValueError(f"spike must be a finite number >= 0; got {spike!r}.")
    if not (0 < decay <= 1):
        raise ValueError(f"decay must be in (0, 1]; got {decay!r}.")
    rng = check_random_state(random_state)
    spikes = _unit_rows(rng.standard_normal((n_matrices, n_features)))
    diagonal = decay ** np.linspace(0.0, 1.0, n_features)
    noise = rng.standard_normal((n_matrices, n_points, n_features)) * np.sqrt(diagonal)
    loadings = rng.standard_normal((n_matrices, n_points, 1)) * np.sqrt(spike)
    points = noise + loadings * spikes[:, None, :]
    norms = np.linalg.norm(points, axis=-1, keepdims=True)
    points = points / np.where(norms > 0, norms, 1.0)
    return (points, spikes) if return_spikes else points


def _sample_matrices(source: np.ndarray, n_matrices, n_points, n_features, random_state,
                     what: str):
    """Random (rows, columns) sub-matrices of ``source`` with unit-norm, non-zero rows."""
    n_matrices, n_points, n_features = _check_sizes(n_matrices, n_points, n_features)
    rng = check_random_state(random_state)
    usable = np.flatnonzero(source.std(axis=0) > 0)
    if n_features > usable.size:
        raise ValueError(
            f"n_features={n_features} exceeds the {usable.size} non-constant features of {what}."
        )
    out = np.empty((n_matrices, n_points, n_features))
    for i in range(n_matrices):
        columns = rng.choice(usable, size=n_features, replace=False)
        candidates = np.flatnonzero(np.abs(source[:, columns]).sum(axis=1) > 0)
        if candidates.size < n_points:
            raise ValueError(
                f"n_points={n_points} exceeds the {candidates.size} usable rows of {what}."
            )
        rows = rng.choice(candidates, size=n_points, replace=False)
        out[i] = source[np.ix_(rows, columns)]
    return _unit_rows(out)


def load_digit_matrices(n_matrices=500, n_points=16, n_features=8, *, random_state=None):
    """Real data matrices from scikit-learn's handwritten digits (no download).

    Each matrix takes ``n_features`` random pixels (among those with non-zero variance) and
    ``n_points`` random images that are not all zero on them; points (images) are scaled to
    unit norm and not centered, so the leading component is often close to the mean image
    direction and the eigengap is large (``λ_2/λ_1 ≈ 0.2``).

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Images per matrix (at most 1797).
    n_features : int, default=8
        Pixels per matrix (at most 61).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float64)
    return _sample_matrices(pixels, n_matrices, n_points, n_features, random_state, "load_digits")


def load_wine_matrices(n_matrices=500, n_points=16, n_features=13, *, random_state=None):
    """Real data matrices from scikit-learn's wine recognition data (no download).

    Each matrix takes ``n_features`` random features (all 13 by default) and ``n_points``
    random samples; points are scaled to unit norm and not centered. The raw features have
    very different scales (proline is in the hundreds), so the leading component is close to
    the largest-scale feature's axis: a large eigengap but an anisotropic, non-rotation-invariant
    distribution, on which a finite-sample trained model shows its error floor.

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Samples per matrix (at most 178).
    n_features : int, default=13
        Features per matrix (at most 13).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_wine

    wine = load_wine().data
    return _sample_matrices(wine, n_matrices, n_points, n_features, random_state, "load_wine")


def _patch_shape(n_features: int) -> tuple[int, int]:
    """The most square (height, width) with ``height * width == n_features``."""
    height = max(h for h in range(1, int(np.sqrt(n_features)) + 1) if n_features % h == 0)
    return height, n_features // height


def load_image_patch_matrices(
    n_matrices=500,
    n_points=16,
    n_features=8,
    *,
    region_size=32,
    remove_dc=True,
    random_state=None,
):
    """Real data matrices of grey-level image patches from scikit-learn's sample images.

    Each matrix picks one of ``load_sample_images()`` (china.jpg, flower.jpg) and a random
    ``region_size × region_size`` region of it, then ``n_points`` random patches of
    ``n_features`` pixels inside the region (shape ``height × width``, as square as
    ``n_features`` allows; e.g. 8 → 2 × 4). Patches are flattened, have their mean intensity
    removed (``remove_dc``) and are scaled to unit norm; flat patches are skipped. The matrix
    itself is not centered.

    Without the DC removal nearly every patch points along the all-ones direction (median
    ``λ_2/λ_1 ≈ 1e-3``, a trivial task); with it the spectrum reflects local edges and textures
    (the usual contrast normalization of patch statistics).

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Patches per matrix.
    n_features : int, default=8
        Pixels per patch.
    region_size : int, default=32
        Side of the square region each matrix samples its patches from; smaller regions give
        more correlated patches.
    remove_dc : bool, default=True
        Subtract each patch's mean intensity before the normalization.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_sample_images

    n_matrices, n_points, n_features = _check_sizes(n_matrices, n_points, n_features)
    height, width = _patch_shape(n_features)
    region_size = _check_positive_int(region_size, "region_size")
    if region_size < max(height, width):
        raise ValueError(
            f"region_size={region_size} is smaller than the {height}x{width} patches."
        )
    n_windows = (region_size - height + 1) * (region_size - width + 1)
    if n_points > n_windows:
        raise ValueError(
            f"n_points={n_points} exceeds the {n_windows} patches of a {region_size}-pixel "
            "region; increase region_size."
        )
    rng = check_random_state(random_state)
    images = [img.astype(np.float64).mean(axis=2) / 255.0 for img in load_sample_images().images]
    out = np.empty((n_matrices, n_points, n_features))
    for i in range(n_matrices):
        patches = np.empty((0, n_features))
        while patches.shape[0] < n_points:  # redraw the rare (almost) flat region
            image = images[rng.randint(len(images))]
            top = rng.randint(image.shape[0] - region_size + 1)
            left = rng.randint(image.shape[1] - region_size + 1)
            region = image[top : top + region_size, left : left + region_size]
            windows = np.lib.stride_tricks.sliding_window_view(region, (height, width))
            patches = windows.reshape(-1, n_features)
            if remove_dc:
                patches = patches - patches.mean(axis=1, keepdims=True)
            # Keep patches with some contrast (flat ones have no direction).
            patches = patches[np.linalg.norm(patches, axis=1) > 1e-6]
        out[i] = patches[rng.choice(patches.shape[0], size=n_points, replace=False)]
    return _unit_rows(out)


def _tokens(rng, shape, tokens: str) -> np.ndarray:
    if tokens == "gaussian":
        return rng.standard_normal(shape)
    if tokens == "boolean":
        return rng.choice([-1.0, 1.0], size=shape)
    raise ValueError(f"tokens must be 'gaussian' or 'boolean'; got {tokens!r}.")


def make_induction_head_task(
    kind="ih2",
    n_sequences=1000,
    seq_len=10,
    n_features=1,
    *,
    n_gram=2,
    W_star=None,
    similarity=None,
    alpha=1.0,
    w_star=0.49,
    lift="sqrt",
    tokens="gaussian",
    random_state=None,
):
    """Token sequences and their induction-head targets (Wang, Yu, E & Wu).

    Parameters
    ----------
    kind : {"ih2", "ihn", "gihn", "mixed"}, default="ih2"
        ``"ih2"``: eq. (3); ``"ihn"``: eq. (5) with ``n_gram``; ``"gihn"``: eq. (6) with a
        ``similarity``; ``"mixed"``: the 4-gram + in-context 2-gram target of eq. (7)
        (``n_features=1``, two outputs ``(G4, IH2)``).
    n_sequences : int, default=1000
        Number of sequences.
    seq_len : int, default=10
        Sequence length ``L`` (at least ``n_gram + 1``).
    n_features : int, default=1
        Token dimension ``d``.
    n_gram : int, default=2
        Order ``n`` of ``"ihn"``/``"gihn"``.
    W_star : ndarray of shape ((n_gram-1) d, (n_gram-1) d) or None
        Similarity matrix of ``"ih2"``/``"ihn"``; identity when None.
    similarity : callable or None
        ``g(query, keys)`` of ``"gihn"`` (see :func:`skloop.induction.gihn`).
    alpha : float, default=1.0
        ``α*`` of the mixed target.
    w_star : float, default=0.49
        ``w*`` of the mixed target (its score is ``w*² x_L x_{s-1}`` for ``d = 1``).
    lift : {"sqrt", "linear"}, default="sqrt"
        Mixed target with ``n_features > 1``: ``W* = w* I/√d`` or ``w* I/d`` (see
        :func:`skloop.induction.mixed_target`).
    tokens : {"gaussian", "boolean"}, default="gaussian"
        i.i.d. ``N(0, I_d)`` or uniform ``{±1}^d`` tokens.
    random_state : int, RandomState instance or None, default=None
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_sequences, seq_len, n_features)
        Token sequences.
    y : ndarray of shape (n_sequences, n_outputs)
        Targets (``n_outputs = n_features``, or ``2 n_features`` for ``"mixed"``).

    Examples
    --------
    >>> from skloop.datasets import make_induction_head_task
    >>> X, y = make_induction_head_task("ihn", 5, seq_len=10, n_gram=4, tokens="boolean",
    ...                                 random_state=0)
    >>> X.shape, y.shape
    ((5, 10, 1), (5, 1))
    """
    from .induction import _targets

    n_sequences, seq_len, n_features = _check_sizes(n_sequences, seq_len, n_features)
    n_gram = 2 if kind in ("ih2", "mixed") else _check_positive_int(n_gram, "n_gram", 2)
    if seq_len < n_gram + 1:
        raise ValueError(f"seq_len={seq_len} must be >= n_gram + 1 = {n_gram + 1}.")
    rng = check_random_state(random_state)
    X = _tokens(rng, (n_sequences, seq_len, n_features), tokens)
    if kind in ("ih2", "ihn"):
        y = _targets.ihn(X, n_gram, W_star)
    elif kind == "gihn":
        if not callable(similarity):
            raise ValueError("kind='gihn' needs a callable similarity(query, keys).")
        y = _targets.gihn(X, n_gram, similarity)
    elif kind == "mixed":
        y = _targets.mixed_target(X, alpha, w_star, lift)
    else:
        raise ValueError(f"kind must be 'ih2', 'ihn', 'gihn' or 'mixed'; got {kind!r}.")
    return X, y


def make_repeated_tokens(n_sequences=500, n_repeat=5, n_features=1, *, tokens="gaussian",
                         random_state=None):
    """Random token sequences repeated twice, for scoring induction heads.

    Each sequence is ``(t_1, ..., t_R, t_1, ..., t_R)``: in the second copy, the token after
    the previous occurrence of the current token is the next token, which an induction head
    retrieves and nothing else can predict.

    Parameters
    ----------
    n_sequences : int, default=500
        Number of sequences.
    n_repeat : int, default=5
        Length ``R`` of the random block (sequences have length ``2R``).
    n_features : int, default=1
        Token dimension.
    tokens : {"gaussian", "boolean"}, default="gaussian"
        Token distribution.
    random_state : int, RandomState instance or None, default=None
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_sequences, 2 n_repeat, n_features)
    """
    n_sequences, n_repeat, n_features = _check_sizes(n_sequences, n_repeat, n_features)
    block = _tokens(check_random_state(random_state), (n_sequences, n_repeat, n_features), tokens)
    return np.concatenate([block, block], axis=1)


class InductionTaskSampler:
    """Fresh batches of an induction-head task, for online training.

    Calling the sampler with ``(n_sequences, random_state)`` returns
    ``make_induction_head_task(kind, n_sequences, **task)``; its attributes (``kind``,
    ``seq_len``, ``alpha``, ``w_star``, ...) describe the task, and
    :class:`~skloop.InductionHeadRegressor` uses ``alpha`` and ``w_star`` to place the phase
    markers of the mixed target.

    Parameters
    ----------
    kind : str, default="mixed"
        Task kind (see :func:`make_induction_head_task`).
    seq_len : int, default=40
        Sequence length.
    **task
        Other arguments of :func:`make_induction_head_task` (``n_features``, ``n_gram``,
        ``W_star``, ``alpha``, ``w_star``, ``tokens``).

    Examples
    --------
    >>> from skloop.datasets import InductionTaskSampler
    >>> sampler = InductionTaskSampler("mixed", seq_len=40, alpha=1.0, w_star=0.49)
    >>> X, y = sampler(8, random_state=0)
    >>> X.shape, y.shape
    ((8, 40, 1), (8, 2))
    """

    def __init__(self, kind="mixed", seq_len=40, **task):
        self.kind = kind
        self.seq_len = seq_len
        self.task = task
        self.alpha = task.get("alpha", 1.0)
        self.w_star = task.get("w_star", 0.49)
        self.lift = task.get("lift", "sqrt")

    def __call__(self, n_sequences, random_state=None):
        return make_induction_head_task(self.kind, n_sequences, self.seq_len,
                                        random_state=random_state, **self.task)

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.task.items())
        return f"InductionTaskSampler({self.kind!r}, seq_len={self.seq_len}{args})"
