-- dl.data.transforms: RandomCrop, RandomHorizontalFlip, Normalize, Compose,
-- and the DataLoader's transform option (seeded, per batch).
local dl = require "dlua"
local H = require "spec.helper"
local T = dl.data.transforms

local function images(n)
  return dl.arange(1, n * 2 * 4 * 5 + 1, {dtype = "float64"}):view(n, 2, 4, 5)
end

describe("RandomCrop", function()
  it("cuts each image at its own place, from the zero-padded image", function()
    dl.manual_seed(3)
    local x = images(6)
    local y = T.RandomCrop({4, 5}, {padding = 2})(x)
    assert.same({6, 2, 4, 5}, y:size())
    -- each crop is a window of the padded image: its non-zero values are x's, in order
    local padded = dl.zeros(6, 2, 8, 9, {dtype = "float64"})
    padded:narrow(3, 3, 4):narrow(4, 3, 5):copy_(x)
    local seen_shift = false
    for i = 1, 6 do
      local found = false
      for t = 1, 5 do
        for l = 1, 5 do
          if dl.equal(padded[i]:narrow(2, t, 4):narrow(3, l, 5), y[i]) then
            found = true
            if t ~= 3 or l ~= 3 then seen_shift = true end
          end
        end
      end
      assert.is_true(found, "crop " .. i .. " is no window of the padded image")
    end
    assert.is_true(seen_shift)
  end)
  it("takes one image [C, H, W] and refuses crops larger than the padded image", function()
    assert.same({2, 3, 3}, T.RandomCrop(3)(images(1)[1]):size())
    H.assert_error(function() T.RandomCrop(7)(images(1)) end, "RandomCrop", "smaller than the crop")
    H.assert_error(function() T.RandomCrop(0) end, "dl.data.transforms.RandomCrop")
  end)
end)

describe("RandomHorizontalFlip", function()
  it("mirrors each image with probability p", function()
    local x = images(200)
    dl.manual_seed(5)
    local y = T.RandomHorizontalFlip(0.5)(x)
    local flipped = 0
    for i = 1, 200 do
      if dl.equal(y[i], x[i]:flip(3)) then flipped = flipped + 1 else assert.is_true(dl.equal(y[i], x[i])) end
    end
    assert.is_true(flipped > 70 and flipped < 130, "flipped " .. flipped)
    assert.is_true(dl.equal(T.RandomHorizontalFlip(1)(x), x:flip(4)))
    assert.is_true(dl.equal(T.RandomHorizontalFlip(0)(x), x))
    H.assert_error(function() T.RandomHorizontalFlip(2) end, "p must be a probability")
  end)
end)

describe("Normalize and Compose", function()
  it("standardise each channel, in order", function()
    local x = images(3)
    local y = T.Compose({T.Normalize({1, 2}, {2, 4}), function(v) return v * 2 end})(x)
    H.assert_close(y:select(2, 1), (x:select(2, 1) - 1) / 2 * 2, 1e-12)
    H.assert_close(y:select(2, 2), (x:select(2, 2) - 2) / 4 * 2, 1e-12)
    H.assert_error(function() T.Normalize({1, 2, 3}, {1, 1, 1})(x) end, "Normalize", "3 channel statistics")
    H.assert_error(function() T.Normalize({1}, {0}) end, "std must not be 0")
    H.assert_error(function() T.Compose({1}) end, "entry 1 is a number")
  end)
  it("refuses an integer image (its statistics would be truncated), as torchvision", function()
    local x = dl.tensor({{{{10, 20}, {30, 40}}}}, {dtype = "uint8"})
    H.assert_error(function() T.Normalize(0.5, 0.25)(x) end, "Normalize", "float tensor", "uint8")
    H.assert_close(T.Normalize(100, 2.5)(x:float()), {{{{-36, -32}, {-28, -24}}}}, 1e-6)
  end)
end)

describe("DataLoader with a transform", function()
  it("applies it to each batch's inputs, the same way for the same seed", function()
    local ds = dl.data.TensorDataset(images(8), dl.arange(1, 9))
    local t = T.Compose({T.RandomCrop(4, {padding = 1}), T.RandomHorizontalFlip()})
    local function epoch(seed)
      local out = {}
      for xb, yb in dl.data.DataLoader(ds, {batch_size = 4, shuffle = true, seed = seed, transform = t}):iter() do
        assert.same({4, 2, 4, 4}, xb:size())
        out[#out + 1] = xb
        out[#out + 1] = yb
      end
      return out
    end
    local a, b, c = epoch(7), epoch(7), epoch(8)
    for i = 1, #a do assert.is_true(dl.equal(a[i], b[i])) end
    local differs = false
    for i = 1, #a, 2 do if not dl.equal(a[i], c[i]) then differs = true end end
    assert.is_true(differs)
    H.assert_error(function() dl.data.DataLoader(ds, {transform = 3}) end, "transform must be a function")
  end)
end)
