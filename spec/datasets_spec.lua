-- dl.datasets: Fashion-MNIST from Debian's package, MNIST from a given root.
local dl = require "dlua"
local H = require "spec.helper"

local ROOT = "/usr/share/datasets/fashion-mnist"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local have_fashion = exists(ROOT .. "/train-images-idx3-ubyte.gz") and exists(ROOT .. "/t10k-labels-idx1-ubyte.gz")

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))
teardown(function() os.execute("rm -rf " .. tmpdir) end)

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- A tiny MNIST-layout split under dir: n images whose pixel (r, c) of image
-- k is (k + r + c) % 256, labels given.
local function make_split(dir, prefix, n, labels, opts)
  opts = opts or {}
  assert(os.execute("mkdir -p " .. dir))
  local cols = opts.cols or 28
  local px = {}
  for k = 0, n - 1 do
    for r = 0, 27 do
      for c = 0, cols - 1 do px[#px + 1] = string.char((k + r + c) % 256) end
    end
  end
  local img = string.char(0, 0, 8, 3) .. string.pack(">I4>I4>I4", n, 28, cols) .. table.concat(px)
  local lab = string.char(0, 0, 8, 1) .. string.pack(">I4", #labels) .. string.char(table.unpack(labels))
  write(dir .. "/" .. prefix .. "-images-idx3-ubyte", img)
  write(dir .. "/" .. prefix .. "-labels-idx1-ubyte", lab)
  if opts.gzip then
    assert(os.execute("gzip -n -f " .. dir .. "/" .. prefix .. "-images-idx3-ubyte"))
  end
end

describe("dl.datasets.fashion_mnist", function()
  if not have_fashion then
    pending("Fashion-MNIST files are not under " .. ROOT .. " (install dataset-fashion-mnist)")
    return
  end
  local X, Y, classes = dl.datasets.fashion_mnist()

  it("reads the 60000 training images as float32 N x 784 in [0, 1]", function()
    assert.equal("float32", X.dtype)
    assert.same({60000, 784}, X:size())
    assert.equal(0, X:min():item())
    assert.equal(1, X:max():item())
    -- mean pixel of Fashion-MNIST's training set is 0.2860
    H.assert_close(X:mean():item(), 0.2860, 1e-3)
  end)
  it("gives int64 labels 1..10, 6000 of each", function()
    assert.equal("int64", Y.dtype)
    assert.same({60000}, Y:size())
    assert.equal(1, Y:min():item())
    assert.equal(10, Y:max():item())
    for c = 1, 10 do assert.equal(6000, Y:eq(c):sum():item()) end
  end)
  it("names the ten classes", function()
    assert.equal(10, #classes)
    assert.equal("T-shirt/top", classes[1])
    assert.equal("Ankle boot", classes[10])
  end)
  it("reads the test split unflattened", function()
    local Xt, Yt = dl.datasets.fashion_mnist({split = "test", flatten = false})
    assert.same({10000, 28, 28}, Xt:size())
    assert.same({10000}, Yt:size())
    assert.equal(1, Yt:min():item())
    assert.equal(10, Yt:max():item())
    assert.is_true(Xt:max():item() <= 1 and Xt:min():item() >= 0)
  end)
  it("reads the training images fast", function()
    local t0 = os.clock()
    dl.datasets.fashion_mnist({split = "train"})
    local cpu = os.clock() - t0
    assert.is_true(cpu < 2, string.format("took %.2f s of CPU", cpu))
  end)
end)

describe("dl.datasets.mnist", function()
  it("reads a split from the given root, gzipped or not", function()
    make_split(tmpdir .. "/m", "train", 3, {0, 9, 4}, {gzip = true})
    make_split(tmpdir .. "/m", "t10k", 2, {1, 2})
    local X, Y, classes = dl.datasets.mnist({root = tmpdir .. "/m"})
    assert.same({3, 784}, X:size())
    assert.equal("float32", X.dtype)
    assert.same({1, 10, 5}, Y:totable())
    assert.equal("0", classes[1])
    -- image 2 (k = 1), pixel (r = 0, c = 2): (1 + 0 + 2) / 255
    H.assert_close(X:get(2, 3), 3 / 255, 1e-7)
    local Xt, Yt = dl.datasets.mnist({root = tmpdir .. "/m", split = "test", flatten = false})
    assert.same({2, 28, 28}, Xt:size())
    assert.same({2, 3}, Yt:totable())
    H.assert_close(Xt:get(2, 28, 28), (1 + 27 + 27) / 255, 1e-7)
  end)
  it("errors clearly when the files are missing", function()
    H.assert_error(function() dl.datasets.mnist({root = tmpdir .. "/none"}) end,
      "dl.datasets.mnist", "no train-images-idx3-ubyte[.gz] under " .. tmpdir .. "/none")
    H.assert_error(function() dl.datasets.mnist() end, "give the directory")
    H.assert_error(function() dl.datasets.fashion_mnist({root = tmpdir .. "/none"}) end,
      "dl.datasets.fashion_mnist", "dataset-fashion-mnist")
  end)
  it("rejects mismatched counts, bad labels and bad image shapes", function()
    make_split(tmpdir .. "/c", "train", 2, {1, 2, 3})
    H.assert_error(function() dl.datasets.mnist({root = tmpdir .. "/c"}) end, "2 images", "3 labels")
    make_split(tmpdir .. "/l", "train", 2, {1, 12})
    H.assert_error(function() dl.datasets.mnist({root = tmpdir .. "/l"}) end, "label 12", "0..9")
    make_split(tmpdir .. "/s", "train", 1, {1}, {cols = 20})
    H.assert_error(function() dl.datasets.mnist({root = tmpdir .. "/s"}) end, "N x 28 x 28")
  end)
  it("rejects bad options", function()
    H.assert_error(function() dl.datasets.mnist({root = tmpdir, split = "val"}) end, 'split must be "train" or "test"')
    H.assert_error(function() dl.datasets.mnist({root = 3}) end, "root must be")
    H.assert_error(function() dl.datasets.fashion_mnist({spilt = "train"}) end, "unknown option 'spilt'")
    H.assert_error(function() dl.datasets.fashion_mnist("train") end, "options table expected")
  end)
end)
