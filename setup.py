"""Package discovery over the mapped folders: the design fixes a top-level layout (flows/,
tasks/, models/, db/, provenance/) that installs as sub-packages of `castkeep`, so nothing generic
lands in site-packages. Every package found under a mapped folder ships; nothing is listed by
hand. The rest of the metadata is in pyproject.toml."""

from setuptools import find_packages, setup

MAPPED = {
    "castkeep": "castkeep",
    "castkeep.flows": "flows",
    "castkeep.tasks": "tasks",
    "castkeep.models": "models",
    "castkeep.db": "db",
    "castkeep.provenance": "provenance",
}

packages = []
for name, folder in MAPPED.items():
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=MAPPED)
