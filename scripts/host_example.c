/* host_example.c — a C program embedding dlua: it wraps its own float
 * buffer as a tensor (no copy), hands it to a Lua function that doubles it
 * in place, and checks the buffer. Built and run by `make test`. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>

#include "dlua.h"

static int released = 0;
static void on_release(void *data, void *ctx) {
  (void)data;
  *(int *)ctx += 1;
}

int main(void) {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  lua_State *L = dlua_newstate();
  if (!L) return 1;
  const char *code = "return function(t) t:mul_(2) return t:sum():item() end";
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "host_example: %s\n", lua_tostring(L, -1));
    return 1;
  }
  int64_t shape[2] = {2, 3};
  dl_tensor *t = dl_tensor_from_buffer(buf, shape, 2, NULL, DL_FLOAT32, on_release, &released);
  if (!t) {
    fprintf(stderr, "host_example: %s\n", dl_error_get());
    return 1;
  }
  dlua_pushtensor(L, t); /* Lua owns the reference now */
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "host_example: %s\n", lua_tostring(L, -1));
    return 1;
  }
  double sum = lua_tonumber(L, -1);
  lua_close(L); /* collects the tensor: the release callback runs */
  int failures = 0;
  for (int i = 0; i < 6; i++)
    if (buf[i] != 2.0f * (float)(i + 1)) failures++;
  if (sum != 42.0) failures++;
  if (released != 1) failures++;
  printf("host_example: buffer %s, sum %g, released %d\n", failures ? "WRONG" : "doubled in place", sum, released);
  return failures ? 1 : 0;
}
