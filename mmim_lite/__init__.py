"""mmim-lite: MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), compact and tested."""

__version__ = "0.1.0"
