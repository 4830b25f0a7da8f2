"""Catalogs the calculator looks things up in: GPU specs (runtime-visible memory) and model architectures."""
