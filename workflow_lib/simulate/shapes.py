"""Star-convex cell shapes and their rasterisation into a bounding box.

3D: a random rotated ellipsoid whose radius along every direction is modulated by a random
real spherical-harmonics series (degrees 2..``order``, variance per degree ~ l**-5, so low
orders dominate), as in the original 3D nuclei simulation.
2D: a random rotated ellipse warped by a smooth random displacement field (a 3x3 grid of
random control displacements, cubic B-spline interpolated), as in the original 2D nuclei.

Shapes are rasterised only inside their bounding box, vectorised over the box's pixels.
Coordinates are physical: pixel offsets times ``spacing`` (e.g. ``(z_scale, 1, 1)``), so
anisotropic stacks get flatter shapes in pixel units.

The kinds that draw nuclei-like shapes (nuclei, multichannel, overlapping, timeseries) share
:class:`ShapeParams` (read by :func:`read_shape_params`), :func:`make_shapes` and :func:`paint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.special import sph_harm_y

from workflow_lib.errors import ParamError
from workflow_lib.simulate.params import Params

# Angular grid on which the 3D radial function is tabulated; voxels look up the nearest node.
_N_THETA, _N_PHI = 48, 96

SHAPE_KEYS = ("radius", "elongation", "irregularity", "order", "mitotic", "mitotic_elongation", "z_scale",
              "radius_samples", "elongation_samples")


@dataclass(frozen=True)
class Shape:
    """One star-convex instance.

    centre: (ndim,) position in pixels. radius: mean radius in physical units (pixels of Y/X).
    axes: (ndim,) relative semi-axes of the underlying ellipse/ellipsoid (body frame).
    rotation: (ndim, ndim) matrix whose columns are the body axes in image coordinates.
    detail: 2D: (3, 3, 2) control displacements in units of ``radius``;
            3D: (_N_THETA, _N_PHI) radial factor (>0) over the sphere.
    """

    centre: np.ndarray
    radius: float
    axes: np.ndarray
    rotation: np.ndarray
    detail: np.ndarray

    @property
    def extent(self) -> float:
        """Upper bound of the distance from the centre to the boundary (physical units)."""
        if self.centre.size == 2:
            return self.radius * (float(self.axes.max()) + 3.0 * float(np.abs(self.detail).max()))
        return self.radius * float(self.axes.max()) * float(self.detail.max())


@lru_cache(maxsize=8)
def _sh_basis(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Real spherical harmonics of degrees 2..order on the angular grid.

    Returns ``(basis, degree)``: basis (K, _N_THETA * _N_PHI) float, degree (K,) int.
    """
    theta = np.linspace(0, np.pi, _N_THETA)
    phi = np.linspace(-np.pi, np.pi, _N_PHI, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    rows, degrees = [], []
    for l in range(2, order + 1):
        for m in range(-l, l + 1):
            y = sph_harm_y(l, abs(m), th, ph)
            if m > 0:
                rows.append(np.sqrt(2) * y.real)
            elif m < 0:
                rows.append(np.sqrt(2) * y.imag)
            else:
                rows.append(y.real)
            degrees.append(l)
    basis = np.stack(rows).reshape(len(rows), -1)
    return basis, np.asarray(degrees)


def random_rotation(rng: np.random.Generator, ndim: int) -> np.ndarray:
    """Uniformly random rotation matrix (ndim x ndim)."""
    if ndim == 2:
        a = rng.uniform(0, 2 * np.pi)
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def elongated_axes(elongation: float, ndim: int) -> np.ndarray:
    """Relative semi-axes with long/short ratio ``elongation`` and unit area/volume."""
    short = elongation ** (-1.0 / ndim)
    return np.array([elongation * short] + [short] * (ndim - 1))


def random_shape(
    rng: np.random.Generator,
    centre: np.ndarray,
    radius: float,
    elongation: float,
    irregularity: float,
    order: int = 10,
) -> Shape:
    """Draw one random shape around ``centre`` (pixels) with mean ``radius``.

    irregularity: 2D: std of the control displacements in units of the radius;
    3D: std over the sphere of the relative radius modulation (clipped so the radius stays
    >= 40 % of the mean).
    """
    ndim = len(centre)
    axes = elongated_axes(elongation, ndim)
    rotation = random_rotation(rng, ndim)
    if ndim == 2:
        detail = rng.normal(0.0, irregularity, size=(3, 3, 2))
    elif irregularity > 0 and order >= 2:
        basis, degree = _sh_basis(order)
        # Variance per degree ~ l^-5, spread evenly over its 2l+1 orders.
        coef = rng.normal(size=degree.size) * np.sqrt(degree ** -5.0 / (2 * degree + 1))
        # einsum, not BLAS: a threaded gemv of this size costs ~20x more on busy cores.
        f = np.einsum("k,kg->g", coef, basis)
        f = f / max(float(f.std()), 1e-12)
        detail = np.clip(1.0 + irregularity * f, 0.4, None).reshape(_N_THETA, _N_PHI)
    else:
        detail = np.ones((_N_THETA, _N_PHI))
    return Shape(np.asarray(centre, float), float(radius), axes, rotation, detail)


def rasterise(
    shape: Shape, image_shape: tuple[int, ...], spacing: tuple[float, ...]
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Pixels of ``shape`` inside an image of ``image_shape``.

    Returns ``(box, mask)``: ``box`` slices into the image, ``mask`` a bool array of the box's
    shape; None when the shape lies outside the image or covers no pixel centre.
    """
    spacing_arr = np.asarray(spacing, float)
    half = np.ceil(shape.extent / spacing_arr).astype(int) + 1
    c = np.round(shape.centre).astype(int)
    lo = np.maximum(c - half, 0)
    hi = np.minimum(c + half + 1, image_shape)
    if np.any(hi <= lo):
        return None
    grids = np.meshgrid(
        *[(np.arange(a, b) - shape.centre[k]) * spacing_arr[k] for k, (a, b) in enumerate(zip(lo, hi))],
        indexing="ij",
        sparse=True,
    )
    if len(image_shape) == 2:
        mask = _inside_2d(shape, grids)
    else:
        mask = _inside_3d(shape, grids)
    if not mask.any():
        return None
    return tuple(slice(a, b) for a, b in zip(lo, hi)), mask


def _body(shape: Shape, grids) -> list[np.ndarray]:
    """Coordinates in the body frame: u_j = sum_k R[k, j] * p_k."""
    ndim = len(grids)
    return [sum(shape.rotation[k, j] * grids[k] for k in range(ndim)) for j in range(ndim)]


def _spline_weights(t: np.ndarray) -> np.ndarray:
    """(len(t), 3) cubic B-spline interpolation weights of 3 control nodes at positions t."""
    eye = np.eye(3)
    return np.stack(
        [ndimage.map_coordinates(eye[i], [t], order=3, mode="nearest") for i in range(3)], axis=1
    )


def _inside_2d(shape: Shape, grids) -> np.ndarray:
    # The control grid spans the full (un-clipped) extent of the shape around its centre, so the
    # warp does not depend on where the image border clips the box. The spline is a tensor
    # product, so the field is W_y @ C @ W_x^T with 1D weight matrices.
    ext = shape.extent
    wy = _spline_weights(grids[0].ravel() / ext + 1.0)   # control nodes at 0, 1, 2
    wx = _spline_weights(grids[1].ravel() / ext + 1.0)
    disp = [(wy @ (shape.detail[..., k] * shape.radius)) @ wx.T for k in range(2)]
    warped = [grids[0] + disp[0], grids[1] + disp[1]]
    u = _body(shape, warped)
    r2 = sum((u[j] / (shape.radius * shape.axes[j])) ** 2 for j in range(2))
    return r2 <= 1.0


def _inside_3d(shape: Shape, grids) -> np.ndarray:
    u = _body(shape, grids)
    u = [u[j] / shape.axes[j] for j in range(3)]
    r = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    # Body axis 0 is the long axis; it plays the role of the polar axis of the angular grid.
    cos_t = np.divide(u[0], r, out=np.ones_like(r), where=r > 0)
    it = np.rint(np.arccos(np.clip(cos_t, -1, 1)) * ((_N_THETA - 1) / np.pi)).astype(np.intp)
    ip = np.rint((np.arctan2(u[2], u[1]) + np.pi) * (_N_PHI / (2 * np.pi))).astype(np.intp) % _N_PHI
    return r <= shape.radius * shape.detail[it, ip]


@dataclass(frozen=True)
class ShapeParams:
    """How single nuclei look (shared by the nuclei, multichannel, overlapping, timeseries kinds)."""

    radius: tuple[float, float]          # mean radius range, physical pixels (Y/X units)
    elongation: tuple[float, float]      # long/short axis ratio of interphase nuclei
    irregularity: float                  # 2D warp / 3D harmonics strength (see module doc)
    order: int                           # highest spherical-harmonics degree (3D; 0 in 2D)
    mitotic: float                       # share of elongated "mitotic" nuclei
    mitotic_elongation: tuple[float, float]
    spacing: tuple[float, ...]           # physical size of a pixel per axis: (z_scale, 1, 1)
    # Empirical distributions (e.g. measured on real images) replacing the uniform ranges.
    radius_samples: tuple[float, ...] | None = None
    elongation_samples: tuple[float, ...] | None = None

    @property
    def mean_radius(self) -> float:
        if self.radius_samples is not None:
            return float(np.mean(self.radius_samples))
        return 0.5 * (self.radius[0] + self.radius[1])


def read_shape_params(
    p: Params, ndim: int, radius: tuple[float, float] | None = (8.0, 14.0)
) -> ShapeParams:
    """Read the shape keys of ``p`` (:data:`SHAPE_KEYS`) for ``ndim`` spatial axes.

    ``radius``: the default radius range; None when the caller sets radii itself, so the key is
    not read (and :meth:`Params.finish` refuses it). ``z_scale`` and ``order`` are read in 3D only.
    """
    z_scale = p.number("z_scale", 1.0, 0, low_open=True) if ndim == 3 else 1.0
    radius_samples = None if radius is None else p.samples("radius_samples", 1.0)
    if radius_samples is not None and "radius" in p:
        raise ParamError("radius_samples", "give radius or radius_samples, not both")
    elongation_samples = p.samples("elongation_samples", 1.0)
    if elongation_samples is not None and "elongation" in p:
        raise ParamError("elongation_samples", "give elongation or elongation_samples, not both")
    return ShapeParams(
        radius=(1.0, 1.0) if radius is None else p.range("radius", radius, 1.0),
        elongation=p.range("elongation", [1.0, 1.3], 1.0),
        irregularity=p.number("irregularity", 0.1, 0.0, 1.0),
        order=p.number("order", 10, 2, 30, integer=True) if ndim == 3 else 0,
        mitotic=p.number("mitotic", 0.0, 0.0, 1.0),
        mitotic_elongation=p.range("mitotic_elongation", [1.8, 2.4], 1.0),
        spacing=(z_scale, 1.0, 1.0) if ndim == 3 else (1.0, 1.0),
        radius_samples=radius_samples,
        elongation_samples=elongation_samples,
    )


def make_shapes(
    rng: np.random.Generator, centres: np.ndarray, sp: ShapeParams, radii: np.ndarray | None = None
) -> list[Shape]:
    """One random shape per centre of ``centres`` (n, ndim) pixels.

    ``radii`` (n,) physical overrides the random mean radii drawn from ``sp.radius`` (or
    ``sp.radius_samples``).
    """
    n = len(centres)
    if radii is None:
        radii = (rng.choice(sp.radius_samples, size=n) if sp.radius_samples is not None
                 else rng.uniform(*sp.radius, size=n))
    mitotic = rng.uniform(size=n) < sp.mitotic
    interphase = (rng.choice(sp.elongation_samples, size=n) if sp.elongation_samples is not None
                  else rng.uniform(*sp.elongation, size=n))
    elong = np.where(mitotic, rng.uniform(*sp.mitotic_elongation, size=n), interphase)
    return [
        random_shape(rng, centres[k], radii[k], elong[k], sp.irregularity, sp.order)
        for k in range(n)
    ]


def paint(
    labels: np.ndarray, shapes: list[Shape], spacing: tuple[float, ...], min_visible: float = 0.5,
    first_id: int = 1, within: np.ndarray | None = None,
) -> np.ndarray:
    """Paint ``shapes`` into ``labels`` (ints, (Y, X) or (Z, Y, X)) in place, never over
    existing instances.

    Shape k gets id ``first_id + k``; a shape keeping less than ``min_visible`` of its pixels
    (covered by earlier ones) is left out. ``within`` (same shape as ``labels``, ints) restricts
    shape k to pixels where ``within == first_id + k`` (nuclei inside their cells).
    Returns the bool array (len(shapes),) of which shapes were painted.
    """
    painted = np.zeros(len(shapes), bool)
    for k, s in enumerate(shapes):
        hit = rasterise(s, labels.shape, spacing)
        if hit is None:
            continue
        box, mask = hit
        free = mask & (labels[box] == 0)
        if within is not None:
            free &= within[box] == first_id + k
        if free.sum() < min_visible * mask.sum() or not free.any():
            continue
        labels[box][free] = first_id + k
        painted[k] = True
    return painted
