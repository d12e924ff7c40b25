-- `luarocks make` in the source tree builds dlua with its own Makefile and
-- installs the Lua module (require "dlua") and the dlua program into the tree.
rockspec_format = "3.0"
package = "dlua"
version = "scm-1"

-- built from a checkout with `luarocks make`; the source is this tree
source = {
  url = "file://.",
}

description = {
  summary = "Deep learning in C with Lua 5.4 scripts: tensors, autograd, nn, optim",
  detailed = [[
dlua is a deep-learning framework whose engine is C (OpenBLAS on CPU, CUDA on
GPU) and whose experiments are Lua 5.4 scripts, with PyTorch's semantics and
Torch7's 1-based conventions. This rock builds the `dlua` module for plain
Lua 5.4 interpreters and the `dlua` program (a REPL and script runner).
]],
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

-- The Makefile finds OpenBLAS (OpenMP build), zlib and libedit itself and
-- installs missing Debian packages through scripts/install-deps.sh.
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    LUA_INC = "-I$(LUA_INCDIR)",
    LUA = "$(LUA)",
    OPT = "-O2",
  },
  -- the Makefile's install target is for system prefixes; the rock tree
  -- takes the built files from build.install below
  install_pass = false,
  install = {
    lib = {
      ["dlua"] = "lib/lua/5.4/dlua.so",
    },
    bin = {
      ["dlua"] = "bin/dlua",
    },
  },
}
