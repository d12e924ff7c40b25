-- scripts/train_fashion.lua (`make demo`) on a small run: it trains, prints the
-- test accuracy, writes the checkpoint and the plot, and the checkpoint
-- reloads in a new process to the same accuracy.
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- runs the demo script with args; returns stdout, stderr, exit code
local function run(args)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = string.format("%s scripts/train_fashion.lua %s >%s 2>%s", q(DLUA), args, q(out), q(err))
  local _, _, code = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return o, e, code
end

local function have_data()
  return io.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb") ~= nil
end

describe("scripts/train_fashion.lua", function()
  local dir = os.tmpname()
  os.remove(dir)
  dir = dir .. "-demo"
  local result

  -- one quick training run shared by the checks below
  local function quick_run()
    if not result then
      local o, e, code = run("--quick --out " .. q(dir))
      result = {out = o, err = e, code = code}
    end
    return result
  end

  teardown(function()
    os.execute("rm -rf " .. q(dir))
  end)

  it("finds the Fashion-MNIST files (install-deps.sh installs dataset-fashion-mnist)", function()
    assert.is_true(have_data())
  end)

  it("trains one quick epoch and prints the test accuracy", function()
    local r = quick_run()
    assert.equal(0, r.code, r.err)
    local acc = tonumber(r.out:match("test accuracy: ([%d.]+)"))
    assert.truthy(acc, r.out)
    -- one epoch on 6,000 images already beats chance (0.1) by far
    assert.truthy(acc > 0.6, "accuracy " .. tostring(acc))
    assert.truthy(r.out:find("epoch  1  train loss", 1, true), r.out)
  end)

  it("draws a progress bar on stderr", function()
    local r = quick_run()
    assert.truthy(r.err:find("epoch 1/1:", 1, true), r.err)
    assert.truthy(r.err:find("100%|", 1, true), r.err)
    assert.truthy(r.err:find("loss=", 1, true), r.err)
  end)

  it("writes the checkpoint and the plot where it says", function()
    local r = quick_run()
    local ckpt = r.out:match("checkpoint: ([^\n]+)")
    local plot = r.out:match("plot: ([^\n]+)")
    assert.equal(dir .. "/fashion_mlp.safetensors", ckpt)
    assert.equal(dir .. "/fashion_curves.png", plot)
    local p = slurp(plot)
    assert.equal("\137PNG", p:sub(1, 4))
    local c = slurp(ckpt)
    assert.truthy(#c > 4 * 247766, "checkpoint holds every weight")
    -- the early-stopping scratch file is gone
    assert.is_nil(slurp(dir .. "/best_model.safetensors"))
  end)

  it("reloads the checkpoint in a new process to the same test accuracy", function()
    local r = quick_run()
    local acc = r.out:match("test accuracy: ([%d.]+)")
    local ckpt = r.out:match("checkpoint: ([^\n]+)")
    local o, e, code = run("--quick --eval " .. q(ckpt))
    assert.equal(0, code, e)
    assert.equal(acc, o:match("test accuracy: ([%d.]+)"), o)
  end)

  it("the checkpoint is a safetensors file with the model and the scaler", function()
    local r = quick_run()
    local ckpt = r.out:match("checkpoint: ([^\n]+)")
    local dl = require "dlua"
    local sd = dl.load(ckpt)
    assert.same({256, 784}, sd["model.0.weight"]:size())
    assert.same({10}, sd["model.6.bias"]:size())
    local n = 0
    for k in pairs(sd) do if k:sub(1, 7) == "scaler." then n = n + 1 end end
    assert.truthy(n >= 1, "scaler entries")
  end)

  it("rejects bad arguments with a usage message and status 2", function()
    for _, args in ipairs({"--epochs 0", "--epochs", "--lr x", "--bogus"}) do
      local _, e, code = run(args)
      assert.equal(2, code, args)
      assert.truthy(e:find("usage: dlua scripts/train_fashion.lua", 1, true), e)
    end
  end)

  it("names the file when --eval gets a missing checkpoint", function()
    local _, e, code = run("--quick --eval " .. q(dir .. "/nope.safetensors"))
    assert.are_not.equal(0, code)
    assert.truthy(e:find("nope.safetensors", 1, true), e)
  end)
end)
