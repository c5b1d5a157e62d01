"""Business domains of the kernel, one package per area."""
