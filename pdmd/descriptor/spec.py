"""The descriptor setting: one typed definition of how a structure becomes a PD image.

A `DescriptorSpec` names everything that decides an image: the system (and so the periodic
dimension), the homology degree, the alpha-complex backend, periodic or open boundaries, how a 2D
sheet becomes points, the histogram window (Å², squared alpha radii) and bins, the elements the
images were made of, and whether diagram-based models add the pair a periodic sheet hides per cell
(`bulk_pair`, see `learning_pairs`). Every part of pdmd that computes, stores, trains on or predicts
with PD images takes one: the melt-quench workflow and `pdmd campaign` (stored descriptors are filed
under `spec.id`), `pdmd train` (the card records `spec.to_dict()`) and `pdmd predict` (reads it back
with `from_dict`).

Per-system defaults (the paper's settings): window [0, 4]² Å² for aGr sheets and [0, 8]² Å² for
aC cells, 128 bins, degree 1, HomCloud for 2D and the verified Delaunay backend for 3D, image
standardization min-max for aGr and z-score for aC (the last is a training setting, kept beside the
window it belongs to).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

import numpy as np

from pdmd.descriptor.bulk import bulk_pairs
from pdmd.descriptor.histogram import DEFAULT_RANGE_A2, HistogramSpec, PDImage, pd_histogram
from pdmd.descriptor.persistence import (
    BACKEND_REVISION,
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_SHEET_MODE,
    SHEET_MODES,
    PersistenceDiagram,
    alpha_diagram,
)
from pdmd.errors import DescriptorError, InputError
from pdmd.structure import Frame
from pdmd.systems import SYSTEM_DIM, system_dim

DEFAULT_BINS = 128
DEFAULT_DEGREE = 1
DEFAULT_STANDARDIZATION = {2: "minmax", 3: "zscore"}
"""Image standardization by periodic dimension, as in the paper: min-max for aGr, z-score for aC
(`pdmd.models.cnn.standardize`). Min-max leaves occupied pixels of a 680-atom image at ≈ 0.04; the training loop
keeps this from collapsing on small data (≥ 8 steps per epoch and a warm-up: docs/models.md, "pd-cnn")."""


@dataclass(frozen=True)
class DescriptorSpec:
    """How structures become PD images: build with `for_system`, record with `to_dict`, read with `from_dict`.

    backend is the resolved name (a cell the default backend refuses is computed by the other one: the
    same diagram) unless `backend_named` (a user named it: it is always the one used, its refusal an
    error); sheet is "3d" or "projection" for 2D systems and None for 3D ones.
    """

    system: str
    lo_A2: float
    hi_A2: float
    bins: int = DEFAULT_BINS
    degree: int = DEFAULT_DEGREE
    backend: str = ""
    sheet: str | None = None
    elements: tuple[int, ...] = (6,)
    periodic: bool = True
    bulk_pair: bool = False
    backend_named: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        dim = system_dim(self.system)
        if not self.backend:
            object.__setattr__(self, "backend", DEFAULT_BACKEND[dim])
        if dim == 2 and self.sheet is None:
            object.__setattr__(self, "sheet", DEFAULT_SHEET_MODE)
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend {self.backend!r} (choose one of {BACKENDS})")
        if self.bulk_pair and not (self.periodic and dim == 2 and self.degree == 1):
            problems.append("bulk_pair (only periodic 2D H1 diagrams hide a pair per cell)")
        if not self.periodic and self.backend != "homcloud":
            problems.append(f"backend {self.backend!r} for an open diagram (only homcloud computes open diagrams)")
        if dim == 2 and self.sheet not in SHEET_MODES:
            problems.append(f"sheet {self.sheet!r} (choose one of {SHEET_MODES})")
        if dim == 3 and self.sheet is not None:
            problems.append(f"sheet {self.sheet!r} (only 2D systems have a sheet mode)")
        if self.degree not in (0, 1, 2) or (self.degree == 2 and dim == 2):
            problems.append(f"degree {self.degree!r} (0 or 1, or 2 for 3D)")
        if not (isinstance(self.bins, int) and self.bins >= 2):
            problems.append(f"bins {self.bins!r} (an integer >= 2)")
        if not (0.0 <= self.lo_A2 < self.hi_A2):
            problems.append(f"window [{self.lo_A2}, {self.hi_A2}] Å² (need 0 <= lo < hi)")
        if not self.elements:
            problems.append("elements (none)")
        if problems:
            raise InputError(f"invalid descriptor setting for {self.system}: {'; '.join(problems)}")
        object.__setattr__(self, "elements", tuple(sorted(int(z) for z in self.elements)))

    @classmethod
    def for_system(
        cls,
        system: str,
        *,
        range_A2: Iterable[float] | None = None,
        bins: int | None = None,
        degree: int = DEFAULT_DEGREE,
        backend: str | None = None,
        sheet: str | None = None,
        elements: Iterable[int] = (6,),
        periodic: bool = True,
    ) -> DescriptorSpec:
        """The paper's setting for `system` (agr/ac/2d/3d), with any of its parts overridden (None: default).

        periodic False: open diagrams (no periodic images), computed by HomCloud. Periodic sheets get
        `bulk_pair` (see `learning_pairs`).
        """
        dim = system_dim(system)
        lo, hi = (float(v) for v in (range_A2 if range_A2 is not None else DEFAULT_RANGE_A2[dim]))
        named = bool(backend)
        backend = backend or ("" if periodic else "homcloud")
        bins = DEFAULT_BINS if bins is None else bins  # 0 is an error, not the default
        return cls(system, lo, hi, bins, int(degree), backend, sheet, tuple(elements),
                   bool(periodic), bool(periodic) and dim == 2 and int(degree) == 1,
                   backend_named=named and periodic)  # fmt: skip

    @property
    def dim(self) -> int:
        """Periodic dimension (2: sheets, 3: bulk cells)."""
        return SYSTEM_DIM[self.system]

    @property
    def histogram(self) -> HistogramSpec:
        return HistogramSpec(self.lo_A2, self.hi_A2, self.bins)

    @property
    def id(self) -> str:
        """Name the stored descriptors are filed under, e.g. `homcloud-h1-0-4-128`, `delaunay.r2-h1-0-8-128`.

        A backend revision above 1 is part of the name, so descriptors of an earlier, corrected revision
        are never reused; a 2D sheet mode other than the default is too (flat sheets, which the stored
        melt-quench sheets are, give the same diagram either way).
        """
        revision = BACKEND_REVISION.get(self.backend, 1)
        name = self.backend if revision == 1 else f"{self.backend}.r{revision}"
        sheet = f"-{self.sheet}" if self.dim == 2 and self.sheet != DEFAULT_SHEET_MODE else ""
        open_ = "" if self.periodic else "-open"
        return f"{name}-h{self.degree}-{self.lo_A2:g}-{self.hi_A2:g}-{self.bins}{sheet}{open_}"

    @property
    def default_standardization(self) -> str:
        return DEFAULT_STANDARDIZATION[self.dim]

    @property
    def requested_backend(self) -> str | None:
        """The backend to ask `alpha_diagram` for: a named one, else None for the dimension's default, which lets
        a cell the default cannot take use the other backend (the same diagram).
        """
        return None if self.backend == DEFAULT_BACKEND[self.dim] and not self.backend_named else self.backend

    def learning_pairs(
        self, births_A2: np.ndarray, deaths_A2: np.ndarray, essential_births_A2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The finite pairs (Å²) diagram-based models learn from: with `bulk_pair`, the stored pairs plus the
        one pair per cell a periodic sheet's torus classes hide (`pdmd.descriptor.bulk.bulk_pairs`), so that
        cells of every size have the same pairs per atom; else the pairs unchanged. Stored diagrams stay raw.
        """
        if not self.bulk_pair:
            return np.asarray(births_A2, float), np.asarray(deaths_A2, float)
        return bulk_pairs(births_A2, deaths_A2, essential_births_A2, self.dim)

    def with_backend(self, backend: str) -> DescriptorSpec:
        """The same setting with a named backend (always the one used)."""
        return replace(self, backend=backend, backend_named=True)

    def with_degree(self, degree: int) -> DescriptorSpec:
        """The same setting for homology degree `degree` (e.g. the H0 channel of a two-channel CNN input); the
        hidden per-cell pair (`bulk_pair`) as `for_system` sets it: periodic 2D H1 diagrams only.
        """
        return replace(self, degree=int(degree), bulk_pair=self.periodic and self.dim == 2 and int(degree) == 1)

    def with_elements(self, elements: Iterable[int]) -> DescriptorSpec:
        return replace(self, elements=tuple(sorted({int(z) for z in elements})))

    def diagram(self, frame: Frame, label: str = "structure", isolate: bool = True) -> PersistenceDiagram:
        """The persistence diagram (Å²) of one structure with this setting (isolate: see `alpha_diagram`)."""
        return alpha_diagram(frame, self.dim, self.degree, backend=self.requested_backend, isolate=isolate,
                             label=label, sheet=self.sheet, periodic=self.periodic)  # fmt: skip

    def nonempty_diagram(self, frame: Frame, label: str = "structure", isolate: bool = True) -> PersistenceDiagram:
        """`diagram`, refusing one without finite pairs (DescriptorError): no model learns from or predicts with it."""
        d = self.diagram(frame, label, isolate)
        if d.n_pairs == 0:
            raise DescriptorError(
                f"{label}: empty persistence diagram (no finite H{self.degree} pairs: no rings close in the alpha "
                "filtration); a model can neither learn from nor predict with it: check that this is a carbon "
                "network with rings, or drop it"
            )
        return d

    def image(self, diagram: PersistenceDiagram) -> PDImage:
        """The probability image of a diagram's finite pairs on this setting's grid."""
        return pd_histogram(diagram.births_A2, diagram.deaths_A2, self.histogram)

    def frame_image(self, frame: Frame, label: str = "structure") -> np.ndarray:
        """The probability image (bins, bins) of one structure's (non-empty) diagram with this setting."""
        return self.image(self.nonempty_diagram(frame, label)).image

    def to_dict(self) -> dict:
        """What a model card records (`descriptor`); `from_dict` reads it back."""
        d = {"system": self.system, "dim": self.dim, "degree": self.degree, "backend": self.backend,
             "elements": list(self.elements), **self.histogram.as_dict(), "periodic": self.periodic,
             "bulk_pair": self.bulk_pair}  # fmt: skip
        if self.sheet is not None:
            d["sheet"] = self.sheet
        return d

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "descriptor") -> DescriptorSpec:
        """Read a recorded setting (cards of every pdmd version: a card without `sheet` used the default)."""
        if not isinstance(d, Mapping):
            raise InputError(f"{source}: the descriptor setting is {type(d).__name__}, not a mapping")
        recorded = [f.name for f in fields(cls) if f.name != "backend_named"] + ["dim"]  # what `to_dict` writes
        missing = [k for k in ("system", "lo_A2", "hi_A2", "bins") if k not in d]
        unknown = sorted(set(d) - set(recorded))
        if missing or unknown:
            raise InputError(f"{source}: descriptor setting has missing fields {missing} / unknown fields {unknown}; "
                             f"expected {recorded}")  # fmt: skip
        try:
            spec = cls(
                str(d["system"]),
                float(d["lo_A2"]),
                float(d["hi_A2"]),
                int(d["bins"]),
                int(d.get("degree", DEFAULT_DEGREE)),
                str(d.get("backend") or ""),
                d.get("sheet"),
                tuple(int(z) for z in d.get("elements", (6,))),
                bool(d.get("periodic", True)),
                bool(d.get("bulk_pair", False)),
            )  # fmt: skip  (cards from before it: as trained)
        except (TypeError, ValueError) as err:
            raise InputError(f"{source}: descriptor setting {dict(d)} is malformed: {err}") from None
        for flag in ("periodic", "bulk_pair"):
            if not isinstance(d.get(flag, True), bool):
                raise InputError(f"{source}: descriptor setting has {flag}={d[flag]!r}; expected true or false")
        if "dim" in d and int(d["dim"]) != spec.dim:
            raise InputError(f"{source}: descriptor setting says dim {d['dim']} for system {spec.system!r}, "
                             f"which is {spec.dim}D")  # fmt: skip
        return spec


def channel_specs(spec: DescriptorSpec, extra_degrees: tuple[int, ...]) -> list[DescriptorSpec]:
    """The descriptor settings of the extra input channels: `spec` at each degree of `extra_degrees`; refused
    (one InputError line; call it before computing diagrams) if a degree repeats `spec`'s or does not exist there.
    """
    if spec.degree in extra_degrees:
        raise InputError(f"cnn.extra_degrees {list(extra_degrees)} repeats the descriptor's own degree "
                         f"{spec.degree}; name only further degrees, e.g. [0] for H1 and H0")  # fmt: skip
    try:
        return [spec.with_degree(d) for d in extra_degrees]
    except InputError as err:
        raise InputError(f"cnn.extra_degrees {list(extra_degrees)}: {err}") from None


def channel_images(frame: Frame, spec: DescriptorSpec, extra_degrees: Iterable[int] = (), label: str = "structure",
                   first: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Probability image (bins, bins) of `spec`'s diagram of `frame`; with `extra_degrees`, (1 + E, bins, bins): that
    image, then one per further homology degree on the same grid (e.g. H1 and H0 as two channels).
    `first`: `spec`'s image of the frame when the caller has it already.
    """
    if first is None:
        first = spec.frame_image(frame, label)
    extra = [s.frame_image(frame, label) for s in channel_specs(spec, tuple(extra_degrees))]
    return np.stack([first, *extra]) if extra else first
