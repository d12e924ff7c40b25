# dlua — build, test, sanitize, bench, install.
# `make` builds bin/dlua, lib/libdlua.a, lib/libdlua.so and lib/lua/5.4/dlua.so.

MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# The OpenMP build of OpenBLAS shares libgomp's thread pool with our loops,
# so BLAS and element-wise work never oversubscribe the cores.
# DEPS_PREFIX: a tree the Debian packages were unpacked into (dpkg -x, see
# scripts/gpu-bundle.sh) instead of the system's: headers and libraries are
# taken from there, and scripts/install-deps.sh is not run.
DEPS_PREFIX ?=
ifneq ($(DEPS_PREFIX),)
DEPS_LIBDIR := $(DEPS_PREFIX)/usr/lib/$(MULTIARCH)
BLAS_DIR ?= $(DEPS_LIBDIR)/openblas-openmp
BLAS_INC ?= $(DEPS_PREFIX)/usr/include/$(MULTIARCH)/openblas-openmp
LUA_INC ?= -I$(DEPS_PREFIX)/usr/include/lua5.4
LUA_LIB ?= -llua5.4
CFLAGS_DEPS := -I$(DEPS_PREFIX)/usr/include
LDFLAGS_DEPS := -L$(DEPS_LIBDIR) -Wl,-rpath,$(DEPS_LIBDIR)
endif
BLAS_DIR ?= /usr/lib/$(MULTIARCH)/openblas-openmp
BLAS_INC ?= /usr/include/$(MULTIARCH)/openblas-openmp
LUA_INC ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
# the interpreter that embeds the Lua library (scripts/embed_lua.lua) and
# makes its bytecode
LUA ?= lua5.4
LUA_LIB ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)

# oneDNN (libdnnl-dev: the engine PyTorch runs convolution through) when its
# headers are there; DNNL=0 builds without it (convolution then composes
# im2col and GEMMs, src/autograd/grad_conv.c)
DNNL ?= $(if $(wildcard $(DEPS_PREFIX)/usr/include/oneapi/dnnl/dnnl.h),1,0)
CFLAGS_DNNL = $(if $(filter 1,$(DNNL)),-DDL_HAVE_DNNL)
LDLIBS_DNNL = $(if $(filter 1,$(DNNL)),-ldnnl)

BUILD ?= build
OPT ?= -O3 -march=native
SAN ?=
# Only the binding, the program and host examples see Lua's headers
# (CFLAGS_LUA is set for their objects below); the engine cannot include them.
CFLAGS_BASE = -std=gnu11 -Wall -Wextra -Werror -fPIC -fopenmp -fno-math-errno -fno-trapping-math $(OPT) $(SAN) -g \
              $(CFLAGS_LUA) -I$(BLAS_INC) $(CFLAGS_DEPS) $(CFLAGS_DNNL) -Isrc -I$(BUILD)/gen
LDLIBS_ENGINE = $(LDFLAGS_DEPS) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas $(LDLIBS_DNNL) -lz -lmvec -lm -lpthread -ldl \
                -fopenmp

ENGINE_SRC := $(wildcard src/dl_*.c src/ops/*.c src/cpu/*.c src/autograd/*.c)

# CUDA: src/gpu/*.cu are built when nvcc is found (PATH or /usr/local/cuda)
# unless CUDA=0, into the plugin lib/libdlua_cuda.so that the engine opens
# when a CUDA device is first asked for (src/dl_cuda.c): libdlua itself
# never needs the CUDA runtime, and the CPU library builds first. Only the
# runtime is linked into the plugin: cuBLAS and cuSOLVER, which cost half a
# second and 200 MB to load, are opened on first use (dl_cuda_library_symbol).
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
ifeq ($(strip $(NVCC)),)
CUDA ?= 0
else
CUDA ?= 1
endif
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
CUDA_LIBDIR ?= $(CUDA_HOME)/lib64
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS = -std=c++17 -O3 $(CUDA_ARCH) -Werror all-warnings -Xcompiler -fPIC,-Wall,-Wextra,-Werror \
            -Xcompiler -fvisibility=hidden -Isrc -DDL_CUDA_LIBDIR='"$(CUDA_LIBDIR)"'
CUDA_SRC := $(wildcard src/gpu/*.cu)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
LDLIBS_CUDA := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++ -ldl
endif
BINDING_SRC := $(wildcard src/lua_*.c)
LUA_SRC := $(shell find lua -name '*.lua' 2>/dev/null | sort)
GEN_SRC := $(BUILD)/gen/dlua_lua_sources.c
# the docs pages, embedded for dl.help (scripts/embed_lua.lua --docs)
DOC_SRC := docs/guide.md $(sort $(wildcard docs/reference/*.md))
GEN_DOCS := $(BUILD)/gen/dlua_doc_pages.c

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
BINDING_OBJ := $(BINDING_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/dlua_lua_sources.o $(BUILD)/gen/dlua_doc_pages.o
LIB_OBJ := $(ENGINE_OBJ) $(BINDING_OBJ)
$(BINDING_OBJ) $(BUILD)/src/dlua.o $(BUILD)/src/dlua_repl.o $(BUILD)/host_example: CFLAGS_LUA = $(LUA_INC)

LIBDIR ?= lib
BINDIR ?= bin
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps test sanitize bench demo demo-cnn demo-lm install clean ctest fuzz fuzz-san sweep

PLUGIN := $(if $(CUDA_OBJ),$(LIBDIR)/libdlua_cuda.so)

# MPI: the transport of dl.dist, the plugin lib/libdlua_mpi.so that
# dl.dist.init opens (src/dl_dist.c), so libdlua never needs MPI to load.
# Open MPI comes from scripts/install-deps.sh; mpicc is asked for its flags
# when the plugin is built (after the deps are installed), not when make
# reads this file. MPI=0 builds without it (dl.dist.init then says so).
MPI ?= $(if $(DEPS_PREFIX),0,1)
MPI_PLUGIN := $(if $(filter 1,$(MPI)),$(LIBDIR)/libdlua_mpi.so)

all: $(BINDIR)/dlua $(LIBDIR)/libdlua.a $(LIBDIR)/libdlua.so $(LIBDIR)/lua/5.4/dlua.so $(BUILD)/host_example \
     $(BUILD)/host_train $(PLUGIN) $(MPI_PLUGIN)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps.sh
	@$(if $(DEPS_PREFIX),echo "deps: from $(DEPS_PREFIX)",bash scripts/install-deps.sh)
	@mkdir -p $(BUILD) && touch $@

# The settings that change what an object holds; a different set (CUDA=0
# after a CUDA build, another OPT) rebuilds every object of the tree.
CONFIG := $(BUILD)/gen/config.txt
CONFIG_NOW := CUDA=$(CUDA) OPT=$(OPT) SAN=$(SAN)
$(shell mkdir -p $(BUILD)/gen; echo '$(CONFIG_NOW)' | cmp -s - $(CONFIG) || echo '$(CONFIG_NOW)' > $(CONFIG))

$(BUILD)/%.o: %.c $(DEPS_STAMP) $(CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu $(DEPS_STAMP) $(CONFIG)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

# The list of Lua files is a prerequisite too, so adding or removing one
# regenerates the embedded sources even when no file's time changed.
LUA_LIST := $(BUILD)/gen/lua_files.txt
$(shell mkdir -p $(BUILD)/gen; echo '$(LUA_SRC)' | cmp -s - $(LUA_LIST) || echo '$(LUA_SRC)' > $(LUA_LIST))

$(GEN_SRC): scripts/embed_lua.lua $(LUA_SRC) $(LUA_LIST) $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(LUA) scripts/embed_lua.lua --release "$$($(LUA) -v 2>&1)" $@ $(LUA_SRC)

$(BUILD)/gen/dlua_lua_sources.o: $(GEN_SRC)
	$(CC) $(CFLAGS_BASE) -c $< -o $@

DOC_LIST := $(BUILD)/gen/doc_files.txt
$(shell mkdir -p $(BUILD)/gen; echo '$(DOC_SRC)' | cmp -s - $(DOC_LIST) || echo '$(DOC_SRC)' > $(DOC_LIST))

$(GEN_DOCS): scripts/embed_lua.lua $(DOC_SRC) $(DOC_LIST) $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(LUA) scripts/embed_lua.lua --docs $@ $(DOC_SRC)

$(BUILD)/gen/dlua_doc_pages.o: $(GEN_DOCS)
	$(CC) $(CFLAGS_BASE) -c $< -o $@

$(LIBDIR)/libdlua.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBDIR)/libdlua.so: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN) -o $@ $^ $(LDLIBS_ENGINE) $(LUA_LIB)

# The module leaves Lua's symbols to the interpreter that loads it. It is
# never unloaded (-z nodelete): lua_close dlcloses C modules, and unmapping
# libgomp under its idle pool threads crashed lua5.4's exit.
$(LIBDIR)/lua/5.4/dlua.so: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN) -Wl,-z,nodelete -o $@ $^ $(LDLIBS_ENGINE)
	@# lua5.4 looks for ./?.so: from the tree, `lua5.4 -e 'require "dlua"'` works
	@# after make (and luarocks make); the default layout only
	@if [ "$(LIBDIR)" = lib ]; then ln -sf lib/lua/5.4/dlua.so dlua.so; fi

# the CUDA backend, opened by the engine at run time (src/dl_cuda.c); its
# objects export one symbol (-fvisibility=hidden) and take the engine's
# from the program or library that opens it
$(LIBDIR)/libdlua_cuda.so: $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDLIBS_CUDA)

# one exported symbol; the engine's come from the program that opens it
$(LIBDIR)/libdlua_mpi.so: src/mpi/dl_mpi.c $(wildcard src/*.h) $(DEPS_STAMP) $(CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $$(mpicc --showme:compile) -fvisibility=hidden -shared -o $@ $< $$(mpicc --showme:link)

$(BINDIR)/dlua: $(BUILD)/src/dlua.o $(BUILD)/src/dlua_repl.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -rdynamic -o $@ $^ $(LDLIBS_ENGINE) $(LUA_LIB) -ledit

$(BUILD)/host_example: scripts/host_example.c $(LIBDIR)/libdlua.a
	$(CC) $(CFLAGS_BASE) -o $@ $< $(LIBDIR)/libdlua.a $(LDLIBS_ENGINE) $(LUA_LIB)

# the engine alone from C: an MLP trained with Adam, no Lua linked
$(BUILD)/host_train: scripts/host_train.c $(ENGINE_OBJ)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(ENGINE_OBJ) $(LDLIBS_ENGINE)

# C unit tests of the engine alone (no Lua)
CTEST_SRC := $(wildcard spec/c/test_*.c)
CTEST_BIN := $(CTEST_SRC:spec/c/%.c=$(BUILD)/ctest/%)
$(BUILD)/ctest/%: spec/c/%.c spec/c/ctest.h $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(ENGINE_OBJ) $(LDLIBS_ENGINE)

# a stand-in CUDA plugin whose kernels fail on purpose (spec/kernel_status_spec.lua)
$(BUILD)/ctest/libfake_cuda.so: spec/c/fake_cuda_plugin.c $(wildcard src/*.h src/ops/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -shared -o $@ $<

ctest: $(CTEST_BIN) $(BUILD)/ctest/libfake_cuda.so $(BUILD)/fuzz/fuzz_readers

# mutation fuzzers of the file readers (spec/fuzz/fuzz_readers.c), FUZZ_N
# inputs per format; `make fuzz-san` runs them on the sanitizer build
FUZZ_N ?= 1000000
FUZZ_FORMATS := npy safetensors idx idxgz csv checkpoint
$(BUILD)/fuzz/fuzz_readers: CFLAGS_LUA = $(LUA_INC)
$(BUILD)/fuzz/fuzz_readers: spec/fuzz/fuzz_readers.c $(LIBDIR)/libdlua.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(LIBDIR)/libdlua.a $(LDLIBS_ENGINE) $(LUA_LIB)

fuzz: $(BUILD)/fuzz/fuzz_readers
	@for f in $(FUZZ_FORMATS); do $< $$f $(FUZZ_N) $(FUZZ_SEED) || exit 1; done

fuzz-san: $(DEPS_STAMP)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) CUDA=0 BUILD=build-san LIBDIR=build-san/lib BINDIR=build-san/bin OPT="-O1 -DDL_NO_CACHE" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" fuzz

# the bad-input sweep (spec/sweep/sweep.lua), whole, in an empty directory,
# with the stand-in CUDA plugin for tensors on another device; make test runs
# it too, make sanitize under ASan+UBSan (docs/sweep.md)
sweep: all ctest
	@d=$$(mktemp -d) && cd $$d && DLUA_CUDA_PLUGIN=$(CURDIR)/$(BUILD)/ctest/libfake_cuda.so \
	  $(CURDIR)/$(BINDIR)/dlua $(CURDIR)/spec/sweep/sweep.lua $(SWEEP_ARGS); rc=$$?; rm -rf $$d; exit $$rc

test: all ctest
	@bash spec/run.sh $(BINDIR)/dlua $(BUILD) $(LIBDIR)

# ASan + UBSan build in its own tree, running the same suite; the caching
# allocator is bypassed so the sanitizer sees every block.
sanitize: $(DEPS_STAMP)
	$(MAKE) CUDA=0 BUILD=build-san LIBDIR=build-san/lib BINDIR=build-san/bin OPT="-O1 -DDL_NO_CACHE" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all ctest
	DLUA_SANITIZED=1 ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  bash spec/run.sh build-san/bin/dlua build-san build-san/lib

bench: all
	@bash scripts/bench/run.sh

# README's first command: installs what is missing, builds, and trains the
# Fashion-MNIST MLP (checkpoint and plot under runs/fashion)
demo: $(BINDIR)/dlua
	bash scripts/install-deps.sh && $(BINDIR)/dlua scripts/train_fashion.lua

# the convolutional demo: a CNN with BatchNorm2d, crops and flips, AdamW and
# OneCycleLR (scripts/train_fashion_cnn.lua)
demo-cnn: $(BINDIR)/dlua
	bash scripts/install-deps.sh && $(BINDIR)/dlua scripts/train_fashion_cnn.lua

demo-lm: $(BINDIR)/dlua
	bash scripts/install-deps.sh && $(BINDIR)/dlua scripts/train_charlm.lua

PREFIX ?= /usr/local
install: all
	install -d $(PREFIX)/bin $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/lib/lua/5.4 $(PREFIX)/lib/pkgconfig
	install -m 755 $(BINDIR)/dlua $(PREFIX)/bin/dlua
	install -m 644 $(LIBDIR)/libdlua.a $(LIBDIR)/libdlua.so $(PLUGIN) $(MPI_PLUGIN) $(PREFIX)/lib/
	install -m 644 $(LIBDIR)/lua/5.4/dlua.so $(PREFIX)/lib/lua/5.4/dlua.so
	install -m 644 src/dlua.h src/dl_core.h src/dl_tensor.h $(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' scripts/dlua.pc.in > $(PREFIX)/lib/pkgconfig/dlua.pc

clean:
	rm -rf build build-san bin lib dlua.so

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
