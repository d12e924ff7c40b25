/* dl_plugin.h — finding and opening a plugin of the engine (the CUDA
 * backend, the MPI transport of dl.dist). A plugin is looked for beside the
 * object that holds the engine: lib/NAME next to libdlua.so, from bin/dlua
 * one directory up, from the Lua module lib/lua/5.4/dlua.so two up; an
 * environment variable names it outright, and the loader's search path is
 * the last resort (an installed dlua). The engine's own symbols are made
 * global first, so the plugin resolves them even when the engine itself was
 * opened RTLD_LOCAL (require "dlua" from lua5.4). */
#ifndef DL_PLUGIN_H
#define DL_PLUGIN_H

#include <stddef.h>

/* The handle of plugin `name` (e.g. "libdlua_cuda.so"), or NULL with why in
 * reason: `missing` when no file was found, "<what> failed to load: <the
 * loader's message>" when one was found and failed to load. env: the
 * variable that names it outright. */
void *dl_plugin_open(const char *name, const char *what, const char *env, const char *missing, char *reason,
                     size_t n);

#endif
