"""Edit engines: the base class and registry, the classical CPU engine (relight, reframe), the
diffusers Qwen-Image-Edit engine and the spec compilers. Importing this package loads no engine."""
