"""Package resource facenb._resources.seeds: this folder is shipped inside the facenb package (see setup.py)."""
