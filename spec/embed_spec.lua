-- Embedding: the module in a plain lua5.4, the C API (dlua.h) from a host
-- program, the pkg-config template and the rockspec.
local DLUA_BUILD = os.getenv("DLUA_BUILD") or "build"
local DLUA_LIBDIR = os.getenv("DLUA_LIBDIR") or "lib"
local SANITIZED = os.getenv("DLUA_SANITIZED") == "1"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- runs a shell command; returns its stdout+stderr and exit code
local function sh(cmd)
  local out = os.tmpname()
  local _, _, code = os.execute(string.format("(%s) >%s 2>&1", cmd, q(out)))
  local f = assert(io.open(out, "rb"))
  local text = f:read("a")
  f:close()
  os.remove(out)
  return text, code
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return (sh("pwd"):gsub("\n$", "")) .. "/" .. path
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  return d
end

-- compiles a host program against the built library and runs it: its
-- output and exit code
local function run_host(source)
  local dir = tmpdir()
  write(dir .. "/host.c", source)
  local libdir = absolute(DLUA_LIBDIR)
  local san = SANITIZED and "-fsanitize=address,undefined" or ""
  local out, code = sh(string.format(
    "cc -std=gnu11 %s -Isrc $(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4) " ..
    "-o %s %s -L%s -ldlua $(pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4) -Wl,-rpath,%s",
    san, q(dir .. "/host"), q(dir .. "/host.c"), q(libdir), q(libdir)))
  if code == 0 then out, code = sh(q(dir .. "/host")) end
  os.execute("rm -rf " .. q(dir))
  return out, code
end

describe("require 'dlua' from lua5.4", function()
  local function lua(code)
    return sh(string.format("LUA_CPATH=%s lua5.4 -e %s", q(DLUA_LIBDIR .. "/lua/5.4/?.so"), q(code)))
  end

  it("loads the module and computes with it", function()
    if SANITIZED then
      pending("a sanitizer-built module cannot load into the plain interpreter")
      return
    end
    local out, code = lua([[
      local dl = require "dlua"
      assert(require("dlua") == dl, "require returns one table")
      assert(rawget(_G, "dl") == nil, "require sets no global")
      local t = dl.arange(6):view(2, 3):t()
      print(dl.version, t:is_contiguous(), tostring(t))
      local s = dl.zeros(3)
      s:narrow(1, 2, 2):fill_(1.5)
      print(table.concat(s:totable(), " "))
    ]])
    assert.equal(0, code, out)
    assert.equal("0.1.0\tfalse\ttensor([[0, 3],\n        [1, 4],\n        [2, 5]])\n0.0 1.5 1.5\n", out)
  end)
  it("collects garbage tensors through __gc there", function()
    if SANITIZED then
      pending("a sanitizer-built module cannot load into the plain interpreter")
      return
    end
    local out, code = lua([[
      local dl = require "dlua"
      assert(getmetatable(dl.zeros(1)).__gc, "another allocator needs __gc")
      collectgarbage()
      local base = dl.memory_stats().allocated
      do local big = dl.zeros(1000, 1000) end
      collectgarbage()
      print(dl.memory_stats().allocated - base)
    ]])
    assert.equal(0, code, out)
    assert.equal("0\n", out)
  end)
end)

describe("the C API (dlua.h)", function()
  local host = [[
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include "dlua.h"

static int released = 0;
static void on_release(void *data, void *ctx) { (void)data; *(int *)ctx += 1; }

static int check(lua_State *L) {
  dlua_checktensor(L, 1);
  return 0;
}

static int fail(lua_State *L, const char *what) {
  fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  return 1;
}

int main(void) {
  double buf[4] = {1, 2, 3, 4};
  lua_State *L = dlua_newstate();
  if (!L) return 2;
  /* `dl` is global and require "dlua" returns the same table */
  if (luaL_dostring(L, "assert(require('dlua') == dl) "
                       "return function(t) t:narrow(1, 2, 2):fill_(7) "
                       "return dl.full({2}, 5), tostring(t) end"))
    return fail(L, "load");
  int64_t shape[1] = {4};
  dl_tensor *t = dl_tensor_from_buffer(buf, shape, 1, NULL, DL_FLOAT64, on_release, &released);
  if (!t) return 3;
  dlua_pushtensor(L, t); /* Lua owns the reference now */
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) return fail(L, "call");
  dl_tensor *r = dlua_totensor(L, -2);
  int not_tensor = dlua_totensor(L, -1) == NULL;
  printf("%s\n", lua_tostring(L, -1));
  printf("result numel %lld dtype %s; string is not a tensor: %d\n", (long long)r->numel,
         dl_dtype_name(r->dtype), not_tensor);
  lua_settop(L, 0);
  /* dlua_checktensor raises a Lua error naming the argument */
  lua_pushcfunction(L, check);
  lua_pushnumber(L, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) printf("%s\n", lua_tostring(L, -1));
  lua_close(L);
  printf("buffer %g %g %g %g, released %d\n", buf[0], buf[1], buf[2], buf[3], released);
  return 0;
}
]]

  it("wraps host memory without a copy, runs Lua on it and releases it", function()
    local out, code = run_host(host)
    assert.equal(0, code, out)
    assert.equal("tensor([1., 7., 7., 4.], dtype=float64)\n" ..
      "result numel 2 dtype int64; string is not a tensor: 1\n" ..
      "bad argument #1 to '?' (tensor expected, got number)\n" ..
      "buffer 1 7 7 4, released 1\n", out)
  end)

  -- a tensor kept past lua_close, whose history holds a custom Function
  -- (Lua code of the closed state): released, or backward from another
  -- state, it is an error, never a use of the closed state
  local host_closed = [[
#include "dlua.h"
#include <lauxlib.h>
#include <stdio.h>

int main(void) {
  lua_State *A = dlua_newstate(), *B = dlua_newstate();
  if (!A || !B) return 2;
  if (luaL_dostring(A, "local F = dl.autograd.Function({forward = function(c, x) return x * 2 end, "
                       "backward = function(c, g) return g * 2 end}) "
                       "return F(dl.randn(3, {requires_grad = true})):sum()")) {
    fprintf(stderr, "%s\n", lua_tostring(A, -1));
    return 3;
  }
  dl_tensor *y = dl_tensor_retain(dlua_checktensor(A, -1));
  dl_tensor *y2 = dl_tensor_retain(y);
  lua_close(A);
  dlua_pushtensor(B, y2); /* B owns this reference */
  lua_setglobal(B, "y");
  if (luaL_dostring(B, "y:backward()")) printf("%s\n", lua_tostring(B, -1));
  dl_tensor_release(y);
  lua_close(B);
  printf("done\n");
  return 0;
}
]]

  it("keeps a custom Function's tensor safe past the close of the state that made it", function()
    local out, code = run_host(host_closed)
    assert.equal(0, code, out)
    assert.truthy(out:find("the Lua state that defined this custom Function has been closed", 1, true), out)
    assert.truthy(out:find("done\n$"), out)
  end)

  -- opening dlua in a state without the standard libraries, or pushing a
  -- tensor into a state dlua was not opened in, is an error that leaves the
  -- state usable (no half-built module cached)
  local host_order = [[
#include "dlua.h"
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>

static int push(lua_State *L) {
  int64_t s[1] = {2};
  dlua_pushtensor(L, dl_tensor_zeros(s, 1, DL_FLOAT32, dl_device_cpu()));
  return 1;
}

int main(void) {
  lua_State *L = luaL_newstate();
  lua_pushcfunction(L, luaopen_dlua);
  if (lua_pcall(L, 0, 1, 0)) printf("%s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
  luaL_openlibs(L);
  lua_pushcfunction(L, push);
  if (lua_pcall(L, 0, 1, 0)) printf("%s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
  lua_pushcfunction(L, luaopen_dlua);
  if (lua_pcall(L, 0, 1, 0)) return 3;
  lua_getfield(L, -1, "nn");
  printf("nn: %s\n", luaL_typename(L, -1));
  lua_settop(L, 0);
  lua_pushcfunction(L, push);
  if (lua_pcall(L, 0, 1, 0)) return 4;
  printf("pushed: %d\n", dlua_totensor(L, -1) != NULL);
  lua_close(L);
  return 0;
}
]]

  it("refuses to open without the standard libraries and to push before opening, then works", function()
    local out, code = run_host(host_order)
    assert.equal(0, code, out)
    assert.equal("luaopen_dlua: the standard libraries must be open first (luaL_openlibs)\n" ..
      "dlua_pushtensor: dlua is not open in this state (luaopen_dlua or dlua_newstate first)\n" ..
      "nn: table\npushed: 1\n", out)
  end)

  -- collectgarbage() in a dlua state releases the host buffers it freed at
  -- once (the state's allocator queues them until a safe point)
  local host_collect = [[
#include "dlua.h"
#include <lauxlib.h>
#include <stdio.h>

static int released;
static void on_release(void *data, void *ctx) { (void)data, (void)ctx; released++; }

int main(void) {
  float buf[2] = {1, 2};
  int64_t shape[1] = {2};
  lua_State *L = dlua_newstate();
  if (!L) return 2;
  dlua_pushtensor(L, dl_tensor_from_buffer(buf, shape, 1, NULL, DL_FLOAT32, on_release, NULL));
  lua_setglobal(L, "x");
  if (luaL_dostring(L, "x = nil; collectgarbage(); assert(collectgarbage('count') > 0)")) return 3;
  printf("released after collectgarbage: %d\n", released);
  lua_close(L);
  printf("released after close: %d\n", released);
  return 0;
}
]]

  it("releases a host buffer at collectgarbage()", function()
    local out, code = run_host(host_collect)
    assert.equal(0, code, out)
    assert.equal("released after collectgarbage: 1\nreleased after close: 1\n", out)
  end)

  it("ships a host example that the build links", function()
    local f = io.open(DLUA_BUILD .. "/host_example", "rb")
    assert.truthy(f, "missing " .. DLUA_BUILD .. "/host_example")
    f:close()
  end)
end)

describe("pkg-config template", function()
  it("gives the include and library flags under the install prefix", function()
    local dir = tmpdir()
    local out, code = sh(string.format("sed 's|@PREFIX@|/opt/dlua-test|' scripts/dlua.pc.in > %s/dlua.pc", q(dir)))
    assert.equal(0, code, out)
    local env = "PKG_CONFIG_PATH=" .. q(dir)
    out, code = sh(env .. " pkg-config --validate dlua")
    assert.equal(0, code, out)
    local cflags = sh(env .. " pkg-config --cflags dlua")
    local libs = sh(env .. " pkg-config --libs dlua")
    local version = sh(env .. " pkg-config --modversion dlua")
    assert.truthy(cflags:find("-I/opt/dlua-test/include", 1, true), cflags)
    assert.truthy(libs:find("-L/opt/dlua-test/lib -Wl,-rpath,/opt/dlua-test/lib -ldlua", 1, true), libs)
    -- the prefix goes into the fields only, not into the comments
    local pc = assert(io.open(dir .. "/dlua.pc")):read("a")
    assert.is_nil(pc:match("#[^\n]*/opt/dlua%-test"), pc)
    assert.truthy(libs:find("-llua5.4", 1, true), libs)
    assert.equal("0.1.0\n", version)
    os.execute("rm -rf " .. q(dir))
  end)

  it("carries the same version as dlua.h", function()
    local f = assert(io.open("src/dlua.h"))
    local header = f:read("a")
    f:close()
    local v = header:match('#define DLUA_VERSION "([^"]+)"')
    f = assert(io.open("scripts/dlua.pc.in"))
    local pc = f:read("a")
    f:close()
    assert.equal(v, pc:match("\nVersion: (%S+)"))
  end)
end)

describe("dlua-scm-1.rockspec", function()
  local spec = {}
  assert(loadfile("dlua-scm-1.rockspec", "t", spec))()

  it("builds with the Makefile", function()
    assert.equal("dlua", spec.package)
    assert.equal("scm-1", spec.version)
    assert.equal("make", spec.build.type)
    assert.equal("all", spec.build.build_target)
    assert.equal("lua >= 5.4, < 5.5", spec.dependencies[1])
  end)

  it("is a luarocks project for Lua 5.4, so a plain `luarocks make` builds for it", function()
    local v = assert(loadfile(".luarocks/default-lua-version.lua", "t", {}))()
    assert.equal("5.4", v)
    -- luarocks takes a directory as a project when lua_modules/ is there too
    assert.truthy(io.open("lua_modules/.gitignore", "r"))
    local p = io.popen("command -v luarocks >/dev/null 2>&1 && HOME=$(mktemp -d) luarocks config lua_version 2>/dev/null")
    local got = p:read("a"):gsub("%s+$", "")
    p:close()
    if got ~= "" then assert.equal("5.4", got) end -- where luarocks is installed
  end)

  it("installs files the build produces", function()
    assert.equal("lib/lua/5.4/dlua.so", spec.build.install.lib.dlua)
    assert.equal("bin/dlua", spec.build.install.bin.dlua)
    -- the Makefile's default layout (LIBDIR=lib, BINDIR=bin) is what luarocks runs
    local mk = assert(io.open("Makefile")):read("a")
    assert.truthy(mk:find("$(LIBDIR)/lua/5.4/dlua.so:", 1, true))
    assert.truthy(mk:find("LIBDIR ?= lib", 1, true))
    assert.truthy(mk:find("BINDIR ?= bin", 1, true))
  end)
end)
