"""Installs crux's in-process agent (the `crux` package and its C module crux._agent) into
the current environment: `pip install src/agent`. `make agent` builds the same thing per
installed interpreter into build/agent/<id> without installing anything."""
from setuptools import Extension, setup

setup(
    name="crux-agent",
    version="0.1.0",
    description="crux's in-process agent: request stages for `crux stages`",
    packages=["crux"],
    ext_modules=[Extension("crux._agent", sources=["agent.c"], include_dirs=["."],
                           extra_compile_args=["-std=gnu11", "-fvisibility=hidden"])],
    python_requires=">=3.8",
)
