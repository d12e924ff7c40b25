-- Storage lives outside Lua's heap; the binding reports it to the collector,
-- so loops that make garbage tensors keep resident memory flat without
-- collectgarbage() in the script.
local dl = require "dlua"

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

