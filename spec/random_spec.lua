-- The random number generator (Philox4x32-10, one stream for the process)
-- and the random ops built on it.
local dl = require "dlua"
local H = require "spec.helper"

-- flat list of a tensor's values in C order
local function values(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then
      for i = 1, #x do walk(x[i]) end
    else
      out[#out + 1] = x
    end
  end
  walk(t:double():totable())
  return out
end

local function mean_std(v)
  local s, n = 0, #v
  for i = 1, n do s = s + v[i] end
  local m = s / n
  local q = 0
  for i = 1, n do q = q + (v[i] - m) ^ 2 end
  return m, math.sqrt(q / (n - 1))
end

describe("dl.manual_seed", function()
  it("makes every random op reproducible", function()
    local function draw()
      return {
        dl.rand(7):totable(), dl.randn(2, 3):totable(), dl.randint(0, 100, {5}):totable(),
        dl.randperm(9):totable(), dl.bernoulli(dl.full({6}, 0.5)):totable(),
        dl.empty(4, {dtype = "float64"}):uniform_(-1, 1):totable(),
      }
    end
    dl.manual_seed(1234)
    local a = draw()
    dl.manual_seed(1234)
    assert.same(a, draw())
  end)
  it("gives different numbers for different seeds", function()
    dl.manual_seed(1)
    local a = dl.rand(8):totable()
    dl.manual_seed(2)
    assert.are_not.same(a, dl.rand(8):totable())
  end)
  it("follows the documented Philox stream (Random123 key and counter)", function()
    -- seed 0, offset 0: block 0 is philox({0,0,0,0}, {0,0}) =
    -- {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}
    local w = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}
    dl.manual_seed(0)
    local f = dl.rand(4):totable()
    for i = 1, 4 do assert.equal((w[i] >> 8) / 2 ^ 24, f[i]) end
    dl.manual_seed(0)
    local d = dl.rand(2, {dtype = "float64"}):totable()
    assert.equal((((w[1] << 32) | w[2]) >> 11) * 2.0 ^ -53, d[1])
    assert.equal((((w[3] << 32) | w[4]) >> 11) * 2.0 ^ -53, d[2])
    dl.manual_seed(0)
    local r = dl.randint(0, 1000, {4}):totable()
    for i = 1, 4 do assert.equal(w[i] % 1000, r[i]) end
  end)
  it("gives the same numbers whatever the thread count", function()
    local saved = dl.get_num_threads()
    local function draw(threads)
      dl.set_num_threads(threads)
      dl.manual_seed(99)
      return {dl.rand(70001):totable(), dl.randn(70001, {dtype = "float64"}):totable(),
        dl.randint(0, 7, {70001}):totable()}
    end
    local one = draw(1)
    local four = draw(4)
    dl.set_num_threads(saved)
    assert.is_true(H.max_abs_diff(one[1], four[1]) == 0)
    assert.is_true(H.max_abs_diff(one[2], four[2]) == 0)
    assert.is_true(H.max_abs_diff(one[3], four[3]) == 0)
  end)
  it("restarts the stream: one op's numbers are the head of a longer op's", function()
    dl.manual_seed(5)
    local long = dl.rand(10):totable()
    dl.manual_seed(5)
    local short = dl.rand(3):totable()
    assert.same({long[1], long[2], long[3]}, short)
  end)
  it("accepts negative seeds (wrapped to 64 bits) and rejects non-integers", function()
    dl.manual_seed(-1)
    assert.equal(-1, dl.initial_seed())
    H.assert_error(function() dl.manual_seed(1.5) end, "bad argument #1", "manual_seed")
    H.assert_error(function() dl.manual_seed("x") end, "bad argument #1")
  end)
end)

describe("dl.initial_seed and dl.seed", function()
  it("initial_seed reports the seed last set", function()
    dl.manual_seed(987654321)
    assert.equal(987654321, dl.initial_seed())
  end)
  it("seed picks a non-deterministic seed and returns it", function()
    local s1 = dl.seed()
    assert.equal(s1, dl.initial_seed())
    local s2 = dl.seed()
    assert.is_true(math.type(s1) == "integer" and s1 ~= s2)
  end)
end)

describe("dl.get_rng_state / dl.set_rng_state", function()
  it("is an int64 tensor {seed, offset} that advances by whole 4-word blocks", function()
    dl.manual_seed(77)
    local s = dl.get_rng_state()
    assert.equal("int64", s.dtype)
    assert.same({77, 0}, s:totable())
    dl.rand(5) -- 5 words -> 2 blocks
    assert.same({77, 2}, dl.get_rng_state():totable())
    dl.rand(3, {dtype = "float64"}) -- 6 words -> 2 blocks
    assert.same({77, 4}, dl.get_rng_state():totable())
    dl.randn(3) -- a pair per 2 normals: 4 words -> 1 block
    assert.same({77, 5}, dl.get_rng_state():totable())
  end)
  it("round-trips: restoring a state replays the numbers", function()
    dl.manual_seed(3)
    dl.rand(17)
    local s = dl.get_rng_state()
    local a = dl.randn(4, 4):totable()
    dl.rand(3)
    dl.set_rng_state(s)
    assert.same(a, dl.randn(4, 4):totable())
  end)
  it("validates the state", function()
    H.assert_error(function() dl.set_rng_state(dl.zeros(2)) end, "bad argument #1", "set_rng_state", "int64",
      "float32 [2]")
    H.assert_error(function() dl.set_rng_state(dl.tensor({1, 2, 3})) end, "int64 [3]")
    H.assert_error(function() dl.set_rng_state(dl.tensor({{1, 2}})) end, "int64 [1,2]")
    H.assert_error(function() dl.set_rng_state(dl.tensor({1, -2})) end, "offset must be non-negative")
    H.assert_error(function() dl.set_rng_state({1, 2}) end, "bad argument #1", "tensor expected")
  end)
end)

describe("dl.rand", function()
  it("takes sizes as varargs or a table, and options", function()
    assert.same({2, 3}, dl.rand(2, 3):size())
    assert.same({2, 3}, dl.rand({2, 3}).shape)
    assert.equal("float32", dl.rand(2).dtype)
    assert.equal("float64", dl.rand(2, {dtype = "float64"}).dtype)
    assert.equal(0, dl.rand({}):dim())
    assert.same({0}, dl.rand(0):size())
  end)
  it("is uniform on [0, 1): mean 1/2, std 1/sqrt(12) over 1e5 samples", function()
    dl.manual_seed(10)
    for _, dt in ipairs({"float32", "float64"}) do
      local v = values(dl.rand(100000, {dtype = dt}))
      local lo, hi = math.huge, -math.huge
      for i = 1, #v do
        lo, hi = math.min(lo, v[i]), math.max(hi, v[i])
      end
      assert.is_true(lo >= 0 and hi < 1)
      local m, s = mean_std(v)
      assert.is_true(math.abs(m - 0.5) < 0.005, dt .. " mean " .. m)
      assert.is_true(math.abs(s - 1 / math.sqrt(12)) < 0.005, dt .. " std " .. s)
    end
  end)
  it("uses the full 53 bits for float64", function()
    dl.manual_seed(4)
    local v = values(dl.rand(1000, {dtype = "float64"}))
    local fine = 0
    for i = 1, #v do
      if v[i] * 2 ^ 24 ~= math.floor(v[i] * 2 ^ 24) then fine = fine + 1 end
    end
    assert.is_true(fine > 990)
  end)
  it("rejects integer dtypes, negative sizes and unknown options", function()
    H.assert_error(function() dl.rand(2, {dtype = "int64"}) end, "dl.rand: expected a floating-point dtype, got int64")
    H.assert_error(function() dl.rand(2, -1) end, "negative size")
    H.assert_error(function() dl.rand({2, -3}) end, "negative size")
    H.assert_error(function() dl.rand(2.5) end, "sizes must be integers")
    H.assert_error(function() dl.rand(2, {dtpe = "float64"}) end, "unknown option 'dtpe'")
    H.assert_error(function() dl.rand(2, "x") end, "bad argument #2")
  end)
end)

describe("dl.randn", function()
  it("is standard normal: mean 0, std 1 over 1e5 samples, float32 and float64", function()
    dl.manual_seed(20)
    for _, dt in ipairs({"float32", "float64"}) do
      local v = values(dl.randn(100000, {dtype = dt}))
      local m, s = mean_std(v)
      assert.is_true(math.abs(m) < 0.01, dt .. " mean " .. m)
      assert.is_true(math.abs(s - 1) < 0.01, dt .. " std " .. s)
      -- tails: P(|z| > 2) = 0.0455
      local tail = 0
      for i = 1, #v do if math.abs(v[i]) > 2 then tail = tail + 1 end end
      assert.is_true(math.abs(tail / #v - 0.0455) < 0.003, dt .. " tail " .. tail / #v)
    end
  end)
  it("handles odd sizes (the last pair's second value is dropped)", function()
    dl.manual_seed(8)
    local odd = dl.randn(5):totable()
    dl.manual_seed(8)
    local even = dl.randn(6):totable()
    for i = 1, 5 do assert.equal(even[i], odd[i]) end
  end)
  it("rejects integer dtypes", function()
    H.assert_error(function() dl.randn(3, {dtype = "bool"}) end, "dl.randn", "floating-point", "bool")
  end)
end)

describe("dl.rand_like / randn_like / randint_like", function()
  it("copy shape and dtype, with overrides", function()
    local t = dl.zeros(2, 3, {dtype = "float64"})
    local r = dl.rand_like(t)
    assert.same({2, 3}, r:size())
    assert.equal("float64", r.dtype)
    assert.equal("float32", dl.randn_like(t, {dtype = "float32"}).dtype)
    local i = dl.randint_like(dl.zeros(4, {dtype = "int64"}), 5, 8)
    for _, x in ipairs(i:totable()) do assert.is_true(x >= 5 and x < 8) end
    local j = dl.randint_like(dl.zeros(3), 2)
    assert.equal("float32", j.dtype)
    for _, x in ipairs(j:totable()) do assert.is_true(x == 0 or x == 1) end
  end)
  it("rejects integer dtypes for rand_like", function()
    H.assert_error(function() dl.rand_like(dl.zeros(2, {dtype = "int64"})) end, "dl.rand_like", "int64")
  end)
end)

describe("dl.randint", function()
  it("draws integers in [lo, hi), int64 by default, hitting every value", function()
    dl.manual_seed(30)
    local t = dl.randint(-3, 4, {10000})
    assert.equal("int64", t.dtype)
    local seen = {}
    for _, x in ipairs(t:totable()) do
      assert.is_true(math.type(x) == "integer" and x >= -3 and x < 4)
      seen[x] = (seen[x] or 0) + 1
    end
    for x = -3, 3 do assert.is_true(math.abs(seen[x] / 10000 - 1 / 7) < 0.015) end
  end)
  it("takes randint(hi, {sizes}) and randint(lo, hi, sizes...)", function()
    local a = dl.randint(3, {2, 2})
    assert.same({2, 2}, a:size())
    for _, x in ipairs(values(a)) do assert.is_true(x >= 0 and x < 3) end
    assert.same({2, 5}, dl.randint(0, 9, 2, 5):size())
    assert.equal(0, dl.randint(0, 9, {}):dim())
  end)
  it("covers ranges wider than 2^32", function()
    local lo, hi = -(1 << 62), 1 << 62
    local big = 0
    for _, x in ipairs(dl.randint(lo, hi, {1000}):totable()) do
      assert.is_true(x >= lo and x < hi)
      if math.abs(x) > (1 << 40) then big = big + 1 end
    end
    assert.is_true(big > 990)
  end)
  it("fills other dtypes on request", function()
    local f = dl.randint(0, 10, {100}, {dtype = "float32"})
    assert.equal("float32", f.dtype)
    for _, x in ipairs(f:totable()) do assert.is_true(x == math.floor(x) and x >= 0 and x < 10) end
    local u = dl.randint(250, 256, {50}, {dtype = "uint8"})
    for _, x in ipairs(u:totable()) do assert.is_true(x >= 250 and x <= 255) end
  end)
  it("rejects empty ranges, out-of-dtype ranges and missing sizes", function()
    H.assert_error(function() dl.randint(5, 5, {3}) end, "dl.randint: expected lo < hi, got lo=5, hi=5")
    H.assert_error(function() dl.randint(6, 2, {3}) end, "lo < hi")
    H.assert_error(function() dl.randint(0, {3}) end, "lo < hi")
    H.assert_error(function() dl.randint(0, 300, {3}, {dtype = "uint8"}) end, "out of bounds for dtype uint8")
    H.assert_error(function() dl.randint(0, 10) end, "bad argument #3", "sizes expected")
    H.assert_error(function() dl.randint(0, 10, {-1}) end, "negative size")
    H.assert_error(function() dl.randint(0.5, 10, {2}) end, "bad argument #1")
  end)
end)

describe("dl.randperm", function()
  it("is a permutation of 1..n (1-based), int64", function()
    dl.manual_seed(40)
    local p = dl.randperm(200)
    assert.equal("int64", p.dtype)
    local v = p:totable()
    assert.equal(200, #v)
    local seen = {}
    for _, x in ipairs(v) do
      assert.is_true(x >= 1 and x <= 200 and not seen[x])
      seen[x] = true
    end
    local moved = 0
    for i = 1, 200 do if v[i] ~= i then moved = moved + 1 end end
    assert.is_true(moved > 150)
  end)
  it("handles n = 0 and n = 1 and float dtypes", function()
    assert.same({0}, dl.randperm(0):size())
    assert.same({1}, dl.randperm(1):totable())
    local f = dl.randperm(5, {dtype = "float64"})
    assert.equal("float64", f.dtype)
    local s = 0
    for _, x in ipairs(f:totable()) do s = s + x end
    assert.equal(15, s)
  end)
  it("rejects negative n and dtypes too small for n", function()
    H.assert_error(function() dl.randperm(-1) end, "bad argument #1", "non-negative")
    H.assert_error(function() dl.randperm(300, {dtype = "uint8"}) end, "dl.randperm", "out of bounds", "uint8")
  end)
end)

describe("Tensor:uniform_", function()
  it("fills in place on [a, b) and returns the tensor", function()
    local t = dl.empty(1000, {dtype = "float64"})
    local r = t:uniform_(-2, 3)
    assert.is_true(rawequal(r, t))
    local v = values(t)
    for i = 1, #v do assert.is_true(v[i] >= -2 and v[i] < 3) end
    local m = mean_std(v)
    assert.is_true(math.abs(m - 0.5) < 0.15)
  end)
  it("defaults to [0, 1)", function()
    for _, x in ipairs(dl.zeros(50):uniform_():totable()) do assert.is_true(x >= 0 and x < 1) end
  end)
  it("fills a non-contiguous view in its C order, leaving the rest untouched", function()
    local base = dl.zeros(4, 6)
    local view = base:t():narrow(1, 2, 3) -- [3,4], non-contiguous
    assert.is_false(view:is_contiguous())
    dl.manual_seed(50)
    view:uniform_()
    dl.manual_seed(50)
    local ref = dl.rand(3, 4)
    assert.same(ref:totable(), view:totable())
    local bt = base:totable()
    for i = 1, 4 do
      assert.equal(0, bt[i][1])
      for j = 5, 6 do assert.equal(0, bt[i][j]) end
    end
  end)
  it("rejects integer tensors and bad bounds", function()
    H.assert_error(function() dl.zeros(2, {dtype = "int64"}):uniform_() end, "dl.uniform_", "int64")
    H.assert_error(function() dl.zeros(2):uniform_(1, 0) end, "dl.uniform_: expected finite a <= b")
    H.assert_error(function() dl.zeros(2):uniform_(0, math.huge) end, "finite")
    H.assert_error(function() dl.zeros(2):uniform_("a") end, "bad argument #1")
  end)
  it("refuses a leaf that requires grad outside no_grad, for every in-place fill", function()
    local w = dl.zeros(3, {requires_grad = true})
    for _, call in ipairs({
      function() w:uniform_() end, function() w:normal_() end, function() w:exponential_() end,
      function() w:random_(5) end, function() w:bernoulli_() end,
    }) do
      H.assert_error(call, "leaf tensor that requires grad")
    end
    assert.same({0, 0, 0}, w:totable())
    dl.no_grad(function() w:uniform_(1, 2) end)
    for _, x in ipairs(w:totable()) do assert.is_true(x >= 1 and x < 2) end
  end)
end)

describe("Tensor:normal_", function()
  it("has the requested mean and std", function()
    dl.manual_seed(60)
    local v = values(dl.empty(100000):normal_(3, 0.5))
    local m, s = mean_std(v)
    assert.is_true(math.abs(m - 3) < 0.01)
    assert.is_true(math.abs(s - 0.5) < 0.01)
  end)
  it("fills strided float64 views", function()
    local base = dl.zeros(10, 2, {dtype = "float64"})
    base:select(2, 1):normal_()
    local bt = base:totable()
    local nonzero = 0
    for i = 1, 10 do
      assert.equal(0, bt[i][2])
      if bt[i][1] ~= 0 then nonzero = nonzero + 1 end
    end
    assert.equal(10, nonzero)
  end)
  it("rejects a negative std and integer tensors", function()
    H.assert_error(function() dl.zeros(2):normal_(0, -1) end, "dl.normal_", "std >= 0")
    H.assert_error(function() dl.zeros(2, {dtype = "uint8"}):normal_() end, "dl.normal_", "uint8")
  end)
end)

describe("Tensor:exponential_", function()
  it("has mean 1/lambda", function()
    dl.manual_seed(65)
    local v = values(dl.empty(100000, {dtype = "float64"}):exponential_(4))
    local m = mean_std(v)
    for i = 1, 100 do assert.is_true(v[i] >= 0) end
    assert.is_true(math.abs(m - 0.25) < 0.005)
  end)
  it("rejects lambda <= 0", function()
    H.assert_error(function() dl.zeros(2):exponential_(0) end, "dl.exponential_", "lambd > 0")
  end)
end)

describe("Tensor:random_", function()
  it("fills integers in [lo, hi) or [0, hi)", function()
    for _, x in ipairs(dl.zeros(100, {dtype = "int64"}):random_(10, 12):totable()) do
      assert.is_true(x == 10 or x == 11)
    end
    for _, x in ipairs(dl.zeros(100, {dtype = "uint8"}):random_(3):totable()) do assert.is_true(x >= 0 and x < 3) end
    H.assert_error(function() dl.zeros(3):random_(2, 2) end, "dl.random_: expected lo < hi")
  end)
end)

describe("Tensor:bernoulli_", function()
  it("draws 1 with probability p (frequency over 1e5 draws)", function()
    dl.manual_seed(70)
    local v = values(dl.empty(100000):bernoulli_(0.3))
    local ones = 0
    for i = 1, #v do
      assert.is_true(v[i] == 0 or v[i] == 1)
      ones = ones + v[i]
    end
    assert.is_true(math.abs(ones / #v - 0.3) < 0.006)
  end)
  it("float masks (drawn 16 blocks at a time where the CPU has vectors) are the same draws as integer ones", function()
    -- the integer path draws one block at a time with the scalar formula
    for _, n in ipairs({1, 2, 31, 32, 33, 63, 64, 65, 1000, 4099, 70001}) do
      for _, p in ipairs({0.3, 0.9, 0.5}) do
        for _, dt in ipairs({"float32", "float64"}) do
          dl.manual_seed(n)
          local got = dl.empty(n, {dtype = dt}):bernoulli_(p)
          dl.manual_seed(n)
          local want = dl.empty(n, {dtype = "int64"}):bernoulli_(p)
          assert.same(values(want), values(got), string.format("n = %d, p = %g, %s", n, p, dt))
        end
      end
    end
  end)
  it("defaults to p = 0.5 and fills any dtype", function()
    for _, dt in ipairs({"float32", "float64", "int64", "bool", "uint8"}) do
      local t = dl.zeros(2000, {dtype = dt}):bernoulli_()
      assert.equal(dt, t.dtype)
      local ones = 0
      for _, x in ipairs(values(t)) do ones = ones + x end
      assert.is_true(math.abs(ones / 2000 - 0.5) < 0.05, dt)
    end
  end)
  it("takes a tensor of probabilities, broadcast to the tensor", function()
    local t = dl.empty(3, 4):bernoulli_(dl.tensor({0.0, 1, 0, 1}))
    for i = 1, 3 do assert.same({0, 1, 0, 1}, t:select(1, i):totable()) end
    local p = dl.tensor({{0.0}, {1.0}}, {dtype = "float64"})
    assert.same({{0, 0, 0}, {1, 1, 1}}, dl.empty(2, 3, {dtype = "int64"}):bernoulli_(p):totable())
  end)
  it("fills a non-contiguous view in C order", function()
    local base = dl.zeros(6, 5)
    local view = base:t() -- [5,6]
    dl.manual_seed(75)
    view:bernoulli_(0.5)
    dl.manual_seed(75)
    local ref = dl.empty(5, 6):bernoulli_(0.5)
    assert.same(ref:totable(), view:totable())
  end)
  it("rejects p outside [0, 1], leaving the tensor untouched", function()
    H.assert_error(function() dl.zeros(3):bernoulli_(1.5) end, "dl.bernoulli_: p must be in [0, 1], got 1.5")
    H.assert_error(function() dl.zeros(3):bernoulli_(-0.1) end, "p must be in [0, 1]")
    H.assert_error(function() dl.zeros(3):bernoulli_(0 / 0) end, "p must be in [0, 1]")
    local t = dl.full({3}, 7.0)
    H.assert_error(function() t:bernoulli_(dl.tensor({0.5, 2, 0.5})) end, "dl.bernoulli_", "[0, 1]", "1 are not")
    assert.same({7, 7, 7}, t:totable())
    local v = dl.full({2, 3}, 7.0):t()
    H.assert_error(function() v:bernoulli_(dl.tensor({-1.0, 0})) end, "[0, 1]")
    assert.same({{7, 7}, {7, 7}, {7, 7}}, v:totable())
  end)
  it("rejects probabilities that do not broadcast or are not float", function()
    H.assert_error(function() dl.zeros(2, 2):bernoulli_(dl.full({3}, 0.5)) end, "dl.bernoulli_")
    H.assert_error(function() dl.zeros(2):bernoulli_(dl.full({2, 2}, 0.5)) end,
      "dl.bernoulli_: probabilities of shape [2,2] cannot be broadcast to [2]")
    H.assert_error(function() dl.zeros(2):bernoulli_(dl.tensor({0, 1})) end, "floating-point", "int64")
    H.assert_error(function() dl.zeros(2):bernoulli_("x") end, "bad argument #1")
  end)
end)

describe("dl.bernoulli", function()
  it("draws a new tensor of the probabilities' dtype and shape", function()
    local p = dl.tensor({{0.0, 1}, {1, 0}}, {dtype = "float64"})
    local r = dl.bernoulli(p)
    assert.equal("float64", r.dtype)
    assert.same({{0, 1}, {1, 0}}, r:totable())
    assert.same({{0, 1}, {1, 0}}, p:bernoulli():totable())
  end)
  it("takes a scalar p for the shape of its input", function()
    assert.same({1, 1, 1}, dl.bernoulli(dl.zeros(3), 1):totable())
    assert.same({0, 0}, dl.bernoulli(dl.zeros(2, {dtype = "int64"}), 0):totable())
  end)
  it("rejects integer probabilities and values outside [0, 1]", function()
    H.assert_error(function() dl.bernoulli(dl.tensor({0, 1})) end, "dl.bernoulli", "floating-point")
    H.assert_error(function() dl.bernoulli(dl.tensor({0.5, 1.5})) end, "dl.bernoulli", "[0, 1]")
  end)
end)
