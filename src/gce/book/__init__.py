"""gce.book: the machinery of the book's chapters, built on the library :mod:`gce`.

- :mod:`gce.book.experiments` -- the paper's figures and tables as grids of
  runs at four scales; ``run`` trains what is missing.
- :mod:`gce.book.store` -- the result store: one SQLite file per scale, the
  single source of truth; run ids, provenance, CSV export and import.
- :mod:`gce.book.reader` -- the one way to read stored results (chapters,
  claims and the command line); it never trains.
- :mod:`gce.book.runners` -- where a grid trains: in process, or on Ray;
  :mod:`gce.book.parallel` -- several processes side by side;
  :mod:`gce.book.budget` -- no grid is retrained by surprise.
- :mod:`gce.book.claims` -- the paper's experimental claims (Sec. 3.2, 4.1,
  4.3), with verdicts computed from stored results; :mod:`gce.book.stats` --
  how a comparison is decided.
- :mod:`gce.book.analysis` and :mod:`gce.book.plots` -- the summaries and
  figures the chapters share; :mod:`gce.book.chapters` -- one module per
  chapter for what only that chapter shows.
- :mod:`gce.book.theory` -- the mathematics of Sec. 3 in sympy, with numeric
  twins.
- :mod:`gce.book.cpu_scale` -- the cpu scale's datasets and schedule;
  :mod:`gce.book.later` -- after the paper: published numbers of later work,
  the later losses side by side.
- :mod:`gce.book.cli` -- ``python -m gce``; :mod:`gce.book.paths` -- where
  results are found.
- :mod:`gce.book.teaching`, :mod:`gce.book.colab`,
  :mod:`gce.book.notebooks` -- the course kit, the Colab install cell, the
  notebooks as JSON.

The rule: this package imports :mod:`gce`; :mod:`gce` never imports it.
"""
