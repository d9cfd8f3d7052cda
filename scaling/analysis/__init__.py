"""Analysis of finished runs: result records, scaling-law fits, tables and figures.

``records`` reads ``result.json`` files and averages seeds, ``fit`` fits power laws of the
retrieval error against parameters or FLOPs with bootstrap intervals, ``table`` renders markdown,
``plots`` draws PNG figures. ``recipes/report.py`` ties them together. Nothing here imports torch.
"""
