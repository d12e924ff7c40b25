# torch_info.py — one line for BENCHMARKS.md: the PyTorch version and the
# BLAS library its GEMM actually loaded (read from the process's own maps).
import torch

torch.set_num_threads(1)
torch.rand(8, 8) @ torch.rand(8, 8)  # makes sure the BLAS is loaded
libs = sorted({line.split()[-1] for line in open("/proc/self/maps")
               if "openblas" in line or "libblas" in line or "mkl" in line})
# prefer the implementation (libopenblasp-r0.3.x.so) over the libblas.so.3 shim
impl = [p for p in libs if "libopenblas" in p or "libmkl" in p]
blas = (impl or libs or ["none found"])[0]
print("PyTorch %s, BLAS %s" % (torch.__version__, blas))
