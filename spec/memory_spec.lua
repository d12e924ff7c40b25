-- Storage lives outside Lua's heap; the binding reports it to the collector,
-- so loops that make garbage tensors keep resident memory flat without
-- collectgarbage() in the script.
local dl = require "dlua"
local H = require "spec.helper"

local function rss_mb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4096 / 2 ^ 20
end

describe("memory", function()
  it("stays flat over a loop of 1000x1000 additions", function()
    local a, b = dl.ones(1000, 1000), dl.ones(1000, 1000)
    for _ = 1, 300 do local c = a + b end
    local before = rss_mb()
    for _ = 1, 3000 do local c = a + b end
    local growth = rss_mb() - before
    -- 3000 iterations make 12 GB of garbage; a leak would show in gigabytes
    assert.is_true(growth < 64, string.format("resident memory grew by %.1f MB", growth))
  end)
  it("reuses cached blocks instead of calling the system allocator", function()
    local a = dl.ones(256)
    -- the first collection cycles (paced by the bytes still live, which
    -- include earlier specs' garbage) fill the cache; after that it serves
    local warm = math.max(12000, 2 * dl.memory_stats().allocated // 1024)
    for _ = 1, warm do local c = a + a end
    local s0 = dl.memory_stats().system_allocations
    for _ = 1, 3000 do local c = a + a end
    local s1 = dl.memory_stats().system_allocations
    if os.getenv("DLUA_SANITIZED") then
      pending("the sanitizer build bypasses the cache")
    else
      assert.is_true(s1 - s0 < 30, "system allocations in 3000 ops: " .. (s1 - s0))
    end
  end)
  it("stays flat over 10,000 forward/backward passes of a small MLP", function()
    dl.manual_seed(1)
    local W1 = (dl.randn(64, 8) * 0.1):requires_grad_()
    local W2 = (dl.randn(1, 64) * 0.1):requires_grad_()
    local x, y = dl.randn(64, 8), dl.randn(64, 1)
    local function step()
      local d = x:matmul(W1:t()):relu():matmul(W2:t()) - y
      local loss = (d * d):mean()
      W1.grad, W2.grad = nil, nil
      loss:backward()
    end
    -- garbage is bounded by the live tensor bytes (which include whatever
    -- earlier specs keep alive): warm up past that bound, then measure
    for _ = 1, 4000 do step() end
    local before = rss_mb()
    for _ = 1, 10000 do step() end
    local growth = rss_mb() - before
    assert.is_true(growth < 32, string.format("resident memory grew by %.1f MB", growth))
  end)
end)


-- In states dlua makes (this program, dlua_newstate), tensor userdata have no
-- __gc: the state's allocator sees a dead tensor's memory go and the binding
-- releases the tensor at its next safe point (lua_heap.c).
describe("tensor lifetime without finalizers", function()
  local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"
  local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local function run(code)
    local out = os.tmpname()
    local _, _, status = os.execute(string.format("%s -e %s >%s 2>&1", q(DLUA), q(code), q(out)))
    local f = assert(io.open(out, "rb"))
    local text = f:read("a")
    f:close()
    os.remove(out)
    return text, status
  end

  it("needs no __gc in the dlua program", function()
    assert.is_nil(getmetatable(dl.zeros(1)).__gc)
    assert.is_function(getmetatable(dl.zeros(1)).__close)
  end)
  it("releases a dropped tensor's storage at a full collection", function()
    collectgarbage()
    local base = dl.memory_stats().allocated
    do local big = dl.zeros(1000, 1000) end
    assert.is_true(dl.memory_stats().allocated >= base + 4e6)
    collectgarbage()
    assert.equal(base, dl.memory_stats().allocated)
  end)
  it("releases views and the base they share in any order", function()
    collectgarbage()
    local base = dl.memory_stats().allocated
    do
      local t = dl.randn(100, 100)
      local v = t:narrow(1, 2, 10):t()
      t = nil
      v = v * 2
    end
    collectgarbage()
    assert.equal(base, dl.memory_stats().allocated)
  end)
  it("keeps a closed tensor closed and releases it once", function()
    collectgarbage()
    local base = dl.memory_stats().allocated
    local t = dl.zeros(1000)
    t:close()
    assert.equal(base, dl.memory_stats().allocated)
    H.assert_error(function() return t + 1 end, "tensor was closed")
    t = nil
    collectgarbage()
    assert.equal(base, dl.memory_stats().allocated)
  end)
  it("empties the cache of a tensor the collector just freed", function()
    local t = dl.zeros(3000, 4000)
    t = nil
    collectgarbage()
    dl.empty_cache()
    assert.equal(0, dl.memory_stats().cached)
  end)
  it("keeps strings of a tensor userdata's size apart from tensors", function()
    -- strings of every small size, freed in the same collections as tensors:
    -- the allocator knows tensor blocks by address, never by their bytes
    collectgarbage()
    local base = dl.memory_stats().allocated
    for round = 1, 3 do
      local keep = {}
      for n = 1, 160 do
        keep[#keep + 1] = string.rep(string.char(n % 256), n) .. round
        keep[#keep + 1] = dl.full({n}, n)
      end
      keep = nil
      collectgarbage()
    end
    for n = 1, 160 do assert.equal(n * n, dl.full({n}, n):sum():item()) end
    collectgarbage()
    assert.equal(base, dl.memory_stats().allocated)
  end)
  it("does not take other userdata of a tensor's size for tensors", function()
    H.assert_error(function() return dl.add(io.stdout, 1) end, "tensor")
    H.assert_error(function() return io.stdout + dl.zeros(1) end, "tensor")
  end)
  it("releases tensors still alive at exit, custom autograd graphs included", function()
    local out, status = run([[
      local F = dl.autograd.Function{
        forward = function(ctx, x) ctx:save_for_backward(x) return x * 2 end,
        backward = function(ctx, g) return g * 2 end,
      }
      keep = {F(dl.randn(4):requires_grad_()), dl.zeros(1000, 1000)}
      local co = coroutine.wrap(function() held = dl.ones(3) * 5 coroutine.yield() end)
      co()
      print("done")
    ]])
    assert.equal(0, status, out)
    assert.equal("done\n", out)
  end)
  it("keeps memory flat over many short-lived tensors made in coroutines", function()
    local a = dl.ones(8)
    for _ = 1, 2 do
      local co = coroutine.wrap(function() for _ = 1, 20000 do local c = a + a end end)
      co()
    end
    collectgarbage()
    local base = dl.memory_stats().allocated
    local co = coroutine.wrap(function() for _ = 1, 50000 do local c = a + a end end)
    co()
    collectgarbage()
    assert.equal(base, dl.memory_stats().allocated)
  end)
end)
