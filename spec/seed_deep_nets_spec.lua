-- The seed lecture's experiments on RBF regularisation, vanishing gradients and
-- batch norm, each run with --quick:
-- scripts/seed/rbf_regularization.lua, vanishing_gradients.lua and
-- batchnorm.lua print their result tables and write their plots.
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- runs a seed script; returns stdout (without the rc line), exit code, stderr
local function run(script, args)
  local err = os.tmpname()
  local p = io.popen(string.format("%s scripts/seed/%s.lua %s 2>%s; echo \"rc=$?\"", q(DLUA), script, args, q(err)))
  local out = p:read("a")
  p:close()
  local e = slurp(err) or ""
  os.remove(err)
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc, e
end

local function tmpdir(tag)
  local d = os.tmpname()
  os.remove(d)
  return d .. "-" .. tag
end

-- the whitespace-separated fields of the first line starting with `first`
-- whose other fields are all numbers (a table row, not a header)
local function row(out, first)
  for line in out:gmatch("[^\n]+") do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    local numeric = f[1] == first and #f > 1
    for i = 2, #f do numeric = numeric and tonumber(f[i]) ~= nil end
    if numeric then return f end
  end
end

local function nums(f, from)
  local t = {}
  for i = from, #f do t[#t + 1] = assert(tonumber(f[i]), "not a number: " .. tostring(f[i])) end
  return t
end

local function assert_png(path)
  local s = slurp(path)
  assert.truthy(s, "missing plot " .. path)
  assert.equal("\137PNG", s:sub(1, 4))
end

local function assert_svg(path)
  local s = slurp(path)
  assert.truthy(s, "missing plot " .. path)
  assert.truthy(s:find("<svg", 1, true), path .. " is not an SVG")
end

local function cached(script, dir)
  local r
  return function()
    if not r then
      local o, rc, e = run(script, "--quick --out " .. q(dir))
      r = {out = o, rc = rc, err = e}
    end
    return r
  end
end

describe("scripts/seed/rbf_regularization.lua --quick", function()
  local dir = tmpdir("rbf")
  local get = cached("rbf_regularization", dir)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 and prints one row per setting", function()
    local r = get()
    assert.equal(0, r.rc, r.err .. r.out)
    for _, name in ipairs({"none", "L2", "L1"}) do
      local f = row(r.out, name)
      assert.truthy(f, "no row " .. name .. " in\n" .. r.out)
      assert.equal(7, #f)
    end
    assert.same({0}, {tonumber(row(r.out, "none")[2])})
    assert.equal(2, tonumber(row(r.out, "L2")[2]))
    assert.equal(0.003, tonumber(row(r.out, "L1")[2]))
  end)

  it("shrinks the weights with L2 and L1, and the unpenalised fit has the lowest training error", function()
    local r = get()
    local none, l2, l1 = nums(row(r.out, "none"), 3), nums(row(r.out, "L2"), 3), nums(row(r.out, "L1"), 3)
    -- fields: train_mse, test_mse, |w|_1, |w|_2, sparsity
    assert.truthy(l2[4] < none[4], "L2 |w|_2 " .. l2[4] .. " vs " .. none[4])
    assert.truthy(l1[3] < none[3], "L1 |w|_1 " .. l1[3] .. " vs " .. none[3])
    assert.truthy(none[1] < l2[1] and none[1] < l1[1])
    for _, v in ipairs({none, l2, l1}) do
      assert.truthy(v[5] >= 0 and v[5] <= 1)
      assert.truthy(v[2] < 0.2, "test mse " .. v[2]) -- every fit follows sin(x)
    end
  end)

  it("writes the fit plot as PNG and SVG and prints their paths", function()
    local r = get()
    assert_png(dir .. "/fit.png")
    assert_svg(dir .. "/fit.svg")
    assert.truthy(r.out:find("plot: " .. dir .. "/fit.png", 1, true))
  end)

  it("prints the same table on a rerun (fixed seeds)", function()
    local r = get()
    local o, rc = run("rbf_regularization", "--quick --out " .. q(dir))
    assert.equal(0, rc)
    assert.equal(r.out, o)
  end)

  it("rejects an unknown argument with a usage message", function()
    local _, rc, e = run("rbf_regularization", "--bogus")
    assert.equal(2, rc)
    assert.truthy(e:find("unknown argument --bogus", 1, true), e)
    assert.truthy(e:find("usage:", 1, true), e)
  end)
end)

describe("scripts/seed/vanishing_gradients.lua --quick", function()
  local dir = tmpdir("vg")
  local get = cached("vanishing_gradients", dir)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 and prints every 5th layer of the sigmoid chain and every 2nd of the ReLU MLP", function()
    local r = get()
    assert.equal(0, r.rc, r.err .. r.out)
    local a, b = r.out:match("^(.-)\n%(b%)(.*)$")
    assert.truthy(a and b, r.out)
    for k = 5, 50, 5 do assert.equal(4, #assert(row(a, tostring(k)), "layer " .. k)) end
    for k = 2, 20, 2 do assert.equal(3, #assert(row(b, tostring(k)), "layer " .. k)) end
  end)

  it("shows the gradient vanishing towards the input, and clipping keeping the ratios", function()
    local a = get().out:match("^(.-)\n%(b%)")
    local first, last = nums(row(a, "5"), 2), nums(row(a, "50"), 2)
    assert.truthy(first[1] > 0 and first[1] < 1e-20 * last[1], first[1] .. " vs " .. last[1])
    for k = 5, 50, 5 do
      local v = nums(row(a, tostring(k)), 2)
      -- one common scale factor: clipped / plain is the same for every layer
      assert.near(last[2] / last[1], v[2] / v[1], 2e-4 * last[2] / last[1]) -- 5 printed digits
      assert.near(v[1] / last[1], v[3], 1e-4 * v[3])
    end
    local before, after = a:match("total norm ([%d.e+-]+); clip_grad_norm_%(max_norm = [%d.e+-]+%) %-> ([%d.e+-]+)")
    assert.truthy(tonumber(before) > 1e-3)
    assert.near(1e-3, tonumber(after), 1e-6)
  end)

  it("shows activations dying with the default init and keeping their scale with He init", function()
    local b = get().out:match("\n%(b%)(.*)$")
    local l20 = nums(row(b, "20"), 2)
    assert.truthy(l20[1] < 0.1, "default " .. l20[1])
    assert.truthy(l20[2] > 0.3 and l20[2] < 3, "he " .. l20[2])
  end)

  it("writes both plots as PNG and SVG", function()
    get()
    for _, n in ipairs({"gradients", "activations"}) do
      assert_png(dir .. "/" .. n .. ".png")
      assert_svg(dir .. "/" .. n .. ".svg")
    end
  end)
end)

describe("scripts/seed/batchnorm.lua --quick", function()
  local dir = tmpdir("bn")
  local get = cached("batchnorm", dir)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 and prints epochs 0 and 1 on the 2,000-image subset", function()
    local r = get()
    assert.equal(0, r.rc, r.err .. r.out)
    assert.truthy(r.out:find("2000 train, 1000 test images", 1, true), r.out)
    assert.equal(9, #assert(row(r.out, "0"), r.out))
    assert.equal(9, #assert(row(r.out, "1"), r.out))
    assert.is_nil(row(r.out, "2"))
  end)

  it("prints accuracies in [0, 1] and ordered percentiles of sigmoid outputs", function()
    local r = get()
    for _, e in ipairs({"0", "1"}) do
      local v = nums(row(r.out, e), 2)
      assert.truthy(v[1] >= 0 and v[1] <= 1 and v[2] >= 0 and v[2] <= 1)
      for _, i in ipairs({3, 6}) do
        assert.truthy(0 < v[i] and v[i] <= v[i + 1] and v[i + 1] <= v[i + 2] and v[i + 2] < 1)
      end
    end
    -- same seed, same init: before training both nets are the same function
    local e0 = nums(row(r.out, "0"), 2)
    assert.equal(e0[1], e0[2])
  end)

  it("trains faster with BatchNorm", function()
    local v = nums(row(get().out, "1"), 2)
    assert.truthy(v[2] > v[1] + 0.1, "bn " .. v[2] .. " vs plain " .. v[1])
    assert.truthy(v[2] > 0.4)
  end)

  it("writes the accuracy and percentile plots as PNG and SVG", function()
    get()
    for _, n in ipairs({"accuracy", "percentiles"}) do
      assert_png(dir .. "/" .. n .. ".png")
      assert_svg(dir .. "/" .. n .. ".svg")
    end
  end)
end)
