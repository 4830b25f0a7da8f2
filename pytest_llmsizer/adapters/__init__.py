"""Adapters that plug other people's calculators into pytest-llmsizer through the external-calculator protocol.

Each adapter is a program speaking ``llmsizer-calculator/1`` (one JSON request on stdin, one JSON answer on
stdout; see ``examples/README.md``), so the plugin and the CLI run it like any ``--calculator-cmd``.
"""
