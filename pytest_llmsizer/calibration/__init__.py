"""Fitting the calculator's coefficients to profiles (``llmsizer calibrate``), with cross-validation grouped by model.

``observe`` turns a profile into what the fit needs; ``fit`` fits every coefficient family, cross-validates and
decides; ``render`` prints the report. Pure: profiles in, a ``CoefficientSet`` and a report out.
"""
