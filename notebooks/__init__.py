"""Package resource facenb._resources.notebooks: this folder is shipped inside the facenb package (see setup.py)."""
