"""hbsdeploy: Hubject HBS Service Type Settings as code."""

__version__ = "0.1.0"
