-- dl.cuda's API (PyTorch's torch.cuda names) and the errors a machine
-- without a GPU gives. The same answers come from a CPU-only build and from
-- a CUDA build run where no device is present; on a machine with a GPU the
-- device cases check the working API instead.
local dl = require "dlua"
local H = require "spec.helper"

local has_gpu = dl.cuda.is_available()

describe("dl.cuda", function()
  it("has every function of the API", function()
    for _, name in ipairs({"is_available", "device_count", "synchronize", "empty_cache", "memory_allocated",
                           "max_memory_allocated", "reset_peak_memory_stats", "get_device_name", "manual_seed",
                           "manual_seed_all"}) do
      assert.equal("function", type(dl.cuda[name]), name)
    end
  end)

  it("is_available and device_count agree", function()
    assert.equal("boolean", type(dl.cuda.is_available()))
    assert.equal(dl.cuda.is_available(), dl.cuda.device_count() > 0)
    assert.is_true(math.type(dl.cuda.device_count()) == "integer")
  end)

  it("synchronize and empty_cache return nothing and never fail", function()
    assert.same({}, {dl.cuda.synchronize()})
    assert.same({}, {dl.cuda.empty_cache()})
    dl.cuda.reset_peak_memory_stats()
  end)

  it("memory counters are non-negative integers, the peak at least the live bytes", function()
    local now, peak = dl.cuda.memory_allocated(), dl.cuda.max_memory_allocated()
    assert.is_true(math.type(now) == "integer" and now >= 0)
    assert.is_true(peak >= now)
    assert.equal(now, dl.cuda.memory_allocated(0))
    assert.equal(now, dl.cuda.memory_allocated("cuda:0"))
  end)

  it("rejects a bad device argument", function()
    H.assert_error(function() dl.cuda.memory_allocated("cpu") end, "bad argument #1", "CUDA device")
    H.assert_error(function() dl.cuda.memory_allocated(-1) end, "bad argument #1", "out of range")
    H.assert_error(function() dl.cuda.synchronize({}) end, "bad argument #1")
  end)

  it("manual_seed seeds the generator every device shares", function()
    dl.cuda.manual_seed(7)
    local a = dl.rand(4):totable()
    dl.manual_seed(7)
    assert.same(a, dl.rand(4):totable())
    H.assert_error(function() dl.cuda.manual_seed("x") end, "bad argument #1")
  end)
end)

describe("without a CUDA device", function()
  if has_gpu then
    it("(a device is present: these cases do not apply)", function()
      pending("a CUDA device is present")
    end)
    return
  end

  it("answers no device", function()
    assert.is_false(dl.cuda.is_available())
    assert.equal(0, dl.cuda.device_count())
    assert.equal(0, dl.cuda.memory_allocated())
    assert.equal(0, dl.cuda.max_memory_allocated())
  end)

  it("get_device_name says why there is no name", function()
    H.assert_error(function() dl.cuda.get_device_name() end, "no CUDA device available")
    H.assert_error(function() dl.cuda.get_device_name(0) end, "cuda:0")
  end)

  it("t:cuda() is a clear error", function()
    H.assert_error(function() dl.zeros(2):cuda() end, "dl.cuda: no CUDA device available", "not available")
    H.assert_error(function() dl.zeros(2):cuda(1) end, "cuda:1")
    H.assert_error(function() dl.zeros(2):to("cuda") end, "no CUDA device available")
  end)

  it("model:to('cuda') is a clear error", function()
    local m = dl.nn.Linear(3, 2)
    H.assert_error(function() m:to("cuda") end, "no CUDA device available")
    H.assert_error(function() m:cuda() end, "no CUDA device available")
    -- the model is still usable on the CPU
    assert.same({1, 2}, m:forward(dl.zeros(1, 3)):size())
  end)

  it("creating on cuda is a clear error", function()
    H.assert_error(function() dl.zeros(2, {device = "cuda"}) end, "no CUDA device available")
    H.assert_error(function() dl.ones(2, 3, {device = "cuda:0"}) end, "no CUDA device available")
    H.assert_error(function() dl.tensor({1, 2}, {device = "cuda"}) end, "no CUDA device available")
  end)
end)

describe("the CUDA plugin", function()
  local lib = (os.getenv("DLUA_LIBDIR") or "lib")
  local bin = os.getenv("DLUA_BIN") or "bin/dlua"
  local sh = H.sh
  it("is not needed by libdlua: the CUDA runtime is the plugin's alone", function()
    local out = sh("readelf -d " .. lib .. "/libdlua.so")
    assert.matches("NEEDED", out)
    assert.is_nil(out:find("libcudart", 1, true), out)
    local f = io.open(lib .. "/libdlua_cuda.so", "rb")
    if f then
      f:close()
      assert.matches("libcudart", sh("readelf -d " .. lib .. "/libdlua_cuda.so"))
      -- one exported symbol of its own; the engine's come from the program
      local syms = sh("nm -D --defined-only " .. lib .. "/libdlua_cuda.so | grep ' T dl'")
      assert.equal("dl_cuda_plugin_v1", (syms:gsub("^%x+ T ", ""):gsub("%s+$", "")))
    end
  end)
  it("that cannot load says why, and the CPU works on", function()
    local out, code = sh("DLUA_CUDA_PLUGIN=/nonexistent/libdlua_cuda.so " .. bin ..
      " -e \"print(dl.cuda.is_available(), (dl.ones(2) * 2):sum():item()); dl.zeros(1):cuda()\"")
    assert.matches("false\t4", out)
    assert.matches("dl.cuda: no CUDA device available %(the CUDA plugin failed to load: [^;]*nonexistent", out)
    assert.is_not.equal(0, code)
  end)
end)

describe("with a CUDA device", function()
  if not has_gpu then
    it("(no CUDA device: skipped)", function()
      pending("skipped: no CUDA device")
    end)
    return
  end

  it("names the card and moves tensors both ways", function()
    assert.equal("string", type(dl.cuda.get_device_name()))
    local t = dl.tensor({{1, 2, 3}, {4, 5, 6}}):t()
    local g = t:cuda()
    assert.equal("cuda:0", g.device)
    assert.same(t:totable(), g:cpu():totable())
    assert.same(t:totable(), g:totable())
    assert.equal(5, g:get(2, 2))
    g:set(2, 2, 50)
    assert.equal(50, g:get(2, 2))
  end)

  it("counts device memory and frees it", function()
    dl.cuda.synchronize()
    local before = dl.cuda.memory_allocated()
    local g = dl.zeros(1024, 1024, {device = "cuda"})
    assert.is_true(dl.cuda.memory_allocated() >= before + 4 * 1024 * 1024)
    assert.is_true(dl.cuda.max_memory_allocated() >= dl.cuda.memory_allocated())
    g:close()
    assert.equal(before, dl.cuda.memory_allocated())
    dl.cuda.empty_cache()
  end)
end)
