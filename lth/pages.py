"""The book's pages, declared once: which notebook each page is executed from, with which
parameters, under which title, which part of the paper it rebuilds and which figures it must
produce. ``scripts/build_book.py`` plans its runs and checks its figures from :data:`PAGES`, and
the tests check it against ``_toc.yml`` and ``notebooks/``. Adding a page is one :class:`Page`
in :data:`PAGES`, its notebook in ``notebooks/`` (unless it reuses one) and one ``_toc.yml``
line. This module imports nothing heavy, so anything can read the registry cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Page:
    """One page of the book, ``book/<name>.ipynb``, executed by papermill from
    ``notebooks/<notebook>.ipynb``. ``title`` replaces the notebook's first heading (None: keep
    it); ``paper`` names what of the paper the page rebuilds (None: a check of this reproduction,
    not in the paper); ``parameters`` are the papermill parameters this page sets on its
    notebook and ``smoke`` the overrides applied on top of everything with ``--profile smoke``
    (to keep CI small); ``figures`` are the PNG file names under ``book/figures/`` the page must
    produce. ``target_profile`` is the profile the committed book shows the page at: the
    notebook's own default, or ``parameters["profile"]`` when the page sets one (it is filled in
    from there when not given). The dicts are shared: read them, copy before changing.
    """

    name: str
    notebook: str
    title: str | None = None
    paper: str | None = None
    parameters: dict[str, object] = field(default_factory=dict)
    smoke: dict[str, object] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    target_profile: str | None = None
    runs_last: bool = False  # it reads the records the other pages make: executed after them

    def __post_init__(self) -> None:
        """Fill ``target_profile`` from ``parameters["profile"]``; refuse a contradiction or a
        figure that is not a PNG file name."""
        given = self.parameters.get("profile")
        if given is not None and self.target_profile not in (None, given):
            raise ValueError(
                f"page {self.name!r}: target_profile {self.target_profile!r} but parameters "
                f"set profile {given!r}"
            )
        if given is not None:
            object.__setattr__(self, "target_profile", given)
        for figure in self.figures:
            if "/" in figure or not figure.endswith(".png"):
                raise ValueError(f"page {self.name!r}: figure {figure!r} is not a PNG file name")


#: The book's pages in the book's order (the order of ``_toc.yml``'s chapters).
PAGES: tuple[Page, ...] = (
    # every claim with its verdict, from the records of all the other pages
    Page(name="scorecard", notebook="scorecard", paper=None, runs_last=True),
    # beyond the paper: the criteria as regions of the (w_i, w_f) plane of a real trained layer;
    # it reads a committed layer (data/layers/), also in the smoke build
    Page(
        name="criteria_plane",
        notebook="criteria_plane",
        paper=None,
        smoke={"profile": "paper"},
        figures=("criteria_plane.png",),
        target_profile="paper",
    ),
    Page(
        name="criteria",
        notebook="criteria",
        paper="Figure 3",
        figures=("criteria.png",),
        target_profile="mid",
    ),
    Page(
        name="criteria_conv2",
        notebook="criteria",
        title="Figure 3 on Conv2 (CIFAR-10): mask criteria",
        paper="Figure 3",
        parameters={
            "net": "conv2",
            "profile": "conv-short",  # also its target_profile
            "criteria": ["large_final", "magnitude_increase", "random"],
            "figure_name": "criteria_conv2",
            "target_profile": "conv-fig3",  # chosen from the dense runs (lth.conv_profile)
        },
        smoke={"criteria": ["large_final"], "rounds": 1, "iterations": 5},  # 300 CIFAR images
        figures=("criteria_conv2.png",),
    ),
    # the other conv nets' Figure 3 at their chosen profile only: the page reads the store and
    # trains nothing (the campaign makes its runs), so its smoke build is the "not yet run" page
    *(
        Page(
            name=f"criteria_{net}",
            notebook="criteria_conv",
            title=f"Figure 3 on Conv{net[-1]} (CIFAR-10): mask criteria",
            paper="Figure 3",
            parameters={"net": net},  # its figures: criteria_<net>_... (the page's name)
            target_profile="conv-fig3",
        )
        for net in ("conv4", "conv6")
    ),
    Page(
        name="signs",
        notebook="signs",
        paper="Figure 4",
        figures=("signs.png",),
        target_profile="mid-short",
    ),
    Page(
        name="zeros",
        notebook="zeros",
        paper="Figure 5",
        figures=("zeros.png",),
        target_profile="mid-short",
    ),
    Page(
        name="sign_criteria",
        notebook="sign_criteria",
        paper="Figure S5",
        figures=("sign_criteria.png",),
        target_profile="mid-short",
    ),
    Page(
        name="supermask",
        notebook="supermask",
        paper="Figure 7",
        figures=("supermask.png", "supermask_curve.png"),
        target_profile="supermask",
    ),
    Page(name="table1", notebook="table1", paper="Table 1", target_profile="supermask"),
    Page(
        name="precision",
        notebook="precision",
        paper=None,  # bf16 against fp32: a check of this reproduction
        # CI: one seed, and 5 iterations (300 images) for the conv net
        smoke={"conv_profile": "smoke", "conv_iterations": 5, "seeds": [0]},
        figures=("precision.png",),
        target_profile="mid",
    ),
    # commands, costs and how to extend; its profile is only the one whose cost is detailed
    Page(name="reproduce", notebook="reproduce", paper=None, target_profile="paper"),
)


def get_page(name: str) -> Page:
    """The page called ``name`` (``book/<name>.ipynb``); a ValueError that lists the accepted
    names for any other name."""
    for page in PAGES:
        if page.name == name:
            return page
    accepted = ", ".join(page.name for page in PAGES)
    raise ValueError(f"unknown page {name!r}; accepted: {accepted}")
