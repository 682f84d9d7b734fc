"""The presentation layer: each chapter's plots and demo drivers, one module ``nbNN.py`` per chapter.

Nothing here holds mathematics a test needs (that lives in the library); figures are
registered with :func:`fmedu.registry.figure` and produced by ``python -m fmedu figures``.
"""
