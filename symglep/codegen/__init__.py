"""Code generation: identifier sanitiser, printers, rendering and the kernel cache."""
