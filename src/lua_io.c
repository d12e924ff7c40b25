/* lua_io.c — the file side of dl.save / dl.load (lua/dlua/io.lua builds on
 * these): an atomic writer, npy and safetensors headers, and one loader
 * that detects the format from the magic bytes and parses everything
 * before returning anything, so a bad file never gives a partial object.
 * Exposed as dl._io (internal). */
#include "lua_dlua.h"

#include "dl_file.h"
#include "dl_npy.h"
#include "dl_safetensors.h"

#include <stdlib.h>
#include <string.h>

#define WRITER_META "dlua.io.writer"
#define CKPT_MAGIC "DLUACKPT"
#define CKPT_PRE 24 /* magic, u32 version, u32 flags, u64 safetensors length */
#define CKPT_VERSION 1
#define MAX_FILE ((size_t)1 << 40)

typedef struct {
  dl_file_writer *w;
} writer_ud;

static writer_ud *checkwriter(lua_State *L) {
  writer_ud *u = luaL_checkudata(L, 1, WRITER_META);
  if (!u->w) luaL_error(L, "dl.save: the writer is already closed");
  return u;
}

static int l_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  writer_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = NULL;
  luaL_setmetatable(L, WRITER_META);
  u->w = dl_file_writer_open("save", path);
  if (!u->w) return dlua_engine_error(L);
  return 1;
}

static int l_writer_write(lua_State *L) {
  writer_ud *u = checkwriter(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  dlua_check_status(L, dl_file_writer_write(u->w, s, n));
  return 0;
}

/* the raw C-order bytes of t (copied to the host and made contiguous) */
static int l_writer_write_tensor(lua_State *L) {
  writer_ud *u = checkwriter(L);
  dl_tensor *t = dlua_checktensor(L, 2);
  dl_tensor *h = dl_tensor_to_device(t, dl_device_cpu());
  if (!h) return dlua_engine_error(L);
  dl_tensor *c = dl_tensor_contiguous(h);
  dl_tensor_release(h);
  if (!c) return dlua_engine_error(L);
  int rc = dl_file_writer_write(u->w, dl_tensor_data(c), (size_t)c->numel * dl_dtype_size(c->dtype));
  dl_tensor_release(c);
  dlua_check_status(L, rc);
  return 0;
}

static int l_writer_size(lua_State *L) {
  writer_ud *u = checkwriter(L);
  lua_pushinteger(L, (lua_Integer)dl_file_writer_size(u->w));
  return 1;
}

static int l_writer_commit(lua_State *L) {
  writer_ud *u = checkwriter(L);
  dl_file_writer *w = u->w;
  u->w = NULL;
  dlua_check_status(L, dl_file_writer_commit(w));
  return 0;
}

static int l_writer_abort(lua_State *L) {
  writer_ud *u = luaL_checkudata(L, 1, WRITER_META);
  dl_file_writer_abort(u->w);
  u->w = NULL;
  return 0;
}

static int l_npy_header(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  size_t n;
  char *h = dl_npy_header(t, &n);
  if (!h) return dlua_engine_error(L);
  lua_pushlstring(L, h, n);
  free(h);
  return 1;
}

/* st_header(names, tensors, meta) -> header bytes, data length. names and
 * tensors are parallel lists; meta a table of strings or nil. */
static int l_st_header(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (luaL_len(L, 2) != n) return luaL_argerror(L, 2, "expected as many tensors as names");
  int64_t nmeta = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 3, "metadata keys and values must be strings");
      nmeta++;
      lua_pop(L, 1);
    }
  }
  /* arrays live in userdata so an error cannot leak them */
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
  dl_tensor **ts = lua_newuserdatauv(L, sizeof(dl_tensor *) * (size_t)(n ? n : 1), 0);
  const char **meta = lua_newuserdatauv(L, sizeof(char *) * (size_t)(2 * nmeta + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 1, "names must be strings");
    names[i - 1] = lua_tostring(L, -1); /* anchored in the table */
    lua_pop(L, 1);
    lua_geti(L, 2, i);
    ts[i - 1] = dlua_checktensor(L, -1);
    lua_pop(L, 1);
  }
  if (nmeta) {
    int64_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      meta[2 * k] = lua_tostring(L, -2);
      meta[2 * k + 1] = lua_tostring(L, -1);
      k++;
      lua_pop(L, 1);
    }
  }
  size_t len;
  uint64_t data_len;
  char *h = dl_st_header(names, ts, (int64_t)n, meta, nmeta, &len, &data_len);
  if (!h) return dlua_engine_error(L);
  lua_pushlstring(L, h, len);
  free(h);
  lua_pushinteger(L, (lua_Integer)data_len);
  return 2;
}

/* pushes {name = tensor} and {key = value}; takes the tensors */
static void push_st(lua_State *L, dl_st_file *f) {
  lua_createtable(L, 0, (int)f->n);
  for (int64_t i = 0; i < f->n; i++) {
    dlua_pushtensor(L, f->tensors[i]);
    f->tensors[i] = NULL;
    lua_setfield(L, -2, f->names[i]);
  }
  lua_createtable(L, 0, (int)f->nmeta);
  for (int64_t i = 0; i < f->nmeta; i++) {
    lua_pushstring(L, f->meta[2 * i + 1]);
    lua_setfield(L, -2, f->meta[2 * i]);
  }
}

/* Lua-owned buffer so an error never leaks the file contents */
typedef struct {
  unsigned char *p;
  dl_st_file st;
} load_ud;

static int l_load_gc(lua_State *L) {
  load_ud *u = lua_touserdata(L, 1);
  free(u->p);
  u->p = NULL;
  dl_st_file_free(&u->st);
  return 0;
}

static uint64_t rd_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* load(path) -> "npy", tensor | "safetensors", tensors, meta |
 * "checkpoint", tensors, meta, structure bytes */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  load_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  lua_newtable(L);
  lua_pushcfunction(L, l_load_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  size_t n;
  u->p = dl_file_read_all("load", path, &n, MAX_FILE);
  if (!u->p) return dlua_engine_error(L);
  const unsigned char *b = u->p;
  if (n >= 6 && memcmp(b, DL_NPY_MAGIC, 6) == 0) {
    dl_tensor *t = dl_npy_parse(path, b, n);
    if (!t) return dlua_engine_error(L);
    free(u->p); /* the copy is made: no need to wait for the collector */
    u->p = NULL;
    lua_pushliteral(L, "npy");
    dlua_pushtensor(L, t);
    return 2;
  }
  if (n >= 8 && memcmp(b, CKPT_MAGIC, 8) == 0) {
    if (n < CKPT_PRE) {
      dl_error_set("load: %s: truncated checkpoint header (%zu bytes)", path, n);
      return dlua_engine_error(L);
    }
    uint32_t version = (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
    if (version != CKPT_VERSION) {
      dl_error_set("load: %s: unsupported checkpoint version %u (this dlua reads version %d)", path, version,
                   CKPT_VERSION);
      return dlua_engine_error(L);
    }
    uint64_t stlen = rd_u64(b + 16);
    if (stlen > n - CKPT_PRE) {
      dl_error_set("load: %s: truncated checkpoint: tensor section of %llu bytes, %zu left in the file", path,
                   (unsigned long long)stlen, n - CKPT_PRE);
      return dlua_engine_error(L);
    }
    if (dl_st_parse(path, b + CKPT_PRE, (size_t)stlen, &u->st) != 0) return dlua_engine_error(L);
    lua_pushliteral(L, "checkpoint");
    push_st(L, &u->st);
    lua_pushlstring(L, (const char *)b + CKPT_PRE + stlen, n - CKPT_PRE - (size_t)stlen);
    free(u->p);
    u->p = NULL;
    return 4;
  }
  /* safetensors has no magic: an 8-byte length then '{' */
  if (n >= 9 && b[8] == '{') {
    if (dl_st_parse(path, b, n, &u->st) != 0) return dlua_engine_error(L);
    free(u->p);
    u->p = NULL;
    lua_pushliteral(L, "safetensors");
    push_st(L, &u->st);
    return 3;
  }
  dl_error_set("load: %s: unknown file format (%s)", path,
               n < 9 ? "too short to hold any supported format" : "not npy, safetensors or a dlua checkpoint");
  return dlua_engine_error(L);
}

static const luaL_Reg writer_methods[] = {{"write", l_writer_write},   {"write_tensor", l_writer_write_tensor},
                                          {"size", l_writer_size},     {"commit", l_writer_commit},
                                          {"abort", l_writer_abort},   {NULL, NULL}};

static const luaL_Reg io_functions[] = {{"writer", l_writer},       {"npy_header", l_npy_header},
                                        {"st_header", l_st_header}, {"load", l_load},
                                        {NULL, NULL}};

void dlua_open_io(lua_State *L) {
  luaL_newmetatable(L, WRITER_META);
  luaL_newlib(L, writer_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_writer_abort); /* a dropped writer removes its temp file */
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_writer_abort);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newlib(L, io_functions);
  lua_pushinteger(L, CKPT_VERSION);
  lua_setfield(L, -2, "checkpoint_version");
  lua_setfield(L, -2, "_io");
}
