-- dl.save / dl.load: .npy, .safetensors and checkpoints. Round trips for
-- every dtype and non-contiguous tensors, numpy-written fixtures
-- (spec/fixtures/io_reference.py), byte-identical output to the files numpy
-- was shown to read (spec/fixtures/io/ours/check_output.txt), resuming
-- training from a checkpoint, atomic writes, and hostile files: each bad
-- file an error naming the file and what is wrong, fuzzed files never a crash.
local dl = require "dlua"
local H = require "spec.helper"
local ours = dofile("spec/fixtures/io/ours.lua")

local FIX = "spec/fixtures/io/"

local DIRS = {}
local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  DIRS[#DIRS + 1] = d
  return d
end

teardown(function()
  for _, d in ipairs(DIRS) do os.execute("rm -rf '" .. d .. "'") end
end)

-- the first line a shell command prints
local function first_line(cmd)
  local p = io.popen(cmd)
  local l = p:read("l")
  p:close()
  return l
end

local function listdir(d)
  local p = io.popen("ls -A '" .. d .. "'")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

local function readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- same dtype, shape and exact values (ints compared as integers)
local function assert_same(a, b)
  assert(dl.is_tensor(a) and dl.is_tensor(b), "expected two tensors")
  assert.are.equal(b.dtype, a.dtype)
  assert.are.same(b:size(), a:size())
  assert.are.same(b:totable(), a:totable())
end

local DTYPES = {"float32", "float64", "int64", "uint8", "bool"}

local function sample(dt)
  if dt == "bool" then return dl.tensor({{true, false, true}, {false, false, true}}) end
  if dt == "int64" then return dl.tensor({{-(1 << 62), 3, (1 << 53) + 1}, {-1, 0, 9}}, {dtype = dt}) end
  if dt == "uint8" then return dl.tensor({{0, 255, 7}, {128, 1, 2}}, {dtype = dt}) end
  return dl.tensor({{1 / 3, -2.5, 1e-20}, {7, -0.0, 3.25}}, {dtype = dt})
end

describe("dl.save/dl.load .npy", function()
  local dir = tmpdir()

  for _, dt in ipairs(DTYPES) do
    it("round-trips a " .. dt .. " tensor", function()
      local t = sample(dt)
      dl.save(dir .. "/a.npy", t)
      assert_same(dl.load(dir .. "/a.npy"), t)
    end)
    it("round-trips a transposed and narrowed " .. dt .. " tensor in C order", function()
      local t = sample(dt):t()
      assert.is_false(t:is_contiguous())
      dl.save(dir .. "/t.npy", t)
      local u = dl.load(dir .. "/t.npy")
      assert.is_true(u:is_contiguous())
      assert_same(u, t)
      local n = sample(dt):narrow(2, 2, 2)
      dl.save(dir .. "/n.npy", n)
      assert_same(dl.load(dir .. "/n.npy"), n)
    end)
  end

  it("round-trips 0-d, empty, 8-d and broadcast (expanded) tensors", function()
    for _, t in ipairs({dl.tensor(2.5), dl.zeros(0, 4), dl.zeros(3, 0, 2, {dtype = "int64"}),
                        dl.arange(256):view(2, 2, 2, 2, 2, 2, 2, 2), dl.tensor({1, 2, 3}):view(1, 3):expand(4, 3)}) do
      dl.save(dir .. "/x.npy", t)
      assert_same(dl.load(dir .. "/x.npy"), t)
    end
  end)

  it("saves the data of a tensor that requires grad", function()
    local t = dl.randn(3, 2):requires_grad_(true)
    dl.save(dir .. "/g.npy", t)
    local u = dl.load(dir .. "/g.npy")
    assert.is_false(u.requires_grad)
    assert_same(u, t:detach())
  end)

  it("writes a version 1.0 header padded to 64 bytes, little-endian, C order", function()
    dl.save(dir .. "/h.npy", dl.zeros(2, 3))
    local s = readfile(dir .. "/h.npy")
    assert.are.equal("\147NUMPY\1\0", s:sub(1, 8))
    local hl = string.unpack("<I2", s, 9)
    assert.are.equal(0, (10 + hl) % 64)
    assert.truthy(s:find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, true))
    assert.are.equal("\n", s:sub(10 + hl, 10 + hl))
    assert.are.equal(10 + hl + 24, #s)
  end)

  it("requires a tensor", function()
    H.assert_error(function() dl.save(dir .. "/bad.npy", {dl.zeros(2)}) end, "dl.save", "bad argument #2", "tensor")
    H.assert_error(function() dl.save(42, dl.zeros(2)) end, "dl.save", "bad argument #1", "string")
    H.assert_error(function() dl.load(nil) end, "dl.load", "bad argument #1")
    H.assert_error(function() dl.save(dir .. "/x.ckpt", nil) end, "dl.save", "bad argument #2")
  end)
end)

describe("numpy-written fixtures", function()
  local want = ours.tensors()
  for _, k in ipairs({"f4", "f8", "i8", "u1", "b1", "scalar", "empty", "f4_3d"}) do
    it("np_" .. k .. ".npy loads with numpy's values", function()
      assert_same(dl.load(FIX .. "np_" .. k .. ".npy"), want[k])
    end)
  end

  it("loads format 2.0", function()
    assert_same(dl.load(FIX .. "np_v2.npy"), want.f4)
  end)

  it("loads Fortran order as the same logical array, C-contiguous", function()
    local t = dl.load(FIX .. "np_fortran.npy")
    assert.is_true(t:is_contiguous())
    assert_same(t, dl.arange(12, {dtype = "float64"}):view(3, 4) / 4)
  end)

  it("byte-swaps big-endian data", function()
    assert_same(dl.load(FIX .. "np_bigendian.npy"), dl.arange(6, {dtype = "float32"}):view(2, 3) - 2.5)
    assert_same(dl.load(FIX .. "np_bigendian_i8.npy"), dl.tensor({1, -2, (1 << 40) + 3}, {dtype = "int64"}))
  end)

  it("loads a hand-written safetensors file with its metadata", function()
    local t, meta = dl.load(FIX .. "py.safetensors")
    for _, k in ipairs({"f4", "f8", "i8", "u1", "b1", "scalar", "empty"}) do assert_same(t[k], want[k]) end
    assert_same(t["layer.0.weight"], want.f4_3d)
    assert.are.same({format = "pt", note = "written by io_reference.py"}, meta)
  end)

  it("writes byte for byte the files numpy was shown to read", function()
    -- spec/fixtures/io/ours/check_output.txt: numpy read these and found
    -- every dtype, shape and value right
    local d = tmpdir()
    ours.write(d)
    for _, f in ipairs(listdir(FIX .. "ours")) do
      if f ~= "check_output.txt" then
        assert(readfile(d .. "/" .. f) == readfile(FIX .. "ours/" .. f), f .. " differs")
      end
    end
    assert.is_nil(readfile(FIX .. "ours/check_output.txt"):find("MISMATCH"))
  end)

  it("writes .npy files identical to numpy's np.save", function()
    local d = tmpdir()
    ours.write(d)
    for _, k in ipairs({"f4", "f8", "i8", "u1", "b1", "scalar", "empty", "f4_3d"}) do
      assert(readfile(d .. "/" .. k .. ".npy") == readfile(FIX .. "np_" .. k .. ".npy"), k .. " differs from np.save")
    end
  end)
end)

describe("dl.save/dl.load .safetensors", function()
  local dir = tmpdir()

  it("round-trips every dtype and non-contiguous tensors", function()
    local t = {}
    for _, dt in ipairs(DTYPES) do
      t[dt] = sample(dt)
      t[dt .. ".T"] = sample(dt):t()
    end
    t.scalar = dl.tensor(3, {dtype = "int64"})
    t.empty = dl.zeros(0)
    t["ünïcode \"quoted\" \\ name"] = dl.ones(2)
    dl.save(dir .. "/a.safetensors", t)
    local u, meta = dl.load(dir .. "/a.safetensors")
    assert.are.same({}, meta)
    local n = 0
    for k, v in pairs(t) do
      assert_same(u[k], v)
      n = n + 1
    end
    for _ in pairs(u) do n = n - 1 end
    assert.are.equal(0, n)
  end)

  it("is deterministic: sorted keys, same bytes whatever the insertion order", function()
    local a, b = {}, {}
    local keys = {"zeta", "alpha", "mid.weight", "b", "a"}
    for i, k in ipairs(keys) do a[k] = dl.full({i}, i) end
    for i = #keys, 1, -1 do b[keys[i]] = dl.full({i}, i) end
    dl.save(dir .. "/a1.safetensors", a)
    dl.save(dir .. "/a2.safetensors", b)
    local s = readfile(dir .. "/a1.safetensors")
    assert.are.equal(s, readfile(dir .. "/a2.safetensors"))
    local p1, p2, p3 = s:find('"a"', 1, true), s:find('"alpha"', 1, true), s:find('"zeta"', 1, true)
    assert.is_true(p1 < p2 and p2 < p3)
    assert.are.equal(0, (string.unpack("<I8", s) + 8) % 8)
  end)

  it("rejects non-flat tables and non-string keys", function()
    H.assert_error(function() dl.save(dir .. "/b.safetensors", {a = {b = dl.zeros(1)}}) end, "dl.save",
                   "b.safetensors", "only tensors", "'a' is a table")
    H.assert_error(function() dl.save(dir .. "/b.safetensors", {dl.zeros(1)}) end, "dl.save", "string keys")
    H.assert_error(function() dl.save(dir .. "/b.safetensors", dl.zeros(1)) end, "dl.save", "bad argument #2")
    H.assert_error(function() dl.save(dir .. "/b.safetensors", {["a\0b"] = dl.zeros(1)}) end, "not valid UTF-8")
  end)
end)

describe("checkpoints", function()
  local dir = tmpdir()

  it("round-trips nested tables of tensors and plain values", function()
    local obj = {
      model = {["fc1.weight"] = dl.randn(3, 2), ["fc1.bias"] = dl.zeros(3, {dtype = "float64"})},
      list = {1, 2.0, "three", true, false, {dl.tensor({true, false}), dl.arange(4):t()}},
      epoch = 3, lr = 1e-3, big = math.maxinteger, neg = -0.5, inf = math.huge, name = "bin\0ary\255",
      [7] = "int key", [2.5] = "float key", [true] = "bool key",
      nested = {a = {b = {c = {d = dl.tensor(5, {dtype = "uint8"})}}}},
      T = dl.arange(12, {dtype = "int64"}):view(3, 4):t(),
    }
    dl.save(dir .. "/c.ckpt", obj)
    local u = dl.load(dir .. "/c.ckpt")
    assert_same(u.model["fc1.weight"], obj.model["fc1.weight"])
    assert_same(u.model["fc1.bias"], obj.model["fc1.bias"])
    assert.are.equal(1, u.list[1])
    assert.are.equal("integer", math.type(u.list[1]))
    assert.are.equal("float", math.type(u.list[2]))
    assert.are.same({"three", true, false}, {u.list[3], u.list[4], u.list[5]})
    assert_same(u.list[6][1], obj.list[6][1])
    assert_same(u.list[6][2], obj.list[6][2])
    assert.are.equal(3, u.epoch)
    assert.are.equal(1e-3, u.lr)
    assert.are.equal(math.maxinteger, u.big)
    assert.are.equal(-0.5, u.neg)
    assert.are.equal(math.huge, u.inf)
    assert.are.equal("bin\0ary\255", u.name)
    assert.are.same({"int key", "float key", "bool key"}, {u[7], u[2.5], u[true]})
    assert_same(u.nested.a.b.c.d, obj.nested.a.b.c.d)
    assert_same(u.T, obj.T)
  end)

  it("saves a single tensor or a plain value under any other extension", function()
    dl.save(dir .. "/t.pt", dl.ones(2, 2))
    assert_same(dl.load(dir .. "/t.pt"), dl.ones(2, 2))
    dl.save(dir .. "/n.bin", 42)
    assert.are.equal(42, dl.load(dir .. "/n.bin"))
  end)

  it("names tensors by their path in a safetensors section, in sorted order", function()
    dl.save(dir .. "/p.ckpt", {model = {["fc1.weight"] = dl.zeros(1)}, optim = {state = {[1] = {m = dl.zeros(1)}}}})
    local s = readfile(dir .. "/p.ckpt")
    assert.are.equal("DLUACKPT", s:sub(1, 8))
    local a, b = s:find('"model/fc1.weight"', 1, true), s:find('"optim/state/1/m"', 1, true)
    assert.truthy(a and b and a < b)
  end)

  it("rejects values it cannot save, naming where they are", function()
    H.assert_error(function() dl.save(dir .. "/f.ckpt", {a = {b = print}}) end, "dl.save", "f.ckpt",
                   "cannot save a function", "a/b")
    local cyc = {}
    cyc.self = cyc
    H.assert_error(function() dl.save(dir .. "/f.ckpt", cyc) end, "contains itself", "self")
    H.assert_error(function() dl.save(dir .. "/f.ckpt", {[{}] = 1}) end, "cannot save a table key")
  end)

  it("resumes training identically (model, Adam state, rng state)", function()
    local nn = dl.nn
    dl.manual_seed(7)
    local X, y = dl.randn(32, 4), dl.randint(1, 4, {32})
    local function make()
      return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    end
    local crit = nn.CrossEntropyLoss()
    local function train(m, opt, steps)
      for _ = 1, steps do
        opt:zero_grad()
        local loss = crit(m(X), y)
        loss:backward()
        opt:step()
      end
    end
    local m = make()
    local opt = dl.optim.Adam(m:parameters(), {lr = 0.01})
    train(m, opt, 3)
    dl.save(dir .. "/run.ckpt", {model = m:state_dict(), optim = opt:state_dict(), epoch = 3,
                                 rng = dl.get_rng_state()})
    train(m, opt, 3)
    local want = m:state_dict()
    -- a fresh process state: other weights, other rng position
    dl.manual_seed(12345)
    local m2 = make()
    local opt2 = dl.optim.Adam(m2:parameters(), {lr = 0.01})
    local ck = dl.load(dir .. "/run.ckpt")
    assert.are.equal(3, ck.epoch)
    m2:load_state_dict(ck.model)
    opt2:load_state_dict(ck.optim)
    dl.set_rng_state(ck.rng)
    train(m2, opt2, 3)
    local got = m2:state_dict()
    for k, v in pairs(want) do assert_same(got[k], v) end
  end)
end)

describe("atomic writes", function()
  it("leaves the old file intact and no temp file when a value fails midway", function()
    local d = tmpdir()
    dl.save(d .. "/m.ckpt", {w = dl.ones(3), epoch = 1})
    local before = readfile(d .. "/m.ckpt")
    H.assert_error(function() dl.save(d .. "/m.ckpt", {w = dl.zeros(3), epoch = 2, bad = {x = coroutine.create(print)}}) end,
                   "cannot save a thread", "bad/x")
    assert.are.equal(before, readfile(d .. "/m.ckpt"))
    assert.are.same({"m.ckpt"}, listdir(d))
    assert.are.equal(1, dl.load(d .. "/m.ckpt").epoch)
  end)

  it("refuses a Module or optimiser object (it would load as a bare table) and says to save its state_dict", function()
    local d = tmpdir()
    local m = dl.nn.Sequential(dl.nn.Linear(2, 3), dl.nn.ReLU())
    local opt = dl.optim.Adam(m:parameters())
    H.assert_error(function() dl.save(d .. "/m.ckpt", m) end, "dl.save", "m.ckpt", "cannot save a Sequential object",
                   "state_dict()", "(root)")
    H.assert_error(function() dl.save(d .. "/m.ckpt", {epoch = 1, opt = opt}) end, "cannot save a Adam object", "'opt'")
    assert.are.same({}, listdir(d))
    dl.save(d .. "/m.ckpt", {model = m:state_dict(), opt = opt:state_dict()})
    local back = dl.load(d .. "/m.ckpt")
    local m2 = dl.nn.Sequential(dl.nn.Linear(2, 3), dl.nn.ReLU())
    m2:load_state_dict(back.model)
    assert.are.same(m[1].weight:totable(), m2[1].weight:totable())
  end)

  it("leaves no temp file when the rename fails (target is a directory)", function()
    local d = tmpdir()
    assert(os.execute("mkdir '" .. d .. "/x.npy' && touch '" .. d .. "/x.npy/keep'"))
    H.assert_error(function() dl.save(d .. "/x.npy", dl.ones(2)) end, "dl.save", "x.npy", "cannot replace the file")
    assert.are.same({"x.npy"}, listdir(d))
    assert.are.same({"keep"}, listdir(d .. "/x.npy"))
  end)

  it("saves through a symlink into its target and keeps the link", function()
    local d = tmpdir()
    assert(os.execute("mkdir '" .. d .. "/real' && ln -s real/w.npy '" .. d .. "/link.npy'"))
    dl.save(d .. "/link.npy", dl.ones(3)) -- dangling link: the target is made
    assert.are.same({1, 1, 1}, dl.load(d .. "/real/w.npy"):totable())
    dl.save(d .. "/link.npy", dl.zeros(2)) -- existing target: replaced
    assert.are.same({0, 0}, dl.load(d .. "/link.npy"):totable())
    assert.are.same({"link.npy", "real"}, listdir(d))
    assert.are.same({"w.npy"}, listdir(d .. "/real"))
    assert.are.equal("real/w.npy", first_line("readlink '" .. d .. "/link.npy'"))
  end)

  it("keeps the mode of the file it replaces", function()
    local d = tmpdir()
    dl.save(d .. "/m.npy", dl.ones(2))
    assert(os.execute("chmod 640 '" .. d .. "/m.npy'"))
    dl.save(d .. "/m.npy", dl.zeros(2))
    assert.are.equal("640", first_line("stat -c %a '" .. d .. "/m.npy'"))
  end)

  it("removes temporary files a killed save left, and only stale ones of the same name", function()
    local d = tmpdir()
    assert(os.execute("cd '" .. d .. "' && touch -d '2 hours ago' c.ckpt.tmp.AbC123 c.ckpt.tmp.zzzzzz"
                      .. " && touch c.ckpt.tmp.live00 && touch -d '2 hours ago' other.ckpt.tmp.AbC123 c.ckpt.tmp.toolong1"))
    dl.save(d .. "/c.ckpt", {epoch = 3})
    assert.are.same({"c.ckpt", "c.ckpt.tmp.live00", "c.ckpt.tmp.toolong1", "other.ckpt.tmp.AbC123"}, listdir(d))
    assert.are.equal(3, dl.load(d .. "/c.ckpt").epoch)
  end)

  it("fails cleanly in a missing directory", function()
    local d = tmpdir()
    H.assert_error(function() dl.save(d .. "/no/such/dir/a.safetensors", {a = dl.ones(1)}) end, "dl.save",
                   "a.safetensors", "cannot create a temporary file")
    assert.are.same({}, listdir(d))
  end)

  it("replaces an existing file completely", function()
    local d = tmpdir()
    dl.save(d .. "/r.npy", dl.zeros(100))
    dl.save(d .. "/r.npy", dl.ones(2))
    assert_same(dl.load(d .. "/r.npy"), dl.ones(2))
    assert.are.same({"r.npy"}, listdir(d))
  end)
end)

-- ---- hostile files ----

local function npy(dict, data, major)
  local pre = "\147NUMPY" .. string.char(major or 1, 0)
  if (major or 1) == 1 then return pre .. string.pack("<I2", #dict) .. dict .. data end
  return pre .. string.pack("<I4", #dict) .. dict .. data
end

local function st(header, data)
  return string.pack("<I8", #header) .. header .. data
end

local function ckpt(stblob, structure, version)
  return "DLUACKPT" .. string.pack("<I4I4I8", version or 1, 0, #stblob) .. stblob .. structure
end

describe("dl.load of bad files", function()
  local dir = tmpdir()
  local function bad(name, bytes, ...)
    local path = dir .. "/" .. name
    writefile(path, bytes)
    return H.assert_error(function() dl.load(path) end, "dl.load", name, ...)
  end
  local F4 = string.rep("\0", 24)

  it("reports missing files, directories, empty files and unknown magic", function()
    H.assert_error(function() dl.load(dir .. "/missing.npy") end, "dl.load", "missing.npy", "cannot open")
    H.assert_error(function() dl.load(dir) end, "dl.load", "not a regular file")
    bad("empty.npy", "", "unknown file format")
    bad("magic.bin", "PK\3\4 this is a zip file, not a tensor", "unknown file format")
  end)

  it("rejects truncated npy files", function()
    local good = readfile(FIX .. "np_f4.npy")
    bad("t1.npy", good:sub(1, 8), "truncated header")
    bad("t2.npy", good:sub(1, 40), "truncated npy header")
    bad("t3.npy", good:sub(1, #good - 1), "data size mismatch", "[2,3]")
  end)

  it("rejects npy headers that lie or do not parse", function()
    local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    assert_same(dl.load((function() writefile(dir .. "/ok.npy", npy(dict, F4)) return dir .. "/ok.npy" end)()),
                dl.zeros(2, 3))
    bad("l1.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", F4), "data size mismatch", "[2,4]")
    bad("l2.npy", npy(dict, F4 .. "\0"), "data size mismatch")
    bad("l3.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) ", F4), "bad npy header")
    bad("l4.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", F4), "unsupported npy dtype", "<i4")
    bad("l5.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", F4), "unsupported npy dtype")
    bad("l6.npy", npy("{'descr': '<f4', 'shape': (2, 3), }", F4), "missing key", "fortran_order")
    bad("l7.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", F4), "unexpected", "'x'")
    bad("l8.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", F4), "fortran_order")
    bad("l9.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", F4), "non-negative")
    bad("l10.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", F4),
        "more than 8 dimensions")
    bad("l11.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", F4),
        "npy shape too large")
    bad("l12.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", F4),
        "too large")
    bad("l13.npy", npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", F4),
        "repeated key")
    bad("l14.npy", "\147NUMPY\9\0" .. string.rep(" ", 20), "unsupported npy format version 9")
    bad("l15.npy", npy(dict, F4):sub(1, 8) .. "\255\255" .. dict .. F4, "truncated npy header")
    bad("l16.npy", npy(dict, F4, 2):sub(1, 8) .. "\255\255\255\127" .. dict, "truncated npy header")
  end)

  it("normalises bool bytes to 0/1", function()
    writefile(dir .. "/b.npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", "\0\7\1"))
    assert_same(dl.load(dir .. "/b.npy"), dl.tensor({false, true, true}))
  end)

  local function hdr(entries)
    return entries
  end

  it("rejects safetensors offsets past the end, overlapping, negative or not matching the shape", function()
    local data = string.rep("\0", 16)
    local ok = hdr('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}')
    writefile(dir .. "/ok.safetensors", st(ok, data))
    assert_same(dl.load(dir .. "/ok.safetensors").b, dl.zeros(2))
    bad("o1.safetensors", st('{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', data),
        "\"a\"", "past the end of the data")
    bad("o2.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', data),
        "overlap")
    bad("o3.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', data), "negative")
    bad("o4.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', data), "begin after end")
    bad("o5.safetensors", st('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', data), "does not match",
        "[3]")
    bad("o6.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data), "[begin, end]")
    bad("o7.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e3]}}', data), "integers")
    bad("o8.safetensors", st('{"a":{"dtype":"F32","shape":[4294967296,4294967296,8],"data_offsets":[0,8]}}', data),
        "does not match")
    -- the format packs the tensors from byte 0 to the end (the reference reader refuses gaps too)
    bad("o9.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', data),
        "8 unused bytes in the data before tensor \"a\"")
    bad("o10.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data),
        "8 bytes after the last tensor's data")
    bad("o11.safetensors", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', data),
        "4 unused bytes", "\"b\"")
  end)

  it("rejects safetensors header lengths past the file and invalid JSON", function()
    bad("h1.safetensors", string.pack("<I8", 1000) .. "{}", "header length 1000", "past the end")
    bad("h2.safetensors", string.pack("<I8", -1) .. "{}", "past the end")
    bad("h3.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', ""), "invalid JSON")
    bad("h4.safetensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x', ""), "trailing")
    bad("h5.safetensors", st('{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', "\0\0\0\0"),
        "unsupported dtype", "F16")
    bad("h6.safetensors", st('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}',
                             string.rep("\0", 8)), "duplicate tensor name")
    bad("h7.safetensors", st('{"a\\x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', "\0\0\0\0"), "bad escape")
    bad("h8.safetensors", st('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":1}}', "\0\0\0\0"),
        "unexpected or repeated key")
    bad("h9.safetensors", st('{"a":{"dtype":"F32","data_offsets":[0,4]}}', "\0\0\0\0"), "without shape")
    bad("h10.safetensors", st('{"__metadata__":{"k":1}}', ""), "expected a string")
    bad("h11.safetensors", string.pack("<I8", 2) .. "{", "past the end")
    bad("h12.safetensors", "\1\0\0", "unknown file format")
  end)

  it("decodes JSON escapes in names and metadata", function()
    writefile(dir .. "/esc.safetensors",
              st('{"__metadata__":{"k\\n":"\\u00e9\\ud83d\\ude00"},"a\\"b\\u0041":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', "\9"))
    local t, meta = dl.load(dir .. "/esc.safetensors")
    assert_same(t['a"bA'], dl.tensor({9}, {dtype = "uint8"}))
    assert.are.equal("é😀", meta["k\n"])
  end)

  it("rejects checkpoints with a bad version, sections or structure", function()
    local blob = st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "\0\0\128\63")
    local good = "{" .. string.pack("<I4", 1) .. "s" .. string.pack("<s4", "w") .. "t" .. string.pack("<s4", "w")
    writefile(dir .. "/ok.ckpt", ckpt(blob, good))
    assert_same(dl.load(dir .. "/ok.ckpt").w, dl.ones(1))
    bad("c1.ckpt", ckpt(blob, good, 99), "unsupported checkpoint version 99")
    bad("c2.ckpt", ckpt(blob, good):sub(1, 20), "truncated checkpoint header")
    bad("c3.ckpt", ckpt(blob, ""):sub(1, 40), "truncated checkpoint")
    bad("c4.ckpt", ckpt(blob, good:sub(1, -3)), "bad checkpoint structure", "truncated")
    bad("c5.ckpt", ckpt(blob, good .. "T"), "bad checkpoint structure", "trailing bytes")
    bad("c6.ckpt", ckpt(blob, "X"), "unknown tag 0x58")
    bad("c7.ckpt", ckpt(blob, "{" .. string.pack("<I4", 1) .. "s" .. string.pack("<s4", "w") .. "t"
                               .. string.pack("<s4", "v")), "missing tensor \"v\"")
    bad("c8.ckpt", ckpt(blob, "T"), "tensor \"w\" is not referenced")
    bad("c9.ckpt", ckpt(blob, "{" .. string.pack("<I4", 4000000000)), "runs past the end")
    bad("c10.ckpt", ckpt(blob, "{" .. string.pack("<I4", 2) .. "TF" .. "TT"), "duplicate key true")
    bad("c11.ckpt", ckpt(blob, "{" .. string.pack("<I4", 1) .. "t" .. string.pack("<s4", "w") .. "T"), "bad table key")
    bad("c12.ckpt", ckpt(blob, string.rep("{" .. string.pack("<I4", 1) .. "T", 300) .. "T"), "nested deeper")
    bad("c13.ckpt", ckpt(blob, "s" .. string.pack("<I4", 100) .. "ab"), "truncated")
    bad("c14.ckpt", ckpt(blob, "d" .. string.pack("<d", 0.0):sub(1, 5)), "truncated")
    bad("c15.ckpt", ckpt(st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}', "\0\0\128\63"), good),
        "past the end of the data")
  end)

  it("never crashes on truncated or byte-flipped files (fuzz)", function()
    local d = tmpdir()
    ours.write(d)
    dl.save(d .. "/c.ckpt", {m = {w = dl.randn(3, 2), b = dl.zeros(2, {dtype = "int64"})}, e = 3, s = "x", ok = true})
    local files = {d .. "/f4.npy", d .. "/b1.npy", d .. "/ours.safetensors", d .. "/c.ckpt", FIX .. "np_fortran.npy"}
    local rng = 20240
    local function rand(n) -- small LCG: the same cases every run
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n + 1
    end
    local tried, errs = 0, 0
    for _, f in ipairs(files) do
      local good = readfile(f)
      for i = 1, 60 do
        local s
        if i <= 20 then
          s = good:sub(1, rand(#good) - 1)
        else
          local b = {good:byte(1, -1)}
          for _ = 1, rand(3) do
            local p = rand(#b)
            b[p] = i % 3 == 0 and rand(256) - 1 or (b[p] ~ (1 << (rand(8) - 1)))
          end
          s = string.char(table.unpack(b))
        end
        local path = d .. "/fuzz.bin"
        writefile(path, s)
        local ok, err = pcall(dl.load, path)
        tried = tried + 1
        if not ok then
          errs = errs + 1
          assert(tostring(err):find("dl.load: " .. path, 1, true), "unexpected error: " .. tostring(err))
        end
      end
    end
    assert.are.equal(300, tried)
    assert.is_true(errs > 50)
  end)
end)
