-- scripts/train_fashion_cnn.lua (`make demo-cnn`) on a small run: it
-- trains, prints the test accuracy, and writes a checkpoint whose names and
-- shapes are those of PyTorch's nn.Sequential of the same layers.
local dl = require "dlua"
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have_data()
  return io.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb") ~= nil
end

describe("scripts/train_fashion_cnn.lua", function()
  it("trains a quick run and writes a PyTorch-shaped checkpoint", function()
    if not have_data() then return pending("Fashion-MNIST is not installed") end
    local dir = os.tmpname()
    os.remove(dir)
    dir = dir .. "-cnn"
    local p = io.popen(string.format("%s scripts/train_fashion_cnn.lua --quick --out %s 2>/dev/null", q(DLUA), q(dir)))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local acc = tonumber(out:match("test accuracy: ([%d.]+)"))
    assert.is_not_nil(acc, out)
    assert.is_true(acc > 0.5, "quick-run accuracy " .. tostring(acc))
    local ck = dl.load(dir .. "/fashion_cnn.safetensors")
    -- PyTorch's names for the same nn.Sequential
    assert.same({32, 1, 3, 3}, ck["0.weight"]:size())
    assert.same({32}, ck["1.running_var"]:size())
    assert.equal("int64", ck["1.num_batches_tracked"].dtype)
    assert.same({64, 32, 3, 3}, ck["4.weight"]:size())
    assert.same({128, 64 * 7 * 7}, ck["13.weight"]:size())
    assert.same({10}, ck["16.bias"]:size())
    os.execute("rm -rf " .. q(dir))
  end)
end)
