"""Chapter-only summaries and figures of the book: one module per chapter, named after its notebook.

Each module holds what exactly one chapter computes from the stored results (a table it shows, a number it
glues); pieces several chapters share stay in :mod:`gce.book.analysis` and :mod:`gce.book.plots`.
"""
